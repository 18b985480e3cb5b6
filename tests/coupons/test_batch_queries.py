"""A month close asks the coupons hook for a chunk of up to 2,000 invoices at once: pricing and
recording them costs the coupons app the same few queries however many invoices there are. The
coupons' daily step (C5 expiries and follow-ups) is set-based in the same way."""

from datetime import date

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from billing import invoicing
from coupons import services
from coupons.models import CreditLedgerEntry, DiscountApplication, Redemption

from .factories import coupon, paid_monthly


def coupon_queries(count):
    once, forever = coupon(amount_off="5.00"), coupon(percent_off="10", duration="forever")
    spaces = []
    for n in range(count):
        ws = paid_monthly()
        services.redeem_coupon(
            ws, (once if n % 2 else forever).code, by=None, as_of=date(2026, 1, 1)
        )
        services.grant_credits(ws, amount="50.00", as_of=date(2026, 1, 1), year=1, by=None)
        spaces.append(ws)
    drafts = invoicing.month_close_drafts(date(2026, 1, 1), workspace_ids=[w.pk for w in spaces])
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        invoicing.issue(drafts)
    assert DiscountApplication.objects.filter(redemption__workspace__in=spaces).count() == count
    assert (
        CreditLedgerEntry.objects.filter(kind="draw", grant__workspace__in=spaces).count() == count
    )
    return len([q for q in ctx.captured_queries if "coupons_" in q["sql"]])


def test_c4_cr2_a_chunk_costs_the_same_queries_for_4_or_40_invoices(db):
    assert coupon_queries(4) == coupon_queries(40)


def expiry_queries(count):
    """The coupons' daily step on the day `count` one-month coupons run out: half have a
    follow-up to apply, a quarter a follow-up the workspace received before."""
    # Its maximum is reached by the direct redemptions: it does not apply to follow-ups (C5).
    loyal = coupon(amount_off="5.00", duration="forever", max_redemptions=count // 4)
    intro = coupon(percent_off="50", duration="repeating", duration_months=1, follow_up=loyal)
    plain = coupon(percent_off="20", duration="repeating", duration_months=1)
    for n in range(count):
        ws = paid_monthly()
        if n % 4 == 3:  # received LOYAL before: the follow-up is not applied again (C5)
            services.redeem_coupon(ws, loyal.code, by=None, as_of=date(2026, 1, 1))
            services.remove_discount(ws, by=None, reason="Intro instead", as_of=date(2026, 1, 1))
        services.redeem_coupon(
            ws, (intro if n % 2 else plain).code, by=None, as_of=date(2026, 1, 1)
        )
    with transaction.atomic(), CaptureQueriesContext(connection) as ctx:
        counts = services.run_coupon_clock(date(2026, 2, 1))
    follow_ups = Redemption.objects.filter(coupon=loyal, is_follow_up=True)
    assert counts["coupons_ran_out"] == count
    applied = len([n for n in range(count) if n % 4 == 1])
    assert counts["follow_ups_applied"] == follow_ups.count() == applied
    assert not Redemption.objects.filter(coupon__in=[intro, plain], status="active").exists()
    return len(ctx.captured_queries)


def test_c5_the_daily_step_costs_the_same_queries_for_5_or_50_expiring_redemptions(db):
    assert expiry_queries(5) == expiry_queries(50) <= 20
