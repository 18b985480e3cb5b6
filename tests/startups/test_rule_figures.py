"""E3 and S6 with all their figures: the six excluded countries, a declined deal request."""

from datetime import date

from startups import services
from startups.models import DealRequest, EligibleTerritory, PartnerDeal, StartupApplication
from tests.billing.factories import paid_monthly
from tests.startups.factories import application

EXCLUDED = ("CU", "IR", "KP", "SY", "RU", "BY")


def test_e3_s2_the_six_excluded_countries_fail_and_243_territories_are_seeded(db):
    """E3 (S2): the seeded list is every ISO 3166-1 country (249) except CU, IR, KP, SY, RU and
    BY: 243 eligible territories. An application from each of the six fails E3; one from the
    US, Germany or Japan passes."""
    seeded = set(EligibleTerritory.objects.filter(active=True).values_list("country", flat=True))
    assert len(seeded) == 243
    assert not seeded & set(EXCLUDED)
    for code in EXCLUDED:
        check = application(country=code).checks[2]
        assert (check["id"], check["passed"]) == ("E3", False), code
        assert check["reason"].endswith("is not an eligible territory")
    for code in ("US", "DE", "JP"):
        assert application(country=code).checks[2]["passed"] is True, code


def test_e3_s2_closing_a_territory_fails_e3_of_its_open_applications_in_the_queue(db, reviewer):
    """E3, S2: two open applications from France and one decided, and one from Germany. The
    program closes in France: the open French ones fail E3 in their stored checks (the queue
    and its "All checks pass" filter read them), with a history row saying why; the decided
    one and the German one keep theirs. Before, they kept "E3 passes" until opened. Opening
    France again passes them again."""
    french = [application(country="FR") for _ in range(2)]
    decided = application(country="FR")
    services.reject_application(
        decided, by=reviewer, reason="Not a startup", as_of=date(2026, 1, 21)
    )
    german = application(country="DE")

    def failing():
        rows = StartupApplication.objects.order_by("pk")
        return {app.pk: app.failing_checks for app in rows}

    before = failing()
    services.set_territory("FR", active=False, by=reviewer, reason="Sanctions")
    after = failing()
    for app in french:
        assert ("E3" in before[app.pk].split(), "E3" in after[app.pk].split()) == (False, True)
    assert (after[decided.pk], after[german.pk]) == (before[decided.pk], before[german.pk])
    assert french[0].history.first().history_change_reason == (
        "Checks evaluated again: program closed in France"
    )
    services.set_territory("FR", active=True, by=reviewer, reason="Lifted")
    assert failing() == before


def test_s6_two_deal_requests_one_fulfilled_one_declined_each_once(db, reviewer):
    """S6: an accepted startup (approved 2026-01-21) requests 2 partner deals on 2026-01-25;
    staff fulfil one and decline the other on 2026-01-26; both stay decided (2 requests,
    1 fulfilled, 1 declined), and a second decision on either is refused."""
    ws = paid_monthly(date(2026, 1, 1))
    app = services.approve_application(
        application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21)
    )
    mail = PartnerDeal.objects.create(company="MailCo", title="20% off", description="…")
    cloud = PartnerDeal.objects.create(company="CloudCo", title="$5,000 credits", description="…")
    first = services.request_deal(app, deal=mail, as_of=date(2026, 1, 25))
    second = services.request_deal(app, deal=cloud, as_of=date(2026, 1, 25))
    services.decide_deal_request(first, by=reviewer, fulfil=True, as_of=date(2026, 1, 26))
    services.decide_deal_request(
        second, by=reviewer, fulfil=False, as_of=date(2026, 1, 26), note="Quota used up"
    )
    rows = sorted(
        DealRequest.objects.values_list("deal__company", "status", "requested_on", "decided_on")
    )
    assert rows == [
        ("CloudCo", "declined", date(2026, 1, 25), date(2026, 1, 26)),
        ("MailCo", "fulfilled", date(2026, 1, 25), date(2026, 1, 26)),
    ]
    for request in (first, second):
        try:
            services.decide_deal_request(request, by=reviewer, fulfil=True, as_of=date(2026, 1, 27))
        except services.ApplicationError as refused:
            assert "already" in str(refused)
        else:
            raise AssertionError("a decided deal request was decided again")
    assert DealRequest.objects.filter(status="fulfilled").count() == 1


def test_s6_s4_no_deal_request_once_the_program_has_ended(db, reviewer):
    """S6, S4, CR1: only accepted startups request deals, and a startup is a member on the days
    a grant of the program is valid. Approved 2026-01-21, year one's grant runs to 2027-01-20
    (valid until 2027-01-21, exclusive): a request on 2027-01-20 is taken, one on 2027-01-21
    (no year two confirmed) is refused and writes nothing."""
    ws = paid_monthly(date(2026, 1, 1))
    app = services.approve_application(
        application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21)
    )
    mail = PartnerDeal.objects.create(company="MailCo", title="20% off", description="…")
    cloud = PartnerDeal.objects.create(company="CloudCo", title="$5,000 credits", description="…")
    services.request_deal(app, deal=mail, as_of=date(2027, 1, 20))
    try:
        services.request_deal(app, deal=cloud, as_of=date(2027, 1, 21))
    except services.ApplicationError as refused:
        assert str(refused) == (
            f"The startup program of {app.company_name} ended on 21 Jan 2027: only current "
            "members can request partner deals."
        )
    else:
        raise AssertionError("a startup whose program ended requested a deal")
    assert list(DealRequest.objects.values_list("deal__company", flat=True)) == ["MailCo"]
