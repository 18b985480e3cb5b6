"""What a screen reader is told on the pages axe cannot judge by itself (the browser test,
tests/e2e/test_accessibility_browser.py, runs axe on every kind of page): which finance page is
the current one, a group of radios named by its legend, every error and help an input points
at present on the page, a refused form's title and its announced summary, and tables headed."""

import re
from datetime import date

import pytest
from django.urls import reverse

from tests.billing.factories import workspace
from tests.coupons.factories import paid_monthly

TODAY = date(2026, 1, 21)


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
