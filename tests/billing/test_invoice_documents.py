"""I5: every invoice and approved credit note has a document a customer can be sent — a
printable page and a PDF with the seller, the customer (name, business location), number,
dates, period, every line, the tax note and the total, built from the stored row."""

import io
import re
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.urls import reverse
from pypdf import PdfReader

from billing import services
from billing.models import CreditNote, Invoice, Plan

from .factories import certificate, paid_annual, paid_monthly


@pytest.fixture(autouse=True)
def private_media(settings, tmp_path):
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


@pytest.fixture(autouse=True)
def seller(settings):
    settings.SELLER_NAME = "Example Analytics, Inc."
    settings.SELLER_ADDRESS = "548 Market Street; San Francisco, CA 94104"


@pytest.fixture
def invoice(db):
    """February's invoice of a Californian workspace whose certificate was still in review:
    base, overage and tax lines, and a tax note saying why tax was charged (X4)."""
    ws = paid_monthly(name="Ben & Jerry's Analytics", business_region="CA")
    certificate(ws, "CA", on=date(2026, 1, 20), valid_from=date(2026, 1, 1), reason="resale")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=180_010_000)
    services.run_billing(as_of=date(2026, 2, 1))
    return Invoice.objects.get(workspace=ws)


def test_i5_the_invoice_figures_are_the_worked_ones(invoice):
    # 120.00 base + (180,010,000 − 10,000) × 0.01 overage = 1,800,120.00; CA 7.25 %.
    assert (invoice.subtotal, invoice.tax, invoice.total) == (
        D("1800120.00"),
        D("130508.70"),
        D("1930628.70"),
    )
    assert invoice.tax_note


def test_i5_the_document_page_carries_the_sites_policy_and_prints_without_an_inline_script(
    client, finance, invoice
):
    """Its Print button was `onclick="window.print()"`, which the policy would block: the
    button is wired by billing/print_button.js, a file of this site."""
    from config.content_policy import POLICY

    client.force_login(finance)
    response = client.get(reverse("finance:invoice-document", args=[invoice.pk]))
    assert response["Content-Security-Policy"] == POLICY
    body = response.content.decode()
    assert "onclick" not in body and '<button type="button" data-print>Print</button>' in body
    assert 'src="/static/billing/print_button.js"' in body


def test_i5_printable_page_shows_seller_customer_every_line_tax_note_and_total(
    client, finance, invoice
):
    client.force_login(finance)
    response = client.get(reverse("finance:invoice-document", args=[invoice.pk]))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Example Analytics, Inc." in body and "548 Market Street" in body
    assert "Ben &amp; Jerry&#x27;s Analytics" in body
    assert "California, United States of America" in body
    assert invoice.number in body
    assert "1 Feb 2026" in body  # issue date
    assert "1 – 31 January 2026" in body  # the period, its last day included
    assert "Team, billed monthly" in body and "Billed to" in body
    lines = list(invoice.lines.order_by("position"))
    assert [line.kind for line in lines] == ["base", "overage", "tax"]
    # The charges are the lines; the tax line stands once, in its own words, under the
    # subtotal (it was listed among the charges and again as "Tax", as if charged twice).
    table = re.search(r'<table class="lines".*?</table>', body, re.S).group(0)
    totals = re.search(r'<table class="totals".*?</table>', body, re.S).group(0)
    base, overage, tax = lines
    for line in (base, overage):
        assert line.description in table.replace("&#x27;", "'")
    assert "$120.00" in table and "$1,800,000.00" in table and "$130,508.70" not in table
    # Each quantity with its unit (finance's walk 8: "Team monthly, November 2026 | 30").
    quantities = re.findall(r'<td class="num">([^<$]*)</td>', table)
    assert quantities == ["31 days", "180,000,000 MTUs"]
    rows = re.findall(r'<th scope="row">(.*?)</th><td class="num">(.*?)</td>', totals)
    assert rows == [
        ("Subtotal", "$1,800,120.00"),
        (tax.description, "$130,508.70"),
        ("Total (USD)", "$1,930,628.70"),
    ]
    assert body.count("$130,508.70") == 1
    assert invoice.tax_note in body.replace("&#x27;", "'").replace("&quot;", '"')
    assert '<tr class="due"><th scope="row">Total (USD)</th><td class="num">$1,930,628.70' in body
    assert reverse("finance:invoice-pdf", args=[invoice.pk]) in body


