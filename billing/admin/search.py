"""What the header's search box finds in billing (`billing.search`): workspaces and invoices."""

from django.utils.html import format_html

from billing import search
from billing.admin.invoices import INVOICE_TONES
from billing.admin.workspaces import lock_badge
from billing.admin_toolkit import status_badge
from billing.formatting import money, period_short
from billing.models import Invoice, Workspace


def _describe_workspace(ws):
    return f"{ws.name} ({ws.slug})", format_html("{} · {}", ws.billing_email, lock_badge(ws))


def _describe_invoice(invoice):
    detail = format_html(
        "{} · {} · {} · {}",
        invoice.workspace.name,
        period_short(invoice),
        money(invoice.total, invoice.currency),
        status_badge(invoice, "status", INVOICE_TONES),
    )
    return invoice.number, detail


search.register(
    Workspace,
    label="Workspaces",
    fields=("slug", "name", "billing_email"),
    exact=("slug", "billing_email"),
    order_by=("name", "pk"),
    describe=_describe_workspace,
)
search.register(
    Invoice,
    label="Invoices",
    fields=("number", "workspace__slug"),
    exact=("number",),
    order_by=("-issue_date", "-pk"),
    select_related=("workspace",),
    describe=_describe_invoice,
)
