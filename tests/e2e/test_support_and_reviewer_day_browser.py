"""Support's and the startup reviewer's day in Chromium at 1400 px (issue 13), each started from
the header's search box: support finds a workspace by its billing email, unlocks it and moves
it to Team with a reason, then finds an invoice by its number and asks finance for a credit
note; the reviewer finds an application by its company, opens the queue and approves it,
linking the applicant's workspace on the approve page and confirming the credit's scope.
Neither role reads a field name or decides with a checkbox and a dropdown.

Screenshots go to test-artifacts/screenshots/ (see conftest)."""

from datetime import date
from decimal import Decimal

from playwright.sync_api import Page, expect

from billing import services
from billing.models import CreditNote, Invoice, Workspace
from billing.roles import STARTUP_REVIEWERS, SUPPORT
from startups.models import StartupApplication
from tests.billing.factories import paid_monthly, workspace
from tests.startups.factories import application

from .staff import WIDE, bar_heights, expect_done, fits, make_staff, sign_in

TODAY = date(2026, 2, 10)  # the admin's today: after the January close, before February's


def search_for(page: Page, words: str):
    box = page.get_by_role("searchbox", name="Search workspaces, invoices, applications")
    box.fill(words)
    box.press("Enter")
    expect(page.locator("h1")).to_have_text(f"Search: {words}")


def test_support_finds_a_workspace_unlocks_it_changes_its_plan_and_asks_for_a_credit_note(
    page: Page, live_server, screenshot_path, pin_today
):
    pin_today(TODAY)
    locked = workspace(
        name="Ben & Jerry's Analytics",
        slug="ben-and-jerrys",
        billing_email="accounts@benjerry.example",
        card=True,
    )
    services.record_usage(locked, month=date(2026, 1, 1), mtus=5_000)  # over the Free limit
    acme = paid_monthly(name="Acme Analytics", slug="acme")
    services.run_billing(as_of=date(2026, 2, 1))
    locked.refresh_from_db()
    assert locked.lock != "unlocked"
    invoice = Invoice.objects.get(workspace=acme)

    page.set_viewport_size(WIDE)
    sign_in(page, live_server, make_staff(SUPPORT))

    # A customer writes from their billing address: support pastes it in the search box.
    search_for(page, "accounts@benjerry.example")
    workspaces = page.get_by_label("Workspaces", exact=True)
    expect(workspaces.locator(".badge")).to_have_text("Locked (data still flows)")
    page.screenshot(path=screenshot_path("support-search-workspace"), full_page=True)
    workspaces.get_by_role("link", name="Ben & Jerry's Analytics (ben-and-jerrys)").click()
    change_page = f"{live_server.url}/admin/billing/workspace/{locked.pk}/change/"
    expect(page).to_have_url(change_page)

    page.get_by_role("link", name="Unlock", exact=True).click()
    expect(page.get_by_label("Reason")).to_have_attribute("required", "")  # R4: the why
    page.get_by_label("Reason").fill("Ticket 5120: a bot inflated January's usage")
    page.get_by_role("button", name="Unlock workspace: Ben & Jerry's Analytics").click()
    expect_done(
        page,
        change_page,
        "Ben & Jerry's Analytics unlocked: Ticket 5120: a bot inflated January's usage",
    )
    # The page that said "unlock" now says there is nothing to unlock, with no form.
    page.goto(f"{live_server.url}/admin/billing/workspace/{locked.pk}/do/unlock/")
    expect(page.locator("p.errornote")).to_contain_text("is not locked: there is nothing to")
    expect(page.locator("#content form")).to_have_count(0)
    page.go_back()

    page.goto(change_page)
    page.get_by_role("link", name="Change plan").click()
    page.get_by_label("Team, billed monthly").check()
    page.get_by_label("Reason").fill("Ticket 5120: the customer chose Team")
    page.get_by_role("button", name="Change plan").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        "Ben & Jerry's Analytics started a Team trial ending 24 Feb 2026, then billed monthly: "
        "Ticket 5120: the customer chose Team."
    )
    expect(page.get_by_label("Workspace status")).to_contain_text("Team (monthly)")
    page.screenshot(path=screenshot_path("support-workspace-unlocked-team"), full_page=True)
    assert Workspace.objects.get(pk=locked.pk).lock == "unlocked"

    # Another customer quotes an invoice number: support finds it and asks for a refund.
    search_for(page, invoice.number)
    invoices = page.get_by_label("Invoices", exact=True)
    expect(invoices).to_contain_text("Acme Analytics")
    expect(invoices).to_contain_text(f"${invoice.total:,.2f}")
    invoices.get_by_role("link", name=invoice.number).click()
    page.get_by_role("link", name="Request a credit note").click()
    expect(page.get_by_label(f"Refunds on {invoice.number}")).to_contain_text(
        f"${invoice.total:,.2f}"
    )
    page.get_by_label("Amount").fill("20.00")
    page.get_by_label("Reason").fill("Ticket 5121: a day of downtime")
    page.screenshot(path=screenshot_path("support-credit-note-request"), full_page=True)
    page.get_by_role("button", name=f"Request a credit note: {invoice.number}").click()
    expect(page.locator("ul.messagelist li.success")).to_have_text(
        f"Credit note of $20.00 on {invoice.number} requested; finance decides."
    )
    # The request waits for finance, on the invoice's own page.
    expect(page.get_by_label(f"Refunds on {invoice.number}")).to_contain_text("$20.00")
    note = CreditNote.objects.get(invoice=invoice)
    assert (note.status, note.amount) == ("requested", Decimal("20.00"))
    assert fits(page)


