"""G1–G3: promotion campaigns. An audience over workspaces, its reach and the refusals by reason
before launch (C2's own checks, as a dry run); one email per workspace per campaign however
often it is launched or a batch retried; redemptions attributed to the campaign."""

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.db import connection
from django.db.models import Max, Min
from django.test.utils import CaptureQueriesContext
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing import services as billing
from billing.models import OutboundEmail, Workspace
from coupons import campaigns, services
from coupons.campaigns import (
    audience_workspaces,
    campaign_audience,
    campaign_progress,
    campaign_results,
    create_campaign,
    launch_campaign,
    notify_batch,
)
from coupons.errors import CouponError, CouponRefused
from coupons.models import Campaign, CampaignRecipient, Redemption

from .factories import coupon, free_workspace, paid_annual, paid_monthly

JAN = date(2026, 1, 1)
LAUNCH = date(2026, 2, 2)
GERMANY = {"business_country": "DE", "business_region": ""}


@pytest.fixture
def spring(db):
    return coupon(
        code="SPRING25", percent_off="25", duration="repeating", duration_months=3,
        intervals=("monthly",),
    )  # fmt: skip


def campaign_for(promo, audience, by=None):
    """A draft campaign; each has a name of its own (G1), a test's first "Spring 2026"."""
    n = Campaign.objects.count() + 1
    return create_campaign(
        "Spring 2026" if n == 1 else f"Spring 2026 ({n})",
        promo.code,
        "25% off Team for three months",
        "Spring is here.",
        audience,
        by=by,
    )


def test_g1_a_campaign_names_a_promotion_coupon_and_valid_filters(db, support, spring):
    with pytest.raises(CouponError) as refused:
        create_campaign(
            "", "NONPROFIT", "", "", {"plan": "gold", "min_mtus": "-3", "colour": "red"}, by=support
        )
    message = str(refused.value)
    for problem in (
        "The campaign needs a name.",
        "The email needs a subject.",
        "NONPROFIT is a non-profit coupon: a campaign announces a promotion coupon.",
        "Unknown audience filters: colour.",
        "“gold” is not a plan",
        "The least MTUs must be a whole number",
    ):
        assert problem in message
    campaign = campaign_for(spring, {"plan": "team", "country": "de", "startup_member": False})
    assert campaign.audience == {"plan": "team", "country": "DE", "startup_member": False}
    assert (campaign.status, campaign.coupon) == ("draft", spring)


def test_g1_reach_leaves_out_who_the_coupon_would_refuse_counted_by_reason(db, support, spring):
    reached = paid_monthly(as_of=JAN, name="Reached", **GERMANY)
    discounted = paid_monthly(as_of=JAN, name="Discounted", **GERMANY)
    services.redeem_coupon(discounted, coupon(percent_off="10", duration="forever").code,
                           by=support, as_of=JAN)  # fmt: skip
    received = paid_monthly(as_of=JAN, name="Received", **GERMANY)
    services.redeem_coupon(received, spring.code, by=support, as_of=JAN)
    services.remove_discount(received, by=support, reason="Ended early", as_of=JAN)
    paid_annual(as_of=JAN, name="Annual", **GERMANY)  # SPRING25 covers monthly bills only
    closed = paid_monthly(as_of=JAN, name="Closed", **GERMANY)
    billing.close_workspace(closed, by=support, reason="Deleted", as_of=date(2026, 1, 20))
    paid_monthly(as_of=JAN, name="French", business_country="FR", business_region="")
    free = free_workspace(as_of=JAN, name="Free", **GERMANY)  # not on Team: nothing to refuse

    campaign = campaign_for(spring, {"country": "DE"})
    ids, refusals = campaign_audience(campaign, LAUNCH)
    assert ids == [reached.pk, free.pk]
    assert refusals == {
        "discount_active": 1,
        "already_received": 1,
        "interval_not_covered": 1,
        "workspace_closed": 1,
    }
    preview = campaigns.audience_preview(campaign, as_of=LAUNCH)
    assert (preview["reach"], preview["refused"], [w.name for w in preview["sample"]]) == (
        2,
        4,
        ["Free", "Reached"],
    )
    assert ("a discount is already active", 1) in preview["refusals"]


def test_g1_a_coupon_that_refuses_everyone_says_why_once_for_all(db, spring):
    """A draft for SPRING25, which is made inactive afterwards (a new campaign for it is
    refused: `test_campaign_bounds`): its 3 Team workspaces are left out as "inactive"."""
    for _ in range(3):
        paid_monthly(as_of=JAN)
    campaign = campaign_for(spring, {"plan": "team"})
    services.update_coupon(spring, by=None, as_of=JAN, active=False)
    ids, refusals = campaign_audience(campaign, LAUNCH)
    assert (ids, refusals) == ([], {"inactive": 3})


