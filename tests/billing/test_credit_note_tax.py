"""K3 with X3: a credit note gives back its share of the invoice's tax, and the tax report
shows tax due as charged less given back, in the month the credit note was approved."""

import importlib
import re
from datetime import date
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse

from billing import reports, services
from billing.models import CreditNote, Invoice
from tests.admin_pages import as_shown

from .factories import paid_monthly


@pytest.fixture
def invoice(db):
    """January of a Californian workspace: 120.00 + 7.25 % tax 8.70 = 128.70."""
    ws = paid_monthly(business_region="CA")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.subtotal, invoice.tax, invoice.total) == (D("120.00"), D("8.70"), D("128.70"))
    return invoice


def credit(invoice, amount, *, support, finance, approved_on):
    note = services.request_credit_note(
        invoice, by=support, amount=amount, reason="Outage", as_of=approved_on
    )
    return services.decide_credit_note(note, by=finance, approve=True, as_of=approved_on)


def test_k3_x3_credit_notes_give_back_the_invoice_tax_to_the_cent(invoice, support, finance):
    # 2.00 × 8.70 / 128.70 = 0.1351… → 0.14; 4.00 of it → 0.2703… → 0.27, less 0.14 = 0.13; the
    # rest (124.70) gives back what is left of the 8.70: 8.43. Each note's own share rounded
    # alone would give back 0.14 + 0.14 + 8.43 = 8.71, a cent more than was charged.
    notes = [
        credit(invoice, amount, support=support, finance=finance, approved_on=date(2026, 2, 3))
        for amount in ("2.00", "2.00", "124.70")
    ]
    assert [note.tax for note in notes] == [D("0.14"), D("0.13"), D("8.43")]
    assert sum(note.tax for note in notes) == invoice.tax


