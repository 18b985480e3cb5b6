"""The staff screens and the public forms for people who use a keyboard, a screen reader or a
zoomed screen: axe-core (WCAG 2.1 A and AA rules, the copy bundled by axe-playwright-python)
finds no serious or critical violation on the demo's pages, as each role, and at 200 % zoom
of a 1,366 px screen no page scrolls sideways.

The pages are found as staff find them: each list on the role's index, its first row, and the
pages that row's buttons lead to (each kind of page once, whichever role reaches it first), and
the pages outside the admin. Django's own markup that this project does not style (the select2
pickers) is left out."""

from io import StringIO

from axe_playwright_python.sync_playwright import Axe
from django.core.management import call_command
from playwright.sync_api import Page, expect

from billing.models import UsageImportJob, Workspace
from billing.roles import SUPPORT
from startups.models import StartupApplication

from .staff import every_kind_of_page, fits, kind_of_page, make_staff, sign_in, sign_in_as_demo

AXE = Axe()
OPTIONS = {
    "resultTypes": ["violations"],
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
}
NOT_OURS = {"exclude": [[".select2-container"]]}
SERIOUS = {"serious", "critical"}
# 200 % zoom of the narrowest screen staff use (issue 13: 1,366 px) leaves 683 CSS px.
ZOOMED = {"width": 683, "height": 450}


def violations(page: Page) -> list[str]:
    found = AXE.run(page, context={"include": [["body"]], **NOT_OURS}, options=OPTIONS)
    return [
        f"{v['id']} ({v['impact']}): {node['target']} {node['failureSummary'][:160]!r}"
        for v in found.response["violations"]
        if v["impact"] in SERIOUS
        for node in v["nodes"]
    ]


def test_staff_pages_have_no_serious_accessibility_violations_as_any_role(page: Page, live_server):
    call_command("seed_demo", workspaces=40, allow_production=True, stdout=StringIO())
    page.set_viewport_size({"width": 1366, "height": 900})
    seen, problems = set(), {}
    for username, path in every_kind_of_page(page, live_server):
        seen.add(kind_of_page(path))
        if found := violations(page):
            problems[f"{username} {path}"] = found
    assert len(seen) >= 40, sorted(seen)
    assert problems == {}, "\n".join(f"{page}: {found}" for page, found in problems.items())


def test_public_forms_and_their_errors_have_no_serious_accessibility_violations(
    page: Page, live_server
):
    problems = {}
    for path in ("/startups/apply/", "/partners/apply/"):
        page.goto(f"{live_server.url}{path}")
        problems[path] = violations(page)
        page.locator("form [type=submit]").click()  # empty: every required field refused
        page.wait_for_load_state()
        problems[f"{path} refused"] = violations(page)
    assert {k: v for k, v in problems.items() if v} == {}


def test_no_staff_page_scrolls_sideways_at_200_percent_zoom(page: Page, live_server):
    """WCAG 1.4.10: at ≤ 1,024 px Django stacks the header; the search box stays inside it,
    and wide tables scroll in a box of their own, not the page."""
    call_command("seed_demo", workspaces=40, allow_production=True, stdout=StringIO())
    page.set_viewport_size(ZOOMED)
    wide = []
    for username, paths in (
        ("support", ["/admin/", "/admin/billing/workspace/", "/admin/search/?q=demo"]),
        ("reviewer", ["/startups/queue/", "/admin/startups/startupapplication/"]),
        ("finance", ["/finance/", "/finance/tax-report/", "/finance/revenue/"]),
    ):
        sign_in_as_demo(page, live_server, username)
        if username == "reviewer":
            application = StartupApplication.objects.order_by("pk").first()
            paths.append(f"/admin/startups/startupapplication/{application.pk}/change/")
        for path in paths:
            page.goto(f"{live_server.url}{path}")
            if not fits(page):
                wide.append(path)
    assert wide == []


def test_an_import_job_page_follows_the_job_in_place_without_reloading(page: Page, live_server):
    """WCAG 2.2.1: the page reloaded itself every two seconds while a worker imported, throwing
    a screen reader's place and the keyboard's focus back to the top each time. Its status is
    now fetched and put in place, in a live region, until the job finishes."""
    support = make_staff(SUPPORT)
    job = UsageImportJob.objects.create(file_name="march.csv", size=3_000_000, created_by=support)
    sign_in(page, live_server, support)
    page.goto(f"{live_server.url}/admin/billing/usage/import/{job.pk}/")
    status = page.get_by_role("status")
    expect(status).to_contain_text("Waiting for a worker")
    page.evaluate("() => { window.stillThisPage = true; }")
    page.get_by_role("link", name="Import another file").focus()

    UsageImportJob.objects.filter(pk=job.pk).update(
        status="done", figures_created=1_200, figures_replaced=3, figures_unchanged=0
    )

    expect(status).to_contain_text("Usage imported: 1,200 new")
    assert page.evaluate("() => window.stillThisPage === true")  # not reloaded
    assert page.evaluate("() => document.activeElement.textContent") == "Import another file"


def test_filter_choices_are_24_px_targets_and_each_choice_reads_on_one_line(
    page: Page, live_server
):
    """WCAG 2.5.8: Django's filter links are 20 px high, one under the other. And a radio's own
    label took the admin's 160 px label column, so "Free (cancel or downgrade)" wrapped. The
    Program column says "Member" (or a dash) rather than an icon read aloud as "False"."""
    call_command("seed_demo", workspaces=40, allow_production=True, stdout=StringIO())
    page.set_viewport_size({"width": 1366, "height": 900})
    sign_in_as_demo(page, live_server, "support")
    page.goto(f"{live_server.url}/admin/billing/workspace/")
    heights = page.locator("#changelist-filter li a").evaluate_all(
        "links => links.map(a => a.getBoundingClientRect().height)"
    )
    assert len(heights) >= 10 and min(heights) >= 24, heights
    alts = {}
    for path in ("/admin/coupons/redemption/", "/admin/coupons/coupon/"):
        page.goto(f"{live_server.url}{path}")
        page.locator("#result_list tbody th a").first.click()
        for at in (f"{live_server.url}{path}", page.url):  # a column, a row's read-only fields
            page.goto(at)
            alts[at] = page.locator("img[src*=icon-]").evaluate_all("i => i.map(i => i.alt)")
    seen = {alt for found in alts.values() for alt in found}
    assert seen and seen <= {"Yes", "No"}, alts
    page.goto(f"{live_server.url}/admin/billing/workspace/")
    assert set(page.locator("#result_list td.field-program_member").all_inner_texts()) <= {
        "Member",
        "—",
    }

    workspace = Workspace.objects.filter(
        closed_on=None, subscriptions__ended_on=None, subscriptions__plan__code="team"
    ).first()
    page.goto(f"{live_server.url}/admin/billing/workspace/{workspace.pk}/do/plan/")
    choices = page.locator("fieldset.choices label")
    assert "Free (cancel or downgrade)" in [text.strip() for text in choices.all_inner_texts()]
    heights = choices.evaluate_all("labels => labels.map(l => l.getBoundingClientRect().height)")
    assert max(heights) < 1.5 * min(heights), heights  # one line each
