"""The documents a customer can be sent (SPEC I5): an invoice or an approved credit note as a
printable page and as a PDF.

Both are built from the stored rows only — the invoice's own amounts, lines, tax note and
jurisdiction as issued — so the document says what the invoice says, never a recomputation.
`invoice_document` / `credit_note_document` gather the figures once; the page's template and
`render_pdf` only lay them out.

The PDF is drawn by fpdf2 with PDF's built-in Helvetica, whose text stays plain in the file (a
figure can be found by searching it); text outside Helvetica's Windows-1252 range (a name in
Polish, Greek or Cyrillic) is drawn in DejaVu Sans, and the characters DejaVu has no glyph for
in fpdf2's fallback fonts (their regular faces stand in for bold): Noto Sans for the scripts
of South and Southeast Asia (Devanagari, Tamil, Thai …), Droid Sans Fallback for Chinese,
Japanese and Korean. All are shipped in `billing/fonts` (licences there) and embedded in the
PDF as subsets of the glyphs used. A character no font has (an emoji, a private-use one)
is printed as U+FFFD, the replacement character, never dropped: the page shows the name as
stored, the PDF shows that something is there it cannot draw.
"""

import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.http import Http404
from django_countries import countries
from fpdf import FPDF, XPos, YPos
from fpdf.enums import MethodReturnValue

from billing.formatting import billed, day, money, period_text
from billing.models import CreditNote, Interval, Invoice, InvoiceLine
from billing.tax import rate_as_invoiced, region_name

# What an invoice charges; its other lines (discount, credit, tax) adjust the subtotal.
CHARGES = (InvoiceLine.Kind.BASE, InvoiceLine.Kind.OVERAGE)


@dataclass(frozen=True)
class DocumentLine:
    description: str
    quantity: str
    amount: str


@dataclass(frozen=True)
class Document:
    title: str  # "Invoice", "Credit note"
    number: str
    filename: str
    seller_name: str
    seller_address: list[str]
    customer_name: str
    customer_location: str
    customer_email: str
    facts: list[tuple[str, str]]  # (label, value): dates, period, plan…
    lines: list[DocumentLine]
    totals: list[tuple[str, str]]  # the last one is the amount due / credited
    tax_note: str
    customer_label: str = "Billed to"  # a credit note's: "Credited to"
    banner: str = ""  # e.g. "Void", shown across the document
    notes: list[str] = field(default_factory=list)


def _location(country: str, region: str) -> str:
    name = countries.name(country) if country else ""
    if region:
        return f"{region_name(country, region)}, {name}"
    return name or "—"


def _customer_as_invoiced(invoice: Invoice):
    """The workspace as it stood when the invoice was issued, from its history (D3): a rename
    or a new billing email later does not change an issued document. A workspace written
    without history (by SQL, as the benchmarks' are) is read as it is."""
    workspace = invoice.workspace
    try:
        return workspace.history.as_of(invoice.created_at)
    except type(workspace).DoesNotExist:
        return workspace


def _parties(invoice: Invoice) -> dict:
    """Who a document of `invoice` is from (the settings) and to (its workspace when it was
    issued, where it was taxed): the same on an invoice and on its credit notes."""
    lines = settings.SELLER_ADDRESS.replace("\n", ";").split(";")
    customer = _customer_as_invoiced(invoice)
    return {
        "seller_name": settings.SELLER_NAME,
        "seller_address": [line.strip() for line in lines if line.strip()],
        "customer_name": customer.name,
        "customer_location": _location(invoice.tax_country, invoice.tax_region),
        "customer_email": customer.billing_email,
    }


def _kind(invoice: Invoice) -> str:
    """The kind as the customer reads it: a month's invoice during an annual term bills only
    that month's overage (K2), which "Monthly invoice" beside "Team, billed annually" hid."""
    if invoice.kind == Invoice.Kind.MONTHLY and invoice.interval == Interval.ANNUAL:
        return "Monthly overage invoice (annual term)"
    return f"{invoice.get_kind_display()} invoice"