def test_k3_a_rejected_or_waiting_note_gives_back_no_tax(invoice, support, finance):
    waiting = services.request_credit_note(
        invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    rejected = services.request_credit_note(
        invoice, by=support, amount="20.00", reason="Other", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(rejected, by=finance, approve=False, as_of=date(2026, 2, 3))
    assert [n.tax for n in CreditNote.objects.filter(pk__in=[waiting.pk, rejected.pk])] == [
        D("0.00"),
        D("0.00"),
    ]
    # 10.00 × 8.70 / 128.70 = 0.67599… → 0.68 once approved.
    assert services.decide_credit_note(
        waiting, by=finance, approve=True, as_of=date(2026, 2, 3)
    ).tax == D("0.68")


def test_k3_an_untaxed_invoice_gives_back_no_tax(db, support, finance):
    ws = paid_monthly(business_region="OR")  # Oregon: no sales tax
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    note = credit(invoice, "120.00", support=support, finance=finance, approved_on=date(2026, 2, 3))
    assert note.tax == D("0.00")


def test_k3_the_database_refuses_tax_beyond_the_amount(invoice, support):
    note = services.request_credit_note(
        invoice, by=support, amount="1.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditNote.objects.filter(pk=note.pk).update(tax=D("1.01"))


def test_k3_the_credit_note_document_shows_the_tax_given_back(
    client, invoice, support, finance, settings, tmp_path
):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path
    note = credit(invoice, "50.00", support=support, finance=finance, approved_on=date(2026, 2, 3))
    client.force_login(finance)
    body = client.get(reverse("finance:credit-note-document", args=[note.pk])).content.decode()
    # 46.62 credited before tax, 3.38 of tax given back, 50.00 in all.
    assert "$46.62" in body and "Tax given back" in body and "$3.38" in body
    assert "$50.00" in body


def test_k3_x4_the_tax_report_takes_tax_given_back_off_in_the_month_of_approval(
    client, invoice, support, finance
):
    credit(invoice, "50.00", support=support, finance=finance, approved_on=date(2026, 3, 5))
    rows = {
        (row["month"], row["jurisdiction"]): (
            row["invoices"],
            row["taxable"],
            row["tax_total"],
            row["taxable_given_back"],
            row["tax_given_back"],
            row["net_taxable"],
            row["tax_due"],
        )
        for row in reports.tax_report(credit_notes=CreditNote.objects.all())
    }
    # February: the invoice's 120.00 taxed 8.70; March: no invoice, the 50.00 note gives back
    # 46.62 of taxable amount and 3.38 of tax (X3): net taxable -46.62, due -3.38.
    assert rows == {
        (date(2026, 2, 1), "US-CA"): (
            1,
            D("120.00"),
            D("8.70"),
            D("0.00"),
            D("0.00"),
            D("120.00"),
            D("8.70"),
        ),
        (date(2026, 3, 1), "US-CA"): (
            0,
            D("0.00"),
            D("0.00"),
            D("46.62"),
            D("3.38"),
            D("-46.62"),
            D("-3.38"),
        ),
    }
    client.force_login(finance)
    page = client.get(
        reverse("finance:tax-report"), {"issued_from": "2026-02", "issued_to": "2026-03"}
    )
    totals = page.context["totals"]
    # 120.00 − 46.62 taxable, 8.70 − 3.38 tax: what the two months owe on 73.38 of sales.
    assert (totals["net_taxable"], totals["tax_due"]) == (D("73.38"), D("5.32"))
    assert re.search(
        r"<td[^>]*>\$46.62</td>\s*<td[^>]*>\$3.38</td>\s*<td[^>]*>-\$46.62</td>"
        r"\s*<td[^>]*>-\$3.38</td>",
        page.content.decode(),
    )
    only_february = client.get(
        reverse("finance:tax-report"), {"issued_from": "2026-02", "issued_to": "2026-02"}
    )
    assert only_february.context["totals"]["tax_given_back"] == D("0.00")
    assert only_february.context["totals"]["taxable_given_back"] == D("0.00")


def test_k3_credit_notes_approved_before_give_back_their_tax_once_migrated(
    invoice, support, finance
):
    """billing 0026 sets what `tax_given_back` would have on the notes approved before it."""
    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0026_credit_notes_give_back_tax")
    for amount in ("2.00", "2.00", "124.70"):
        credit(invoice, amount, support=support, finance=finance, approved_on=date(2026, 2, 3))
    CreditNote.objects.update(tax=D("0.00"))
    migration.give_back_tax(apps, None)
    assert list(CreditNote.objects.order_by("id").values_list("tax", flat=True)) == [
        D("0.14"),
        D("0.13"),
        D("8.43"),
    ]


def test_k3_x3_a_void_invoice_s_notes_give_back_no_tax_once_migrated(invoice, support, finance):
    """Before voids were refused with approved credit notes (5659e28), an invoice refunded
    whole (128.70, tax 8.70) could be voided. The tax report counts none of a void invoice's
    tax; 0026 gave its note 8.70 back anyway and the report took it off: February US-CA tax
    0.00, given back 8.70, due -8.70. Now 0.00 given back, 0.00 due."""
    from django.apps import apps

    migration = importlib.import_module("billing.migrations.0026_credit_notes_give_back_tax")
    credit(invoice, "128.70", support=support, finance=finance, approved_on=date(2026, 2, 3))
    CreditNote.objects.update(tax=D("0.00"))  # as it stood before 0026
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.VOID, voided_on=date(2026, 2, 4), void_reason="Issued in error"
    )
    migration.give_back_tax(apps, None)
    assert CreditNote.objects.get().tax == D("0.00")
    CreditNote.objects.update(tax=D("8.70"))  # however it got there, the report leaves it out
    rows = reports.tax_report(credit_notes=CreditNote.objects.all())
    assert reports.totals(rows, ["tax_total", "tax_given_back", "tax_due"]) == {
        "tax_total": D("0.00"),
        "tax_given_back": D("0.00"),
        "tax_due": D("0.00"),
    }


def test_k3_the_approve_page_says_the_tax_given_back_before_approval(
    client, invoice, support, finance
):
    """Walk 5: the tax a credit note gives back was known only once approved. A request of
    30.00 on 128.70 with 8.70 tax: 30.00 × 8.70 / 128.70 = 2.0279… → 2.03, said on the page;
    the credit note, named INV-…-CN1 once approved (it read "Credit note 4 on INV-…"), holds
    the same."""
    note = services.request_credit_note(
        invoice, by=support, amount="30.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    assert str(note) == f"Credit note request #{note.pk} on {invoice.number}"
    client.force_login(finance)
    page = client.get(reverse("admin:billing_creditnote_decide", args=[note.pk, "approve"]))
    assert "Of the $30.00, <strong>$2.03</strong> gives back tax" in page.content.decode()
    reject = client.get(reverse("admin:billing_creditnote_decide", args=[note.pk, "reject"]))
    assert "gives back tax" not in reject.content.decode()
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    note.refresh_from_db()
    assert (note.tax, str(note)) == (D("2.03"), f"{invoice.number}-CN1")


def test_k3_an_approve_page_read_before_another_note_was_approved_approves_nothing(
    client, invoice, support, finance
):
    """K3, stale page: two requests on 128.70 with 8.70 tax, 5.00 and 6.00. Finance opens the
    5.00's approve page: 5.00 × 8.70 / 128.70 = 0.3379… → 0.34 of tax back. In another tab the
    6.00 is approved (0.4055… → 0.41). The 5.00 now gives back 11.00's 0.7435… → 0.74 less
    0.41 = 0.33, not the 0.34 the open page says: confirming that page approves nothing and
    shows 0.33 and what is left now; confirmed again, the note holds 0.33. Before, the page
    approved it as read, booking 0.33 beside a page that said 0.34."""
    five = services.request_credit_note(
        invoice, by=support, amount="5.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    six = services.request_credit_note(
        invoice, by=support, amount="6.00", reason="Late fix", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_decide", args=[five.pk, "approve"])
    read = as_shown(client, url, {"reason": "Refunded to the card"})
    assert "Of the $5.00, <strong>$0.34</strong> gives back tax" in client.get(url).content.decode()

    services.decide_credit_note(six, by=finance, approve=True, as_of=date(2026, 2, 3))
    response = client.post(url, read)
    assert response.status_code == 200
    page = response.content.decode()
    assert "changed since this page was opened" in page
    assert "Of the $5.00, <strong>$0.33</strong> gives back tax" in page
    five.refresh_from_db()
    assert five.status == "requested"

    client.post(url, as_shown(client, url, {"reason": "Refunded to the card"}))
    five.refresh_from_db()
    assert (five.status, five.tax) == ("approved", D("0.33"))
