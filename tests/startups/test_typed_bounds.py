"""S1, S3, CR3: what a person types on the startup pages is bounded the same way on every
path: the incorporation year, the funding raised, and the notes kept with a decision."""

from datetime import date
from decimal import Decimal

import pytest
from django.urls import reverse

from startups import services
from startups.errors import ApplicationError
from startups.models import StartupApplication
from tests.admin_pages import as_shown
from tests.billing.factories import workspace

from .factories import APPLICATION_FORM, application, renewal_review_due

STAFF_ENTRY = {
    "company_name": "Acme Robotics",
    "website": "https://acme.example.com",
    "contact_name": "Ada",
    "contact_email": "ada@acme.example.com",
    "incorporation_date": "2025-06-01",
    "total_funding": "1500000.00",
    "country": "DE",
    "partner_name": "",
}
YEAR_LOOKS_WRONG = "Check the incorporation date: the year looks wrong."


@pytest.mark.parametrize("incorporated", [date(1, 1, 1), date(1899, 12, 31)])
def test_s1_an_incorporation_year_before_1900_is_refused_by_the_service(db, incorporated):
    """S1: an incorporation date of 0001-01-01 or 1899-12-31 is a typing mistake, refused by
    the service itself (commands and staff entry call it too); 1900-01-01 is a date."""
    with pytest.raises(ApplicationError, match=YEAR_LOOKS_WRONG):
        application(incorporation_date=incorporated)
    assert not StartupApplication.objects.exists()
    oldest = application(incorporation_date=date(1900, 1, 1))
    assert oldest.incorporation_date == date(1900, 1, 1)


def test_s1_staff_entry_refuses_incorporation_year_0001_as_the_public_form_does(
    client, db, reviewer, today
):
    """S1: the admin's add page saved an application incorporated on 0001-01-01 ("1 Jan
    0001"), which the public form refuses: both now say the year looks wrong, and save
    nothing."""
    client.force_login(reviewer)
    staff = client.post(
        reverse("admin:startups_startupapplication_add"),
        {**STAFF_ENTRY, "incorporation_date": "0001-01-01"},
    )
    assert staff.status_code == 200
    assert YEAR_LOOKS_WRONG in staff.context["adminform"].form.non_field_errors()

    public = client.post(
        reverse("startups:apply"), {**APPLICATION_FORM, "incorporation_date": "0001-01-01"}
    )
    assert public.status_code == 200
    assert public.context["form"].errors["incorporation_date"] == [YEAR_LOOKS_WRONG]
    assert not StartupApplication.objects.exists()


def test_s1_negative_funding_is_said_to_be_negative(client, db):
    """S1: funding of -5 was refused as "must be an amount in US dollars, not “-5”" (it is
    one), and the public form said Django's "Ensure this value is greater than or equal to 0"
    for -1: both now say it cannot be negative."""
    with pytest.raises(ApplicationError, match=r"^The total funding cannot be negative \(“-5”\)"):
        application(total_funding="-5")
    response = client.post(reverse("startups:apply"), {**APPLICATION_FORM, "total_funding": "-1"})
    assert response.context["form"].errors["total_funding"] == [
        "The total funding cannot be negative (“-1”)."
    ]
    assert not StartupApplication.objects.exists()


def test_s1_funding_of_a_trillion_dollars_or_more_is_refused_in_plain_words(client, db):
    """S1: 99,999,999,999,999 on the public form got Django's "Ensure this value is less than
    or equal to 999999999999."; the service and the form now say the same plain sentence, and
    999,999,999,999.99 is still an amount (E2 then fails)."""
    too_large = "The total funding must be less than 1,000,000,000,000, not “99999999999999”."
    with pytest.raises(ApplicationError, match=too_large):
        application(total_funding="99999999999999")
    response = client.post(
        reverse("startups:apply"), {**APPLICATION_FORM, "total_funding": "99999999999999"}
    )
    assert response.context["form"].errors["total_funding"] == [too_large]
    assert not StartupApplication.objects.exists()
    largest = application(total_funding="999999999999.99")
    assert largest.total_funding == Decimal("999999999999.99")


def _approve_page(client, reviewer):
    app = application(workspace=workspace(as_of=date(2026, 1, 2)))
    client.force_login(reviewer)
    return app, reverse("admin:startups_application_action", args=[app.pk, "approve"])


