"""What the header's search box finds in billing (`billing.search`): workspaces, invoices,
credit notes and tax-exemption certificates."""

import re

from django.db.models import Q
from django.utils.html import format_html

from billing import search
from billing.admin.credit_notes import CREDIT_NOTE_TONES
from billing.admin.invoices import INVOICE_TONES
from billing.admin.tax import CERTIFICATE_TONES
from billing.admin.workspaces import lock_badge
from billing.admin_toolkit import status_badge
from billing.formatting import day, money, period_short
from billing.models import CreditNote, Invoice, TaxExemption, Workspace


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


def _describe_credit_note(note):
    detail = format_html(
        "{} · {} · {}",
        note.invoice.workspace.name,
        money(note.amount, note.invoice.currency),
        status_badge(note, "status", CREDIT_NOTE_TONES),
    )
    return str(note), detail


CREDIT_NOTE_NUMBER = re.compile(r"(INV-\d{4}-\d+)-CN(\d{1,9})", re.IGNORECASE)
CERTIFICATE_NUMBER = re.compile(r"(?:certificate\s*)?#?\s*(\d{1,18})", re.IGNORECASE)


def _credit_note_named(words):
    """I5: an approved note's number, INV-2026-000123-CN1: its invoice's and its sequence."""
    if found := CREDIT_NOTE_NUMBER.fullmatch(words):
        return Q(invoice__number__iexact=found[1], sequence=int(found[2]))
    return None


def _invoice_numbered(words):
    """An invoice by its whole number, and the longer numbers it begins, in the number's btree."""
    number = search.whole_invoice_number(words)
    return Q(number__startswith=number) if number else None


def _credit_notes_of_invoice_numbered(words):
    """The credit notes of the invoices `_invoice_numbered` finds."""
    number = search.whole_invoice_number(words)
    return Q(invoice__number__startswith=number) if number else None


def _certificate_named(words):
    """A certificate by its number as pages write it: #54, certificate #54."""
    if found := CERTIFICATE_NUMBER.fullmatch(words):
        return Q(pk=int(found[1]))
    return None


def _describe_certificate(certificate):
    start, end = certificate.valid_from, certificate.valid_to
    validity = f"valid {day(start)} to {day(end)}" if end else f"valid from {day(start)}"
    detail = format_html(
        "{} · {} · {}",
        certificate.workspace.name,
        validity,
        status_badge(certificate, "status", CERTIFICATE_TONES),
    )
    return str(certificate), detail


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
    whole=_invoice_numbered,
    describe=_describe_invoice,
)
# Walk 5: finance found neither by the workspace or the invoice it belongs to.
search.register(
    CreditNote,
    label="Credit notes",
    fields=("invoice__number", "invoice__workspace__slug", "invoice__workspace__name"),
    exact=("invoice__number",),
    order_by=("-requested_on", "-pk"),
    select_related=("invoice__workspace",),
    named=_credit_note_named,
    whole=_credit_notes_of_invoice_numbered,
    describe=_describe_credit_note,
)
search.register(
    TaxExemption,
    label="Tax exemption certificates",
    fields=("workspace__slug", "workspace__name"),
    exact=("workspace__slug",),
    order_by=("-submitted_on", "-pk"),
    select_related=("workspace",),
    named=_certificate_named,
    describe=_describe_certificate,
)
