"""I5: the printable page of an invoice keeps every fact on the sheet whatever the customer's
name and email: in Chromium, on screen and as printed (A4)."""

from datetime import date

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from billing import services
from billing.models import Invoice
from billing.roles import FINANCE
from tests.billing.factories import paid_monthly

from .staff import WIDE, make_staff, sign_in

# The audit's data: a name with no space in its first 184 characters; a 125-character email.
LONG_NAME = "Very" + "long" * 45 + " Name GmbH"
LONG_EMAIL = (
    "accounts.payable.and.receivables.department.emea.north@"
    "billing-and-invoicing.eu-central-1.example-analytics-holding-group.com"
)


def on_the_sheet(page: Page) -> dict:
    """The sheet's scroll and client widths, and whether every fact's row lies inside it."""
    return page.evaluate(
        """() => {
            const sheet = document.querySelector(".sheet").getBoundingClientRect();
            const rows = [...document.querySelectorAll(".facts tr")].map(row => {
                const box = row.getBoundingClientRect();
                return box.left >= sheet.left && box.right <= sheet.right;
            });
            const element = document.querySelector(".sheet");
            return {scroll: element.scrollWidth, client: element.clientWidth, rows};
        }"""
    )


@pytest.mark.parametrize(
    "name, email",
    [(LONG_NAME, "billing@example.com"), ("Harbor Analytics", LONG_EMAIL)],
    ids=["unbroken-name", "long-email"],
)
def test_i5_the_document_page_keeps_its_facts_on_the_sheet_beside_a_long_name_or_email(
    page: Page, live_server, screenshot_path, request, name, email
):
    """A workspace named "Verylonglong…long Name GmbH" made the sheet 1,919 px wide for its
    794 px: printed to A4, the facts (number, issue date, period, plan) were cut off. A
    long billing email squeezed the facts to a word a line, past the sheet's edge.
    Such a name or email wraps within its column; the facts keep theirs, on the sheet."""
    ws = paid_monthly(name=name, billing_email=email, business_region="CA")
    services.run_billing(as_of=date(2026, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    page.set_viewport_size(WIDE)
    sign_in(page, live_server, make_staff(FINANCE))
    page.goto(live_server.url + reverse("finance:invoice-document", args=[invoice.pk]))

    facts = page.locator(".facts")
    for media in ("screen", "print"):
        page.emulate_media(media=media)
        expect(page.locator(".customer")).to_contain_text(email)
        for label in ("Invoice number", "Issue date", "Period", "Plan"):
            expect(facts.get_by_role("rowheader", name=label)).to_be_visible()
        expect(facts).to_contain_text(invoice.number)
        expect(facts).to_contain_text("1 – 31 January 2026")
        layout = on_the_sheet(page)
        assert layout["scroll"] <= layout["client"], (media, layout)
        assert all(layout["rows"]), (media, layout)
        # A fact's row is one line high: its label and value are not broken a word a line.
        heights = facts.locator("tr").evaluate_all("rows => rows.map(r => r.offsetHeight)")
        assert max(heights) < 2 * min(heights), (media, heights)
    page.emulate_media(media="screen")
    page.screenshot(
        path=screenshot_path(f"invoice-document-{request.node.callspec.id}"), full_page=True
    )
