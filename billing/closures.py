"""Closing and reopening a workspace (SPEC W1), and the one check every other service makes.

Closing is the customer's "delete my workspace": its data stops at once, a monthly Team
subscription ends with its final invoice (K1), an annual term ends without renewal, refund or
further overage, a trial ends uncharged, the apps above end the active discount and lapse unused
credit (`billing.hooks.register_closure_step`), and one email confirms it. From then on every
service that changes the workspace refuses (`refuse_closed`) until support reopens it, on Free.

`billing.services` re-exports `close_workspace` and `reopen_workspace`.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta

from django.db import transaction

from billing import invoicing
from billing.audit import because, require_reason, save_with_reason
from billing.clock import refuse_processed, take_in_date_order
from billing.closed_workspaces import hold_usage_writers
from billing.emails import queue_email
from billing.errors import BillingError, WorkspaceClosed, refuse_dated_before
from billing.forecast import nothing_survives
from billing.formatting import day, money, month, period_text
from billing.hooks import closure_steps
from billing.invoicing import InvoicePreview
from billing.locks import set_lock
from billing.models import Interval, Lock, LockEvent, Subscription, Workspace, WorkspaceClosure
from billing.subscriptions import (
    advance_workspace,
    current_subscription,
    refuse_set_aside_pending,
    start_free,
    stop_subscription,
)

# --- What closing would do (the confirmation page) --------------------------------------------


@dataclass
class ClosurePreview:
    """What `close_workspace` would do on `as_of`, read without writing anything."""

    workspace: Workspace
    as_of: date
    plan: str
    subscription_effect: str
    final_invoice: InvoicePreview | None = None
    effects: list[str] = field(default_factory=list)
    # Why the closure would be refused now (I6: its final invoice cannot be made).
    problem: str = ""

    def confirmed_text(self) -> str:
        """What the page confirms: the effects and the final invoice's lines and total."""
        final = self.final_invoice
        lines = [(line.description, line.amount) for line in final.lines] if final else []
        invoice = (final.issue_date, lines, final.total) if final else None
        return repr((self.plan, self.subscription_effect, self.effects, self.problem, invoice))


def _subscription_effect(sub: Subscription, final: InvoicePreview | None, as_of: date) -> str:
    if not sub.is_team:
        return "It is on Free: there is nothing left to bill."
    if sub.trial_outcome == Subscription.TrialOutcome.RUNNING:
        return "The Team trial ends now, uncharged (T5)."
    if sub.interval == Interval.ANNUAL:
        return (
            f"The annual term ({period_text(sub.term_start, sub.term_end)}) ends now: it is not "
            f"renewed, not refunded, and no overage of {month(as_of)} is billed; a month that "
            "had already ended is invoiced at its month close."
        )
    if final is None:
        return "Monthly Team ends now; no paid day this month is unbilled, so no final invoice."
    return (
        f"Monthly Team ends now with a final invoice of {money(final.total)} dated "
        f"{day(final.issue_date)}."
    )


def closure_preview(workspace: Workspace, *, as_of: date) -> ClosurePreview:
    """W1 for the confirmation page: the final invoice (priced as the close would price it:
    discount, credit, tax), what happens to the term or trial, the discount and the credit.

    D4: as `close_workspace` does, it first applies the trial and term ends dated before
    `as_of` that the clock has not reached yet (a trial turned paid, a term renewed with its
    invoice), and says so. That runs in the forecast's sandbox: nothing it writes survives."""
    with nothing_survives("the closure's preview"):
        locked = Workspace.objects.for_change(workspace)
        before = set(locked.invoices.values_list("pk", flat=True))
        try:
            advance_workspace(locked, as_of - timedelta(days=1))
        except BillingError as exc:
            # X1: a trial or term end the clock skipped, its invoice not issuable yet.
            return _owed_cannot_be_issued(workspace, as_of, exc)
        owed = [
            f"First, the {invoice.get_kind_display().lower()} invoice of {money(invoice.total)} "
            f"dated {day(invoice.issue_date)} that the billing clock still owes is issued."
            for invoice in locked.invoices.exclude(pk__in=before).order_by("issue_date", "pk")
        ]
        preview = _preview_after_catch_up(locked, as_of)
    preview.workspace = workspace
    preview.effects[:0] = owed
    return preview


def _owed_cannot_be_issued(workspace: Workspace, as_of: date, exc) -> ClosurePreview:
    sub = workspace.subscriptions.select_related("plan").get(ended_on=None)
    return ClosurePreview(
        workspace=workspace,
        as_of=as_of,
        plan=f"Team ({sub.interval})" if sub.is_team else "Free",
        subscription_effect="The billing clock owes it an invoice first.",
        problem=f"The invoice the billing clock owes it cannot be made: {exc}.",
    )


def _preview_after_catch_up(workspace: Workspace, as_of: date) -> ClosurePreview:
    sub = workspace.subscriptions.select_related("plan").get(ended_on=None)
    final = None
    running_trial = sub.trial_outcome == Subscription.TrialOutcome.RUNNING
    problem = ""
    if sub.is_team and sub.interval == Interval.MONTHLY and not running_trial:
        draft = invoicing.final_draft(sub, as_of)
        try:
            previews = invoicing.preview([draft]) if draft else []
        except BillingError as exc:
            previews, problem = [], f"Its final invoice cannot be made: {exc}."
        final = previews[0] if previews else None
    effects = []
    for step in closure_steps():
        effects.extend(step.describe(workspace, as_of=as_of, final_invoice=final))
    plan = f"Team ({sub.interval})" if sub.is_team else "Free"
    return ClosurePreview(
        workspace=workspace,
        as_of=as_of,
        plan=plan,
        subscription_effect=(
            "Monthly Team would end now with a final invoice."
            if problem
            else _subscription_effect(sub, final, as_of)
        ),
        final_invoice=final,
        effects=effects,
        problem=problem,
    )


