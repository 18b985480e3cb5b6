"""S1–S3, S5, E1–E3, E5: submission, the checks with their reasons, the review workflow."""

from datetime import date
from decimal import Decimal

import pytest
from django.core import mail

from startups import services
from startups.eligibility import check_funding, check_incorporation, company_key
from startups.models import EligibleTerritory, StartupApplication

from .factories import application

Status = StartupApplication.Status


def test_s1_submission_stores_the_checks_and_sends_a_confirmation(
    db, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        app = application(company_name="Nimbus Labs")
    assert app.status == Status.SUBMITTED and app.submitted_on == date(2026, 1, 20)
    assert [c["id"] for c in app.checks] == ["E1", "E2", "E3", "E4", "E5"]
    assert [m.subject for m in mail.outbox] == [
        f"We received your Startup Program application #{app.pk}"
    ]
    assert f"#{app.pk} on\n20 Jan 2026" in mail.outbox[0].body


def test_s1_s5_the_rejection_email_echoes_nothing_the_sender_typed(
    db, reviewer, django_capture_on_commit_callbacks
):
    """A lure typed as company and contact name with a stranger's address, rejected as the
    spam it is, reached the stranger from us: "Your Startup Program application for Your
    account is suspended - pay at evil.example". The rejection names the application by
    number and day, and says the reviewer's reason."""
    lure = "Your account is suspended - pay at evil.example"
    app = application(company_name=lure, contact_name=lure, contact_email="victim@example.org")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.reject_application(
            app, by=reviewer, reason="This is not a startup.", as_of=date(2026, 1, 21)
        )
    [message] = mail.outbox
    assert message.subject == f"Your Startup Program application #{app.pk}"
    assert "This is not a startup." in message.body and "20 Jan 2026" in message.body
    for body in [message.body, *(html for html, _ in message.alternatives)]:
        assert "evil.example" not in body


def test_s1_the_confirmation_echoes_nothing_the_sender_typed_and_goes_once_a_day_per_address(
    db, django_capture_on_commit_callbacks
):
    """The public form sends from our domain to any address typed: its confirmation carries
    none of the sender's text (a company name 'Your account is suspended: pay at evil.example'
    would reach a stranger's inbox as ours), and one address gets one a day, whatever the
    sender's client address."""
    lure = "Your account is suspended - pay at evil.example"
    with django_capture_on_commit_callbacks(execute=True):
        first = application(company_name=lure, contact_name=lure, contact_email="Vic@Example.org")
        application(company_name="Another Lure", contact_email="vic@example.org")
        application(contact_email="vic@example.org", as_of=date(2026, 1, 21))
        application(contact_email="someone.else@example.org")
    sent = [(m.to, m.subject) for m in mail.outbox]
    assert sorted(sent) == sorted(
        [
            (["Vic@Example.org"], f"We received your Startup Program application #{first.pk}"),
            (["vic@example.org"], f"We received your Startup Program application #{first.pk + 2}"),
            (
                ["someone.else@example.org"],
                f"We received your Startup Program application #{first.pk + 3}",
            ),
        ]
    )
    for message in mail.outbox:
        assert "evil.example" not in message.body and "Lure" not in message.body
        assert all("evil.example" not in body for body, _ in message.alternatives)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("incorporation_date", date(2026, 2, 1), "cannot be in the future"),
        ("incorporation_date", date(1, 1, 1), "the year looks wrong"),
        ("total_funding", "-5", "The total funding cannot be negative"),
        ("total_funding", "1e15", "The total funding must be less than 1,000,000,000,000"),
        # Past Decimal's precision:
        ("total_funding", "1e30", "The total funding must be less than 1,000,000,000,000"),
        ("total_funding", "NaN", "The total funding must be in dollars and cents"),
        ("country", "XX", "“XX” is not a country"),
        ("website", "javascript:alert(1)", "is not a website address"),
        ("contact_email", "not-an-email", "is not an email address"),
    ],
)
def test_s1_bad_input_is_refused_with_a_reason_and_saves_nothing(db, field, value, message):
    with pytest.raises(services.ApplicationError, match=message):
        application(**{field: value})
    assert not StartupApplication.objects.exists()


