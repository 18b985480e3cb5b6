"""G1, G2: a campaign's filters and coupon are checked by its service, so the admin, a command
and an import get the same refusal: a range of sign-up days that holds no day, days outside the
years billed, MTU bounds above what a month can report, an interval with the Free plan, a coupon
nobody could redeem. And a launch that would reach nobody is not offered, nor done for a draft."""

from datetime import date

import pytest
from django.urls import reverse

from coupons import services
from coupons.campaigns import create_campaign, launch_campaign, update_campaign
from coupons.errors import CouponError
from coupons.models import Campaign

from .factories import coupon, paid_monthly

JAN = date(2026, 1, 1)
TODAY = date(2026, 2, 2)


@pytest.fixture
def spring(db):
    return coupon(code="SPRING25", percent_off="25", redeem_by=date(2026, 3, 31))


def _create(promo, audience, as_of=TODAY):
    return create_campaign(
        "Spring", promo.code, "25% off", "Spring is here.", audience, as_of=as_of
    )


def _refused(promo, audience, as_of=TODAY) -> str:
    with pytest.raises(CouponError) as refused:
        _create(promo, audience, as_of=as_of)
    assert not Campaign.objects.exists()  # nothing half-written
    return str(refused.value)


def test_g1_a_sign_up_range_that_ends_before_it_starts_is_refused(db, spring):
    """Created after 2026-12-01 and before 2026-01-01: no workspace could match. Nor after
    2026-01-01 and before 2026-01-02 (no day lies strictly between); after 2026-01-01 and
    before 2026-01-03 holds 2 January."""
    message = _refused(spring, {"created_after": "2026-12-01", "created_before": "2026-01-01"})
    assert (
        "Created after 2026-12-01 and before 2026-01-01: no day lies between the two, so no "
        "workspace could match." in message
    )
    message = _refused(spring, {"created_after": date(2026, 1, 1), "created_before": "2026-01-02"})
    assert "no day lies between the two" in message
    campaign = _create(spring, {"created_after": "2026-01-01", "created_before": "2026-01-03"})
    assert campaign.audience == {"created_after": "2026-01-01", "created_before": "2026-01-03"}


def test_g1_i6_sign_up_days_outside_the_years_billed_are_refused(db, spring):
    """0001-01-01 and 9999-12-31 are refused as the coupon form refuses them (2000 to 2099),
    both named at once."""
    message = _refused(spring, {"created_after": "0001-01-01", "created_before": "9999-12-31"})
    assert (
        "The “created after” day 0001-01-01 is outside the years this system bills (2000 to "
        "2099)." in message
    )
    assert (
        "The “created before” day 9999-12-31 is outside the years this system bills (2000 to 2099)."
        in message
    )


def test_g1_i6_an_mtu_bound_above_what_a_month_can_report_is_refused(db, spring):
    """At least 99,999,999,999,999 MTUs: no month can report more than 10,000,000,000 (I6's
    bound on usage input), so such a bound is a typo. 10,000,000,000 itself is accepted."""
    message = _refused(spring, {"min_mtus": 99_999_999_999_999})
    assert (
        "The least MTUs must be at most 10,000,000,000 (the most a month can report), not "
        "99,999,999,999,999." in message
    )
    message = _refused(spring, {"max_mtus": "10000000001"})
    assert "The most MTUs must be at most 10,000,000,000" in message
    campaign = _create(spring, {"min_mtus": 10_000_000_000})
    assert campaign.audience == {"min_mtus": 10_000_000_000}


def test_g1_a_message_longer_than_an_email_s_is_refused(db, spring):
    """The campaign audit: a 200,000-character message was taken, to go to every recipient."""
    with pytest.raises(
        CouponError,
        match="The message is 200,000 characters long; an email's message is at most 10,000.",
    ):
        create_campaign("Spring", spring.code, "25% off", "x" * 200_000, {"plan": "team"})
    assert not Campaign.objects.exists()
    create_campaign("Spring", spring.code, "25% off", "x" * 10_000, {"plan": "team"})


def test_g1_an_interval_with_the_free_plan_is_refused(db, spring):
    """Plan Free with interval Annual: only Team is billed by an interval."""
    message = _refused(spring, {"plan": "free", "interval": "annual"})
    assert (
        "A Free workspace has no billing interval: choose the Team plan for the interval "
        "annual, or leave the interval empty." in message
    )
    assert _create(spring, {"plan": "team", "interval": "annual"}).audience["interval"] == "annual"


def test_g1_c2_a_campaign_for_a_coupon_nobody_could_redeem_is_refused(db, support, spring):
    """SPRING25 redeemable until 31 Mar 2026: a campaign made on 1 Apr 2026 is refused,
    naming the coupon and its last day; so is one for an inactive coupon, or one whose 1
    redemption allowed is taken. On 2 Feb 2026 SPRING25 is on offer."""
    message = _refused(spring, {}, as_of=date(2026, 4, 1))
    assert (
        "The coupon SPRING25 could be applied until 31 Mar 2026; it is past that date. A "
        "campaign cannot offer it: nobody it reaches could redeem it." in message
    )
    inactive = coupon(code="WINTER10", percent_off="10", active=False)
    assert "The coupon WINTER10 is inactive." in _refused(inactive, {})
    single = coupon(code="ONCE50", percent_off="50", max_redemptions=1)
    services.redeem_coupon(paid_monthly(as_of=JAN), single.code, by=support, as_of=JAN)
    assert "The coupon ONCE50 has reached its maximum of 1 redemption(s)." in _refused(single, {})
    assert _create(spring, {}).coupon == spring


