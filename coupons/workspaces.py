"""The workspace a coupon service acts on: its row lock, the lines the services leave in its
history (R4), so its history page says what happened to its coupons and credits, and who is told
that it received one (E4)."""

from functools import partial

from django.db import transaction

from billing.audit import record_history
from billing.models import Workspace


def locked_workspace(workspace) -> Workspace:
    """The workspace re-read under a row lock, as billing's writes take it: writers of one
    workspace take turns, while rows pointing at it are still inserted meanwhile."""
    return Workspace.objects.select_for_update(no_key=True).get(pk=workspace.pk)


def note_on_workspaces(notes: list[tuple[int, str]], by=None):
    """R4: a line in each workspace's own history (no field changes)."""
    record_history(Workspace, notes, by=by)  # set-based: the daily step notes thousands


# S2, E4: whether a workspace ever received a coupon or credit. The startup program stores each
# open application's checks for its queue, and registers from `StartupsConfig.ready` what it does
# when a workspace receives one (coupons never imports it). It runs after the receipt commits, as
# a write of its own: it takes the application's lock after the workspace's has gone (an approval
# takes them the other way round), and an approval's own receipt then finds its application
# decided, not open.
_receipt_listeners = []


def register_receipt_listener(listener) -> None:
    """Add `listener(workspace_id, what, by=…)`, called after a workspace receives a coupon or
    a credit grant (`what` names it, as E4 does: "SPRING on 25 Jan 2026")."""
    if listener not in _receipt_listeners:
        _receipt_listeners.append(listener)


def note_received(workspace_id: int, what: str, *, by=None) -> None:
    """E4: tell the registered listeners, once the receipt commits, that the workspace received
    `what`. A listener that fails is logged and leaves the receipt as it committed (the
    application's page evaluates its checks again when a reviewer opens it)."""
    for listener in _receipt_listeners:
        transaction.on_commit(partial(listener, workspace_id, what, by=by), robust=True)
