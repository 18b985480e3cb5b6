"""Each staff role signs in through the real login page and sees its own admin sections; support
works a workspace from its change page. Users join the real groups of
billing/migrations/0003_role_groups.py.

Transactional tests flush the database afterwards; `serialized_rollback` restores the groups the
migration created before each test, so the groups are there for every role.
"""

from datetime import date, timedelta

import pytest
from playwright.sync_api import Page, expect

from billing import admin_toolkit as toolkit
from billing import services
from billing.formatting import day
from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT
from tests.billing import factories

from .staff import SLUGS, expect_done, make_staff, sign_in

# role -> (model links it sees on the index, links it must not see). Link texts are the models'
# verbose_name_plural as the admin index renders them.
SECTIONS = {
    SUPPORT: (
        ["Workspaces", "Usage", "Invoices", "Lock events", "Outbound emails"],
        ["Tax rates", "Month closes"],
    ),
    FINANCE: (
        # Finance sees the outbox to resend what failed (the email loop of issue 11).
        ["Tax rates", "Invoices", "Month closes", "Workspaces", "Lock events", "Outbound emails"],
        ["Partner deals", "Eligible territories"],
    ),
    STARTUP_REVIEWERS: (
        ["Workspaces", "Usage", "Plans", "Subscriptions"],
        ["Invoices", "Tax rates", "Month closes", "Lock events", "Outbound emails"],
    ),
}


@pytest.mark.parametrize("role", list(SECTIONS), ids=list(SLUGS.values()))
def test_each_role_sees_its_own_admin_sections(role, page: Page, live_server, screenshot_path):
    user = make_staff(role)
    sign_in(page, live_server, user)

    expect(page).to_have_url(f"{live_server.url}/admin/")
    content = page.locator("#content-main")
    visible, hidden = SECTIONS[role]
    for name in visible:
        expect(content.get_by_role("link", name=name, exact=True)).to_be_visible()
    for name in hidden:
        expect(content.get_by_role("link", name=name, exact=True)).to_have_count(0)

    add_workspace = content.locator("tr.model-workspace").get_by_role("link", name="Add")
    # Only Support holds add_workspace.
    expect(add_workspace).to_have_count(1 if role == SUPPORT else 0)

    page.screenshot(path=screenshot_path(f"{SLUGS[role]}-admin-index"), full_page=True)


def test_support_adds_a_card_and_moves_a_workspace_to_team(
    page: Page, live_server, screenshot_path
):
    workspace = factories.workspace(
        name="Acme", slug="acme", business_country="DE", business_region=""
    )
    services.record_usage(workspace, month=date(2026, 1, 1), mtus=500)
    sign_in(page, live_server, make_staff(SUPPORT))

    change_page = f"{live_server.url}/admin/billing/workspace/{workspace.pk}/change/"
    page.goto(change_page)
    status = page.get_by_label("Workspace status")
    expect(status).to_be_visible()
    expect(status).to_contain_text("Free")
    expect(status).to_contain_text("None on file")

    page.get_by_role("link", name="Add payment method").click()
    page.get_by_label("Brand").fill("Visa")
    page.get_by_label("Last four digits").fill("4242")
    page.get_by_role("button", name="Add payment method").click()
    expect_done(page, change_page, "Payment method recorded for Acme: Visa •••• 4242.")
    expect(status).to_contain_text("•••• 4242")
    # With a card on file, the next one replaces it: the button says so.
    expect(page.get_by_role("link", name="Add payment method")).to_have_count(0)
    expect(page.get_by_role("link", name="Replace payment method")).to_be_visible()

    page.get_by_role("link", name="Change plan").click()
    page.get_by_label("Team, billed monthly").check()
    expect(page.get_by_label("Reason")).to_have_attribute("required", "")  # R4: the why
    page.get_by_label("Reason").fill("Customer asked in ticket 481")
    page.get_by_role("button", name="Change plan").click()
    trial_end = day(toolkit.today() + timedelta(days=14))  # T3: the first paid day
    expect_done(
        page,
        change_page,
        f"Acme started a Team trial ending {trial_end}, then billed monthly: Customer asked in "
        "ticket 481.",
    )
    expect(status).to_contain_text("Team (monthly)")

    page.screenshot(path=screenshot_path("support-workspace-team-monthly"), full_page=True)