def test_reviewer_finds_an_application_opens_the_queue_and_approves_it_linking_a_workspace(
    page: Page, live_server, screenshot_path, pin_today
):
    pin_today(TODAY)
    nimbus = workspace(
        name="Nimbus", slug="nimbus", business_country="DE", billing_email="ops@nimbus.example"
    )
    # The applicant named no workspace.
    submitted = application(company_name="Nimbus Labs", contact_email="ada@nimbus.example")
    page.set_viewport_size(WIDE)
    sign_in(page, live_server, make_staff(STARTUP_REVIEWERS))

    search_for(page, "nimbus")
    results = page.locator("#content-main")
    expect(results.get_by_label("Startup applications", exact=True)).to_contain_text("Submitted")
    expect(results.get_by_label("Workspaces", exact=True)).to_contain_text("ops@nimbus.example")
    expect(results.get_by_label("Invoices", exact=True)).to_have_count(
        0
    )  # R2: no invoices for reviewers
    page.screenshot(path=screenshot_path("reviewer-search"), full_page=True)

    page.goto(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Startup program: review queue").click()
    row = page.locator("#result_list tbody tr").filter(has_text="Nimbus Labs")
    expect(row.locator(".badge")).to_have_text("Submitted")
    expect(row.get_by_role("link", name="Link a workspace")).to_be_visible()
    assert fits(page)
    page.screenshot(path=screenshot_path("reviewer-queue-badges"), full_page=True)

    row.get_by_role("link", name="Nimbus Labs", exact=True).click()
    page.get_by_role("link", name="Approve", exact=True).click()
    # S3: the workspace is linked right here, found by its name.
    page.locator(".field-workspace .select2-selection, #id_workspace + .select2").first.click()
    page.locator(".select2-search__field").fill("nimbus")
    page.locator(".select2-results__option").filter(has_text="Nimbus").first.click()
    page.get_by_label("Note").fill("Strong team, seed round")
    page.get_by_label("Approve although credits do not reach").check()  # S7: confirmed
    page.screenshot(path=screenshot_path("reviewer-approve-page"), full_page=True)
    page.get_by_role("button", name="Approve: Nimbus Labs").click()
    expect(page.locator("ul.messagelist li.success")).to_contain_text(
        "Nimbus Labs is accepted into the Startup Program: nimbus has $25,000.00 of credit, "
    )

    submitted.refresh_from_db()
    assert submitted.status == StartupApplication.Status.APPROVED
    assert submitted.workspace_id == nimbus.pk
    # A decided application's approve page says so and offers no form.
    page.goto(f"{live_server.url}/admin/startups/startupapplication/{submitted.pk}/do/approve/")
    expect(page.locator("p.errornote")).to_contain_text("a decision is final")
    expect(page.locator("#content form")).to_have_count(0)

    search_for(page, "Nimbus Labs")
    expect(page.get_by_label("Startup applications", exact=True).locator(".badge")).to_have_text(
        "Approved"
    )
    page.screenshot(path=screenshot_path("reviewer-search-approved"), full_page=True)


def test_the_lists_with_status_badges_fit_1366_px(
    page: Page, live_server, screenshot_path, pin_today
):
    pin_today(TODAY)
    for n in range(6):
        ws = paid_monthly(
            name=f"Cyberdyne Systems Analytics International {n + 1}",
            slug=f"cyberdyne-systems-analytics-international-{n + 1}",
            business_region="CA",
        )
        application(
            company_name=f"Cyberdyne Systems Robotics International GmbH {n + 1}",
            contact_email=f"miles.dyson@cyberdyne-systems-{n}.example.com",
            total_funding=Decimal("4800000"),
            workspace=ws,
        )
    services.run_billing(as_of=date(2026, 2, 1))
    support = make_staff(SUPPORT)
    why = "Ticket 6001: a long explanation of a day of downtime in the EU region"
    for invoice in Invoice.objects.all()[:3]:
        services.request_credit_note(
            invoice, by=support, amount=Decimal("12.50"), reason=why, as_of=date(2026, 2, 2)
        )
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in(page, live_server, support)
    for path in [
        "billing/workspace",
        "billing/invoice",
        "billing/creditnote",
        "startups/startupapplication",
    ]:
        page.goto(f"{live_server.url}/admin/{path}/")
        expect(page.locator("#result_list .badge").first).to_be_visible()
        page.screenshot(path=screenshot_path(f"list-1366-{path.replace('/', '-')}"))
        assert fits(page), f"{path} scrolls sideways at 1366 px"
        # Nor does the table scroll inside its box (the last column would hide).
        assert page.evaluate(
            "() => { const r = document.querySelector('#changelist .results');"
            " return r.scrollWidth <= r.clientWidth; }"
        ), f"{path}: the table scrolls sideways at 1366 px"
        badge = page.locator("#result_list .badge").first.bounding_box()
        assert badge["x"] + badge["width"] <= 1366, f"{path}: the status is out of view"


def test_the_usage_chart_keeps_its_bars_inside_its_card_under_its_heading(
    page: Page, live_server, screenshot_path, pin_today
):
    """The workspace page's six-month chart: its bars were up to 100 px tall with their two
    caption lines under them in a row of 90 px, so the tallest months (here October and
    November, 15,300 and 15,804 MTUs, against December's 6,209) rose out of the card and hid
    its heading "MTUs, last six months"."""
    pin_today(date(2026, 12, 4))
    ws = workspace(name="Wonka Media", slug="wonka-media")
    figures = [(7, 13_552), (8, 13_409), (9, 12_060), (10, 15_300), (11, 15_804), (12, 6_209)]
    for month, mtus in figures:
        services.record_usage(ws, month=date(2026, month, 1), mtus=mtus)
    sign_in(page, live_server, make_staff(SUPPORT))
    page.set_viewport_size(WIDE)
    page.goto(f"{live_server.url}/admin/billing/workspace/{ws.pk}/change/")
    card = page.locator(".status-card", has=page.get_by_role("heading", name="MTUs, last six"))
    page.screenshot(path=screenshot_path("workspace-usage-chart"), full_page=True)
    expect(card.locator(".bar")).to_have_count(6)
    heights = bar_heights(card, card.get_by_role("heading"))
    # Drawn to scale: November's is the tallest, December's about 6,209 / 15,804 of it.
    assert heights[4] == max(heights)
    assert abs(heights[5] / heights[4] - 6_209 / 15_804) < 0.05
