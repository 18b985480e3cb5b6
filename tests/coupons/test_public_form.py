"""C7: the public application form of accelerator programs: no login, CSRF, per-field errors,
a honeypot and a per-address rate limit."""

from django.test import Client
from django.urls import reverse

from coupons.models import AcceleratorPartner

from .factories import PARTNER_FORM

GOOD = PARTNER_FORM
URL = "/partners/apply/"


def test_c7_form_opens_without_login_with_csrf_and_a_hidden_honeypot(client):
    assert reverse("coupons:partner_apply") == URL
    response = client.get(URL)
    page = response.content.decode()
    assert response.status_code == 200
    assert 'name="csrfmiddlewaretoken"' in page
    assert 'class="honeypot"' in page and 'name="fax"' in page


def test_c7_application_is_stored_for_review(client, db):
    response = client.post(URL, GOOD)
    assert response.status_code == 302 and response.url == "/partners/apply/thanks/"
    partner = AcceleratorPartner.objects.get()
    assert (partner.name, partner.status, partner.contact_email) == (
        "Seedbed Accelerator",
        "applied",
        "mira@seedbed.example.com",
    )


def test_c7_bad_input_gets_clear_errors_next_to_each_field(client, db):
    response = client.post(URL, {**GOOD, "name": "", "contact_email": "mira@", "website": "x y"})
    assert response.status_code == 200
    form = response.context["form"]
    assert form.errors["name"] == ["This field is required."]
    assert form.errors["contact_email"] == ["Enter a valid email address."]
    assert form.errors["website"] == ["Enter a valid URL."]
    # Each field names its errors' list (aria-describedby), and that list carries the id.
    page = response.content.decode()
    assert 'aria-describedby="id_name_error"' in page and 'id="id_name_error"' in page
    assert not AcceleratorPartner.objects.exists()


def test_c7_a_program_that_applied_already_is_told_so(client, db):
    client.post(URL, GOOD)
    response = client.post(URL, {**GOOD, "name": "seedbed accelerator"})
    assert "has applied already or is a partner" in response.content.decode()
    assert AcceleratorPartner.objects.count() == 1


def test_c7_r7_the_form_does_not_list_programs_to_whoever_tries_names(client, db, settings):
    """The answer "A program named … has applied already or is a partner" cost nothing under
    R7: an attacker's walk asked 30 times for a program whose application is not public and got
    the answer 30 times. Such answers count as the startup form's slug misses: an address gets
    PUBLIC_FORM_MISS_LIMIT of them an hour (here 3), then the rate-limited page for any POST, a
    new program's too; other mistakes stay free, and another address is not held back."""
    settings.PUBLIC_FORM_MISS_LIMIT = 3
    client.post(URL, {**GOOD, "name": "Lighthouse Ventures"}, REMOTE_ADDR="10.1.1.1")
    for _ in range(5):  # typos elsewhere cost nothing
        assert client.post(URL, {**GOOD, "contact_email": "mira@"}, REMOTE_ADDR="10.9.9.9")
    for name in ("Lighthouse Ventures", "lighthouse ventures", " LIGHTHOUSE VENTURES "):
        answer = client.post(URL, {**GOOD, "name": name}, REMOTE_ADDR="10.9.9.9")
        assert answer.status_code == 200
        assert "has applied already or is a partner" in answer.content.decode()
    tried = client.post(URL, {**GOOD, "name": "Lighthouse Ventures"}, REMOTE_ADDR="10.9.9.9")
    assert tried.status_code == 429
    assert "has applied already" not in tried.content.decode()
    assert client.post(URL, GOOD, REMOTE_ADDR="10.9.9.9").status_code == 429
    assert AcceleratorPartner.objects.count() == 1

    elsewhere = client.post(URL, GOOD, REMOTE_ADDR="10.9.9.8")
    assert elsewhere.status_code == 302
    assert AcceleratorPartner.objects.count() == 2


def test_c7_honeypot_filled_in_creates_nothing_and_says_nothing(client, db):
    response = client.post(URL, {**GOOD, "fax": "+1 555 0100"})
    assert response.status_code == 302 and response.url == "/partners/apply/thanks/"
    assert not AcceleratorPartner.objects.exists()


def test_c7_rate_limit_per_address(client, db, settings):
    settings.PUBLIC_FORM_RATE_LIMIT = 2
    for n in range(2):
        client.post(URL, {**GOOD, "name": f"Program {n}"}, REMOTE_ADDR="203.0.113.7")
    refused = client.post(URL, {**GOOD, "name": "Program 3"}, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429
    assert "try again later" in refused.content.decode()
    other = client.post(URL, {**GOOD, "name": "Program 4"}, REMOTE_ADDR="198.51.100.9")
    assert other.status_code == 302
    assert AcceleratorPartner.objects.count() == 3


def test_c7_post_without_csrf_token_is_refused(db):
    response = Client(enforce_csrf_checks=True).post(URL, GOOD)
    assert response.status_code == 403
    assert not AcceleratorPartner.objects.exists()
