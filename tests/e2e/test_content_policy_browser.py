"""No page of the portal needs more than its Content-Security-Policy allows
(config/content_policy.py): Chromium reports no violation on any kind of staff page, as each
role, on the public forms, or on the invoice document, whose Print button still prints."""

from io import StringIO

from django.core.management import call_command
from playwright.sync_api import Page

from billing.models import Invoice

from .staff import every_kind_of_page, kind_of_page


def violations_of(page: Page) -> list[str]:
    """Chromium's report of each blocked script, style, image, form or frame, as it happens."""
    found = []
    page.on(
        "console",
        lambda message: (
            found.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return found


def test_no_page_of_the_portal_breaks_its_content_security_policy(page: Page, live_server):
    call_command("seed_demo", workspaces=40, allow_production=True, stdout=StringIO())
    page.set_viewport_size({"width": 1366, "height": 900})
    found = violations_of(page)
    for path in ("/admin/login/", "/startups/apply/", "/partners/apply/"):
        page.goto(f"{live_server.url}{path}")
    seen = set()
    for _, path in every_kind_of_page(page, live_server):
        seen.add(kind_of_page(path))
        page.wait_for_load_state("networkidle")

    # Finance's invoice document: its Print button is wired by a script file of this site.
    page.add_init_script("window.print = () => { document.body.dataset.printed = 'yes'; }")
    invoice = Invoice.objects.order_by("pk").first()
    page.goto(f"{live_server.url}/finance/invoices/{invoice.pk}/document/")
    page.get_by_role("button", name="Print").click()
    assert page.locator("body").get_attribute("data-printed") == "yes"

    assert len(seen) >= 40, sorted(seen)
    assert found == [], "\n".join(found)