def line_quantity(line: InvoiceLine, invoice_kind: str) -> str:
    """A charge's quantity with its unit: the paid days a monthly or final base line bills,
    the one term of an annual invoice's, an overage line's MTUs."""
    if line.quantity is None:
        return ""
    if line.kind == InvoiceLine.Kind.OVERAGE:
        unit = "MTU"
    elif invoice_kind == Invoice.Kind.ANNUAL:
        unit = "year"
    else:
        unit = "day"
    return f"{line.quantity:,} {unit}{'' if line.quantity == 1 else 's'}"


def invoice_document(invoice: Invoice) -> Document:
    """I5: the invoice as issued, from its row and its lines."""
    currency = invoice.currency
    plan = invoice.plan_code.capitalize()
    facts = [
        ("Invoice number", invoice.number),
        ("Issue date", day(invoice.issue_date)),
        ("Period", period_text(invoice.period_start, invoice.period_end)),
        ("Plan", f"{plan}, {billed(invoice.interval)}"),
        ("Kind", _kind(invoice)),
    ]
    if invoice.tax_rate is not None:
        facts.append(("Tax rate", rate_as_invoiced(invoice)))
    # Charges are the lines; the discount, credit and tax lines stand under the subtotal, each
    # once with its own words ("Coupon HARBOR: $60.00 off", "CA sales tax"). Listed among the
    # charges and again as totals, the tax read as if charged twice.
    lines, adjustments = [], []
    for line in invoice.lines.order_by("position"):
        if line.kind in CHARGES:
            quantity = line_quantity(line, invoice.kind)
            lines.append(DocumentLine(line.description, quantity, money(line.amount, currency)))
        else:
            adjustments.append((line.description, money(line.amount, currency)))
    totals = [("Subtotal", money(invoice.subtotal, currency)), *adjustments]
    if not invoice.tax:
        totals.append(("Tax", money(invoice.tax, currency)))
    totals.append((f"Total ({currency})", money(invoice.total, currency)))
    notes = []
    if invoice.status == Invoice.Status.VOID:
        notes.append(f"Voided on {day(invoice.voided_on)}: nothing is due on this invoice.")
    return Document(
        title="Invoice",
        number=invoice.number,
        filename=f"{invoice.number}.pdf",
        **_parties(invoice),
        facts=facts,
        lines=lines,
        totals=totals,
        tax_note=invoice.tax_note,
        banner="Void" if invoice.status == Invoice.Status.VOID else "",
        notes=notes,
    )


def credit_note_document(note: CreditNote) -> Document:
    """I5: an approved credit note, from its row and the invoice it credits. Only an approved
    one is a document: a request is not something to send a customer."""
    if note.status != CreditNote.Status.APPROVED:
        raise Http404("Only an approved credit note has a document.")
    invoice = note.invoice
    currency = invoice.currency
    number = note.number
    return Document(
        title="Credit note",
        number=number,
        filename=f"{number}.pdf",
        **_parties(invoice),
        facts=[
            ("Credit note number", number),
            ("Issue date", day(note.decided_on)),
            ("Credits invoice", f"{invoice.number} of {day(invoice.issue_date)}"),
            ("Invoice period", period_text(invoice.period_start, invoice.period_end)),
            ("Invoice total", money(invoice.total, currency)),
        ],
        lines=[
            DocumentLine(
                f"Credit on invoice {invoice.number}", "", money(note.amount - note.tax, currency)
            )
        ],
        totals=[
            ("Tax given back", money(note.tax, currency)),
            (f"Total credited ({currency})", money(note.amount, currency)),
        ],
        # The invoice's note explains the invoice's tax; this one, what the credit gives back.
        tax_note=(
            f"Tax given back: {money(note.tax, currency)}, in proportion to the tax invoice "
            f"{invoice.number} charged ({rate_as_invoiced(invoice)})."
            if note.tax
            else f"Invoice {invoice.number} charged no tax, so none is given back."
        ),
        customer_label="Credited to",
    )


