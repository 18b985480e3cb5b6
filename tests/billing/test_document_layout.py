"""I5: the PDF of an invoice lays every text out on the page, each apart from the others, whatever
the length of the customer's name and email or of a tax rate's name. Positions are read back
from the PDF (pypdf); widths are Helvetica's metrics, the font the test's text is drawn in."""

import io
import itertools
import unicodedata
from datetime import date

import pytest
from fpdf import FPDF
from pypdf import PdfReader

from billing import services
from billing.invoice_documents import invoice_document, render_pdf
from billing.models import Invoice

from .factories import paid_monthly

MM = 72 / 25.4  # PDF points in a millimetre
PAGE_WIDTH, MARGIN = 210 * MM, 18 * MM
STYLES = {"/Helvetica": "", "/Helvetica-Bold": "B"}

# The audit's data: a tax rate's name as long as `set_tax_rate` takes (100 characters), in
# capitals; a 59-character billing email; a name with no space in its first 184 characters.
TAX_NAME = ("CALIFORNIA STATE AND DISTRICT SALES AND USE TAX " * 3)[:100]
EMAIL = "accounts.payable.department.emea@example-analytics-corp.com"
NAME = "Very" + "long" * 45 + " Name GmbH"


@pytest.fixture(autouse=True)
def seller(settings):
    settings.SELLER_NAME = "Example Analytics, Inc."
    settings.SELLER_ADDRESS = "548 Market Street; San Francisco, CA 94104"


def text_runs(pdf: bytes) -> list[tuple[str, float, float, float, float]]:
    """Each text the first page draws, as (text, left, right, bottom, top) in points: from its
    baseline, a descender below to a capital's height above."""
    metrics = FPDF(unit="pt")
    metrics.core_fonts_encoding = "windows-1252"
    runs = []

    def visit(text, cm, tm, font, size):
        text = text.strip()
        if not text:
            return
        metrics.set_font("helvetica", STYLES[font["/BaseFont"]], size)
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        width = metrics.get_string_width(text)
        runs.append((text, x, x + width, y - 0.21 * size, y + 0.72 * size))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return runs


def overlap(a, b) -> bool:
    _, left_a, right_a, bottom_a, top_a = a
    _, left_b, right_b, bottom_b, top_b = b
    return left_a < right_b and left_b < right_a and bottom_a < top_b and bottom_b < top_a


@pytest.mark.parametrize(
    "name, email",
    [("Harbor Analytics", EMAIL), (NAME, "billing@example.com")],
    ids=["long-email", "unbroken-name"],
)
def test_i5_pdf_keeps_a_long_tax_name_email_or_name_on_the_page_and_apart(db, name, email):
    """A 100-character tax rate's name in capitals was printed from 26 mm left of the page's
    edge (the totals' label, right-aligned in a fixed cell, ran off to the left); a 59-character
    email, 94 mm in an 87 mm cell, ran into the facts' column, over one of its lines ("Plan" in
    the audit's PDF). Each wraps within its column, inside the margins, as a name with no space
    does; the figures are the same."""
    services.set_tax_rate(
        "US", region="CA", rate="7.25", name=TAX_NAME, valid_from=date(2026, 1, 1)
    )
    ws = paid_monthly(name=name, billing_email=email, business_region="CA")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)

    pdf = render_pdf(invoice_document(invoice), issued=invoice.issue_date)
    runs = text_runs(pdf)
    for text, left, right, _, _ in runs:
        assert left >= MARGIN and right <= PAGE_WIDTH - MARGIN, (text, left / MM, right / MM)
    for a, b in itertools.combinations(runs, 2):
        assert not overlap(a, b), (a, b)

    texts = [text for text, *_ in runs]
    # Every character of the name, the email and the tax's name is printed, in order.
    printed = "".join(texts)
    for whole in (name, email, TAX_NAME):
        assert whole.replace(" ", "") in printed.replace(" ", ""), whole
    assert {"$120.00", "$8.70", "$128.70", "Plan", "Team, billed monthly"} <= set(texts)
    # The customer's lines, the email's too, end before the facts' column, where "Plan" starts.
    (plan,) = [run for run in runs if run[0] == "Plan"]
    customer = [run for run in runs if run[0] in name + email and run[0] != "Plan"]
    assert len(customer) >= 2 and all(run[2] < plan[1] for run in customer), customer


def test_i5_an_arabic_name_is_printed_with_its_letters_joined(db):
    """The documents audit: an Arabic customer name came out as separate letters, each in its
    isolated form (no text shaping). Shaped, lam and alef join into their one ligature glyph,
    which the PDF's ToUnicode map reads back as the two letters (<0644><0627> in one entry)."""
    ws = paid_monthly(
        as_of=date(2026, 1, 1), name="شركة السلام", business_country="AE", business_region=""
    )
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    pdf = render_pdf(invoice_document(invoice), issued=invoice.issue_date)
    assert b"<06440627>" in pdf
    assert "شركة السلام" in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()


@pytest.mark.parametrize(
    "name, shaped",
    [
        # क्ष, ka + virama + ssa, is one conjunct glyph; ि, the i-sign, is drawn before its ka.
        ("विकास क्षेत्र प्राइवेट लिमिटेड", b"<0915094D0937>"),
        ("தமிழ் தரவு நிறுவனம்", None),
        ("บริษัท ข้อมูลไทย จำกัด", None),
    ],
    ids=["hindi", "tamil", "thai"],
)
def test_i5_an_indian_or_thai_name_is_printed_not_replaced(db, name, shaped):
    """No font of the PDF had Devanagari, Tamil or Thai: a customer in India or Thailand named
    in its own script got a row of U+FFFD on its invoice. Each script is drawn in its Noto Sans
    font, shaped (a Devanagari conjunct is one glyph, read back as its three characters), and
    the PDF reads back as the name; only the fonts used are embedded."""
    ws = paid_monthly(as_of=date(2026, 1, 1), name=name, business_country="IN", business_region="")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    pdf = render_pdf(invoice_document(invoice), issued=invoice.issue_date)
    # pypdf reads a glyph variant the shaping chose (a taller i-sign) as a control code.
    text = "".join(
        char
        for char in PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
        if unicodedata.category(char) != "Cc" or char == "\n"
    )
    assert name in text and "\ufffd" not in text
    if shaped:
        assert shaped in pdf
    assert b"DroidSansFallback" not in pdf
    assert len(pdf) < 150_000