def test_g1_filters_read_the_workspaces_as_they_stood(db, support):
    early = free_workspace(as_of=JAN, name="Early")
    late = free_workspace(as_of=date(2026, 1, 20), name="Late")
    heavy = free_workspace(as_of=JAN, name="Heavy")
    member = paid_monthly(as_of=JAN, name="Member")
    services.grant_credits(member, amount="100.00", as_of=JAN, year=1, by=support)
    billing.record_usage(heavy, month=JAN, mtus=5_000)
    billing.record_usage(early, month=JAN, mtus=800)
    billing.run_billing(as_of=date(2026, 2, 1))  # January closes: Heavy gets a strike, locked

    def names(**audience):
        return set(audience_workspaces(audience, as_of=LAUNCH).values_list("name", flat=True))

    assert names(plan="free") == {"Early", "Late", "Heavy"}
    assert names(plan="team", interval="monthly") == {"Member"}
    assert names(lock="locked") == {"Heavy"}
    assert names(lock="unlocked") == {"Early", "Late", "Member"}
    assert names(startup_member=True) == {"Member"}
    assert names(created_after="2026-01-01") == {"Late"}
    assert names(created_before="2026-01-20") == {"Early", "Heavy", "Member"}
    # January is the last closed month: Heavy reported 5,000, Early 800, the others none (0).
    assert names(min_mtus=1_000) == {"Heavy"}
    assert names(min_mtus=1, max_mtus=1_000) == {"Early"}
    assert names(max_mtus=0) == {"Late", "Member"}
    assert late.pk and heavy.pk


def test_g2_one_email_per_workspace_however_often_launched_or_retried(
    db, support, spring, django_capture_on_commit_callbacks
):
    spaces = [paid_monthly(as_of=JAN) for _ in range(3)]
    campaign = campaign_for(spring, {"plan": "team"}, by=support)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=LAUNCH) == 3
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=LAUNCH) == 0
    bounds = CampaignRecipient.objects.aggregate(first=Min("pk"), last=Max("pk"))
    first, last = bounds["first"], bounds["last"]
    with django_capture_on_commit_callbacks(execute=True):
        assert notify_batch(campaign.pk, first_id=first, last_id=last) == 0  # a retried batch
    assert sorted(m.to[0] for m in mail.outbox) == sorted(ws.billing_email for ws in spaces)
    assert {m.subject for m in mail.outbox} == {"25% off Team for three months"}
    assert "SPRING25" in mail.outbox[0].body and "Spring is here." in mail.outbox[0].body
    assert OutboundEmail.objects.filter(kind="campaign", status="sent").count() == 3
    progress = campaign_progress(campaign)
    assert (progress["reached"], progress["sent"], progress["waiting"]) == (3, 3, 0)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launched_on, campaign.launches) == ("launched", LAUNCH, 2)

    newcomer = paid_monthly(as_of=LAUNCH)
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=LAUNCH + timedelta(days=1)) == 1
    assert [m.to[0] for m in mail.outbox].count(newcomer.billing_email) == 1
    assert len(mail.outbox) == 4


def test_g2_batches_lost_with_the_broker_are_handed_on_by_the_next_launch(
    db, spring, monkeypatch, django_capture_on_commit_callbacks
):
    for _ in range(4):
        paid_monthly(as_of=JAN)
    campaign = campaign_for(spring, {"plan": "team"})
    monkeypatch.setattr(campaigns, "CAMPAIGN_BATCH", 3)
    from coupons import tasks

    def down(*args):
        raise BrokerUnavailable("redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.send_campaign_batch, "delay", down)
        with django_capture_on_commit_callbacks(execute=True):
            launch_campaign(campaign, as_of=LAUNCH)
    assert campaign_progress(campaign)["waiting"] == 4
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, as_of=LAUNCH) == 0
    progress = campaign_progress(campaign)
    assert (progress["waiting"], progress["sent"], progress["percent_sent"]) == (0, 4, 100)


def test_g2_w1_a_batch_handed_on_after_a_closure_leaves_the_closed_workspace_out(
    db, spring, support, monkeypatch, django_capture_on_commit_callbacks
):
    """The launch's batch is lost with the broker; one customer then asks to delete its
    workspace (W1). The next launch hands the batch on: the closed workspace was emailed the
    promotion; it is no longer reached."""
    from coupons import tasks

    keep, gone = paid_monthly(as_of=JAN, name="Keep"), paid_monthly(as_of=JAN, name="Gone")
    campaign = campaign_for(spring, {"plan": "team"})

    def down(*args):
        raise BrokerUnavailable("redis is down")

    with monkeypatch.context() as patch:
        patch.setattr(tasks.send_campaign_batch, "delay", down)
        with django_capture_on_commit_callbacks(execute=True):
            assert launch_campaign(campaign, by=support, as_of=LAUNCH) == 2
    billing.close_workspace(gone, by=support, reason="Asked to delete it", as_of=date(2026, 2, 3))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=date(2026, 2, 4))
    assert [m.to for m in mail.outbox if m.subject == campaign.subject] == [[keep.billing_email]]
    assert list(campaign.recipients.values_list("workspace", flat=True)) == [keep.pk]
    progress = campaign_progress(campaign)
    assert (progress["reached"], progress["waiting"], progress["sent"]) == (1, 0, 1)


def _workspaces_created_on(day, count):
    return [free_workspace(as_of=day) for _ in range(count)]


def _launch_queries(count, day, on_commit):
    """Queries of a launch and of its batch for `count` workspaces created on `day`."""
    _workspaces_created_on(day, count)
    promo = coupon(percent_off="10")
    campaign = campaign_for(promo, {"created_after": (day - timedelta(days=1)).isoformat()})
    ranges = []
    with on_commit(execute=True), CaptureQueriesContext(connection) as launch:
        launch_campaign(campaign, as_of=day, dispatch=lambda _, r: ranges.extend(r))
    assert len(ranges) == 1
    with CaptureQueriesContext(connection) as batch:
        assert notify_batch(campaign.pk, first_id=ranges[0][0], last_id=ranges[0][1]) == count
    assert campaign.recipients.exclude(email=None).count() == count
    return len(launch.captured_queries), len(batch.captured_queries)


