"""G1–G3 when a campaign's emails actually go: a workspace is notified once its email was sent
(an email still pending told it nothing), and a batch sent after the launch leaves out whoever
the coupon would refuse by then (C2), as the launch left them out."""

from datetime import date

import pytest
from django.core import mail

from billing import services as billing
from billing.emails import send_queued_email
from billing.models import OutboundEmail
from coupons import services
from coupons.campaigns import (
    campaign_progress,
    campaign_results,
    create_campaign,
    launch_campaign,
    notify_batch,
)
from coupons.models import Redemption

from .factories import coupon, paid_monthly

JAN = date(2026, 1, 1)
LAUNCH = date(2026, 2, 2)


@pytest.fixture
def spring(db):
    return coupon(
        code="SPRING25", percent_off="25", duration="repeating", duration_months=3,
        intervals=("monthly",),
    )  # fmt: skip


def _campaign(promo):
    return create_campaign(
        "Spring 2026", promo.code, "25% off Team for three months", "Spring is here.",
        {"plan": "team"},
    )  # fmt: skip


def _held_back(campaign, support, capture):
    """Launch on LAUNCH with the batches held back (recipients recorded, nobody emailed yet);
    returns the batches, as the workers would get them."""
    batches = []
    with capture(execute=True):
        launch_campaign(
            campaign, by=support, as_of=LAUNCH, dispatch=lambda _, ranges: batches.extend(ranges)
        )
    assert campaign_progress(campaign)["waiting"] == campaign.recipients.count()
    return batches


def _run(campaign, batches, capture):
    """The workers run the batches; returns who was emailed the campaign."""
    mail.outbox.clear()
    with capture(execute=True):
        for first_id, last_id in batches:
            notify_batch(campaign.pk, first_id=first_id, last_id=last_id)
    return sorted(m.to[0] for m in mail.outbox if m.subject == campaign.subject)


def test_g3_an_email_still_pending_notified_nobody_and_brings_no_redemption(
    db, settings, support, spring, django_capture_on_commit_callbacks
):
    """With the mail server refusing connections, the campaign's 3 emails stayed pending, yet
    the page read "notified 3", and a redemption made meanwhile was credited to the campaign;
    had the emails then failed for good, the page read notified 0, redeemed 1. Now notified
    counts the emails that went, and a redemption is the campaign's only when its workspace's
    email had gone: `a`, redeemed while its email waited, is not; `b`, after, is."""
    a, b, c = (paid_monthly(as_of=JAN, name=name) for name in ("A", "B", "C"))
    campaign = _campaign(spring)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=LAUNCH) == 3
    progress = campaign_progress(campaign)
    assert (progress["pending"], progress["sent"], progress["waiting"]) == (3, 0, 0)
    assert campaign_results(campaign)["notified"] == 0

    services.redeem_coupon(a, spring.code, by=support, as_of=date(2026, 2, 3))
    assert Redemption.objects.get(workspace=a).campaign is None

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"  # the server is back
    for email in OutboundEmail.objects.filter(kind="campaign"):
        assert send_queued_email(email.pk) is True
    assert sorted(m.to[0] for m in mail.outbox) == sorted(w.billing_email for w in (a, b, c))
    services.redeem_coupon(b, spring.code, by=support, as_of=date(2026, 2, 4))
    assert Redemption.objects.get(workspace=b).campaign == campaign
    results = campaign_results(campaign)
    assert (results["notified"], results["redeemed"], results["rate"]) == (3, 1, 33)


def test_g2_c2_a_batch_sent_after_the_launch_leaves_out_who_can_no_longer_take_the_coupon(
    db, support, spring, caplog, django_capture_on_commit_callbacks
):
    """Launched on 2 February, the batch held back. Before it runs, support applies SPRING25 to
    `taken` and another discount to `discounted` (one at a time), the same day. The batch
    emailed both an offer support would then refuse (C2); it now leaves them out, their rows
    gone unemailed as the launch would leave them out now, and says why in the log."""
    taken = paid_monthly(as_of=JAN, name="Taken")
    discounted = paid_monthly(as_of=JAN, name="Discounted")
    plain = paid_monthly(as_of=JAN, name="Plain")
    campaign = _campaign(spring)
    batches = _held_back(campaign, support, django_capture_on_commit_callbacks)
    services.redeem_coupon(taken, spring.code, by=support, as_of=LAUNCH)
    other = coupon(code="LOYAL10", percent_off="10", duration="forever")
    services.redeem_coupon(discounted, other.code, by=support, as_of=LAUNCH)
    caplog.set_level("INFO", logger="coupons.campaigns")

    assert _run(campaign, batches, django_capture_on_commit_callbacks) == [plain.billing_email]
    assert list(campaign.recipients.values_list("workspace", flat=True)) == [plain.pk]
    progress = campaign_progress(campaign)
    assert (progress["reached"], progress["waiting"], progress["sent"]) == (1, 0, 1)
    first_id, last_id = batches[0]
    assert [r.getMessage() for r in caplog.records if r.name == "coupons.campaigns"] == [
        f"campaign {campaign.pk} batch {first_id}-{last_id} on 2026-02-02: 2 left out unemailed "
        "(a discount is already active: 1; already received this coupon: 1)"
    ]


def test_g2_c2_a_coupon_switched_off_before_the_batch_runs_leaves_the_whole_batch_out(
    db, support, spring, django_capture_on_commit_callbacks
):
    """The batch held back, SPRING25 is switched off: each of its 3 workspaces was emailed an
    offer support refuses to every workspace ("inactive"). Nobody is emailed now; switched on
    again, a launch reaches the three once more."""
    for _ in range(3):
        paid_monthly(as_of=JAN)
    campaign = _campaign(spring)
    batches = _held_back(campaign, support, django_capture_on_commit_callbacks)
    services.update_coupon(spring, by=support, reason="Paused", as_of=LAUNCH, active=False)

    assert _run(campaign, batches, django_capture_on_commit_callbacks) == []
    assert campaign_progress(campaign)["reached"] == 0
    services.update_coupon(spring, by=support, reason="Back on", as_of=LAUNCH, active=True)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=LAUNCH) == 3
    assert len(mail.outbox) == 3


def test_g2_d2_a_batch_run_after_the_clock_passed_its_launch_day_judges_the_next_open_day(
    db, support, spring, django_capture_on_commit_callbacks
):
    """D2, C2: a batch launched on 2 February is held back (the broker was down) until the
    clock has run through 1 March, whose close issued both workspaces' March invoices. A
    redemption can no longer be dated 2 February, and on that day the invoices issued since
    would refuse SPRING25 ("an invoice dated today or later was issued already"): the batch
    judges the first day the clock has not processed, 2 March, on which support accepts it,
    and emails both."""
    spaces = [paid_monthly(as_of=JAN) for _ in range(2)]
    campaign = _campaign(spring)
    batches = _held_back(campaign, support, django_capture_on_commit_callbacks)
    billing.run_billing(as_of=date(2026, 3, 1))

    emailed = _run(campaign, batches, django_capture_on_commit_callbacks)
    assert emailed == sorted(ws.billing_email for ws in spaces)
