"""What the edge-day files read back to compare with their hand-worked figures: a workspace's
invoices and lock changes, a grant's ledger, the emails sent, and a closure as support makes it."""

from django.core import mail

from billing import services
from billing.models import Invoice, Workspace


def bills(ws):
    """(kind, issue date, period start, period end, subtotal, discount, credits, tax, total),
    in issue order."""
    return [
        (
            i.kind,
            i.issue_date,
            i.period_start,
            i.period_end,
            i.subtotal,
            i.discount,
            i.credits,
            i.tax,
            i.total,
        )
        for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")
    ]


def ledger(grant):
    """(kind, day, amount) of each of the grant's ledger entries, by day."""
    return [(e.kind, e.on, e.amount) for e in grant.entries.order_by("on", "id")]


def close(ws, support, on, reason="Customer asked to delete it"):
    return services.close_workspace(ws, by=support, reason=reason, as_of=on)


def locks(slug):
    """(day, from, to, cause) of each lock change, by day (F6)."""
    return list(
        Workspace.objects.get(slug=slug)
        .lock_events.order_by("on", "id")
        .values_list("on", "from_lock", "to_lock", "cause")
    )


def subjects():
    """The emails sent, by subject (D4: which and how many, not when), sorted."""
    return sorted(m.subject for m in mail.outbox)