def test_g2_a_launch_and_a_batch_cost_the_same_queries_for_5_or_50_workspaces(
    db, django_capture_on_commit_callbacks
):
    small = _launch_queries(5, date(2026, 1, 10), django_capture_on_commit_callbacks)
    large = _launch_queries(50, date(2026, 1, 20), django_capture_on_commit_callbacks)
    assert small == large
    assert small[1] <= 12


def test_g3_a_redemption_for_a_notified_workspace_is_attributed_to_the_campaign(
    db, support, spring, django_capture_on_commit_callbacks
):
    notified = paid_monthly(as_of=JAN, name="Notified")
    campaign = campaign_for(spring, {"plan": "team"})
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=LAUNCH)
    stranger = paid_monthly(as_of=LAUNCH, name="Stranger")  # joined after the launch
    services.redeem_coupon(notified, spring.code, by=support, as_of=date(2026, 2, 3))
    services.redeem_coupon(stranger, spring.code, by=support, as_of=date(2026, 2, 3))
    assert Redemption.objects.get(workspace=notified).campaign == campaign
    assert Redemption.objects.get(workspace=stranger).campaign is None

    billing.run_billing(as_of=date(2026, 4, 1))
    results = campaign_results(campaign)
    # February and March: 25 % of 120.00 = 30.00 each (the stranger's are not counted).
    assert (results["notified"], results["redeemed"], results["discount"]) == (1, 1, D("60.00"))
    assert [(p["month"], p["discount"]) for p in results["series"]] == [
        (date(2026, 2, 1), D("0.00")),  # redeemed in February, billed from March 1
        (date(2026, 3, 1), D("30.00")),
        (date(2026, 4, 1), D("30.00")),
    ]
    assert Workspace.objects.count() == 2


def test_g3_only_an_email_that_went_notifies_and_a_voided_invoice_gave_no_discount(
    db, support, finance, spring, django_capture_on_commit_callbacks
):
    reached = paid_monthly(as_of=JAN, name="Reached")
    bounced = paid_monthly(as_of=JAN, name="Bounced")
    campaign = campaign_for(spring, {"plan": "team"})
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=LAUNCH)
    # The mail server refused one address for good: that workspace never heard of it.
    OutboundEmail.objects.filter(
        pk=CampaignRecipient.objects.get(workspace=bounced).email_id
    ).update(status=OutboundEmail.Status.FAILED, last_error="550 mailbox unavailable")
    for ws in (reached, bounced):
        services.redeem_coupon(ws, spring.code, by=support, as_of=date(2026, 2, 3))
    assert Redemption.objects.get(workspace=reached).campaign == campaign
    assert Redemption.objects.get(workspace=bounced).campaign is None
    billing.run_billing(as_of=date(2026, 4, 1))
    results = campaign_results(campaign)
    # March and April: 25 % of 120.00 = 30.00 each, for the workspace the email reached.
    assert (results["notified"], results["redeemed"], results["discount"]) == (1, 1, D("60.00"))
    march = reached.invoices.get(issue_date=date(2026, 3, 1))
    billing.void_invoice(march, by=finance, reason="Billed in error", as_of=date(2026, 4, 2))
    results = campaign_results(campaign)
    assert results["discount"] == D("30.00")
    assert [(p["month"], p["discount"]) for p in results["series"]][-1] == (
        date(2026, 4, 1),
        D("30.00"),
    )


def test_g1_a_draft_campaign_changes_through_its_service_with_a_reason(db, support, spring):
    campaign = campaign_for(spring, {"plan": "team"}, by=support)
    summer = coupon(code="SUMMER10", percent_off="10")
    with pytest.raises(CouponError, match="Say why the campaign changes"):
        campaigns.update_campaign(campaign, by=support, reason=" ", name="Summer")
    with pytest.raises(CouponError) as refused:
        campaigns.update_campaign(
            campaign,
            by=support,
            reason="Ticket 12",
            name="",
            coupon_code="NONPROFIT",
            audience={"plan": "gold"},
        )
    for problem in (
        "The campaign needs a name.",
        "NONPROFIT is a non-profit coupon: a campaign announces a promotion coupon.",
        "“gold” is not a plan",
    ):
        assert problem in str(refused.value)

    campaigns.update_campaign(
        campaign,
        by=support,
        reason="Ticket 12: summer instead",
        name=" Summer 2026 ",
        coupon_code=summer,
        message="Summer is here.",
        audience={"plan": "team", "country": "fr"},
    )
    campaign.refresh_from_db()
    assert (campaign.name, campaign.coupon, campaign.message, campaign.audience) == (
        "Summer 2026",
        summer,
        "Summer is here.",
        {"plan": "team", "country": "FR"},
    )
    assert campaign.subject == "25% off Team for three months"  # not given: kept
    last = campaign.history.first()
    assert last.history_change_reason == (
        "Changed audience, coupon, message, name: Ticket 12: summer instead"
    )
    assert last.history_user == support


def test_g1_g2_a_launched_campaign_cannot_change(
    db, support, spring, django_capture_on_commit_callbacks
):
    paid_monthly(as_of=JAN)
    campaign = campaign_for(spring, {"plan": "team"}, by=support)
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=LAUNCH)
    with pytest.raises(CouponError) as refused:
        campaigns.update_campaign(campaign, by=support, reason="Typo", subject="50% off")
    assert str(refused.value) == (
        "Spring 2026 was launched on 2 Feb 2026: a launched campaign cannot change (its emails "
        "went out as they were). Create a new campaign instead."
    )
    campaign.refresh_from_db()
    assert campaign.subject == "25% off Team for three months"


