"""M2, M3, T3, T4, K1, K4, W1, C5 on 29 February 2028 (a 29-day February): the figures worked
by hand from SPEC, so a change to how the leap day is counted shows up as a wrong cent.

What a year after 29 February is (K2's term, CR1's grant) SPEC does not say; nothing here
pins it."""

from datetime import date
from decimal import Decimal as D

import pytest

from billing import services
from billing.models import Invoice
from coupons import services as coupons
from tests.coupons.factories import coupon

from .factories import paid_monthly, workspace

LEAP_DAY = date(2028, 2, 29)
FEB, MAR, APR = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)


def bills(ws):
    """(kind, issue date, period start, period end, subtotal, discount, total) in issue order."""
    return [
        (i.kind, i.issue_date, i.period_start, i.period_end, i.subtotal, i.discount, i.total)
        for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")
    ]


def test_m2_m3_monthly_team_paid_from_29_february(db):
    """Paid from the leap day, 15,000 MTUs in February: one paid day of 29, 120 × 1/29 =
    4.1379… → 4.14, plus (15,000 − 10,000) × 0.01 = 50.00 (no trial day) = 54.14, for the
    period 29 February – 1 March. March is a full month: 120.00."""
    ws = paid_monthly(LEAP_DAY)
    services.record_usage(ws, month=FEB, mtus=15_000)
    services.run_billing(as_of=APR)
    assert bills(ws) == [
        ("monthly", MAR, LEAP_DAY, MAR, D("54.14"), D("0.00"), D("54.14")),
        ("monthly", APR, MAR, APR, D("120.00"), D("0.00"), D("120.00")),
    ]


@pytest.mark.parametrize("end", ["cancel", "close"])
def test_k1_w1_monthly_team_ended_on_29_february(db, support, end):
    """Paid from 1 February, 12,000 MTUs reported, cancelled (K1) or closed (W1) on the leap
    day: the final invoice dated 29 February bills the 28 paid days before it, 120 × 28/29 =
    115.862… → 115.86, plus 2,000 × 0.01 = 20.00: 135.86. February's close bills nothing more."""
    ws = paid_monthly(FEB)
    services.record_usage(ws, month=FEB, mtus=12_000)
    if end == "cancel":
        services.change_to_free(ws, as_of=LEAP_DAY)
    else:
        services.close_workspace(ws, by=support, reason="Asked to", as_of=LEAP_DAY)
    services.run_billing(as_of=APR)
    assert bills(ws) == [("final", LEAP_DAY, FEB, LEAP_DAY, D("135.86"), D("0.00"), D("135.86"))]


def test_t3_t4_trial_ending_on_29_february(db):
    """A trial started on 15 February covers 15–28 February (T3); 29 February is its end date
    and first paid day (T4, card on file). February: 120 × 1/29 = 4.1379… → 4.14, and no
    overage for its 20,000 MTUs, February having trial days (M3). March: 120.00."""
    ws = workspace(as_of=date(2028, 2, 15), plan="team", card=True)
    services.record_usage(ws, month=FEB, mtus=20_000)
    services.run_billing(as_of=APR)
    assert ws.subscriptions.get(plan__code="team").trial_end == LEAP_DAY
    assert bills(ws) == [
        ("monthly", MAR, LEAP_DAY, MAR, D("4.14"), D("0.00"), D("4.14")),
        ("monthly", APR, MAR, APR, D("120.00"), D("0.00"), D("120.00")),
    ]


def test_k1_m3_trial_month_cancelled_on_29_february(db):
    """Trial 1–14 February, paid from the 15th, cancelled on the leap day: 14 paid days (15–28),
    120 × 14/29 = 57.931… → 57.93; no overage for 20,000 MTUs, February had trial days."""
    ws = workspace(as_of=FEB, plan="team", card=True)
    services.record_usage(ws, month=FEB, mtus=20_000)
    services.change_to_free(ws, as_of=LEAP_DAY)
    services.run_billing(as_of=MAR)
    assert bills(ws) == [
        ("final", LEAP_DAY, date(2028, 2, 15), LEAP_DAY, D("57.93"), D("0.00"), D("57.93"))
    ]


def test_k4_monthly_to_annual_on_29_february(db):
    """Monthly from 1 February, 12,000 MTUs, moved to annual on the leap day: the final invoice
    for 1–28 February, 115.86 + 20.00 = 135.86 (K1); the annual invoice of 1,440.00 the same
    day (K2). February's figure then rises to 13,000: its close bills, on the annual term,
    only the overage not billed yet, 1,000 × 0.01 = 10.00, and no base."""
    ws = paid_monthly(FEB)
    services.record_usage(ws, month=FEB, mtus=12_000)
    services.change_interval(ws, interval="annual", as_of=LEAP_DAY)
    services.record_usage(ws, month=FEB, mtus=13_000)
    services.run_billing(as_of=MAR)
    assert [(kind, issued, total) for kind, issued, *_, total in bills(ws)] == [
        ("final", LEAP_DAY, D("135.86")),
        ("annual", LEAP_DAY, D("1440.00")),
        ("monthly", MAR, D("10.00")),
    ]


def test_c5_repeating_coupons_redeemed_on_31_january_and_29_february(db, support):
    """50 % off for 2 months redeemed on 31 January covers January and February (invoices of 1
    February and 1 March: 120.00 − 60.00); for 1 month redeemed on 29 February, February only.
    March is billed in full by both."""
    two = paid_monthly(date(2028, 1, 1))
    coupons.redeem_coupon(
        two,
        coupon(percent_off="50", duration="repeating", duration_months=2).code,
        by=support,
        as_of=date(2028, 1, 31),
    )
    one = paid_monthly(date(2028, 1, 1))
    coupons.redeem_coupon(
        one,
        coupon(percent_off="50", duration="repeating", duration_months=1).code,
        by=support,
        as_of=LEAP_DAY,
    )
    services.run_billing(as_of=APR)
    assert [(issued, discount) for _, issued, *_, discount, _ in bills(two)] == [
        (FEB, D("60.00")),
        (MAR, D("60.00")),
        (APR, D("0.00")),
    ]
    assert [(issued, discount) for _, issued, *_, discount, _ in bills(one)] == [
        (FEB, D("0.00")),
        (MAR, D("60.00")),
        (APR, D("0.00")),
    ]
