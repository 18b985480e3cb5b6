"""A reviewer works the startup queue in Chromium: opens the queue, approves an application,
and the applicant's workspace then shows the program badge (S3, S4, R2)."""

from datetime import date
from decimal import Decimal

from django.contrib.auth.models import Group, User
from django.utils import timezone
from playwright.sync_api import Page, expect

from billing.roles import STARTUP_REVIEWERS
from startups import services
from tests.billing import factories

from .staff import PASSWORD, sign_in


def test_s4_reviewer_approves_from_the_queue_and_the_workspace_shows_the_badge(
    page: Page, live_server, screenshot_path
):
    today = timezone.now().date()
    workspace = factories.workspace(
        name="Nimbus",
        slug="nimbus",
        business_country="DE",
        business_region="",
        billing_email="ops@nimbus.example",
    )
    services.submit_application(
        "Nimbus Labs",
        website="https://nimbus.example",
        contact_name="Ada",
        contact_email="ada@nimbus.example",
        incorporation_date=date(2025, 9, 1),
        total_funding=Decimal("800000"),
        country="DE",
        workspace=workspace,
        as_of=today,
    )
    reviewer = User.objects.create_user(username="rita", password=PASSWORD, is_staff=True)
    reviewer.groups.add(Group.objects.get(name=STARTUP_REVIEWERS))
    sign_in(page, live_server, reviewer)

    page.goto(f"{live_server.url}/startups/queue/")
    row = page.locator("#result_list tbody tr").filter(has_text="Nimbus Labs")
    expect(row).to_be_visible()
    expect(row.locator(".check.pass")).to_have_count(5)
    page.screenshot(path=screenshot_path("reviewer-queue"), full_page=True)

    row.get_by_role("link", name="Nimbus Labs", exact=True).click()
    checks = page.get_by_label("Eligibility checks")
    expect(checks).to_contain_text("E4 passes")
    # Each check is marked by its coloured bar alone: the admin's square bullets went too.
    assert (
        checks.locator("li").evaluate_all(
            "items => items.map(li => getComputedStyle(li).listStyleType)"
        )
        == ["none"] * 5
    )
    page.get_by_role("link", name="Approve").click()
    page.get_by_label("Note").fill("Strong team")
    # S7: the workspace is on Free, so the page warns and asks for a confirmation.
    expect(page.locator("p.errornote")).to_contain_text("monthly Team invoices only")
    page.get_by_label("Approve although credits do not reach").check()
    page.get_by_role("button", name="Approve: Nimbus Labs").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Nimbus Labs is accepted into the Startup Program: nimbus has $25,000.00 of credit, "
    )

    page.goto(f"{live_server.url}/admin/billing/workspace/{workspace.pk}/change/")
    status = page.get_by_label("Workspace status")
    expect(status.locator(".program-badge")).to_have_text("Startup program")
    expect(status).to_contain_text("$25,000.00")
    page.screenshot(path=screenshot_path("reviewer-workspace-program-badge"), full_page=True)


def _apply(company, today):
    return services.submit_application(
        company,
        website="https://example.com",
        contact_name="Ada",
        contact_email=f"ada@{company.split()[0].lower()}.example",
        incorporation_date=date(2025, 9, 1),
        total_funding=Decimal("800000"),
        country="DE",
        as_of=today,
    )


def test_s3_the_queue_status_filter_is_ticked_not_ctrl_clicked(
    page: Page, live_server, screenshot_path
):
    """S3: the queue's status filter was a five-line list box in which a second status is
    added only by ctrl-click (a plain click drops "Submitted" when picking "Rejected"), and it
    stood twice as tall as the row of filters beside it. It is a row of ticks: the reviewer
    adds the rejected applications to the open ones and sees all three."""
    today = timezone.now().date()
    _apply("Nimbus Labs", today)
    _apply("Orbital Data", today)
    refused = _apply("Kite Data", today)
    reviewer = User.objects.create_user(username="rita", password=PASSWORD, is_staff=True)
    reviewer.groups.add(Group.objects.get(name=STARTUP_REVIEWERS))
    services.reject_application(refused, by=reviewer, reason="Out of scope", as_of=today)
    sign_in(page, live_server, reviewer)

    page.goto(f"{live_server.url}/startups/queue/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    statuses = page.get_by_role("group", name="Status")
    expect(statuses.get_by_role("checkbox")).to_have_count(5)
    expect(statuses.get_by_label("Submitted")).to_be_checked()
    expect(statuses.get_by_label("In review")).to_be_checked()
    expect(statuses.get_by_label("Rejected")).not_to_be_checked()
    country = page.get_by_label("Country").bounding_box()
    assert statuses.bounding_box()["height"] < 2 * country["height"], "the status box is tall"

    statuses.get_by_label("Rejected").check()
    page.get_by_role("button", name="Filter").click()
    expect(rows).to_have_count(3)
    expect(rows.filter(has_text="Kite Data")).to_have_count(1)
    expect(page.get_by_role("group", name="Status").get_by_label("Rejected")).to_be_checked()
    page.screenshot(path=screenshot_path("reviewer-queue-status-ticks"), full_page=True)