def _preview(campaign, now):
    with CaptureQueriesContext(connection) as queries:
        preview = campaigns.cached_audience_preview(campaign, as_of=LAUNCH, now=now)
    return preview, len(queries.captured_queries)


def test_g1_the_audience_preview_is_cached_until_its_filters_or_the_data_change(
    db, support, spring
):
    """The page's preview costs one query once computed, whatever the base's size; a change of
    the filters or of the workspaces gives a new key, so it is never stale."""
    first_seen, later = (
        datetime(2026, 2, 2, 9, 0, tzinfo=UTC),
        datetime(2026, 2, 2, 9, 3, tzinfo=UTC),
    )
    for _ in range(3):
        paid_monthly(as_of=JAN, **GERMANY)
    campaign = campaign_for(spring, {"plan": "team"}, by=support)
    computed, computing = _preview(campaign, first_seen)
    assert (computed["reach"], computed["computed_at"]) == (3, first_seen)
    cached, reading = _preview(campaign, later)
    assert (cached["reach"], cached["computed_at"], reading) == (3, first_seen, 1)
    assert computing > reading

    for _ in range(12):  # the data changes: new workspaces join the audience
        paid_monthly(as_of=JAN, **GERMANY)
    grown, _ = _preview(campaign, later)
    assert (grown["reach"], grown["computed_at"]) == (15, later)
    assert _preview(campaign, later)[1] == 1  # 15 workspaces or 3: one query

    campaigns.update_campaign(
        campaign, by=support, reason="Free workspaces instead", audience={"plan": "free"}
    )
    campaign.refresh_from_db()
    narrowed, _ = _preview(campaign, later)
    assert (narrowed["reach"], narrowed["computed_at"]) == (0, later)
    assert [w.name for w in grown["sample"]] == sorted(w.name for w in grown["sample"])


def test_g1_c2_c5_on_the_1st_the_preview_refuses_as_redeem_does_and_writes_nothing(
    db, support, spring
):
    """A 50 % coupon for one month, redeemed on 5 January, runs out on 1 February and gives way
    to a 10 % forever follow-up (C5), which the clock writes when it processes the 1st. On the
    1st, `redeem_coupon` writes it first and refuses SPRING25 (one discount at a time): the
    preview counted the workspace as reached, and the launch emailed it."""
    ws = paid_monthly(as_of=JAN)
    follow = coupon(code="LOYAL10", percent_off="10", duration="forever")
    starter = coupon(
        code="HALF1", percent_off="50", duration="repeating", duration_months=1, follow_up=follow
    )
    services.redeem_coupon(ws, starter.code, by=support, as_of=date(2026, 1, 5))
    billing.run_billing(as_of=date(2026, 1, 31))  # the nightly run of the 1st, for the 31st
    campaign = campaign_for(spring, {"plan": "team"})
    feb_1 = date(2026, 2, 1)
    assert campaign_audience(campaign, feb_1) == ([], {CouponRefused.DISCOUNT_ACTIVE: 1})
    assert not Redemption.objects.filter(coupon=follow).exists()  # the preview wrote nothing
    # G2: a draft's launch that would email nobody is refused, and the draft stays mendable.
    with pytest.raises(CouponError, match="would email nobody"):
        launch_campaign(campaign, by=support, as_of=feb_1)
    campaign.refresh_from_db()
    assert (campaign.status, campaign.recipients.count()) == ("draft", 0)
    with pytest.raises(CouponRefused) as refused:
        services.redeem_coupon(ws, spring.code, by=support, as_of=feb_1)
    assert refused.value.reason == CouponRefused.DISCOUNT_ACTIVE


def test_g1_c2_the_cached_preview_moves_when_an_invoice_is_issued_or_voided(db, support, finance):
    """A workspace cancelled on 2 February has its final invoice dated that day, so a coupon
    dated that day is refused ("an invoice dated today or later was issued already"). Once
    finance voids that invoice the coupon would be accepted, but the cached preview kept the
    refusal: its key read no invoice."""
    from billing.models import Invoice

    launch = date(2026, 2, 2)
    ws = paid_monthly(as_of=date(2026, 1, 1))
    billing.run_billing(as_of=date(2026, 2, 1))
    promo = coupon(percent_off="25", duration="once", intervals=("monthly",))
    campaign = campaigns.create_campaign("Spring", promo.code, "25% off", "Hello", {}, by=support)
    at = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)
    before = campaigns.cached_audience_preview(campaign, as_of=launch, now=at)
    assert (before["reach"], before["refused"]) == (1, 0)

    billing.change_to_free(ws, as_of=launch, by=support, reason="Customer asked")
    issued = campaigns.cached_audience_preview(campaign, as_of=launch, now=at)
    assert (issued["reach"], issued["refused"]) == (0, 1)
    assert issued["refusals"] == [("an invoice dated today or later was issued already", 1)]

    final = Invoice.objects.get(workspace=ws, kind="final", issue_date=launch)
    billing.void_invoice(final, by=finance, reason="Issued in error", as_of=launch)
    voided = campaigns.cached_audience_preview(campaign, as_of=launch, now=at)
    assert (voided["reach"], voided["refused"]) == (1, 0)