def test_e1_exactly_two_years_before_the_application_date_fails():
    applied = date(2026, 1, 20)
    assert check_incorporation(date(2024, 1, 21), applied).passed
    exactly = check_incorporation(date(2024, 1, 20), applied)
    assert not exactly.passed
    assert exactly.reason == (
        "Incorporated 20 Jan 2024, two years or more before the application date 20 Jan 2026"
    )
    assert check_incorporation(date(2023, 12, 31), applied).reason.startswith(
        "Incorporated 31 Dec 2023, two years or more"
    )


def test_e1_an_application_of_29_february_counts_two_years_back_to_28_february():
    """E1 on a leap day: two years before 2028-02-29 is 2026-02-28 (no 29th that year), so a
    company incorporated on the 28th is two years old, and one of 1 March is not."""
    applied = date(2028, 2, 29)
    assert not check_incorporation(date(2026, 2, 28), applied).passed
    assert check_incorporation(date(2026, 3, 1), applied).passed


def test_e2_exactly_five_million_passes_a_cent_more_fails():
    assert check_funding(Decimal("5000000.00")).passed
    over = check_funding(Decimal("5000000.01"))
    assert not over.passed
    assert over.reason == "Raised $5,000,000.01, more than the $5,000,000.00 limit"


def test_e3_excluded_countries_and_the_list_is_editable_data(db):
    assert not application(country="RU").checks[2]["passed"]
    assert application(country="FR").checks[2] == {
        "id": "E3",
        "passed": True,
        "reason": "France is an eligible territory",
    }
    EligibleTerritory.objects.filter(country="FR").update(active=False)
    assert application(country="FR").checks[2]["passed"] is False


def test_e5_another_open_application_for_the_same_company_fails(db, reviewer):
    first = application(company_name="Acme Robotics, Inc.")
    second = application(company_name="ACME robotics")
    assert company_key("Acme Robotics, Inc.") == company_key("ACME robotics") == "acme robotics"
    assert second.failing_checks == "E4 E5"
    assert f"Application #{first.pk}" in second.checks[4]["reason"]
    services.withdraw_application(
        first, by=reviewer, as_of=date(2026, 1, 21), reason="Merged into the other application"
    )
    assert "E5" in application(company_name="Acme Robotics").failing_checks  # two still open
    services.reject_application(second, by=reviewer, reason="duplicate", as_of=date(2026, 1, 21))


def test_e5_company_names_in_any_script_and_with_accents_are_compared_as_written(db):
    """Keys were ASCII only: every name in another script had the same empty key (so one open
    application from "Яндекс Облако" made any "株式会社ミライ" fail E5), and "Café" was not
    "Cafe" (a second application from the same company passed)."""
    assert company_key("Café Labs") == company_key("CAFE LABS, Inc.") == "cafe labs"
    assert company_key("Яндекс Облако") == "яндекс облако"
    assert company_key("Inc.") == "inc" and company_key("!!!") == ""
    first = application(company_name="Яндекс Облако")
    assert "E5" not in application(company_name="株式会社ミライ").failing_checks
    assert "E5" not in application(company_name="Δέλτα").failing_checks
    assert (
        f"Application #{first.pk}" in application(company_name="ЯНДЕКС облако").checks[4]["reason"]
    )
    cafe = application(company_name="Café Labs")
    assert (
        f"Application #{cafe.pk}" in application(company_name="Cafe Labs, Inc.").checks[4]["reason"]
    )
    assert "E5" not in application(company_name="!!!").failing_checks  # no key: no match


def test_s3_review_workflow_and_decided_applications_stay_decided(db, reviewer):
    app = application()
    app = services.start_review(app, by=reviewer, as_of=date(2026, 1, 21))
    assert (app.status, app.assigned_to) == (Status.IN_REVIEW, reviewer)
    with pytest.raises(services.ApplicationError, match="only a submitted application"):
        services.start_review(app, by=reviewer, as_of=date(2026, 1, 21))
    services.reject_application(app, by=reviewer, reason="Raised too much", as_of=date(2026, 1, 22))
    for action in (
        lambda: services.reject_application(
            app, by=reviewer, reason="again", as_of=date(2026, 1, 23)
        ),
        lambda: services.withdraw_application(
            app, by=reviewer, as_of=date(2026, 1, 23), reason="Asked by the founder"
        ),
    ):
        with pytest.raises(services.ApplicationError, match="is already rejected on 22 Jan 2026"):
            action()