# --- The PDF ------------------------------------------------------------------------------------

ENCODING = "windows-1252"
INK = (17, 24, 39)
QUIET = (107, 114, 128)
RULE = (209, 213, 219)


FONTS = Path(__file__).resolve().parent / "fonts"
UNICODE_FONT = "dejavu"
# What fpdf2 draws whatever the current DejaVu face has no glyph for, regular faces only (each
# stands in for bold): Noto Sans for the scripts of South and Southeast Asia, each chosen by
# its Unicode block, and Droid Sans Fallback for Chinese, Japanese and Korean (Hangul too:
# DroidSansFallbackFull.ttf has no Hangul) and anything else.
SCRIPT_FONTS = (
    (0x0900, 0x097F, "NotoSansDevanagari-Regular.ttf"),
    (0x0980, 0x09FF, "NotoSansBengali-Regular.ttf"),
    (0x0A00, 0x0A7F, "NotoSansGurmukhi-Regular.ttf"),
    (0x0A80, 0x0AFF, "NotoSansGujarati-Regular.ttf"),
    (0x0B80, 0x0BFF, "NotoSansTamil-Regular.ttf"),
    (0x0C00, 0x0C7F, "NotoSansTelugu-Regular.ttf"),
    (0x0C80, 0x0CFF, "NotoSansKannada-Regular.ttf"),
    (0x0D00, 0x0D7F, "NotoSansMalayalam-Regular.ttf"),
    (0x0D80, 0x0DFF, "NotoSansSinhala-Regular.ttf"),
    (0x0E00, 0x0E7F, "NotoSansThai-Regular.ttf"),
    (0x0E80, 0x0EFF, "NotoSansLao-Regular.ttf"),
    (0x1000, 0x109F, "NotoSansMyanmar-Regular.ttf"),
    (0x1780, 0x17FF, "NotoSansKhmer-Regular.ttf"),
)
FALLBACK_FONT = "DroidSansFallback.ttf"
# The fallback fonts in the order fpdf2 tries them: a script's own font before the catch-all.
FALLBACK_ORDER = [font for *_, font in SCRIPT_FONTS] + [FALLBACK_FONT]
# What stands for a character no font has a glyph for; fpdf2 would leave it out of the PDF.
NO_GLYPH = "\ufffd"


def _fallback_font(char: str) -> str:
    """The file of the fallback font that draws `char`: its script's, else the catch-all."""
    code = ord(char)
    for first, last, font in SCRIPT_FONTS:
        if first <= code <= last:
            return font
    return FALLBACK_FONT


def _family(font: str) -> str:
    return Path(font).stem.lower()


def _printable(pdf: FPDF, value: str) -> str:
    """`value` with each character that neither the current (DejaVu) face nor a fallback
    font has a glyph for replaced by NO_GLYPH. A fallback font is added to the PDF the first
    time a character of its script is missing from DejaVu (each embedded as a subset of the
    glyphs used); an invisible format character (a zero-width joiner, a variation selector)
    that no font has is left out, as it prints as nothing."""
    glyphs = pdf.current_font.cmap
    missing = {char for char in value if char != "\n" and ord(char) not in glyphs}
    if not missing:
        return value
    loaded = {font for font in FALLBACK_ORDER if _family(font) in pdf.fonts}
    new = {_fallback_font(char) for char in missing} - loaded
    for font in new:
        pdf.add_font(_family(font), "", FONTS / font)
    families = [_family(font) for font in FALLBACK_ORDER if _family(font) in pdf.fonts]
    if new:
        # exact_match=False: the regular faces serve bold text too.
        pdf.set_fallback_fonts(families, exact_match=False)
    fallbacks = [pdf.fonts[family].cmap for family in families]
    printable = []
    for char in value:
        if char not in missing or any(ord(char) in cmap for cmap in fallbacks):
            printable.append(char)
        elif not _invisible(char):
            printable.append(NO_GLYPH)
    return "".join(printable)