def test_g1_c2_the_audience_check_sees_a_trial_end_the_clock_has_not_applied(db, support):
    """A monthly Team trial without a card from 20 January ends on 3 February (back to Free).
    With the clock at 1 February, a campaign for an annual-only promotion on the 10th counted
    the workspace as "on a Team interval the coupon does not cover", where redeem_coupon
    (which applies the trial's end first) accepts it. Nothing of the catch-up stays."""
    from billing.models import Subscription
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 20), plan="team", card=False)
    billing.run_billing(as_of=date(2026, 2, 1))
    promo = coupon(percent_off="10", duration="once", intervals=("annual",))
    campaign = campaigns.create_campaign("Annual", promo.code, "10% off", "Hi", {}, by=support)

    assert campaign_audience(campaign, date(2026, 2, 10)) == ([ws.pk], {})
    trial = Subscription.objects.get(workspace=ws, ended_on=None)
    assert (trial.plan.code, trial.trial_outcome) == ("team", "running")  # still as stored


def test_g1_k2_k4_on_an_annual_terms_end_date_the_audience_reads_it_as_redeem_does(db):
    """Three annual terms from 10 January 2026, ending 10 January 2027; the clock has run
    through the 9th. On 1 June `monthly` asked to go monthly at the term's end (K4) and
    `leaving` cancelled (K2). On the 10th `monthly` is on monthly Team and `leaving` on Free,
    as `redeem_coupon` reads them (`team_on`). The audience read the stored rows (annual Team):
    a monthly campaign left `monthly` out and an annual one reached it, to be refused by the
    coupon; a Team campaign reached `leaving` and a Free one left it out."""
    monthly, leaving, staying = (
        paid_annual(date(2026, 1, 10), name=name) for name in ("Monthly", "Leaving", "Staying")
    )
    billing.change_interval(monthly, interval="monthly", as_of=date(2026, 6, 1))
    billing.change_to_free(leaving, as_of=date(2026, 6, 1))
    billing.run_billing(as_of=date(2027, 1, 9))
    promo = coupon(percent_off="10", duration="once")

    def reached(audience):
        return campaign_audience(campaign_for(promo, audience), date(2027, 1, 10))

    assert reached({"interval": "monthly"}) == ([monthly.pk], {})
    assert reached({"interval": "annual"}) == ([staying.pk], {})
    assert reached({"plan": "team"}) == ([monthly.pk, staying.pk], {})
    assert reached({"plan": "free"}) == ([leaving.pk], {})
    running = [ws.subscriptions.get(ended_on=None) for ws in (monthly, leaving)]
    assert [(sub.plan.code, sub.interval) for sub in running] == [("team", "annual")] * 2


def _what_redeem_says(ws, promo, as_of, support):
    """The refusal reason `redeem_coupon` gives the workspace on `as_of` (None: accepted),
    nothing kept. A closed workspace is refused before any coupon rule (W1)."""
    from django.db import transaction

    from billing.errors import BillingError

    with transaction.atomic():
        try:
            services.redeem_coupon(ws, promo.code, by=support, as_of=as_of)
        except CouponRefused as refused:
            return refused.reason
        except BillingError:
            assert ws.closed_on is not None
            return campaigns.WORKSPACE_CLOSED
        finally:
            transaction.set_rollback(True)
    return None


def test_g1_g2_the_preview_counts_what_redeem_decides_and_the_launch_reaches_as_many(
    db, support, spring, django_capture_on_commit_callbacks
):
    """G1: the preview judges the whole audience at once (in SQL); each workspace's verdict is
    the one `redeem_coupon` gives it, refusal by refusal, and the launch then reaches exactly
    the workspaces the preview counted (G2). On 10 February, the clock at 1 February."""
    from tests.billing.factories import move_business, workspace

    reached = paid_monthly(as_of=JAN, name="Reached")
    free = free_workspace(as_of=JAN, name="Free")
    discounted = paid_monthly(as_of=JAN, name="Discounted")
    forever = coupon(percent_off="10", duration="forever")
    services.redeem_coupon(discounted, forever.code, by=support, as_of=JAN)
    received = paid_monthly(as_of=JAN, name="Received")
    services.redeem_coupon(received, spring.code, by=support, as_of=JAN)
    services.remove_discount(received, by=support, reason="Ended early", as_of=JAN)
    paid_annual(as_of=JAN, name="Annual")  # SPRING25 covers monthly bills only
    closed = paid_monthly(as_of=JAN, name="Closed")
    billing.close_workspace(closed, by=support, reason="Deleted", as_of=date(2026, 1, 20))
    # A trial without a card from 20 January ends on 3 February, back to Free: the clock owes
    # it, redeem_coupon applies it first (judged after the same catch-up).
    trial = workspace(as_of=date(2026, 1, 20), plan="team", name="Trial")
    invoiced = paid_monthly(as_of=JAN, name="Invoiced")
    ahead = free_workspace(as_of=JAN, name="Ahead")
    billing.run_billing(as_of=date(2026, 2, 1))
    day = date(2026, 2, 10)
    billing.change_to_free(invoiced, as_of=day, by=support, reason="Asked")  # final invoice
    move_business(ahead, "CA", by=support, as_of=date(2026, 2, 20))  # a change dated later
    campaign = campaign_for(spring, {})

    preview = campaigns.audience_preview(campaign, as_of=day)
    ids, refusals = campaign_audience(campaign, day)
    verdicts = {
        ws.pk: _what_redeem_says(ws, spring, day, support)
        for ws in audience_workspaces({}, as_of=day)
    }
    assert refusals == {
        "discount_active": 1,
        "already_received": 1,
        "interval_not_covered": 1,
        "workspace_closed": 1,
        "invoiced_already": 1,
        "out_of_date_order": 1,
    }
    assert dict(Counter(v for v in verdicts.values() if v)) == refusals
    assert ids == sorted(pk for pk, verdict in verdicts.items() if verdict is None)
    assert sorted(ids) == sorted([reached.pk, free.pk, trial.pk])
    assert (preview["reach"], preview["new"], preview["refused"]) == (3, 3, 6)
    assert [w.name for w in preview["sample"]] == ["Free", "Reached", "Trial"]

    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=day) == preview["new"]
    assert sorted(campaign.recipients.values_list("workspace_id", flat=True)) == ids
    assert sorted(m.to[0] for m in mail.outbox if m.subject == campaign.subject) == sorted(
        Workspace.objects.filter(pk__in=ids).values_list("billing_email", flat=True)
    )
    again = campaigns.audience_preview(campaign, as_of=day)
    assert (again["reach"], again["new"], again["sample"]) == (3, 0, [])


