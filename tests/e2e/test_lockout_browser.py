"""R6 in the browser: five failed sign-ins through the real login page lock sign-in, and the
page says what happened and when to try again. The right password is then refused too."""

from axes.models import AccessAttempt
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

PASSWORD = "pass-for-tests"


def try_sign_in(page: Page, live_server, username, password):
    page.goto(f"{live_server.url}/admin/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def test_r6_five_failed_sign_ins_show_the_lockout_page(page: Page, live_server, screenshot_path):
    User.objects.create_user(username="support_lockout", password=PASSWORD, is_staff=True)

    for _ in range(4):
        try_sign_in(page, live_server, "support_lockout", "not-the-password")
        expect(page.locator("p.errornote")).to_contain_text(
            "Please enter the correct username and password"
        )

    try_sign_in(page, live_server, "support_lockout", "still-not-the-password")

    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Too many failed sign-ins")
    expect(alert).to_contain_text("Try again in 15 minutes")
    page.screenshot(path=screenshot_path("signin-lockout"), full_page=True)

    try_sign_in(page, live_server, "support_lockout", PASSWORD)
    expect(page.get_by_role("heading", name="Sign-in locked")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    assert AccessAttempt.objects.get(username="support_lockout").failures_since_start == 6
