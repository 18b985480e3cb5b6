"""Staff in the browser tests: users in the real role groups (billing/migrations/0003), signed in
through the real login page, and what a page says after an action succeeds."""

import re

from django.contrib.auth.models import Group, User
from playwright.sync_api import Page, expect

from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT

PASSWORD = "pass-for-tests"
SLUGS = {SUPPORT: "support", FINANCE: "finance", STARTUP_REVIEWERS: "startup-reviewers"}

# Fits the lists' widths are checked at (issue 13).
WIDE = {"width": 1400, "height": 900}


def make_staff(role):
    user = User.objects.create_user(
        username=SLUGS[role].replace("-", "_"), password=PASSWORD, is_staff=True
    )
    user.groups.add(Group.objects.get(name=role))
    return user


def sign_in(page: Page, live_server, user):
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    # Django 5.2 logs out through a form: "Log out" is a button.
    expect(page.get_by_role("button", name="Log out")).to_be_visible()


def sign_in_as_demo(page: Page, live_server, username):
    """As one of seed_demo's staff, given the tests' password, in a browser with no session."""
    user = User.objects.get(username=username)
    user.set_password(PASSWORD)
    user.save()
    page.context.clear_cookies()
    sign_in(page, live_server, user)


def expect_done(page: Page, url, message):
    """Back on `url`, with `message` as the success note."""
    expect(page).to_have_url(url)
    expect(page.locator("ul.messagelist li.success")).to_have_text(message)


def click_past_document(page: Page, locator):
    """Clicks `locator` on a page showing a document preview. Chromium draws a PDF in a viewer
    of its own process, and a click right after scrolling the page can reach the viewer at its
    old place instead (seen under load: no click, no POST); two frames after the scroll the
    page's layout is the one the click is aimed by."""
    locator.scroll_into_view_if_needed()
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    locator.click()


def fits(page: Page) -> bool:
    """No sideways scroll: the page is no wider than the window."""
    return page.evaluate("() => document.scrollingElement.scrollWidth <= window.innerWidth")


def bar_heights(chart, above) -> list[float]:
    """The heights of the bars in `chart` (a locator), each checked to be drawn inside it and
    under `above` (its heading, or what the page shows over it)."""
    box, top = chart.bounding_box(), above.bounding_box()
    heights = []
    bars = chart.locator(".bar")
    for n in range(bars.count()):
        bar = bars.nth(n).bounding_box()
        assert bar["y"] >= top["y"] + top["height"], f"bar {n + 1} covers what is above it"
        assert bar["y"] + bar["height"] <= box["y"] + box["height"], f"bar {n + 1} leaves its chart"
        heights.append(bar["height"])
    return heights


# Files, not pages, and the pages Django writes alone.
NOT_PAGES = re.compile(r"/(history|delete)/|\.pdf|download|export")


def kind_of_page(path: str) -> str:
    return re.sub(r"\d+", "N", path.split("?")[0])


def links(page: Page, selector: str) -> list[str]:
    return page.locator(selector).evaluate_all(
        "links => links.map(a => a.getAttribute('href')).filter(h => h && h.startsWith('/'))"
    )


def staff_pages(page: Page, live_server) -> list[str]:
    """The lists on the index, each list's first row and the pages its buttons open."""
    page.goto(f"{live_server.url}/admin/")
    found = ["/admin/"]
    for path in sorted(set(links(page, "#content-main a[href], #content-related a[href]"))):
        found.append(path)
        page.goto(f"{live_server.url}{path}")
        first = page.locator("#result_list tbody tr").first.locator("th a, td a").first
        if first.count():
            row = first.get_attribute("href")
            found.append(row)
            page.goto(f"{live_server.url}{row}")
            found += links(page, ".object-tools a[href]")
    return found


# The pages each demo role reaches outside the index's lists.
ROLES_OWN_PAGES = {
    "support": ["/admin/search/?q=demo", "/admin/billing/usage/import/"],
    "reviewer": ["/startups/queue/"],
    "finance": ["/finance/", "/finance/tax-report/", "/finance/revenue/"],
}


def every_kind_of_page(page: Page, live_server):
    """Signs in as each of seed_demo's roles and opens each kind of page once, whichever role
    reaches it first (the index's lists, each list's first row, its buttons' pages, the role's
    own pages); yields (username, path) with the page open."""
    seen = set()
    for username, own in ROLES_OWN_PAGES.items():
        sign_in_as_demo(page, live_server, username)
        for path in staff_pages(page, live_server) + own:
            if kind_of_page(path) in seen or NOT_PAGES.search(path):
                continue
            seen.add(kind_of_page(path))
            page.goto(f"{live_server.url}{path}")
            yield username, path
