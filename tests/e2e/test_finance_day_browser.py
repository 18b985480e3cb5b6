"""Finance's and support's day in Chromium at 1400 px (issue 13): a certificate approved from
its page with the document shown, a credit note decided beside the invoice's figures and the
invoice document opened; the workspace and invoice lists fit the window (no sideways scroll,
Status and Total in view) and the workspace page's buttons never cover its heading.

Screenshots go to test-artifacts/screenshots/ (see conftest)."""

from datetime import date, timedelta
from decimal import Decimal

from django.core.files.base import ContentFile
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing import services
from billing.demo import certificate_pdf
from billing.models import Invoice
from billing.roles import FINANCE, SUPPORT
from coupons import services as coupons
from tests.billing.factories import paid_monthly

from .staff import WIDE, click_past_document, fits, make_staff, sign_in


def in_view(page: Page, locator) -> bool:
    box = locator.bounding_box()
    return box is not None and box["x"] + box["width"] <= page.viewport_size["width"]


def test_x4_finance_approves_a_certificate_on_its_page_with_the_document_shown(
    page: Page, live_server, screenshot_path
):
    today = timezone.now().date()
    ws = paid_monthly(today, name="Harbor Food Bank", slug="harbor-food-bank", business_region="TX")
    certificate = services.submit_exemption(
        ws,
        region="TX",
        reason="nonprofit",
        document=ContentFile(
            certificate_pdf(
                "Texas Sales and Use Tax Exemption Certification",
                "Holder: Harbor Food Bank",
                "Reason: non-profit organisation",
            ),
            name="texas.pdf",
        ),
        valid_from=today - timedelta(days=30),
        as_of=today,
    )
    page.set_viewport_size(WIDE)
    sign_in(page, live_server, make_staff(FINANCE))

    change_page = f"{live_server.url}/admin/billing/taxexemption/{certificate.pk}/change/"
    with page.expect_response(lambda r: "preview=1" in r.url) as document:
        page.goto(change_page)
    assert document.value.status == 200
    assert document.value.headers["content-type"] == "application/pdf"
    frame = page.locator('iframe[title="Certificate document"]')
    expect(frame).to_be_visible()
    assert frame.bounding_box()["height"] >= 500  # large enough to read
    page.wait_for_timeout(2500)  # the PDF viewer draws the page
    # The window as finance sees it (a full-page capture resizes the PDF viewer mid-draw).
    page.screenshot(path=screenshot_path("finance-certificate-page"))

    page.get_by_role("link", name="Approve", exact=True).click()
    expect(page.locator("#content")).to_contain_text(
        "From today, invoices of Harbor Food Bank for TX carry no sales tax"
    )
    expect(page.locator('iframe[title="Certificate document"]')).to_be_visible()
    click_past_document(page, page.get_by_role("button", name="Yes, approve"))

    expect(page).to_have_url(change_page)
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        f"Certificate #{certificate.pk} approved"
    )
    expect(page.get_by_role("link", name="Approve", exact=True)).to_have_count(0)
    certificate.refresh_from_db()
    assert (certificate.status, certificate.decided_on) == ("approved", today)
    page.screenshot(path=screenshot_path("finance-certificate-approved"), full_page=True)