@pytest.mark.parametrize("field", ["note", "override_reason"])
def test_s3_an_approval_note_or_override_reason_over_2000_characters_is_refused(
    client, db, reviewer, today, field
):
    """S3: the approve page stored a note of 10,000 characters in full; its note and override
    reason are capped at 2,000 characters like every other reason: 2,001 is refused on the
    page and nothing is approved or stored."""
    app, url = _approve_page(client, reviewer)
    response = client.post(
        url,
        {"workspace": app.workspace_id, field: "x" * 2_001, "credits_scope_confirmed": "on"},
    )
    assert response.status_code == 200
    errors = " ".join(response.context["form"].errors[field])
    assert "at most 2000 characters (it has 2001)" in errors
    app.refresh_from_db()
    assert (app.status, app.decision_note, app.override_reason) == ("submitted", "", "")
    assert not app.workspace.credit_grants.exists()


def test_s3_an_approval_note_of_2000_characters_is_kept_in_full(client, db, reviewer, today):
    """S3: 2,000 characters is within the cap: the application is approved with the note."""
    app, url = _approve_page(client, reviewer)
    data = {"workspace": app.workspace_id, "note": "x" * 2_000, "credits_scope_confirmed": "on"}
    response = client.post(url, as_shown(client, url, data))
    assert response.status_code == 302
    app.refresh_from_db()
    assert (app.status, len(app.decision_note)) == ("approved", 2_000)


@pytest.mark.parametrize(
    "decision, length, status",
    [
        ("confirm", 2_001, "pending"),
        ("decline", 2_001, "pending"),
        ("confirm", 2_000, "confirmed"),
    ],
)
def test_cr3_a_renewal_note_over_2000_characters_is_refused_and_nothing_decided(
    client, db, reviewer, pin_today, decision, length, status
):
    """CR3: the renewal page stored a 10,000-character note; a note of 2,001 characters is now
    refused on the page (to confirm or to decline) and nothing is decided; 2,000 is kept."""
    review = renewal_review_due(by=reviewer, pin_today=pin_today)
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])
    response = client.post(
        url,
        as_shown(
            client,
            url,
            {
                "decision": decision,
                "total_funding": "2000000",
                "country": "DE",
                "note": "x" * length,
            },
        ),
    )
    review.refresh_from_db()
    assert review.status == status
    if status == "pending":
        errors = " ".join(response.context["form"].errors["note"])
        assert f"at most 2000 characters (it has {length})" in errors
        assert review.note == ""
        assert not review.application.workspace.credit_grants.filter(year=2).exists()
    else:
        assert len(review.note) == 2_000


def test_cr3_negative_funding_on_the_renewal_page_is_said_to_be_negative(
    client, db, reviewer, pin_today
):
    """CR3: the renewal page said Django's "Ensure this value is greater than or equal to 0."
    for -1, and the service "The total funding raised is needed": both now say it cannot be
    negative, and nothing is decided."""
    review = renewal_review_due(by=reviewer, pin_today=pin_today)
    with pytest.raises(ApplicationError, match=r"^The total funding cannot be negative \(“-1”\)"):
        services.confirm_renewal(
            review, by=reviewer, total_funding="-1", country="DE", as_of=date(2027, 1, 22)
        )
    client.force_login(reviewer)
    url = reverse("admin:startups_renewal_decide", args=[review.pk])
    response = client.post(url, {"decision": "confirm", "total_funding": "-1", "country": "DE"})
    assert response.context["form"].errors["total_funding"] == [
        "The total funding cannot be negative (“-1”)."
    ]
    review.refresh_from_db()
    assert review.status == "pending"


@pytest.mark.parametrize(
    "typed, message",
    [
        ("-5", "The total funding cannot be negative (“-5”)."),
        (
            "99999999999999",
            "The total funding must be less than 1,000,000,000,000, not “99999999999999”.",
        ),
    ],
)
def test_s1_staff_entry_refuses_funding_in_the_public_forms_words(
    client, db, reviewer, today, typed, message
):
    """S1: staff entry of -5 or 99,999,999,999,999 in funding is refused on the field in the
    same words as the public form, and nothing is saved."""
    client.force_login(reviewer)
    response = client.post(
        reverse("admin:startups_startupapplication_add"), {**STAFF_ENTRY, "total_funding": typed}
    )
    assert response.status_code == 200
    assert response.context["adminform"].form.errors["total_funding"] == [message]
    assert not StartupApplication.objects.exists()