# --- D4: the audience of a lagging clock, judged as the clock would leave it ------------------

TRIAL_END = date(2026, 1, 15)


def _trial_without_card(name):
    """A Team trial from 1 January without a card: it ends on the 15th, back to Free (T4)."""
    from tests.billing.factories import workspace

    ws = workspace(as_of=JAN, plan="team", card=False, name=name)
    assert ws.subscriptions.get().trial_end == TRIAL_END
    return ws


def _launched(campaign, support, day, capture):
    with capture(execute=True):
        launch_campaign(campaign, by=support, as_of=day)
    return sorted(campaign.recipients.values_list("workspace_id", flat=True))


def test_d4_g1_g2_a_trial_that_ended_unprocessed_is_not_in_a_team_campaign(
    db, support, spring, django_capture_on_commit_callbacks
):
    """D4, G1, G2: a trial without a card ended on 15 January (Free from then, T4); the clock
    has run through the 14th. A campaign for Team workspaces on the 16th read "on Team" from
    the stale rows: preview and launch counted the workspace (2 reached), where the clock run
    through the 15th first leaves it out (1). Preview, launch and catch-up-then-launch now
    reach the paying workspace only, and nothing of the catch-up stays."""
    paying = paid_monthly(as_of=JAN, name="Paying")
    trial = _trial_without_card("Trial")
    billing.run_billing(as_of=date(2026, 1, 14))
    day = date(2026, 1, 16)
    campaign = campaign_for(spring, {"plan": "team"})

    assert campaign_audience(campaign, day) == ([paying.pk], {})
    preview = campaigns.audience_preview(campaign, as_of=day)
    assert (preview["reach"], [w.name for w in preview["sample"]]) == (1, ["Paying"])
    assert _launched(campaign, support, day, django_capture_on_commit_callbacks) == [paying.pk]
    running = trial.subscriptions.get(ended_on=None)
    assert (running.plan.code, running.trial_outcome) == ("team", "running")  # as stored

    billing.run_billing(as_of=TRIAL_END)
    caught_up = campaign_for(spring, {"plan": "team"})
    assert campaign_audience(caught_up, day) == ([paying.pk], {})
    assert _launched(caught_up, support, day, django_capture_on_commit_callbacks) == [paying.pk]


def test_d4_g1_g2_a_trial_that_ended_unprocessed_is_in_a_free_campaign(
    db, support, spring, django_capture_on_commit_callbacks
):
    """D4, G1, G2, the reverse: the same trial, ended on 15 January with the clock through the
    14th, is Free on the 16th. A campaign for Free workspaces left it out (1 reached, read as
    Team from the stale rows) where the clock run through the 15th first puts it in (2)."""
    free = free_workspace(as_of=JAN, name="Free")
    trial = _trial_without_card("Trial")
    billing.run_billing(as_of=date(2026, 1, 14))
    day = date(2026, 1, 16)
    both = sorted([free.pk, trial.pk])
    campaign = campaign_for(spring, {"plan": "free"})

    assert campaign_audience(campaign, day) == (both, {})
    preview = campaigns.audience_preview(campaign, as_of=day)
    assert (preview["reach"], preview["new"]) == (2, 2)
    assert [w.name for w in preview["sample"]] == ["Free", "Trial"]
    assert _launched(campaign, support, day, django_capture_on_commit_callbacks) == both

    billing.run_billing(as_of=TRIAL_END)
    caught_up = campaign_for(spring, {"plan": "free"})
    assert _launched(caught_up, support, day, django_capture_on_commit_callbacks) == both


def test_d4_g1_f7_a_lock_put_back_by_a_trial_the_clock_has_not_ended_counts(db, spring):
    """D4, G1, F7: a Free workspace over its limit in January and February has its data
    stopped by the close on 1 March; moving to Team on 2 March lifts the lock (F4) and the
    trial, its card removed on the 5th, ends on the 16th and puts it back (F7). With the clock
    through the 15th, a campaign for data-stopped workspaces on the 17th read the lock as
    lifted and left the workspace out (0 reached); the clock run through the 16th first puts
    it in (1)."""
    from tests.billing.factories import workspace

    ws = workspace(as_of=JAN, card=True, name="Stopped")
    for month in (1, 2):
        billing.record_usage(ws, month=date(2026, month, 1), mtus=3_000)
    billing.run_billing(as_of=date(2026, 3, 1))
    billing.change_to_team(ws, as_of=date(2026, 3, 2))
    billing.remove_payment_method(ws, as_of=date(2026, 3, 5))
    assert ws.subscriptions.get(ended_on=None).trial_end == date(2026, 3, 16)
    billing.run_billing(as_of=date(2026, 3, 15))
    ws.refresh_from_db()
    assert ws.lock == "unlocked"
    day = date(2026, 3, 17)
    audience = {"lock": "locked_data_stopped"}

    assert campaign_audience(campaign_for(spring, audience), day) == ([ws.pk], {})
    ws.refresh_from_db()
    assert ws.lock == "unlocked"  # the catch-up was rolled back
    billing.run_billing(as_of=date(2026, 3, 16))
    assert campaign_audience(campaign_for(spring, audience), day) == ([ws.pk], {})