def _invisible(char: str) -> bool:
    """A format character or a variation selector: nothing to print."""
    code = ord(char)
    selector = 0xFE00 <= code <= 0xFE0F or 0xE0100 <= code <= 0xE01EF
    return selector or unicodedata.category(char) == "Cf"


def _text(pdf: FPDF, value) -> str:
    """`value`, with the font set to one that prints it, in the current style and size:
    Helvetica when it is all in the Windows-1252 range, else DejaVu Sans (added to the PDF the
    first time it is needed), with Droid Sans Fallback for what DejaVu lacks (CJK) and U+FFFD
    for what neither has (`_printable`)."""
    value = str(value)
    try:
        value.encode(ENCODING)
    except UnicodeEncodeError:
        if UNICODE_FONT not in pdf.fonts:
            pdf.add_font(UNICODE_FONT, "", FONTS / "DejaVuSans.ttf")
            pdf.add_font(UNICODE_FONT, "B", FONTS / "DejaVuSans-Bold.ttf")
        pdf.set_font(UNICODE_FONT, pdf.font_style, pdf.font_size_pt)
        return _printable(pdf, value)
    pdf.set_font("helvetica", pdf.font_style, pdf.font_size_pt)
    return value


class Cell(NamedTuple):
    """One cell of a row of the PDF: its width in mm, its text, aligned "L" or "R", its colour."""

    width: float
    text: str
    align: str = "L"
    colour: tuple[int, int, int] = INK


def _row(pdf: FPDF, x: float, height: float, cells: list[Cell]) -> None:
    """`cells` side by side from `x` on the current line, each wrapped within its own width (a
    word wider than the cell, such as an email, at any character): a long name, email or tax
    name runs neither into the next column nor off the page. A row that does not fit on the
    page moves whole to the next one; the next row starts under its tallest cell."""
    tallest = max(
        pdf.multi_cell(
            cell.width,
            height,
            _text(pdf, cell.text),
            dry_run=True,
            output=MethodReturnValue.HEIGHT,
        )
        for cell in cells
    )
    if pdf.will_page_break(tallest):
        pdf.add_page()
    top = pdf.get_y()
    for cell in cells:
        pdf.set_xy(x, top)
        pdf.set_text_color(*cell.colour)
        pdf.multi_cell(cell.width, height, _text(pdf, cell.text), align=cell.align)
        x += cell.width
    pdf.set_xy(pdf.l_margin, top + tallest)