def test_k3_i5_finance_decides_a_credit_note_beside_the_invoice_and_opens_its_document(
    page: Page, live_server, screenshot_path
):
    ws = paid_monthly(name="Acme Analytics", slug="acme", business_region="CA")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=180_010_000)
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    support = make_staff(SUPPORT)
    why = "Ticket 4812: two days of downtime"
    amount = Decimal("1250.00")
    services.request_credit_note(
        invoice, by=support, amount=amount, reason=why, as_of=date(2026, 2, 2)
    )
    page.set_viewport_size(WIDE)
    sign_in(page, live_server, make_staff(FINANCE))

    page.goto(f"{live_server.url}/admin/billing/invoice/{invoice.pk}/change/")
    refunds = page.get_by_label(f"Refunds on {invoice.number}")
    expect(refunds).to_contain_text("$1,930,628.70")  # the total, readable
    expect(refunds).to_contain_text("$1,250.00")  # waiting for finance
    page.screenshot(path=screenshot_path("finance-invoice-page"), full_page=True)

    page.get_by_role("link", name="Approve", exact=True).click()
    expect(page.get_by_role("button", name="Yes, approve $1,250.00")).to_be_visible()
    page.get_by_label("Reason").fill("Refunded to the card")
    page.get_by_role("button", name="Yes, approve $1,250.00").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        f"Credit note of $1,250.00 on {invoice.number} approved."
    )
    page.goto(f"{live_server.url}/admin/billing/invoice/{invoice.pk}/change/")
    expect(page.get_by_label(f"Refunds on {invoice.number}")).to_contain_text("$1,929,378.70")

    page.get_by_role("link", name="Invoice document").click()
    expect(page.locator("h1")).to_have_text("Invoice")
    expect(page.get_by_label("Totals")).to_contain_text("$1,930,628.70")
    # Base and overage are the lines; the tax stands once, under the subtotal.
    expect(page.get_by_label("Lines").locator("tbody tr")).to_have_count(2)
    expect(page.get_by_label("Totals")).to_contain_text("$130,508.70")
    page.screenshot(path=screenshot_path("finance-invoice-document"), full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    assert download.value.suggested_filename == f"{invoice.number}.pdf"


def test_lists_fit_1366_to_1440_and_the_workspace_buttons_wrap_under_the_heading(
    page: Page, live_server, screenshot_path
):
    today = timezone.now().date()
    start = date(2026, 1, 1)
    for n in range(12):
        ws = paid_monthly(
            start,
            name=f"Cyberdyne Systems Analytics International {n + 1}",
            slug=f"cyberdyne-systems-analytics-international-{n + 1}",
            business_region="CA",
        )
        services.record_usage(ws, month=start, mtus=1_250_000 + n)
    # A workspace with six buttons and History: Team, a card, a running discount (entered
    # before the clock runs: once it has, a change dated past a close it has not run waits, D4).
    busy = paid_monthly(today, name="Umbrella Retail 7", slug="umbrella-retail-7")
    coupons.redeem_coupon(
        busy,
        coupons.create_coupon("LOYALTY10", "Loyalty", "promotion", percent_off="10").code,
        by=None,
        as_of=today,
    )
    services.run_billing(as_of=date(2026, 2, 1))
    sign_in(page, live_server, make_staff(SUPPORT))

    for width in (1366, 1400, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        for name in ("workspace", "invoice"):
            page.goto(f"{live_server.url}/admin/billing/{name}/")
            assert fits(page), f"the {name} list scrolls sideways at {width} px"
            columns = ["Lock", "Plan"] if name == "workspace" else ["Status", "Total"]
            for column in columns:
                header = page.locator("#result_list thead th").filter(has_text=column).first
                assert in_view(page, header), f"{column} is out of view at {width} px"
            if width == 1400:
                page.screenshot(path=screenshot_path(f"support-{name}-list-1400"), full_page=True)

    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/admin/billing/workspace/{busy.pk}/change/")
    buttons = page.locator("#content-main > .object-tools li")
    assert buttons.count() >= 6
    heading = page.locator("#content h1").bounding_box()
    for index in range(buttons.count()):
        box = buttons.nth(index).bounding_box()
        overlaps = not (
            box["y"] >= heading["y"] + heading["height"]
            or box["y"] + box["height"] <= heading["y"]
            or box["x"] >= heading["x"] + heading["width"]
            or box["x"] + box["width"] <= heading["x"]
        )
        assert not overlaps, f"button {index} covers the heading"
    assert fits(page)
    page.screenshot(path=screenshot_path("support-workspace-buttons"), full_page=True)


def test_r3_every_months_revenue_bar_shows_its_track_on_plain_and_striped_rows(
    page: Page, live_server, screenshot_path
):
    """The revenue chart draws each month's bar on a grey track, so a month of no revenue
    still shows an empty bar. The track was the admin's row-stripe grey: on every other row it
    vanished, and a month of nothing looked like a missing row."""
    paid_monthly(as_of=date(2026, 3, 1), name="Acme")
    services.run_billing(as_of=date(2026, 6, 1))
    sign_in(page, live_server, make_staff(FINANCE))
    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/finance/revenue/?issued_from=2026-01&issued_to=2026-06")
    bars = page.locator(".revenue-bar")
    expect(bars).to_have_count(6)  # January and February: nothing invoiced
    page.screenshot(path=screenshot_path("finance-revenue"), full_page=True)
    seen = bars.evaluate_all(
        """bars => bars.map(bar => {
            let under = bar.parentElement;
            const clear = c => c === 'rgba(0, 0, 0, 0)' || c === 'transparent';
            while (under && clear(getComputedStyle(under).backgroundColor)) {
                under = under.parentElement;
            }
            return [getComputedStyle(bar).backgroundColor,
                    under ? getComputedStyle(under).backgroundColor : 'none'];
        })"""
    )
    assert [track != row for track, row in seen] == [True] * 6, seen


def test_r3_invoice_numbers_days_and_amounts_are_read_on_one_line(
    page: Page, live_server, screenshot_path
):
    """The finance invoice list meant its number, day and money cells to stay on one line
    (`white-space: nowrap`), but the back office's rule for every list's cells (`#result_list
    td`, which outranks a class) made them wrap: at 1,400 px "INV-2026-000001" read as three
    lines and "1 Feb 2026" as two, on every row."""
    for n in range(3):
        paid_monthly(
            date(2026, 1, 1),
            name=f"Cyberdyne Systems Analytics International {n + 1}",
            slug=f"cyberdyne-systems-analytics-international-{n + 1}",
            business_region="CA",
        )
    services.run_billing(as_of=date(2026, 2, 1))
    sign_in(page, live_server, make_staff(FINANCE))
    for width in (1366, 1400, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{live_server.url}/finance/")
        # Each row: the number (its page and PDF under it), the day issued, five amounts.
        cells = page.locator(
            "table.finance tbody td.date > a:first-child,"
            " table.finance tbody td.date:not(:has(a)), table.finance tbody td.num"
        )
        expect(cells).to_have_count(3 * 7)
        lines = cells.evaluate_all(
            """cells => cells.map(cell => {
                const range = document.createRange();
                range.selectNodeContents(cell);
                const tops = [...range.getClientRects()].map(r => Math.round(r.top));
                return [cell.innerText, new Set(tops).size];
            })"""
        )
        assert [text for text, count in lines if count != 1] == [], (width, lines)
        assert fits(page), f"the invoice list scrolls sideways at {width} px"
        if width == 1366:
            page.screenshot(path=screenshot_path("finance-invoices-1366"), full_page=True)
    expect(page.locator("table.finance tbody tr").first.locator("td").first).to_contain_text(
        "Page · PDF"
    )


def test_x4_cr1_finance_lists_show_every_column_at_1366_and_1440(
    page: Page, live_server, screenshot_path
):
    """The certificate list put 1,197 px of table in a 791 px box at 1,440 px: Django marks
    a foreign key's cell "nowrap", so "Green Mountain Co-op (demo-tax-other-state)" never
    wrapped, and Valid to, Submitted on, Decided on and Document sat beyond a scrollbar. The
    credit grants' list was cut the same way. Every column is in view now, a workspace's name
    wraps, and each day still reads on one line."""
    from coupons.credits import grant_credits

    today = timezone.now().date()
    for n, state in enumerate(["TX", "CA", "NY", "WA", "HI"]):
        ws = paid_monthly(
            today,
            name=f"Green Mountain Co-op Analytics International {n}",
            slug=f"green-mountain-co-op-analytics-international-{n}",
            business_region=state,
        )
        services.submit_exemption(
            ws,
            region=state,
            reason="nonprofit",
            document=ContentFile(certificate_pdf("Exemption"), name="c.pdf"),
            valid_from=today - timedelta(days=30),
            valid_to=today + timedelta(days=300),
            as_of=today,
        )
        grant_credits(ws, amount=Decimal("25000.00"), as_of=today, year=1, by=None)
    sign_in(page, live_server, make_staff(FINANCE))
    for width in (1366, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        for name in ("billing/taxexemption", "coupons/creditgrant"):
            page.goto(f"{live_server.url}/admin/{name}/")
            table = page.locator("#result_list")
            expect(table.locator("tbody tr")).to_have_count(5)
            hidden = table.evaluate(
                "t => t.getBoundingClientRect().width - t.closest('.results').clientWidth"
            )
            assert hidden <= 1, f"{name}: {hidden:.0f} px of columns out of view at {width} px"
            days = (
                table.locator("tbody td")
                .filter(has_text=str(today.year))
                .evaluate_all(
                    """cells => cells.map(cell => {
                    const range = document.createRange();
                    range.selectNodeContents(cell);
                    const tops = [...range.getClientRects()].map(r => Math.round(r.top));
                    const lines = cell.querySelectorAll('br').length + 1;
                    return [cell.innerText, new Set(tops).size - lines];
                })"""
                )
            )
            assert days and [text for text, extra in days if extra] == [], (name, days)
            assert fits(page)
            if width == 1366:
                page.screenshot(path=screenshot_path(f"finance-{name.split('/')[1]}-1366"))
