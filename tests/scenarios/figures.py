"""What the edge-day files read back to compare with their hand-worked figures: a workspace's
invoices, their tax and lock changes, a grant's ledger, the emails sent, a forecast beside the
invoices the clock then issues and everything a forecast must leave as it was, and a closure as
support makes it."""

from django.apps import apps
from django.core import mail

from billing import services
from billing.models import BillingClock, Invoice, InvoiceSequence, TaxExemption, Workspace
from billing.selectors import workspace_status


def bills(ws):
    """`amounts` of the workspace's invoices, in issue order."""
    return [amounts(i) for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")]


def amounts(invoice) -> tuple:
    """(kind, issue date, period start, period end, subtotal, discount, credits, tax, total)."""
    i = invoice
    return (
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


def short(slug):
    """`bills` of the workspace named by its slug, as read again after each run."""
    return bills(Workspace.objects.get(slug=slug))


def brief(slug):
    """(kind, issue date, period start, period end, subtotal, discount, tax, total)."""
    return [(b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[8]) for b in short(slug)]


def totals(slug):
    """(kind, issue date, period start, period end, total)."""
    return [(b[0], b[1], b[2], b[3], b[8]) for b in short(slug)]


def status(slug, on, *keys):
    """D3: the `workspace_status` keys asked, as of `on`."""
    got = workspace_status(Workspace.objects.get(slug=slug), as_of=on)
    return tuple(got[k] for k in keys)


def taxes(slug):
    """(issue date, tax, total, tax note) of each invoice, with the certificate numbers written
    #N (the ids may differ between tests, never between the two runs)."""
    ids = TaxExemption.objects.filter(workspace__slug=slug).values_list("pk", flat=True)
    rows = []
    for issued, tax, total, note in (
        Invoice.objects.filter(workspace__slug=slug)
        .order_by("issue_date", "id")
        .values_list("issue_date", "tax", "total", "tax_note")
    ):
        for pk in ids:
            note = note.replace(f"#{pk} ", "#N ")
        rows.append((issued, tax, total, note))
    return rows


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


def forecast_figures(invoices):
    """Every field a forecast shares with an issued invoice, and its lines (FC1): forecast
    objects (lines a list) or issued invoices (lines rows), by issue date and kind; the lines
    in their order on the invoice."""

    def lines(invoice):
        rows = invoice.lines if isinstance(invoice.lines, list) else invoice.lines.all()
        return [(line.kind, line.description, line.amount) for line in rows]

    return [
        (*amounts(i), i.tax_note, tuple(lines(i)))
        for i in sorted(invoices, key=lambda i: (i.issue_date, i.kind))
    ]


def everything():
    """Rows in every table, the invoice numbers, the clock's day and the emails sent: what a
    forecast leaves as it was (FC1)."""
    counts = {
        model._meta.db_table: model._default_manager.count()
        for model in apps.get_models(include_auto_created=True)
    }
    return (
        counts,
        list(InvoiceSequence.objects.values_list("year", "last_number")),
        list(BillingClock.objects.values_list("last_processed_day", flat=True)),
        len(mail.outbox),
    )
