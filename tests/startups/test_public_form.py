"""S1 through the public page: no login, CSRF, per-field errors, honeypot, rate limit,
everything rendered escaped."""

import re
from datetime import date

import pytest
from django.test import Client
from django.urls import reverse

from startups.models import StartupApplication
from tests.billing.factories import workspace

from .factories import APPLICATION_FORM

GOOD = APPLICATION_FORM


def test_s1_public_form_needs_no_login_and_confirms(client, db):
    assert client.get(reverse("startups:apply")).status_code == 200
    response = client.post(reverse("startups:apply"), GOOD, follow=True)
    assert "your application is in" in response.content.decode()
    assert StartupApplication.objects.get().source == "public_form"


def test_s1_public_form_enforces_csrf(db):
    strict = Client(enforce_csrf_checks=True)
    assert strict.post(reverse("startups:apply"), GOOD).status_code == 403
    assert not StartupApplication.objects.exists()


@pytest.mark.parametrize(
    "changes, field, message",
    [
        ({"company_name": ""}, "company_name", "This field is required."),
        ({"incorporation_date": "2099-01-01"}, "incorporation_date", "cannot be in the future"),
        ({"total_funding": "-1"}, "total_funding", "cannot be negative"),
        ({"total_funding": "99999999999999"}, "total_funding", "less than 1,000,000,000,000"),
        # "1e6" was read as 1,000,000; "1,000,000" got a bare "Enter a number.".
        ({"total_funding": "1e6"}, "total_funding", "Write the number in full, e.g. 1000.00"),
        ({"total_funding": "1,000,000"}, "total_funding", "without thousands separators"),
        ({"country": "ZZ"}, "country", "Select a valid choice"),
        ({"company_name": "x" * 201}, "company_name", "at most 200 characters"),
        ({"workspace": "no-such-workspace"}, "workspace", "No workspace has that slug"),
        ({"contact_email": "ada"}, "contact_email", "Enter a valid email address."),
    ],
)
def test_s1_public_form_bad_inputs_get_clear_errors(client, db, changes, field, message):
    response = client.post(reverse("startups:apply"), {**GOOD, **changes})
    assert response.status_code == 200
    assert message in " ".join(response.context["form"].errors[field])
    assert not StartupApplication.objects.exists()


def test_s1_script_tags_are_stored_as_text_and_rendered_escaped(client, db, reviewer):
    evil = "<script>alert('x')</script> Labs"
    client.post(reverse("startups:apply"), {**GOOD, "company_name": evil})
    assert StartupApplication.objects.get().company_name == evil
    client.force_login(reviewer)
    page = client.get(reverse("startups:queue")).content.decode()
    assert "<script>alert(" not in page and "&lt;script&gt;alert(" in page


def test_s1_honeypot_filled_looks_accepted_but_saves_nothing(client, db):
    response = client.post(reverse("startups:apply"), {**GOOD, "nickname": "bot"}, follow=True)
    assert "your application is in" in response.content.decode()
    assert not StartupApplication.objects.exists()


def test_s1_rate_limit_per_address(client, db, settings):
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    for n in range(2):
        client.post(
            reverse("startups:apply"), {**GOOD, "company_name": f"Co {n}"}, REMOTE_ADDR="10.1.1.1"
        )
    blocked = client.post(reverse("startups:apply"), GOOD, REMOTE_ADDR="10.1.1.1")
    assert blocked.status_code == 429
    other = client.post(
        reverse("startups:apply"), {**GOOD, "company_name": "Other"}, REMOTE_ADDR="10.1.1.2"
    )
    assert other.status_code == 302
    assert StartupApplication.objects.count() == 3


def test_s1_r7_the_form_does_not_list_customers_to_whoever_tries_names(client, db, settings):
    """The form says "No workspace has that slug" for a name that is no customer, and refused
    forms cost nothing under R7: anyone could try a list of company names, one form each, and
    learn which are customers. An address gets PUBLIC_FORM_MISS_LIMIT such answers an hour
    (here 3); then every POST gets the rate-limited page, a customer's slug too, so the 4th
    try tells nothing. Other mistakes stay free, and another address is not held back."""
    settings.PUBLIC_FORM_MISS_LIMIT = 3
    customer = workspace(slug="acme", as_of=date(2026, 1, 1))
    apply = reverse("startups:apply")
    for _ in range(5):  # typos elsewhere cost nothing
        bad_email = {**GOOD, "contact_email": "ada"}
        assert client.post(apply, bad_email, REMOTE_ADDR="10.9.9.9").status_code == 200
    for guess in ("globex", "initech", "umbrella"):
        answer = client.post(apply, {**GOOD, "workspace": guess}, REMOTE_ADDR="10.9.9.9")
        assert "No workspace has that slug" in answer.content.decode()
    tried = client.post(apply, {**GOOD, "workspace": customer.slug}, REMOTE_ADDR="10.9.9.9")
    assert tried.status_code == 429
    assert "No workspace has that slug" not in tried.content.decode()
    assert not StartupApplication.objects.exists()

    elsewhere = client.post(apply, {**GOOD, "workspace": customer.slug}, REMOTE_ADDR="10.9.9.8")
    assert elsewhere.status_code == 302
    assert StartupApplication.objects.get().workspace == customer


def test_s1_optional_answers_are_marked_and_an_error_marks_its_field(client, db):
    """S1: the startup form named no field optional (the partner form, C7, did), so an
    applicant could not tell that the workspace slug and the partner may be left empty; its
    errors were not tied to their field either. Only those two labels say "(optional)"; a
    missing company name outlines its field and is read out with it."""
    page = client.get(reverse("startups:apply")).content.decode()
    labels = dict(re.findall(r'<label for="id_(\w+)">(.*?)</label>', page, re.S))
    assert {name for name, text in labels.items() if "(optional)" in text} == {
        "workspace",
        "partner_name",
    }
    assert labels["company_name"] == "Company name"
    honeypot = re.search(r'<input[^>]*name="nickname"[^>]*>', page).group(0)
    assert 'tabindex="-1"' in honeypot and 'autocomplete="off"' in honeypot

    refused = client.post(reverse("startups:apply"), {**GOOD, "company_name": ""}).content.decode()
    field = re.search(r'<div class="field-error">\s*<label for="id_company_name">', refused)
    assert field, "the company name's field is not marked as in error"
    assert 'aria-describedby="id_company_name_error"' in refused
    assert '<ul class="errorlist" id="id_company_name_error">' in refused
