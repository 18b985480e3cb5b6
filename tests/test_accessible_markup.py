"""What a screen reader is told on the pages axe cannot judge by itself (the browser test,
tests/e2e/test_accessibility_browser.py, runs axe on every kind of page): which finance page is
the current one, a group of radios named by its legend, every error and help an input points
at present on the page, a refused form's title and its announced summary, and tables headed.
Then what a keyboard and screen-reader audit (Playwright and axe-core) found missing: required
fields marked, a radio group's error read with the group, refusals announced on the bulk
confirmations, the queue and the finance list, the finance tabs a landmark, every table and
column named, and wide tables scrolling in their own box. Colours and reflow are measured in a
browser, not here."""

import re
from datetime import date
from decimal import Decimal

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from billing import services
from billing.credit_notes import request_credit_note
from billing.models import Invoice
from tests.admin_pages import as_shown
from tests.billing.factories import workspace
from tests.coupons.factories import paid_monthly
from tests.startups.factories import application

TODAY = date(2026, 1, 21)
ALERT = '<p class="errornote" role="alert">'


@pytest.fixture(autouse=True)
def today(pin_today):
    return pin_today(TODAY)


def described_by_targets_exist(page: str) -> list[str]:
    """The ids that an aria-describedby names and the page does not hold."""
    ids = set(re.findall(r'\bid="([^"]+)"', page))
    named = {n for value in re.findall(r'aria-describedby="([^"]+)"', page) for n in value.split()}
    return sorted(named - ids)


def test_the_current_finance_page_is_marked_for_screen_readers_not_by_colour_alone(client, finance):
    client.force_login(finance)
    page = client.get(reverse("finance:tax-report")).content.decode()
    assert page.count('aria-current="page"') == 1
    assert re.search(r'class="current" aria-current="page">Tax report</a>', page)


def test_a_group_of_radios_is_a_fieldset_named_by_its_legend(client, support, db):
    """WCAG 1.3.1: the radios of "Change plan" were read as "Free (cancel or downgrade), radio
    button", never with the question they answer: their label pointed at no input."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_action", args=[ws.pk, "plan"]))
    html = page.content.decode()
    assert re.search(r'<fieldset class="choices"><legend[^>]*>Plan:</legend>', html)
    assert 'type="radio" name="plan"' in html


def test_forecast_errors_and_help_are_on_the_page_each_input_points_at(client, support, db):
    """The inputs named `id_months_error` and `id_given_mtus_error`, which the page never held:
    a screen reader read the field without its error."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    client.force_login(support)
    url = reverse("admin:billing_workspace_forecast", args=[ws.pk])
    page = client.get(url, {"months": "99", "mtus": "given", "given_mtus": "abc"})
    html = page.content.decode()
    assert 'aria-invalid="true"' in html
    assert described_by_targets_exist(html) == []
    assert re.search(r"<legend[^>]*>MTUs each month:</legend>", html)


def test_a_refused_confirmation_says_so_in_its_title_and_announces_it(client, support, db):
    ws = workspace()
    client.force_login(support)
    page = client.post(reverse("admin:billing_workspace_close", args=[ws.pk]), {"reason": " "})
    html = page.content.decode()
    assert re.search(r"<title>Error: ", html)
    assert '<p class="errornote" role="alert">Please correct the error below.</p>' in html
    assert described_by_targets_exist(html) == []


def test_a_refused_public_form_says_so_in_its_title_and_links_each_answer_to_fix(client, db):
    page = client.post(reverse("startups:apply"), {"company_name": ""})  # sent empty
    html = page.content.decode()
    assert html.count("<title>Error: Apply to the Startup Program</title>") == 1
    summary = re.search(r'<div class="error-summary" role="alert">(.*?)</div>', html, re.S)
    assert summary, html
    links = re.findall(r'<a href="#(id_\w+)">', summary.group(1))
    assert "id_company_name" in links and "id_contact_email" in links
    assert all(f'id="{target}"' in html for target in links)


def test_the_workspace_page_tables_have_column_headers(client, support, db):
    ws = paid_monthly(as_of=date(2026, 1, 1))
    client.force_login(support)
    html = client.get(reverse("admin:billing_workspace_change", args=[ws.pk])).content.decode()
    for headers in (
        ["Line", "Amount"],
        ["When", "What"],
        ["Number", "Kind", "Issued", "Total", "Status"],
    ):
        cells = "".join(rf'<th scope="col"[^>]*>{h}</th>' for h in headers)
        assert re.search(cells, html), headers


# --- Found by the keyboard and screen-reader audit ---------------------------------------------


def fieldset_of(page: str, legend: str) -> str:
    """The fieldset whose legend reads `legend`, from its opening tag to its end."""
    found = re.search(
        rf"<fieldset[^>]*>\s*<legend[^>]*>{legend}</legend>.*?</fieldset>", page, re.S
    )
    assert found, f"no fieldset named {legend!r}"
    return found.group(0)


def test_the_reason_to_close_a_workspace_is_marked_required(client, support, db):
    """WCAG 3.3.2: the Reason looked optional until the page refused it empty."""
    ws = workspace()
    client.force_login(support)
    page = client.get(reverse("admin:billing_workspace_close", args=[ws.pk])).content.decode()
    assert '<label for="id_reason" class="required">Reason:</label>' in page


def test_the_workspace_on_the_approve_page_is_marked_required(client, db, reviewer):
    """WCAG 3.3.2: the approval was refused without a workspace, which its label did not say."""
    app = application(company_name="Nimbus Labs", as_of=TODAY)
    client.force_login(reviewer)
    url = reverse("admin:startups_application_action", args=[app.pk, "approve"])
    page = client.get(url).content.decode()
    assert '<label for="id_workspace" class="required">Workspace:</label>' in page
    assert '<label for="id_note">Note:</label>' in page  # optional, and says so by its help