# --- D2, D4: where redeem_coupon refuses because of the clock, so do preview and launch ---------


def _refused_alike(campaign, support, day, error):
    """Preview (cached or not), the audience and the launch each refuse with `error`; the
    campaign stays a draft that reached nobody. Returns the preview's message."""
    judges = (
        lambda: campaigns.audience_preview(campaign, as_of=day),
        lambda: campaigns.cached_audience_preview(
            campaign, as_of=day, now=datetime(2026, 1, 1, tzinfo=UTC)
        ),
        lambda: campaign_audience(campaign, day),
        lambda: launch_campaign(campaign, by=support, as_of=day, dispatch=lambda *_: None),
    )
    messages = []
    for judge in judges:
        with pytest.raises(error) as refused:
            judge()
        messages.append(str(refused.value))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.launches, campaign.recipients.count()) == ("draft", 0, 0)
    return messages


def _redeem_refusal(ws, promo, day, support):
    """What `redeem_coupon` says on `day` (nothing kept)."""
    from django.db import transaction

    from billing.errors import BillingError

    with transaction.atomic():
        try:
            services.redeem_coupon(ws, promo.code, by=support, as_of=day)
        except BillingError as refused:
            return refused
        finally:
            transaction.set_rollback(True)
    return None


def test_d4_g1_g2_past_a_month_close_the_clock_has_not_run_preview_and_launch_wait(
    db, support, spring
):
    """D4, C2, G1, G2: with the clock through 14 January, a coupon dated 3 February must wait:
    the month close due on 1 February has not run. The campaign's preview and launch judged
    the audience anyway, on what the close would change: a campaign for workspaces with at
    least 1,000 MTUs in the last closed month read December's (none) and reached nobody,
    where January's close (5,000 MTUs) puts the workspace in. They now refuse as
    redeem_coupon does; once the clock has run through 2 February they reach it."""
    from billing.errors import ClockBehind

    ws = paid_monthly(as_of=date(2025, 12, 1), name="Heavy")
    billing.record_usage(ws, month=JAN, mtus=5_000)
    billing.run_billing(as_of=date(2026, 1, 14))
    day = date(2026, 2, 3)
    refused = _redeem_refusal(ws, spring, day, support)
    assert isinstance(refused, ClockBehind) and "must wait" in str(refused)
    campaign = campaign_for(spring, {"min_mtus": 1_000})

    for message in _refused_alike(campaign, support, day, ClockBehind):
        assert "dated 3 Feb 2026 must wait: the billing clock has processed every day " in message
        assert "through 14 Jan 2026 and has not yet run the month close due on 1 Feb 2026" in (
            message
        )
    billing.run_billing(as_of=date(2026, 2, 2))
    assert campaign_audience(campaign, day) == ([ws.pk], {})


def test_d2_g1_g2_on_a_day_the_clock_has_processed_preview_and_launch_are_refused(
    db, support, spring
):
    """D2, C2, G1, G2: with the clock through 20 January, a coupon dated the 16th is refused
    (the day is processed). The preview and the launch on the 16th judged the audience as of
    then anyway (1 reached); they now refuse the same way, naming the 20th."""
    from billing.errors import DayAlreadyProcessed

    ws = paid_monthly(as_of=JAN)
    billing.run_billing(as_of=date(2026, 1, 20))
    day = date(2026, 1, 16)
    assert isinstance(_redeem_refusal(ws, spring, day, support), DayAlreadyProcessed)
    campaign = campaign_for(spring, {"plan": "team"})
    for message in _refused_alike(campaign, support, day, DayAlreadyProcessed):
        assert "dated 16 Jan 2026 is refused: the billing clock has already processed every " in (
            message
        )
        assert "day through 20 Jan 2026. Date it 21 Jan 2026 or later." in message
    assert campaign_audience(campaign, date(2026, 1, 21)) == ([ws.pk], {})


def test_d4_i1_g1_g2_preview_and_launch_wait_as_redeem_waits_for_an_annual_invoice_owed(
    db, support
):
    """D4, I1, C2, G1, G2: two annual Team trials with a card end on 15 and 17 January (each
    turns paid with its annual invoice that day); the clock has run through the 14th. On the
    20th, redeem_coupon catches "Second" up and waits: its invoice of the 17th would be
    numbered before First's of the 15th, which the clock still owes. The preview caught both
    up with placeholder numbers and reached 2; preview and launch now wait the same way.
    A campaign whose filters leave both out (Germany) is not held up."""
    from billing.errors import ClockBehind
    from tests.billing.factories import workspace

    first = workspace(as_of=JAN, plan="team", interval="annual", card=True, name="First")
    second = workspace(
        as_of=date(2026, 1, 3), plan="team", interval="annual", card=True, name="Second"
    )
    billing.run_billing(as_of=date(2026, 1, 14))
    day = date(2026, 1, 20)
    promo = coupon(percent_off="10", duration="once", intervals=("monthly", "annual"))
    assert _redeem_refusal(first, promo, day, support) is None
    refused = _redeem_refusal(second, promo, day, support)
    assert isinstance(refused, ClockBehind)
    assert "has yet to bill First's annual Team due on 15 Jan 2026" in str(refused)
    campaign = campaigns.create_campaign("Annual", promo.code, "10% off", "Hi", {}, by=support)

    for message in _refused_alike(campaign, support, day, ClockBehind):
        assert "on 20 Jan 2026 must wait: a coupon for Second would wait too." in message
        assert str(refused) in message
    elsewhere = campaigns.create_campaign(
        "Germany", promo.code, "10% off", "Hi", {"country": "DE"}, by=support
    )
    assert campaign_audience(elsewhere, day) == ([], {})
    billing.run_billing(as_of=date(2026, 1, 19))
    assert campaign_audience(campaign, day) == (sorted([first.pk, second.pk]), {})


