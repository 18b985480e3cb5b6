"""Usage: one figure per workspace and month (U1), refused for a closed month (D2), a closed
workspace (W1) or a month before its sign-up (U2), bounded (I6). Files of usage go through
`billing.usage_import`.

A closed month is refused because its figures are billed; a workspace whose invoice its close
set aside (I6) is not billed for it yet, so its figure for that month is still taken: it is how
support fixes a figure that made the invoice impossible, and the next run bills it.
"""

from datetime import date

from django.db import transaction
from django.utils import timezone

from billing.audit import records_why
from billing.clock import first_open_month
from billing.closed_workspaces import hold_usage_writers, refuse_closed
from billing.errors import BillingError
from billing.formatting import day
from billing.formatting import month as month_name
from billing.models import MonthClose, SetAsideInvoice, Usage, Workspace
from billing.months import EARLIEST_MONTH, LATEST_MONTH, month_start
from billing.usage_import import before_sign_up
from billing.usage_import import mtus_problem as _mtus_problem


def _closed(month: date, workspace: Workspace) -> bool:
    """D2: the month's close has run, or the clock has reached it (then the close is running or
    about to): its usage is billed and cannot change, unless the close set the workspace's
    invoice aside (I6)."""
    first_open = first_open_month()  # the clock's row held to the commit
    closed = (first_open is not None and month < first_open) or MonthClose.objects.filter(
        month=month
    ).exists()
    return (
        closed
        and not SetAsideInvoice.objects.filter(
            workspace=workspace, close__month=month, resolved_on=None
        ).exists()
    )


def _check_usage(month: date, mtus, as_of: date | None, workspace: Workspace) -> list[str]:
    problems = []
    if not isinstance(month, date) or month.day != 1:
        problems.append(f"the month must be the 1st of a month, not {month}")
    elif not EARLIEST_MONTH <= month <= LATEST_MONTH:
        problems.append(f"{month_name(month)} is not a month this system bills")
    elif as_of is not None and month > as_of:
        problems.append(
            f"{month_name(month)} has not started on {day(as_of)} (a typo of the year?)"
        )
    elif _closed(month, workspace):
        problems.append(f"{month_name(month)} is closed (its invoices are issued)")
    elif month < month_start(workspace.created_on):
        problems.append(before_sign_up(month_name(month), workspace.created_on))
    if problem := _mtus_problem(mtus):
        problems.append(problem)
    return problems


def _refuse_problems(workspace: Workspace, month, problems: list[str]) -> None:
    if problems:
        message = f"Usage for {workspace} was not recorded: " + "; ".join(problems)
        if isinstance(month, date) and month.day == 1 and _closed(month, workspace):
            # Walk 6: where support goes from here.
            message += ". A figure billed wrong is set right by a credit note on its invoice (K3)."
        raise BillingError(message)


@transaction.atomic
@records_why("Usage recorded")
def record_usage(
    workspace: Workspace, *, month: date, mtus: int, as_of: date | None = None
) -> Usage:
    """U1: the month's figure; a later report for the same month replaces it. R4: its history
    row says why (`reason`: the screen asks for it) and who (`by`). I6: at most
    MAX_MTUS; D2: not for a month whose close has run; U2: given `as_of` (the day it is
    reported: the screens pass it), not for a month that has not started. A figure equal to
    the one on file is left as it is (R4: a form sent twice keeps no second version, as a file
    imported twice writes nothing). The row returned tells the figure it replaced, read under
    the workspace's lock, as `figure_before` (None: the month had none)."""
    _refuse_problems(workspace, month, _check_usage(month, mtus, as_of, workspace))
    # U1: an import writing figures holds the usage table; waiting for it here, before the
    # workspace's row, sees its figure (replaced by this later one, not inserted beside it:
    # a duplicate) and takes the locks in the import's order (it locks the rows of set-aside
    # workspaces after the table: the other order deadlocked).
    hold_usage_writers()
    # W1: its data stopped. The workspace's row is held next, so a closure under way (which
    # holds it) is waited for and seen, and one that comes later waits for this figure.
    Workspace.objects.select_for_update(no_key=True).filter(pk=workspace.pk).first()
    refuse_closed(workspace, "Recording usage")
    # I6: so does the retry of a set-aside invoice: checked again now, a month it has billed
    # meanwhile (from the figure before this one) is closed for this workspace too.
    if _closed(month, workspace):
        _refuse_problems(
            workspace, month, [f"{month_name(month)} is closed (its invoices are issued)"]
        )
    usage = Usage.objects.filter(workspace=workspace, month=month).first()
    now = timezone.now()
    if usage is None:
        usage = Usage.objects.create(workspace=workspace, month=month, mtus=mtus, reported_at=now)
        usage.figure_before = None
    else:
        usage.figure_before = usage.mtus
        if usage.mtus != mtus:
            usage.mtus, usage.reported_at = mtus, now
            usage.save(update_fields=["mtus", "reported_at", "updated_at"])
    return usage