def render_pdf(doc: Document, *, issued: date | None = None) -> bytes:
    """The document as an A4 PDF. Uncompressed, so every figure can be found by searching the
    file; `issued` fixes the PDF's creation date (the same bytes for the same row)."""
    pdf = FPDF(format="A4", unit="mm")
    pdf.core_fonts_encoding = ENCODING
    pdf.set_compression(False)
    # Arabic, Hebrew, Devanagari and other scripts whose letters join or reorder are shaped
    # (HarfBuzz): without it an Arabic name printed as separate letters. The Unicode fonts
    # only; Helvetica's Windows-1252 text is as before.
    pdf.set_text_shaping(True)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.set_margins(18, 18, 18)
    pdf.set_title(f"{doc.title} {doc.number}")
    pdf.set_author(doc.seller_name)
    if issued is not None:
        pdf.set_creation_date(datetime(issued.year, issued.month, issued.day, tzinfo=UTC))
    pdf.add_page()
    width = pdf.epw

    # Seller (left) and title (right).
    top = pdf.get_y()
    pdf.set_text_color(*INK)
    pdf.set_font("helvetica", "B", 12)
    pdf.multi_cell(width / 2 - 4, 6, _text(pdf, doc.seller_name), new_x=XPos.LMARGIN)
    pdf.set_font("helvetica", "", 9)
    for line in doc.seller_address:
        pdf.multi_cell(width / 2 - 4, 4.5, _text(pdf, line), new_x=XPos.LMARGIN)
    below_seller = pdf.get_y()
    pdf.set_xy(pdf.l_margin + width / 2, top)
    pdf.set_font("helvetica", "B", 20)
    pdf.cell(width / 2, 9, _text(pdf, doc.title), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_x(pdf.l_margin + width / 2)
    pdf.set_font("helvetica", "", 10)
    pdf.cell(width / 2, 5, _text(pdf, doc.number), align="R", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if doc.banner:
        pdf.set_x(pdf.l_margin + width / 2)
        pdf.set_font("helvetica", "B", 14)
        pdf.set_text_color(185, 28, 28)
        pdf.cell(width / 2, 8, _text(pdf, doc.banner.upper()), align="R")
        pdf.set_text_color(*INK)
    pdf.set_y(max(below_seller, pdf.get_y()) + 8)

    # Customer (left) and the facts (right).
    top = pdf.get_y()
    pdf.set_font("helvetica", "", 8)
    pdf.set_text_color(*QUIET)
    pdf.cell(width / 2, 4, doc.customer_label.upper(), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    pdf.set_text_color(*INK)
    # Each wraps short of the facts' column: a 59-character email was printed over "Plan".
    customer = width / 2 - 4
    pdf.set_font("helvetica", "B", 11)
    pdf.multi_cell(customer, 5.5, _text(pdf, doc.customer_name), new_x=XPos.LMARGIN)
    pdf.set_font("helvetica", "", 9)
    pdf.multi_cell(customer, 4.5, _text(pdf, doc.customer_location), new_x=XPos.LMARGIN)
    pdf.multi_cell(customer, 4.5, _text(pdf, doc.customer_email), new_x=XPos.LMARGIN)
    below_customer = pdf.get_y()
    pdf.set_y(top)
    for label, value in doc.facts:
        cells = [Cell(width / 4 - 6, label, colour=QUIET), Cell(width / 4 + 6, value, "R")]
        _row(pdf, pdf.l_margin + width / 2, 5, cells)
    pdf.set_y(max(below_customer, pdf.get_y()) + 8)

    # Every line, then the totals.
    pdf.set_draw_color(*RULE)
    columns = (width - 60, 25, 35)
    pdf.set_font("helvetica", "B", 9)
    headings = zip(("Description", "Quantity", "Amount"), columns, "LRR", strict=True)
    for text, column, align in headings:
        pdf.cell(column, 7, text, border="B", align=align)
    pdf.ln(7)
    pdf.set_font("helvetica", "", 9)
    for line in doc.lines:
        cells = [
            Cell(columns[0], line.description),
            Cell(columns[1], line.quantity, "R"),
            Cell(columns[2], line.amount, "R"),
        ]
        _row(pdf, pdf.l_margin, 7, cells)
        # Under the row's tallest cell: a rule of each cell's own would break where one wraps.
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(3)
    for index, (label, value) in enumerate(doc.totals):
        last = index == len(doc.totals) - 1
        pdf.set_font("helvetica", "B" if last else "", 11 if last else 9)
        # Wide enough for a coupon's or a tax's own words ("Coupon HARBOR: $60.00 off"); a
        # longer name (a tax rate's has up to 100 characters) wraps within it.
        cells = [Cell(columns[1] + 60, label, "R"), Cell(columns[2], value, "R")]
        _row(pdf, pdf.l_margin + columns[0] - 60, 6.5, cells)

    pdf.ln(6)
    pdf.set_font("helvetica", "", 9)
    if doc.tax_note:
        pdf.set_text_color(*QUIET)
        pdf.cell(0, 5, "TAX NOTE", new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.set_text_color(*INK)
        pdf.multi_cell(0, 4.5, _text(pdf, doc.tax_note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
        pdf.ln(2)
    for note in doc.notes:
        pdf.multi_cell(0, 4.5, _text(pdf, note), new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    return bytes(pdf.output())