# --- Closing and reopening ----------------------------------------------------------------------


@transaction.atomic
def close_workspace(workspace: Workspace, *, by, reason: str, as_of: date) -> WorkspaceClosure:
    """W1: close the workspace on `as_of`, with a reason that is kept.

    Data stops at once. Monthly Team ends with its final invoice (K1: the paid days before
    `as_of` and the overage reported so far, with its discount and credit); an annual term ends
    unrenewed with no refund and no further overage; a running trial ends uncharged (T5). The
    workspace is on Free from `as_of`, the apps above end its active discount and lapse its
    unused credit, and one email confirms the closure. Refused on a day the clock processed
    (D2), for a workspace already closed, and while an invoice the month close set aside waits
    (I6: it would come after the final invoice and find its discount and credit gone)."""

    reason = require_reason(reason, "Say why the workspace is closed: the reason is kept.")
    refuse_processed(as_of, "A closure")
    hold_usage_writers()
    workspace = Workspace.objects.for_change(workspace)
    if workspace.closed_on is not None:
        raise WorkspaceClosed(
            f"{workspace.name} is already closed (since {day(workspace.closed_on)})."
        )
    take_in_date_order(workspace, as_of, "A closure")
    refuse_set_aside_pending(workspace, as_of, "A closure")
    with because(f"Workspace closed: {reason}", by):
        advance_workspace(workspace, as_of - timedelta(days=1))
        current = current_subscription(workspace)
        if current.started_on > as_of:
            raise BillingError(
                f"{workspace.name}'s current subscription starts on {day(current.started_on)}: "
                f"a closure cannot be dated {day(as_of)}, before it."
            )
        final = _end_subscription(workspace, current, as_of)
        effects = [
            sentence
            for step in closure_steps()
            for sentence in step.apply(workspace, as_of=as_of, by=by, reason=reason)
        ]
        closure = WorkspaceClosure(
            workspace=workspace, closed_on=as_of, reason=reason, closed_by=by, final_invoice=final
        )
        save_with_reason(closure, f"Closed: {reason}", by=by)
        # S4: the program's badge follows the grants, which the closure lapsed (W1); the
        # clock would take it off next time it runs, the lists read it now.
        workspace.closed_on, workspace.data_flow, workspace.startup_member = as_of, False, False
        save_with_reason(workspace, f"Closed: {reason}", by=by)
    queue_email(
        kind="workspace_closed",
        object_key=f"closure:{closure.pk}",
        to=workspace.billing_email,
        template="workspace_closed",
        context={
            "workspace": workspace,
            "closure": closure,
            "subscription": current,
            "final_invoice": final,
            "effects": effects,
        },
    )
    return closure


def _end_subscription(workspace: Workspace, sub: Subscription, day: date):
    """End the current subscription on `day` as W1 says; Free from then on. Returns the final
    invoice, if one is issued."""

    if not sub.is_team:
        return None
    final = None
    if sub.trial_outcome == Subscription.TrialOutcome.RUNNING:
        # T5: never charged. On its end date too: the day's changes come before T4 (D1).
        sub.trial_outcome = Subscription.TrialOutcome.CANCELLED
        stop_subscription(sub, day, Subscription.EndReason.CLOSED)
    elif sub.interval == Interval.ANNUAL:
        stop_subscription(sub, day, Subscription.EndReason.CLOSED)
    else:
        stop_subscription(sub, day, Subscription.EndReason.CLOSED)
        draft = invoicing.final_draft(sub, day)
        issued = invoicing.issue([draft]) if draft else []
        final = issued[0] if issued else None
    start_free(workspace, day)
    return final


@transaction.atomic
def reopen_workspace(workspace: Workspace, *, by, reason: str, as_of: date) -> WorkspaceClosure:
    """W1: support reopens a closed workspace, with a reason: on Free (where closing left it),
    unlocked, data flowing. A later move to Team is paid at once if it ever had Team (T1)."""

    reason = require_reason(reason, "Say why the workspace is reopened: the reason is kept.")
    refuse_processed(as_of, "A reopening")
    workspace = Workspace.objects.for_change(workspace)
    closure = workspace.closures.filter(reopened_on=None).first()
    if workspace.closed_on is None or closure is None:
        raise BillingError(f"{workspace.name} is not closed.")
    take_in_date_order(workspace, as_of, "A reopening")
    refuse_dated_before(as_of, closure.closed_on, "A reopening", f"{workspace.name} was closed")
    closure.reopened_on, closure.reopened_by, closure.reopen_reason = as_of, by, reason
    save_with_reason(closure, f"Reopened: {reason}", by=by)
    workspace.closed_on = None
    workspace.data_flow = workspace.lock != Lock.LOCKED_DATA_STOPPED
    save_with_reason(workspace, f"Reopened: {reason}", by=by)
    if workspace.lock != Lock.UNLOCKED:
        set_lock(
            workspace,
            Lock.UNLOCKED,
            cause=LockEvent.Cause.REOPENED,
            as_of=as_of,
            by=by,
            reason=reason,
        )
    return closure