def test_g2_a_batch_waits_out_a_database_restart(
    db, django_capture_on_commit_callbacks, monkeypatch, retries_run_inline, waits
):
    """A campaign batch that met a database restarting or failing over (OperationalError)
    gave up after 5 retries within 31 s, its emails unsent until staff launched the campaign
    again. It is retried as the clock's tasks are: after 30 s, 1, 2, 4 and 8 minutes, then
    every 10 minutes, 11 tries over 3,930 s; a try after the database is back sends the batch
    once."""
    from django.db import OperationalError

    from coupons import tasks

    free_workspace(as_of=date(2026, 1, 1))
    free_workspace(as_of=date(2026, 1, 1))
    campaign = campaigns.create_campaign(
        "Spring", coupon(code="SPRING").code, "25% off Team", "Spring is here.", {}
    )
    batches = []
    with django_capture_on_commit_callbacks(execute=True):  # the batches go out on commit
        launched = campaigns.launch_campaign(
            campaign, as_of=date(2026, 2, 2), dispatch=lambda _, ranges: batches.extend(ranges)
        )
    assert (launched, len(batches)) == (2, 1)
    tries = []

    def database_down_for(failures):
        def notify_batch(*args, **kwargs):
            tries.append(args)
            if len(tries) <= failures:
                raise OperationalError("connection refused: the database system is starting up")
            return campaigns.notify_batch(*args, **kwargs)

        return notify_batch

    first_id, last_id = batches[0]
    monkeypatch.setattr(tasks, "notify_batch", database_down_for(3))
    result = tasks.send_campaign_batch.apply(args=[campaign.pk, first_id, last_id])
    assert (result.state, len(tries), waits) == ("SUCCESS", 4, [30, 60, 120])
    assert OutboundEmail.objects.filter(kind="campaign").count() == 2

    tries.clear()
    waits.clear()
    monkeypatch.setattr(tasks, "notify_batch", database_down_for(100))
    result = tasks.send_campaign_batch.apply(args=[campaign.pk, first_id, last_id])
    assert (result.state, len(tries)) == ("FAILURE", 11)
    assert waits[:10] == [30, 60, 120, 240, 480, 600, 600, 600, 600, 600]  # 3,930 s


def test_g1_g2_x1_a_region_that_is_no_code_leaves_one_workspace_out_not_the_campaign(
    db, support, django_capture_on_commit_callbacks
):
    """G1, G2, X1, D4: an annual Team trial with a card from 1 January, its region kept as
    "Narnia" (before codes were required), ends on the 15th; the clock skips its annual invoice
    (1,440.00 at no known HST) each day until support corrects the region. A campaign for every
    workspace on the 21st refused whole, preview and launch ("must wait: a coupon for Narnia
    would wait too"): 0 reached of 2, and so every campaign until the region is corrected, the
    clock run day by day or not. The Oregon workspace is reached (1), the Narnia one is left
    out and counted by its reason (1), as redeem_coupon refuses it alone; nothing of the
    catch-up stays, and once the region is corrected a launch again reaches it."""
    from billing.models import Invoice, Subscription
    from tests.billing.factories import workspace

    promo = coupon(percent_off="10", duration="once")
    narnia = workspace(
        as_of=JAN, plan="team", interval="annual", card=True, name="Narnia",
        business_country="CA", business_region="QC",
    )  # fmt: skip
    Workspace.objects.filter(pk=narnia.pk).update(business_region="Narnia")  # kept before X1
    oregon = free_workspace(as_of=JAN, name="Oregon")
    assert billing.run_billing(as_of=date(2026, 1, 20))["subscription_events_skipped"] == 6
    day = date(2026, 1, 21)
    campaign = campaign_for(promo, {})

    assert campaign_audience(campaign, day) == ([oregon.pk], {"region_not_a_code": 1})
    preview = campaigns.audience_preview(campaign, as_of=day)
    assert (preview["reach"], preview["refused"], [w.name for w in preview["sample"]]) == (
        1,
        1,
        ["Oregon"],
    )
    assert preview["refusals"] == [
        ("its business region is not a code tax depends on (X1): correct it first", 1)
    ]
    assert _launched(campaign, support, day, django_capture_on_commit_callbacks) == [oregon.pk]
    assert not Invoice.objects.filter(workspace=narnia).exists()
    trial = Subscription.objects.get(workspace=narnia, ended_on=None)
    assert (trial.trial_outcome, trial.trial_end) == ("running", date(2026, 1, 15))

    billing.update_workspace(
        narnia, by=support, reason="Region typed before codes were required", name="Narnia",
        business_country="CA", business_region="ON", billing_email=narnia.billing_email,
        as_of=day,
    )  # fmt: skip
    assert Invoice.objects.get(workspace=narnia).total == D("1627.20")  # 1,440.00 + 13 % HST
    both = sorted([narnia.pk, oregon.pk])
    assert _launched(campaign, support, day, django_capture_on_commit_callbacks) == both
