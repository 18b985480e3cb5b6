"""Which workspaces are closed (SPEC W1): the check every service that changes a workspace makes
first, and the dated subquery the month close and the daily steps read (D3).
"""

from datetime import date

from django.db import connection
from django.db.models import Exists, OuterRef

from billing.errors import WorkspaceClosed
from billing.formatting import day
from billing.models import Usage, Workspace, WorkspaceClosure


def refuse_closed(workspace: Workspace, what: str = "This change") -> None:
    """W1: a closed workspace accepts no change but reopening. Read from the database, so a
    stale copy of the workspace cannot slip a change through."""
    closed_on = (
        Workspace.objects.filter(pk=workspace.pk).values_list("closed_on", flat=True).first()
    )
    if closed_on is not None:
        raise WorkspaceClosed(
            f"{what} is refused: {workspace.name} was closed on {day(closed_on)}. A closed "
            "workspace accepts no change; support can reopen it first."
        )


def hold_usage_writers() -> None:
    """W1, U1: a closure or a figure recorded by hand, and an import of usage, take turns. On
    PostgreSQL each takes the usage table in ROW EXCLUSIVE mode (what any write of it takes)
    before it locks the workspace: it waits for an import that holds the table for its write,
    then sees what it wrote, and an import waits for it, then finds the workspace closed or
    its figure. They go on beside each other (the mode does not conflict with itself), and so
    does VACUUM; between themselves they take turns through the workspace's row."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"lock table {Usage._meta.db_table} in row exclusive mode")


def closed_on_day(day: date, workspace: str = "pk") -> Exists:
    """D3: whether the workspace of the row being filtered (its field `workspace`) was closed on
    `day`; `filter(~closed_on_day(...))` keeps the open ones. An EXISTS, not an IN of the closed
    ids: PostgreSQL runs NOT EXISTS as one anti-join, but NOT IN of a subquery whose ids outgrow
    work_mem once per row (quadratic: a million workspaces' strike step ran over 12 minutes)."""
    return Exists(WorkspaceClosure.objects.on(day).filter(workspace_id=OuterRef(workspace)))


def closed_since(day_field: str, workspace: str = "workspace") -> Exists:
    """W1: whether the workspace of the row being filtered was closed on or after the row's
    date `day_field` (an approval's day, say), reopened since or not: what the closure ended
    stays ended."""
    return Exists(
        WorkspaceClosure.objects.filter(
            workspace_id=OuterRef(workspace), closed_on__gte=OuterRef(day_field)
        )
    )


def first_closure_since(workspace_id: int, day: date) -> date | None:
    """The day the workspace was first closed on or after `day`, or None (`closed_since`)."""
    return (
        WorkspaceClosure.objects.filter(workspace_id=workspace_id, closed_on__gte=day)
        .order_by("closed_on")
        .values_list("closed_on", flat=True)
        .first()
    )
