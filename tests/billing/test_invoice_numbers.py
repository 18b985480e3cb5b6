"""I1 past 999,999: a year of 100,000+ Team workspaces billed monthly issues over 1,000,000
invoices. Numbers keep six digits up to INV-YYYY-999999 and grow a digit after (never wrap,
never refuse, no gap), and every list ordered by number puts INV-2026-1000000 after
INV-2026-999999, where the numbers' text put it between INV-2026-100000 and INV-2026-100001."""

import csv
import io
import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.urls import reverse

from billing import services
from billing.models import CreditNote, Invoice, InvoiceSequence

from .factories import paid_monthly

FEB_1 = ["INV-2026-999999", "INV-2026-1000000", "INV-2026-1000001"]
FINAL = "INV-2026-1000002"  # a final invoice dated 10 February


@pytest.fixture
def past_a_million(db):
    """999,998 invoices given in 2026 already; three paid monthly workspaces closed for January
    (issued 1 February, in workspace order), then the first cancelled on 10 February (K1)."""
    InvoiceSequence.objects.create(year=2026, last_number=999_998)
    workspaces = [paid_monthly(date(2026, 1, 1)) for _ in range(3)]
    services.run_billing(as_of=date(2026, 2, 1))
    services.change_to_free(workspaces[0], as_of=date(2026, 2, 10))
    return workspaces


def listed(body, column="number"):
    return re.findall(rf'class="field-{column}[" ][^>]*><a [^>]*>(INV-\d{{4}}-\d+)</a>', body)


def column_order(client, url, name):
    """The list's `?o=` value that sorts by the column `name` (a checkbox column counts)."""
    return str(client.get(url).context["cl"].list_display.index(name))


def test_i1_the_close_numbers_999999_then_1000000_without_a_gap(past_a_million):
    first, second, third = past_a_million
    issued = Invoice.objects.filter(issue_date=date(2026, 2, 1)).order_by("id")
    assert [(i.workspace, i.number) for i in issued] == list(
        zip([first, second, third], FEB_1, strict=True)
    )
    assert Invoice.objects.get(kind="final").number == FINAL
    assert InvoiceSequence.objects.get(year=2026).last_number == 1_000_002


def test_i1_invoices_in_their_default_order_are_in_number_order(past_a_million):
    """Newest first: 10 February's, then 1 February's from the highest number down; the text
    order put INV-2026-999999 first ("9" > "1") and INV-2026-1000000 last."""
    newest_first = [FINAL, *reversed(FEB_1)]
    assert [i.number for i in Invoice.objects.all()] == newest_first
    assert [i.number for i in Invoice.objects.reverse()] == FEB_1 + [FINAL]
    assert Invoice.objects.last().number == "INV-2026-999999"
    assert past_a_million[0].invoices.first().number == FINAL


def test_i1_the_admin_invoice_list_shows_1000000_after_999999(client, finance, past_a_million):
    client.force_login(finance)
    url = reverse("admin:billing_invoice_changelist")
    assert listed(client.get(url).content.decode()) == [FINAL, *reversed(FEB_1)]
    by_number = column_order(client, url, "number")
    ascending = client.get(url, {"o": by_number}).content.decode()
    assert listed(ascending) == [*FEB_1, FINAL]
    descending = client.get(url, {"o": f"-{by_number}"}).content.decode()
    assert listed(descending) == [FINAL, *reversed(FEB_1)]
    # Searched, the list keeps that order.
    found = client.get(url, {"q": "INV-2026-100000"}).content.decode()
    assert listed(found) == ["INV-2026-1000002", "INV-2026-1000001", "INV-2026-1000000"]


def test_i1_the_credit_note_list_sorted_by_invoice_is_in_number_order(
    client, support, finance, past_a_million
):
    invoices = {i.number: i for i in Invoice.objects.all()}
    for number in ("INV-2026-1000000", "INV-2026-999999", "INV-2026-1000001"):
        services.request_credit_note(
            invoices[number], by=support, amount=D("10.00"), reason="Outage", as_of=date(2026, 2, 3)
        )
    assert CreditNote.objects.count() == 3
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_changelist")
    by_invoice = column_order(client, url, "invoice")
    # By invoice is in the invoices' own order (newest first), and reversed.
    newest_first = client.get(url, {"o": by_invoice}).content.decode()
    assert listed(newest_first, "invoice") == FEB_1[::-1]
    oldest_first = client.get(url, {"o": f"-{by_invoice}"}).content.decode()
    assert listed(oldest_first, "invoice") == FEB_1


def test_i1_the_finance_list_and_its_export_show_1000000_after_999999(
    client, finance, past_a_million
):
    client.force_login(finance)
    page = client.get(reverse("finance:invoices")).content.decode()
    assert re.findall(r">(INV-\d{4}-\d+)</a>", page) == [FINAL, *reversed(FEB_1)]
    export = client.get(reverse("finance:invoices-export"))
    rows = csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode()))
    assert [row["number"] for row in rows] == [*FEB_1, FINAL]  # issue order (DESIGN)