def test_s5_rejection_needs_a_reason_and_sends_one_email(
    db, reviewer, django_capture_on_commit_callbacks
):
    app = application(company_name="Zed Analytics")
    with pytest.raises(services.ApplicationError, match="needs a reason"):
        services.reject_application(app, by=reviewer, reason=" ", as_of=date(2026, 1, 22))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.reject_application(
            app, by=reviewer, reason="Founded in 2019.", as_of=date(2026, 1, 22)
        )
    assert len(mail.outbox) == 1
    assert "Founded in 2019." in mail.outbox[0].body
    app.refresh_from_db()
    assert (app.status, app.decided_by, app.decided_on) == (
        Status.REJECTED,
        reviewer,
        date(2026, 1, 22),
    )
    assert app.history.first().history_change_reason == "Rejected: Founded in 2019."


def test_r4_a_long_reason_is_kept_whole_in_the_history(db, reviewer):
    reason = "The founders told us in a call that " + "x" * 400
    app = services.reject_application(
        application(), by=reviewer, reason=reason, as_of=date(2026, 1, 22)
    )
    assert app.history.first().history_change_reason == f"Rejected: {reason}"


def test_s2_checks_are_recomputed_when_the_reviewer_opens_the_application(
    client, db, reviewer, support
):
    from django.urls import reverse

    from coupons.services import create_coupon, redeem_coupon
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 2), slug="orbit")
    app = application(workspace=ws)
    assert app.failing_checks == ""
    create_coupon("SPRING", name="Spring", kind="promotion", percent_off=Decimal(5))
    redeem_coupon(ws, "SPRING", by=support, as_of=date(2026, 1, 25))
    client.force_login(reviewer)
    page = client.get(
        reverse("admin:startups_startupapplication_change", args=[app.pk])
    ).content.decode()
    assert (
        "E4 fails</strong>: Workspace orbit has received a coupon or credit: SPRING on 25 Jan 2026"
        in page
    )
    assert "E1 passes</strong>: Incorporated 1 Jun 2025, less than two years" in page
    app.refresh_from_db()
    assert app.failing_checks == "E4"
    assert app.history.first().history_change_reason == "Checks evaluated again"
    assert app.history.first().history_user == reviewer
    versions = app.history.count()
    client.get(reverse("admin:startups_startupapplication_change", args=[app.pk]))
    assert app.history.count() == versions  # unchanged checks are not stored again


@pytest.mark.parametrize("role", ["support", "finance", "no group"])
def test_r5_s2_opening_an_application_writes_nothing_for_anyone_but_a_reviewer(
    client, db, role, support, finance
):
    """Support and finance may view applications, a staff user in no group may not: none of
    them stores the checks by opening the page (GET), though they see them evaluated now."""
    from django.contrib.auth.models import User
    from django.urls import reverse

    from coupons.services import create_coupon, redeem_coupon
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 2), slug="orbit")
    app = application(workspace=ws)
    create_coupon("SPRING", name="Spring", kind="promotion", percent_off=Decimal(5))
    redeem_coupon(ws, "SPRING", by=support, as_of=date(2026, 1, 25))  # E4 fails from now
    stored = StartupApplication.objects.values("checks", "failing_checks").get(pk=app.pk)
    versions = app.history.count()
    users = {"support": support, "finance": finance}
    user = users.get(role) or User.objects.create_user("nobody", is_staff=True)
    client.force_login(user)

    page = client.get(reverse("admin:startups_startupapplication_change", args=[app.pk]))

    if role == "no group":
        assert page.status_code == 403
    else:
        assert "E4 fails</strong>" in page.content.decode()
    assert StartupApplication.objects.values("checks", "failing_checks").get(pk=app.pk) == stored
    assert app.history.count() == versions
