"""FC1 and G1–G2 in the browser: finance forecasts a workspace beside a proposed change; support
builds a campaign from the workspace list's filters, sees its reach and launches it."""

from datetime import date

from playwright.sync_api import Page, expect

from billing import admin_toolkit
from billing import services as billing
from billing.models import Workspace
from billing.roles import FINANCE, SUPPORT
from coupons import services
from tests.coupons.factories import coupon, free_workspace, paid_monthly
from tests.e2e.staff import bar_heights, make_staff, sign_in


def test_fc1_finance_forecasts_a_move_to_annual_beside_todays_state(
    page: Page, live_server, screenshot_path, acme_on_team
):
    workspace = acme_on_team
    sign_in(page, live_server, make_staff(FINANCE))

    page.goto(f"{live_server.url}/admin/billing/workspace/{workspace.pk}/change/")
    page.get_by_role("link", name="Forecast").click()
    settings = page.get_by_label("Forecast settings")
    settings.get_by_role("textbox", name="Months").fill("3")
    settings.get_by_label("This figure").check()
    settings.get_by_label("MTUs a month (figure)").fill("13000")
    settings.get_by_label("Proposed change").select_option("team:annual")
    page.get_by_role("button", name="Forecast").click()

    expect(page.locator("#content")).to_contain_text("Usage assumed: 13,000 MTUs a month")
    totals = page.get_by_label("Forecast totals")
    # Today: (120.00 + 30.00) × 3 = 450.00. Annual: final 97.42 + 1,440.00 + overage 10.00,
    # 30.00 and 30.00 = 1,607.42.
    expect(totals).to_contain_text("Today's state$450.00")
    expect(totals).to_contain_text("$1,607.42")
    expect(totals).to_contain_text("+$1,157.42")
    table = page.get_by_label("Forecast invoices")
    # Days and months as everywhere else: "Jan 26" read as 26 January, 2026-01-21 as a code.
    expect(table).to_contain_text("Annual, 21 Jan 2026")
    expect(page.locator(".forecast-chart figcaption").first).to_have_text("Jan ’26")
    page.screenshot(path=screenshot_path("finance-forecast-annual"), full_page=True)
    # Each month issuing an invoice has a bar for today's state and one for the change, drawn
    # under the totals, the largest (the annual invoice's month) full height.
    heights = bar_heights(page.locator(".forecast-chart"), totals)
    assert len(heights) == 2 * page.locator(".forecast-chart figure").count()
    assert max(heights) == page.locator(".forecast-chart .bars").first.bounding_box()["height"]
    assert not workspace.invoices.exists()


def test_g1_g2_support_builds_and_launches_a_campaign_from_the_workspace_list(
    page: Page, live_server, screenshot_path, monkeypatch
):
    monkeypatch.setattr(admin_toolkit, "today", lambda: date(2026, 2, 2))
    paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    paid_monthly(as_of=date(2026, 1, 1), name="Globex")
    free_workspace(as_of=date(2026, 1, 1), name="Initech")
    coupon(code="SPRING25", percent_off="25", duration="repeating", duration_months=3)
    support = make_staff(SUPPORT)
    sign_in(page, live_server, support)

    page.goto(f"{live_server.url}/admin/billing/workspace/?plan=team")
    page.get_by_role("link", name="New campaign from these filters").click()
    expect(page.get_by_label("Plan")).to_have_value("team")
    page.get_by_label("Name").fill("Spring 2026")
    page.get_by_role("combobox", name="Coupon").select_option(label="SPRING25")
    page.get_by_label("Subject").fill("25% off Team for three months")
    page.get_by_label("Message").fill("Spring is here.")
    page.get_by_role("button", name="Save", exact=True).click()  # opens the campaign's page

    preview = page.get_by_label("Audience preview")
    expect(preview).to_contain_text("Audience today: 2 workspace(s)")
    expect(preview).to_contain_text("Acme")
    expect(preview).to_contain_text("Computed ")  # kept in the cache, with its time
    # G1: a draft is edited through its service, with a reason; launched, it is read-only.
    page.get_by_label("Subject").fill("25% off Team for three months, this spring")
    page.get_by_label("Reason").fill("Ticket 812: a clearer subject")
    page.get_by_role("button", name="Save and continue editing").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text("Spring 2026")
    expect(page.get_by_label("Subject")).to_have_value("25% off Team for three months, this spring")
    page.get_by_role("link", name="Launch", exact=True).click()
    expect(page.locator("#content")).to_contain_text("2 workspace(s) will be emailed now")
    page.get_by_role("button", name="Launch campaign").click()

    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Spring 2026 launched: 2 workspace(s) added"
    )
    page.goto(page.url)  # the campaign page, after the workers' (eager) batches
    expect(page.get_by_label("Sending progress")).to_contain_text("2 sent")
    expect(page.get_by_label("Campaign results")).to_contain_text("Notified2")
    expect(page.get_by_role("button", name="Save", exact=True)).to_have_count(0)
    page.screenshot(path=screenshot_path("support-campaign-launched"), full_page=True)

    # G3: Acme redeems the coupon on 3 February; March's and April's invoices take 25 % off
    # 120.00, 30.00 each, drawn under the chart's heading (February's bar gave nothing).
    acme = Workspace.objects.get(name="Acme")
    services.redeem_coupon(acme, "SPRING25", by=support, as_of=date(2026, 2, 3))
    billing.run_billing(as_of=date(2026, 4, 1))
    page.goto(page.url)
    heading = page.get_by_role("heading", name="Discount by month")
    chart = page.locator(".campaign-card", has=heading)
    expect(chart.locator("figcaption")).to_have_text(
        ["Feb ’26$0.00", "Mar ’26$30.00", "Apr ’26$30.00"]
    )
    february, march, april = bar_heights(chart, heading)
    assert march == april > february
