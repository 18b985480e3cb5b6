"""What a plan or interval change would do, said on the page that confirms it (SPEC T1–T5,
K1, K2, K4, F7).

The change's own service runs in the forecast's sandbox (`forecast.nothing_survives`: nothing
it writes survives, no number is drawn, no email leaves) and the page reads what came out: the
invoices issued at once, the trial or the term the workspace is then on, and its lock. So the
page can never promise what the service would not do, and a refusal reads as the service says
it.
"""

from collections.abc import Callable
from datetime import date

from billing.errors import BillingError
from billing.forecast import nothing_survives
from billing.formatting import billed, day, last_day, money, period_text
from billing.models import Invoice, Subscription, Workspace


def change_effects(
    workspace: Workspace, change: Callable[[Workspace], object], *, as_of: date
) -> list[str]:
    """The sentences saying what `change(workspace)` (a call of its service, dated `as_of`)
    would do today; a refusal is the one sentence "Refused: …"."""
    with nothing_survives("this page"):
        issued_before = set(workspace.invoices.values_list("pk", flat=True))
        lock_before = Workspace.objects.values_list("lock", flat=True).get(pk=workspace.pk)
        try:
            change(Workspace.objects.get(pk=workspace.pk))
        except BillingError as refusal:
            effects = [f"Refused: {refusal}"]
        else:
            after = Workspace.objects.get(pk=workspace.pk)
            invoices = list(
                after.invoices.exclude(pk__in=issued_before).order_by("issue_date", "pk")
            )
            sub = after.subscriptions.select_related("plan").get(ended_on=None)
            effects = [_invoice(invoice) for invoice in invoices] or ["No invoice is issued now."]
            effects.append(_subscription(sub, as_of))
            # Walk 6: nothing said a new term cannot be undone; walk 9: said of the term this
            # change starts (its annual invoice), not of one begun earlier today and cancelled.
            if any(invoice.kind == Invoice.Kind.ANNUAL for invoice in invoices):
                effects.append(
                    "Going back to monthly billing then takes effect only when the term ends, "
                    f"on {day(sub.term_end)}; the annual invoice is refunded only by a credit "
                    "note finance approves (K4, K3)."
                )
            if after.lock != lock_before:  # F7: a trial's end or cancellation puts a lock back
                effects.append(f"Its lock becomes “{after.get_lock_display()}”.")
    return effects


def _invoice(invoice: Invoice) -> str:
    kind = invoice.get_kind_display().lower()
    return (
        f"{'An' if kind[0] in 'aeiou' else 'A'} {kind} invoice of {money(invoice.total)} dated "
        f"{day(invoice.issue_date)} is issued at once."
    )


def _subscription(sub: Subscription, as_of: date) -> str:
    """The plan the workspace is on after the change, with its trial or term."""
    if not sub.is_team:
        return f"It is on Free from {day(max(sub.started_on, as_of))}."
    if sub.trial_outcome == Subscription.TrialOutcome.RUNNING:
        trial = (
            f"A {(sub.trial_end - sub.started_on).days}-day Team trial runs "
            f"{period_text(sub.started_on, sub.trial_end)} (T1, T3)"
            if sub.started_on == as_of
            else f"The trial runs on to {last_day(sub.trial_end)}"
        )
        return (
            f"{trial}; on {day(sub.trial_end)} it continues as Team, {billed(sub.interval)}, "
            "with a card on file, or goes back to Free without one (T4)."
        )
    if sub.term_end is not None:
        then = (
            "then Free"
            if sub.cancel_at_term_end
            else "then monthly"
            if sub.switch_to_monthly_at_term_end
            else "then it renews with a new annual invoice"
        )
        return f"Annual term {period_text(sub.term_start, sub.term_end)}, {then} (K2)."
    return (
        f"Team, billed monthly, paid from {day(sub.paid_from)}: each month is invoiced on the "
        "1st of the next (M1)."
    )