def test_a_plan_left_unchosen_is_read_with_the_plan_group(client, support, db):
    """WCAG 3.3.1, 1.3.1: "This field is required." sat above the group, named by no radio."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    client.force_login(support)
    url = reverse("admin:billing_workspace_action", args=[ws.pk, "plan"])
    page = client.post(url, as_shown(client, url, {"reason": "Ticket 7"})).content.decode()
    group = fieldset_of(page, "Plan:")
    opening = re.match(r"<fieldset[^>]*>", group).group(0)
    assert "id_plan_error" in re.search(r'aria-describedby="([^"]*)"', opening).group(1)
    assert re.search(r'</legend><ul class="errorlist" id="id_plan_error">', group)
    radios = re.findall(r'<input type="radio"[^>]*>', group)
    assert radios and all('aria-invalid="true"' in radio for radio in radios)


def test_a_refused_forecast_is_announced_and_its_group_points_at_its_error(client, support, db):
    """WCAG 4.1.3, 3.3.1: a bad "MTUs each month" showed its error with no summary, no "Error:"
    in the title, and outside the group the radios are read in."""
    ws = paid_monthly(as_of=date(2026, 1, 1))
    client.force_login(support)
    url = reverse("admin:billing_workspace_forecast", args=[ws.pk])
    page = client.get(url, {"months": "12", "mtus": "guessed"}).content.decode()
    assert re.search(r"<title>Error: ", page)
    assert f"{ALERT}Please correct the error below.</p>" in page
    group = fieldset_of(page, "MTUs each month:")
    assert 'aria-describedby="id_mtus_error' in group
    assert '<ul class="errorlist" id="id_mtus_error">' in group


def test_a_bulk_reject_without_its_reason_is_announced(client, db, reviewer):
    """WCAG 4.1.3, 3.3.1: the confirmation came back with the field's error only: no summary
    read out, and a title that did not say the submission was refused."""
    app = application()
    client.force_login(reviewer)
    selected = {"action": "bulk_reject", ACTION_CHECKBOX_NAME: [app.pk], "confirm": "yes"}
    page = client.post(
        reverse("admin:startups_startupapplication_changelist"), {**selected, "reason": ""}
    ).content.decode()
    assert re.search(r"<title>Error: ", page)
    assert f"{ALERT}Please correct the error below.</p>" in page


def test_the_queue_with_a_bad_date_is_announced(client, db, reviewer):
    """WCAG 4.1.3: "Nothing is listed until the filters below are fixed." was not read out."""
    client.force_login(reviewer)
    page = client.get(reverse("startups:queue"), {"submitted_after": "yesterday"}).content.decode()
    assert re.search(r"<title>Error: ", page)
    assert f"{ALERT}Nothing is listed until the filters below are fixed.</p>" in page


def test_the_invoice_list_with_a_bad_filter_is_announced(client, finance):
    """WCAG 4.1.3: a bad month listed nothing and said why in plain text, never read out."""
    client.force_login(finance)
    page = client.get(reverse("finance:invoices"), {"issued_from": "March"}).content.decode()
    assert re.search(r"<title>Error: ", page)
    assert f"{ALERT}Nothing is listed until the filters marked below are fixed.</p>" in page


def test_the_finance_tabs_are_a_navigation_landmark_marking_the_current_page(client, finance):
    """WCAG 1.3.1, 2.4.1: the tabs were a bare list, not found among the page's landmarks."""
    client.force_login(finance)
    page = client.get(reverse("finance:revenue")).content.decode()
    tabs = re.search(r'<nav aria-label="Finance pages">(.*?)</nav>', page, re.S)
    assert tabs, "no finance navigation landmark"
    assert re.search(r'aria-current="page">Revenue chart</a>', tabs.group(1))


def test_the_review_queue_names_its_applications_table_with_a_heading(client, db, reviewer):
    """WCAG 1.3.1, 2.4.6: the renewals had a heading, the applications table after it none."""
    client.force_login(reviewer)
    page = client.get(reverse("startups:queue")).content.decode()
    assert re.search(r"<h2>Applications</h2>.*<table id=\"result_list\"", page, re.S)


def test_the_credit_notes_decision_column_is_named(client, support, finance):
    """WCAG 1.3.1: the last column's header was empty: its buttons and links were read with
    no column name."""
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.change_to_team(ws, interval="annual", as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 15))
    note = request_credit_note(
        Invoice.objects.get(), by=support, amount=Decimal("100.00"), reason="Seats", as_of=TODAY
    )
    client.force_login(finance)
    url = reverse("admin:billing_creditnote_decide", args=[note.pk, "approve"])
    page = client.get(url).content.decode()
    assert '<th scope="col"></th>' not in page
    assert re.search(
        r'<div class="table-scroll"><table aria-label="Credit notes on [^"]+">.*?'
        r'<th scope="col"><span class="visually-hidden">Decision or document</span></th>',
        page,
        re.S,
    )


def test_the_credit_movements_table_scrolls_in_its_own_box(client, finance):
    """WCAG 1.4.10: at 400 px the twelve months' table pushed the page to 684 px wide."""
    client.force_login(finance)
    page = client.get(reverse("credits:liability")).content.decode()
    assert '<div class="table-scroll"><table class="finance">' in page


def test_the_sign_in_page_has_one_heading(client, db):
    """WCAG 1.3.1, 2.4.6: Django 5.2's sign-in page has no heading (the site's name is a div),
    and a screen reader's list of headings on it was empty."""
    page = client.get(reverse("admin:login")).content.decode()
    assert re.findall(r"<h1[^>]*>.*?</h1>", page, re.S) == ["<h1>Log in</h1>"]