def test_i5_pdf_starts_with_pdf_and_holds_the_number_lines_and_total(client, support, invoice):
    client.force_login(support)  # support may view invoices too
    response = client.get(reverse("finance:invoice-pdf", args=[invoice.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{invoice.number}.pdf"'
    pdf = response.content
    assert pdf.startswith(b"%PDF-")
    assert invoice.number.encode() in pdf
    assert b"$1,930,628.70" in pdf
    assert b"$1,800,000.00" in pdf and b"$130,508.70" in pdf
    assert b"Example Analytics, Inc." in pdf
    assert b"California, United States of America" in pdf
    # The same row gives the same bytes (the creation date is the issue date).
    assert client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content == pdf


@pytest.mark.parametrize(
    "name", ["Zakład Łódź", "Яндекс Облако", "Αθήνα Analytics"], ids=["pl", "ru", "el"]
)
def test_i5_the_pdf_prints_a_customer_name_outside_western_europe(client, finance, name):
    """The PDF drew every letter outside Windows-1252 as "?" ("Zak?ad ?ód?", "?????? ??????"):
    the customer's name was not on the document sent to them. Such text is drawn in an
    embedded Unicode font; figures stay in Helvetica, plain in the file."""
    ws = paid_monthly(name=name, business_country="PL")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    client.force_login(finance)
    pdf = client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert name in text and "?" not in text
    assert b"$120.00" in pdf and b"DejaVuSans" in pdf


def test_i5_the_document_is_the_stored_row_never_recomputed(client, finance, invoice):
    """A plan's price changed after the invoice was issued: the document still says what the
    invoice said."""
    services.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="New prices",
        monthly_price="150.00",
        effective_on=date(2027, 1, 1),
    )
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    assert "$120.00" in body and "$150.00" not in body
    assert "$1,930,628.70" in body


def test_i5_d3_the_document_names_the_customer_as_invoiced(client, finance, support, invoice):
    """The workspace renamed, with a new billing email, after the invoice was issued: its
    document still names the customer the invoice was made out to."""
    ws = invoice.workspace
    services.update_workspace(
        ws,
        by=support,
        reason="Rebranded",
        name="New Name Inc",
        business_country="US",
        business_region="CA",
        billing_email="new@example.com",
        as_of=invoice.issue_date + timedelta(days=1),
    )
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    assert "Ben &amp; Jerry&#x27;s Analytics" in body
    assert "New Name Inc" not in body and "new@example.com" not in body


def test_i5_a_void_invoice_document_says_void(client, finance, invoice):
    services.void_invoice(invoice, by=finance, reason="Wrong customer", as_of=date(2026, 2, 3))
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    assert '<div class="banner">Void</div>' in body
    assert "Voided on 3 Feb 2026: nothing is due on this invoice." in body
    pdf = client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content
    assert b"VOID" in pdf


def test_i5_k3_an_approved_credit_note_has_a_document_a_request_has_none(
    client, support, finance, invoice
):
    note = services.request_credit_note(
        invoice, by=support, amount="250.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    client.force_login(finance)
    page = reverse("finance:credit-note-document", args=[note.pk])
    assert client.get(page).status_code == 404
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    body = client.get(page).content.decode()
    number = f"{invoice.number}-CN1"
    assert number in body and "Credit note" in body
    assert "$250.00" in body and "$1,930,628.70" in body  # credited, of the invoice's total
    assert "3 Feb 2026" in body
    pdf = client.get(reverse("finance:credit-note-pdf", args=[note.pk])).content
    assert pdf.startswith(b"%PDF-") and number.encode() in pdf and b"$250.00" in pdf
    assert CreditNote.objects.get().status == "approved"
    # Finance's walk 8: it headed the customer "Billed to" and copied the invoice's tax note,
    # which explains the invoice's tax, not what the credit gives back.
    note.refresh_from_db()
    text = " ".join(body.replace("&#x27;", "'").split())
    assert "Credited to" in text and "Billed to" not in text
    assert invoice.tax_note not in text
    assert (
        f"Tax given back: ${note.tax}, in proportion to the tax invoice {invoice.number} charged "
        "(7.25 %)." in text
    )
    assert b"CREDITED TO" in pdf and b"BILLED TO" not in pdf


def test_i5_k3_credit_notes_are_numbered_in_the_order_approved_on_their_invoice(
    client, support, finance, invoice
):
    """An invoice's first credit note was "-CN4" when three notes on other invoices came before
    it (the row's id). Its approved notes are numbered 1, 2, … in the order approved; a request
    rejected takes no number, and a number is never given twice (a database constraint)."""
    from django.db import IntegrityError, transaction

    def request(on, amount):
        return services.request_credit_note(
            on, by=support, amount=amount, reason="Outage", as_of=date(2026, 2, 12)
        )

    other = paid_monthly(name="Other", as_of=date(2026, 2, 2))
    services.change_to_free(other, as_of=date(2026, 2, 10))  # a final invoice for 2–9 February
    other_invoice = Invoice.objects.get(workspace=other)
    elsewhere = request(other_invoice, "5.00")
    services.decide_credit_note(elsewhere, by=finance, approve=True, as_of=date(2026, 2, 12))
    first, rejected = request(invoice, "10.00"), request(invoice, "1.00")
    services.decide_credit_note(rejected, by=finance, approve=False, as_of=date(2026, 2, 12))
    services.decide_credit_note(first, by=finance, approve=True, as_of=date(2026, 2, 12))
    second = request(invoice, "20.00")
    services.decide_credit_note(second, by=finance, approve=True, as_of=date(2026, 2, 13))
    numbers = {
        note.pk: CreditNote.objects.get(pk=note.pk).number for note in (elsewhere, first, second)
    }
    assert numbers == {
        elsewhere.pk: f"{other_invoice.number}-CN1",
        first.pk: f"{invoice.number}-CN1",
        second.pk: f"{invoice.number}-CN2",
    }
    assert CreditNote.objects.get(pk=rejected.pk).sequence is None
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditNote.objects.filter(pk=second.pk).update(sequence=1)


@pytest.mark.parametrize(
    "who, expected", [("support", 200), ("finance", 200), ("reviewer", 403), (None, 302)]
)
def test_i5_documents_only_for_staff_who_may_view_invoices(client, request, invoice, who, expected):
    if who:
        client.force_login(request.getfixturevalue(who))
    for name in ("finance:invoice-document", "finance:invoice-pdf"):
        assert client.get(reverse(name, args=[invoice.pk])).status_code == expected


def test_i5_the_invoice_page_and_the_finance_list_link_the_documents(client, finance, invoice):
    client.force_login(finance)
    document = reverse("finance:invoice-document", args=[invoice.pk])
    pdf = reverse("finance:invoice-pdf", args=[invoice.pk])
    change = client.get(reverse("admin:billing_invoice_change", args=[invoice.pk]))
    listing = client.get(reverse("finance:invoices"))
    for page in (change, listing):
        body = page.content.decode()
        assert document in body and pdf in body
    assert "$1,930,628.70" in listing.content.decode()


def test_i5_x1_a_canadian_customer_is_located_by_its_province_s_name(client, finance):
    """The document named a US state ("California") but showed a province by its code ("ON,
    Canada")."""
    ws = paid_monthly(business_country="CA", business_region="ON")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    assert "Ontario, Canada" in body
    assert "$135.60" in body  # 120.00 + 13 % HST


def test_i5_a_discounted_untaxed_invoice_lists_its_charge_then_the_coupon_under_the_subtotal(
    client, finance, db
):
    """$120.00 base, coupon HALF ($60.00 off, once), untaxed (OR): the lines hold the charge,
    the totals Subtotal $120.00, the coupon's line at -$60.00, Tax $0.00, Total $60.00."""
    from coupons import services as coupons

    ws = paid_monthly(business_region="OR")
    coupons.create_coupon("HALF", "Half off", "promotion", amount_off=D("60.00"))
    coupons.redeem_coupon(ws, "HALF", by=None, as_of=date(2026, 1, 5))
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert [line.kind for line in invoice.lines.order_by("position")] == ["base", "discount"]
    discount = invoice.lines.get(kind="discount")
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    table = re.search(r'<table class="lines".*?</table>', body, re.S).group(0)
    totals = re.search(r'<table class="totals".*?</table>', body, re.S).group(0)
    assert "$120.00" in table and "-$60.00" not in table
    rows = re.findall(r'<th scope="row">(.*?)</th><td class="num">(.*?)</td>', totals)
    assert rows == [
        ("Subtotal", "$120.00"),
        (discount.description, "-$60.00"),
        ("Tax", "$0.00"),
        ("Total (USD)", "$60.00"),
    ]


def _pdf_text(pdf: bytes) -> str:
    return PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


@pytest.mark.parametrize(
    "name",
    ["Ünïcødé 日本語 Co. & Sons", "한국어 데이터 주식회사", "北京数据 日本語 한국어 Analytics"],
    ids=["ja", "ko", "zh-ja-ko"],
)
def test_i5_pdf_prints_cjk_customer_names(client, support, finance, name, caplog):
    """A customer named "Ünïcødé 日本語 Co. & Sons" got a PDF reading "Ünïcødé  Co. & Sons": DejaVu
    Sans has no CJK glyphs and fpdf2 left the characters out. They are drawn in the fallback
    font — the name in bold, the stored row's tax note in the regular face — on the invoice's
    PDF and its credit note's, and the PDF stays small (the font is embedded as a subset)."""
    ws = paid_monthly(name=name, business_country="JP")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    Invoice.objects.filter(pk=invoice.pk).update(tax_note="消費税は含まれていません。부가세 없음.")
    client.force_login(finance)
    pdf = client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content
    text = _pdf_text(pdf)
    assert name in text
    assert "消費税は含まれていません。부가세 없음." in text
    assert "?" not in text and "\ufffd" not in text
    assert b"$120.00" in pdf and b"DroidSansFallback" in pdf
    assert len(pdf) < 200_000
    assert "missing the following glyphs" not in caplog.text
    assert client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content == pdf

    note = services.request_credit_note(
        invoice, by=support, amount="20.00", reason="Outage", as_of=date(2026, 2, 2)
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=date(2026, 2, 3))
    credit = client.get(reverse("finance:credit-note-pdf", args=[note.pk])).content
    assert name in _pdf_text(credit) and b"$20.00" in credit


def test_i5_pdf_marks_a_character_no_font_has_instead_of_dropping_it(client, finance, caplog):
    """Neither DejaVu nor the CJK fallback has an emoji or a private-use character: fpdf2 left
    them out with only a log line ("Uni  Corp  x"). The PDF prints U+FFFD in their place;
    the printable page shows the name as stored."""
    name = "Uni 🦄 Corp \U000f0000 x 日本"
    ws = paid_monthly(name=name)
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    client.force_login(finance)
    pdf = client.get(reverse("finance:invoice-pdf", args=[invoice.pk])).content
    assert "Uni \ufffd Corp \ufffd x 日本" in _pdf_text(pdf)
    assert "missing the following glyphs" not in caplog.text
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    assert name in body and "\ufffd" not in body


def test_i5_an_annual_invoice_document_says_billed_annually_and_names_its_term(client, finance):
    """It read "Plan: Team, billed annual" above the line "Team annual, 2026-01-02 to
    2027-01-02" under the period "2 January 2026 – 1 January 2027"."""
    ws = paid_annual(as_of=date(2026, 1, 2))
    invoice = Invoice.objects.get(workspace=ws, kind="annual")
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[invoice.pk])).content.decode()
    term = "2 January 2026 – 1 January 2027"
    assert "Team, billed annually" in body and f"Team annual, {term}" in body
    assert "billed annual<" not in body and "2027-01-02" not in body


def test_i5_k2_an_overage_invoice_of_an_annual_term_says_so(client, finance):
    """K2: during an annual term, January's close bills only its overage: 12,500 MTUs, 2,500
    over the 10,000 included at $0.01 = $25.00, an invoice of kind `monthly`. Its document
    read "Monthly invoice" beside "Team, billed annually" (walk 5)."""
    from billing.models import Usage

    ws = paid_annual(as_of=date(2026, 1, 1))
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=12_500)
    services.run_billing(as_of=date(2026, 2, 1))
    overage = Invoice.objects.get(workspace=ws, kind="monthly")
    assert overage.total == D("25.00")
    client.force_login(finance)
    body = client.get(reverse("finance:invoice-document", args=[overage.pk])).content.decode()
    assert "Monthly overage invoice (annual term)" in body
    annual = Invoice.objects.get(workspace=ws, kind="annual")
    body = client.get(reverse("finance:invoice-document", args=[annual.pk])).content.decode()
    assert "Annual invoice" in body and "overage invoice" not in body
