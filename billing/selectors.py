"""Reads shared by pages, exports and other tools."""

from datetime import date

from billing.hooks import invoice_adjustments
from billing.models import Lock, Usage, Workspace
from billing.months import add_months, month_start
from billing.pricing import round_cents


def workspace_status(workspace: Workspace, *, as_of: date) -> dict:
    """What the workspace is on, on `as_of`: plan, interval, trial, lock, data flow, program
    membership and startup credit left (DESIGN "Contracts")."""
    sub = (
        workspace.subscriptions.select_related("plan")
        .filter(started_on__lte=as_of)
        .exclude(ended_on__lte=as_of)
        .order_by("-started_on", "-id")
        .first()
    )
    trialing = bool(sub and sub.trialing_on(as_of))
    return {
        "plan": sub.plan.code if sub else "free",
        "interval": sub.interval if sub else "monthly",
        "trialing": trialing,
        "trial_end": sub.trial_end if trialing else None,
        "term_end": sub.term_end if sub else None,
        "cancel_at_term_end": bool(sub and sub.cancel_at_term_end),
        "lock": workspace.lock,
        "data_flow": workspace.data_flow,
        "locked": workspace.lock != Lock.UNLOCKED,
        "startup_member": workspace.startup_member,
        "has_payment_method": workspace.payment_method_on(as_of),
        "credit_balance": round_cents(invoice_adjustments().credit_balance(workspace.pk, as_of)),
    }


def recent_usage(workspace: Workspace, *, as_of: date, months: int = 6) -> list[tuple[date, int]]:
    """The last `months` months up to `as_of`'s month, oldest first, 0 where none reported."""
    first = add_months(month_start(as_of), 1 - months)
    reported = dict(
        Usage.objects.filter(workspace=workspace, month__gte=first, month__lte=as_of).values_list(
            "month", "mtus"
        )
    )
    return [(m, reported.get(m, 0)) for m in (add_months(first, i) for i in range(months))]
