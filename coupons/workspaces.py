"""The workspace a coupon service acts on: its row lock, and the lines the services leave in
its history (R4), so its history page says what happened to its coupons and credits."""

from billing.audit import record_history
from billing.models import Workspace


def locked_workspace(workspace) -> Workspace:
    """The workspace re-read under a row lock, as billing's writes take it: writers of one
    workspace take turns, while rows pointing at it are still inserted meanwhile."""
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)


def note_on_workspaces(notes: list[tuple[int, str]], by=None):
    """R4: a line in each workspace's own history (no field changes)."""
    record_history(Workspace, notes, by=by)  # set-based: the daily step notes thousands
