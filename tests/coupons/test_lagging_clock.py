"""D4 for coupons and the startup program with a lagging clock: a change dated D (the clock
through L < D-1, D before the next 1st, which D2 allows) sees what the clock owes for the days
before D, as a daily clock would have it."""

from datetime import date, timedelta

from billing import services as billing
from coupons import services
from startups import services as startups
from tests.billing.factories import workspace
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up
from tests.startups.factories import application

START = date(2026, 1, 1)
LAG = date(2026, 1, 5)  # the clock's last processed day in the catch-up run
D = date(2026, 1, 20)  # the change, before 1 February (D2 allows it)


def _clock(daily):
    """Daily: the clock has processed every day before D. Lagging: only through LAG."""
    billing.run_billing(as_of=D - timedelta(days=1) if daily else LAG)


def _outcome(action):
    try:
        return ("ok", action())
    except Exception as exc:  # the refusal is the outcome compared
        return (type(exc).__name__, getattr(exc, "reason", str(exc)))


def test_d4_c2_redeem_after_a_trial_reverted_to_free_behind_the_clock(db, support):
    """A monthly trial without a card from 1 January ends on the 15th: Free from then (T4).
    An annual-only coupon redeemed on the 20th: on Free, no interval refusal (C2). Day by day it
    is applied; with the clock at the 5th the service still sees the trial as Team monthly and
    refuses it (interval not covered)."""

    def run(daily):
        ws = workspace(as_of=START, plan="team", slug="trialist", name="Trialist")
        annual_only = coupon(code="ANNUALONLY", intervals=("annual",))
        _clock(daily)
        return _outcome(
            lambda: (
                services.redeem_coupon(
                    ws, annual_only.code, by=support, as_of=D, reason="Offer"
                ).coupon.code
            )
        )

    daily, catch_up = daily_and_catch_up(run)
    assert daily == ("ok", "ANNUALONLY")
    assert catch_up == daily


def test_d4_s7_credits_scope_warning_after_a_trial_reverted_to_free_behind_the_clock(db, reviewer):
    """S7: a workspace on Free needs the reviewer's confirmation. The trial reverted to Free on
    the 15th (no card). Day by day the approval on the 20th without confirmation is refused with
    the S7 warning; with the clock lagging at the 5th, it goes through unconfirmed."""

    def run(daily):
        ws = workspace(as_of=START, plan="team", slug="trialist", name="Trialist")
        app = application(workspace=ws, as_of=date(2026, 1, 3))
        _clock(daily)
        return _outcome(lambda: startups.approve_application(app, by=reviewer, as_of=D).status)

    daily, catch_up = daily_and_catch_up(run)
    assert daily[0] == "ApplicationError" and "is on Free" in daily[1]
    assert catch_up == daily


def test_d4_c2_once_coupon_used_by_an_annual_invoice_behind_the_clock(db, support):
    """C5: a `once` coupon applies to the first invoice issued on or after its redemption. An
    annual trial with a card from 1 January converts on the 15th with its 1,440.00 invoice dated
    the 15th (T4, K2), which takes the once coupon (10% off: 144.00). On the 20th support applies
    another promotion: day by day the once coupon is used up, so it is applied; with the clock
    lagging at the 5th, redeem_coupon still sees the once coupon running and refuses it (discount
    already active), though the invoice that uses it is dated the 15th either way."""

    def run(daily):
        ws = workspace(
            as_of=START, plan="team", interval="annual", card=True, slug="yearly", name="Yearly"
        )
        once = coupon(code="WELCOME", percent_off="10", duration="once")
        services.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 3), reason="Hi")
        later = coupon(code="SPRING", percent_off="20", duration="forever")
        _clock(daily)
        return _outcome(
            lambda: (
                services.redeem_coupon(
                    ws, later.code, by=support, as_of=D, reason="Offer"
                ).coupon.code
            )
        )

    daily, catch_up = daily_and_catch_up(run)
    assert daily == ("ok", "SPRING")
    assert catch_up == daily


def test_d4_c5_remove_discount_after_a_once_coupon_was_used_behind_the_clock(db, support):
    """The same once coupon as above, used by the annual invoice of 15 January. On the 20th
    support removes "the running discount": day by day there is none (refused, nothing
    written); with the clock lagging at the 5th the once coupon, already owed to the invoice of
    the 15th, is marked removed instead."""

    def run(daily):
        ws = workspace(
            as_of=START, plan="team", interval="annual", card=True, slug="yearly", name="Yearly"
        )
        once = coupon(code="WELCOME", percent_off="10", duration="once")
        services.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 3), reason="Hi")
        _clock(daily)
        return _outcome(
            lambda: services.remove_discount(ws, by=support, reason="Asked", as_of=D).status
        )

    daily, catch_up = daily_and_catch_up(run)
    assert daily[0] == "CouponError" and "no active discount" in daily[1]
    assert catch_up == daily


def test_d4_c6_nonprofit_approval_after_an_annual_trial_reverted_to_free_behind_the_clock(
    db, support
):
    """C6 through the same read: an annual trial without a card from 1 January is on Free from
    the 15th. Support approves its non-profit proof on the 20th, applying NONPROFIT (monthly
    bills only): day by day it is applied; with the clock lagging at the 5th the approval is
    refused as 'on Team billed annually' and nothing is approved."""
    from django.core.files.base import ContentFile

    from tests.coupons.factories import PDF

    def run(daily):
        ws = workspace(as_of=START, plan="team", interval="annual", slug="charity", name="Charity")
        proof = services.submit_nonprofit_proof(
            ws, document=ContentFile(PDF, name="status.pdf"), by=support, as_of=date(2026, 1, 3)
        )
        _clock(daily)
        return _outcome(
            lambda: services.approve_nonprofit_proof(proof, by=support, as_of=D).coupon.code
        )

    daily, catch_up = daily_and_catch_up(run)
    assert daily == ("ok", "NONPROFIT")
    assert catch_up == daily
