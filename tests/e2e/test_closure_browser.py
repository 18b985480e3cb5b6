"""W1 in the browser: support closes a workspace from its page. The confirmation says what will
happen (the final invoice, data stopping, the email) and asks why; afterwards the page shows
the closure and offers nothing but reopening."""

from datetime import date

from playwright.sync_api import Page, expect

from billing.roles import SUPPORT
from tests.e2e.staff import expect_done, make_staff, sign_in


def test_w1_support_closes_a_workspace_from_its_page(
    page: Page, live_server, screenshot_path, acme_on_team
):
    workspace = acme_on_team
    sign_in(page, live_server, make_staff(SUPPORT))

    change_page = f"{live_server.url}/admin/billing/workspace/{workspace.pk}/change/"
    page.goto(change_page)
    page.get_by_role("link", name="Close workspace").click()

    effects = page.get_by_label("What closing does")
    expect(effects).to_contain_text("Its data stops at once")
    # K1: 120 × 20/31 = 77.42 plus (12,000 − 10,000) × $0.01 = 20.00.
    expect(effects).to_contain_text("final invoice of $97.42 dated 21 Jan 2026")
    expect(page.get_by_label("Final invoice")).to_contain_text("Team monthly, January 2026")
    expect(effects).to_contain_text("One email confirms the closure")
    expect(page.get_by_label("Reason")).to_have_attribute("required", "")  # R4: the why
    page.screenshot(path=screenshot_path("support-close-workspace-confirmation"), full_page=True)

    page.get_by_label("Reason").fill("Customer asked to delete it, ticket 311")
    page.get_by_role("button", name="Close workspace").click()

    final = workspace.closures.get().final_invoice
    expect_done(
        page,
        change_page,
        f"Acme closed: Customer asked to delete it, ticket 311; final invoice {final.number}: "
        "$97.42",
    )
    expect(page.get_by_role("status").first).to_contain_text("Closed on 21 Jan 2026")
    expect(page.get_by_label("Workspace status")).to_contain_text("stopped")
    tools = page.locator(".object-tools")
    expect(tools.get_by_role("link", name="Reopen workspace")).to_be_visible()
    expect(tools.get_by_role("link", name="Change plan")).to_have_count(0)
    expect(tools.get_by_role("link", name="Close workspace")).to_have_count(0)
    page.screenshot(path=screenshot_path("support-workspace-closed"), full_page=True)

    workspace.refresh_from_db()
    assert (workspace.closed_on, workspace.data_flow) == (date(2026, 1, 21), False)