def test_g1_c2_a_draft_cannot_be_changed_to_offer_a_coupon_nobody_could_redeem(db, support):
    """A draft for SPRING25 (on offer on 2 Feb 2026) changed to WINTER10 (redeemable until
    31 Jan 2026) on 2 Feb, or to the filters Free and Annual: refused, the draft and its
    history as they were."""
    spring = coupon(code="SPRING25", percent_off="25")
    winter = coupon(code="WINTER10", percent_off="10", redeem_by=date(2026, 1, 31))
    campaign = _create(spring, {"plan": "team"})
    versions = campaign.history.count()
    with pytest.raises(CouponError, match="could be applied until 31 Jan 2026"):
        update_campaign(campaign, by=support, reason="Winter", coupon_code=winter.code, as_of=TODAY)
    with pytest.raises(CouponError, match="A Free workspace has no billing interval"):
        update_campaign(
            campaign,
            by=support,
            reason="Free",
            audience={"plan": "free", "interval": "annual"},
            as_of=TODAY,
        )
    campaign.refresh_from_db()
    assert (campaign.coupon, campaign.audience) == (spring, {"plan": "team"})
    assert campaign.history.count() == versions


def test_g1_g2_a_first_launch_that_reaches_nobody_is_refused_and_the_draft_stays(
    db, support, spring, django_capture_on_commit_callbacks
):
    """A campaign for Team workspaces when the only one has taken a discount already (C2
    refuses it): launching reaches 0 workspaces, so it is refused, saying why, and the draft
    stays a draft (still editable) with no recipient."""
    taken = paid_monthly(as_of=JAN, name="Taken")
    services.redeem_coupon(taken, coupon(amount_off="5.00").code, by=support, as_of=JAN)
    campaign = _create(spring, {"plan": "team"})
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(CouponError) as refused,
    ):
        launch_campaign(campaign, by=support, as_of=TODAY)
    assert str(refused.value) == (
        "Launching the campaign Spring on 2 Feb 2026 would email nobody: no workspace in its "
        "audience can take the coupon (left out: a discount is already active: 1). Change the "
        "filters or the coupon first: a launched campaign cannot change."
    )
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launches, campaign.recipients.count()) == ("draft", 0, 0)


@pytest.fixture
def admin_today(pin_today):
    return pin_today(TODAY)


def test_g1_the_add_page_shows_the_services_refusals_and_saves_nothing(
    client, support, admin_today
):
    """The tester's campaign on /admin/coupons/campaign/add/ on 2 Feb 2026: created after
    2026-12-01 and before 2026-01-01, at least 99,999,999,999,999 MTUs, Free and Annual. The
    page comes back with every problem named; no campaign is saved. SPRING25, past its last
    day (31 Jan 2026), is not offered (walk 9); sent anyway, it is not a valid choice."""
    spring = coupon(code="SPRING25", percent_off="25", redeem_by=date(2026, 3, 31))
    winter = coupon(code="WINTER10", percent_off="10", redeem_by=date(2026, 1, 31))
    client.force_login(support)
    response = client.post(
        reverse("admin:coupons_campaign_add"),
        {
            "name": "Spring",
            "coupon": spring.pk,
            "subject": "25% off",
            "message": "Spring is here.",
            "plan": "free",
            "interval": "annual",
            "created_after": "2026-12-01",
            "created_before": "2026-01-01",
            "min_mtus": "99999999999999",
        },
    )
    assert response.status_code == 200
    body = response.content.decode()
    for problem in (
        "A Free workspace has no billing interval",
        "no day lies between the two",
        "The least MTUs must be at most 10,000,000,000",
    ):
        assert problem in body
    crafted = client.post(
        reverse("admin:coupons_campaign_add"),
        {"name": "Winter", "coupon": winter.pk, "subject": "10% off", "message": "Brr."},
    )
    assert "Select a valid choice" in crafted.content.decode()
    assert not Campaign.objects.exists()


def test_g1_g2_the_launch_page_offers_no_launch_that_would_email_nobody(
    client, support, spring, admin_today, django_capture_on_commit_callbacks
):
    """A draft whose audience holds no workspace on 2 Feb 2026: the launch page says nobody
    would be emailed and offers no button; a POST launches nothing. Once launched to its 1
    workspace, with nobody new and nobody waiting, the page offers no "Launch again" either;
    a newcomer brings the button back."""
    campaign = _create(spring, {"plan": "team"})
    client.force_login(support)
    launch = reverse("admin:coupons_campaign_launch", args=[campaign.pk])
    page = client.get(launch).content.decode()
    assert "Nobody would be emailed: no workspace matches its filters." in page
    assert 'value="Launch campaign"' not in page
    assert "will be emailed now" not in page  # "0 workspace(s) will be emailed now" was
    assert client.post(launch).status_code == 200
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launches) == ("draft", 0)

    paid_monthly(as_of=JAN, name="First")
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=TODAY)
    page = client.get(launch).content.decode()
    assert "Nobody new would be emailed: the 1 workspace(s) reached before were handed" in page
    assert 'value="Launch again"' not in page

    paid_monthly(as_of=JAN, name="Newcomer")
    page = client.get(launch).content.decode()
    assert 'value="Launch again"' in page
