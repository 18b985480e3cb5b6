"""A sixth set of edge days and edge figures, each worked by hand from SPEC (the figures are in
each test's docstring and comments; nothing is computed by the code under test), on what the
first five files cover least:

- C4, C5: a percent coupon on a prorated first month, a final invoice and the days after a
  return within the month (its dollar value following the bill); a repeating coupon across a
  cancellation and a return; a forever coupon across monthly → annual (K4), for a coupon of both
  intervals and one of monthly bills only; follow-ups chained twice, past their redeem-by date
  and their maximum, never twice to one workspace.
- C2: redeem-by on the day itself, a maximum reached on it, "a discount already active" on the
  day a repeating coupon runs out (with and without a follow-up), the interval refusal on the
  days of a K4 change either way.
- C6, C7: a non-profit proof and its discount on a prorated month, an interval change and a
  closure; a partner's credit amount changed between two approvals.
- G1–G3: audiences read on a day (lock, membership, interval, sign-up day, MTU range bounds),
  a launch on a month's last day and redemptions attributed, a voided invoice's discount.
- X2–X4 with coupons and credits: ROUND_HALF_UP on the discount and the tax of one invoice, an
  exemption certificate starting mid-month, a rate change on the 1st with closures that day and
  the day after; K3 credit notes giving back tax in parts that sum to the invoice's tax, with
  waiting requests; I3 void then credit note refused.
- I1, I6: numbers across the year end with a November invoice set aside and issued in January
  (a `once` coupon kept for it); I5: the document of an invoice with discount, credit and tax.
- W1 with each of the above on edge days: a trial's end date, a month's last day, an annual
  term's end.
- D4: every multi-day scenario by day and in one run, with identical invoices.
"""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.files.base import ContentFile

from billing import services
from billing.errors import BillingError
from billing.invoice_documents import credit_note_document, invoice_document
from billing.models import (
    Invoice,
    InvoiceSequence,
    SetAsideInvoice,
    TaxExemption,
    Usage,
    Workspace,
)
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.campaigns import campaign_audience, campaign_results, create_campaign, launch_campaign
from coupons.errors import CouponRefused
from coupons.models import Campaign, Coupon, CreditGrant, NonprofitProof, Redemption
from startups import services as startups
from tests.billing.factories import certificate, paid_annual, paid_monthly, workspace
from tests.coupons.factories import PDF, coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import bills, close
from tests.startups.factories import application

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


def both_ways(capture, start, end, actions, read):
    """D4: `actions(day)` from `start` through `end`, the clock run each day, then the same
    with one run at the end; both outcomes of `read()` must be equal. Returns it."""

    def run(daily):
        run_days(start, end, daily=daily, capture=capture, actions=actions)
        return read()

    daily, catch_up = daily_and_catch_up(run)
    assert daily == catch_up
    return daily


def redemptions(ws):
    """(code, redeemed on, by the system, follow-up, status, ended on), oldest first."""
    return [
        (r.coupon.code, r.redeemed_on, r.by_id is None, r.is_follow_up, r.status, r.ended_on)
        for r in Redemption.objects.filter(workspace=ws).order_by("redeemed_on", "id")
    ]


def refusal(ws, code, on, by):
    with pytest.raises(CouponRefused) as refused:
        coupons.redeem_coupon(ws, code, by=by, as_of=on)
    return refused.value.reason


# --- C4, C5: percent and repeating coupons across a cancellation and a return ------------------


def test_c4_c5_k1_d4_a_percent_coupon_on_a_prorated_month_a_final_invoice_and_a_return(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 10 March 2027 with 15 % off `forever`, redeemed that day (C5: every
    billing month from March). C4: subtotal × 15 / 100, rounded half up; its dollar value follows
    the bill.

    - March (22 paid days of 31, M2): 120 × 22/31 = 85.1612… → 85.16; 15 % = 12.774 → 12.77;
      72.39, issued 1 April.
    - April: 11,500 MTUs reported; cancelled on 19 April (K1): final invoice dated 19 April for
      1–18 April, 120 × 18/30 = 72.00 + 1,500 × 0.01 = 15.00 → 87.00; 15 % = 13.05; 73.95.
    - Back on Team on 26 April, paid at once (T1, a card on file); April's running total then
      reported as 12,000. April's close (1 May) bills only the paid days after the return,
      26–30 April, 120 × 5/30 = 20.00, and only overage not billed yet: 2,000 − 1,500 = 500
      MTUs → 5.00 (K1): 25.00; 15 % = 3.75; 21.25.
    - May: 120.00 − 18.00 = 102.00, issued 1 June.

    SPEC is silent on whether a cancellation (K1) ends a discount (W1's closure does); C5's
    "until removed" keeps it, and the code keeps it: pinned."""
    promo = coupon(percent_off="15", duration="forever")

    def actions(day):
        if day == date(2027, 3, 10):
            ws = paid_monthly(day, slug="acme")
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        ws = Workspace.objects.filter(slug="acme").first()
        if day == date(2027, 4, 2):
            services.record_usage(ws, month=date(2027, 4, 1), mtus=11_500)
        if day == date(2027, 4, 19):
            services.change_to_free(ws, as_of=day)
        if day == date(2027, 4, 26):
            services.change_to_team(ws, as_of=day)
        if day == date(2027, 4, 27):
            services.record_usage(ws, month=date(2027, 4, 1), mtus=12_000)

    def read():
        return bills(Workspace.objects.get(slug="acme"))

    invoices = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 10), date(2027, 6, 1), actions, read
    )
    assert invoices == [
        (
            "monthly",
            date(2027, 4, 1),
            date(2027, 3, 10),
            date(2027, 4, 1),
            D("85.16"),
            D("12.77"),
            D("0.00"),
            D("0.00"),
            D("72.39"),
        ),
        (
            "final",
            date(2027, 4, 19),
            date(2027, 4, 1),
            date(2027, 4, 19),
            D("87.00"),
            D("13.05"),
            D("0.00"),
            D("0.00"),
            D("73.95"),
        ),
        (
            "monthly",
            date(2027, 5, 1),
            date(2027, 4, 26),
            date(2027, 5, 1),
            D("25.00"),
            D("3.75"),
            D("0.00"),
            D("0.00"),
            D("21.25"),
        ),
        (
            "monthly",
            date(2027, 6, 1),
            date(2027, 5, 1),
            date(2027, 6, 1),
            D("120.00"),
            D("18.00"),
            D("0.00"),
            D("0.00"),
            D("102.00"),
        ),
    ]


def test_c5_k1_d4_a_repeating_coupon_across_a_cancellation_and_a_return(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 March 2027; 10 % off `repeating` 2 months redeemed 15 March (C5:
    the billing months March and April, whatever the subscription does in them).

    - March (1 April): 120.00 − 12.00 = 108.00.
    - Cancelled on 10 April (K1): final invoice dated 10 April for 1–9 April, 120 × 9/30 =
      36.00; April is a covered month: 10 % = 3.60; 32.40.
    - Back on Team on 20 April (paid at once, T1): April's close (1 May) bills 20–30 April,
      120 × 11/30 = 44.00; still April: 10 % = 4.40; 39.60.
    - May (1 June): the coupon ran out on 1 May: 120.00 (C5: back to the normal rate)."""
    promo = coupon(percent_off="10", duration="repeating", duration_months=2)

    def actions(day):
        if day == date(2027, 3, 1):
            paid_monthly(day, slug="acme")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 3, 15):
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        if day == date(2027, 4, 10):
            services.change_to_free(ws, as_of=day)
        if day == date(2027, 4, 20):
            services.change_to_team(ws, as_of=day)

    def read():
        ws = Workspace.objects.get(slug="acme")
        return [(b[0], b[1], b[2], b[3], b[4], b[5], b[8]) for b in bills(ws)], redemptions(ws)

    invoices, used = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 1), date(2027, 6, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1), D("120.00"),
         D("12.00"), D("108.00")),
        ("final", date(2027, 4, 10), date(2027, 4, 1), date(2027, 4, 10), D("36.00"),
         D("3.60"), D("32.40")),
        ("monthly", date(2027, 5, 1), date(2027, 4, 20), date(2027, 5, 1), D("44.00"),
         D("4.40"), D("39.60")),
        ("monthly", date(2027, 6, 1), date(2027, 5, 1), date(2027, 6, 1), D("120.00"),
         D("0.00"), D("120.00")),
    ]  # fmt: skip
    assert used == [(promo.code, date(2027, 3, 15), False, False, "ended", date(2027, 5, 1))]


@pytest.mark.parametrize(
    "intervals, annual_discount, annual_total, overage_discount, overage_total",
    [
        (("monthly", "annual"), D("144.00"), D("1296.00"), D("3.00"), D("27.00")),
        (("monthly",), D("0.00"), D("1440.00"), D("0.00"), D("30.00")),
    ],
    ids=["both-intervals", "monthly-only"],
)
def test_c5_c4_k4_k2_d4_a_forever_coupon_across_monthly_to_annual(
    db,
    django_capture_on_commit_callbacks,
    support,
    intervals,
    annual_discount,
    annual_total,
    overage_discount,
    overage_total,
):
    """Paid monthly from 1 January 2027; 10 % off `forever` redeemed 5 January (C1: for the
    intervals given). January (1 February): 120.00 − 12.00 = 108.00 either way.

    12,000 MTUs reported for February; monthly → annual on 15 February (K4):
    - the final invoice dated 15 February for 1–14 February (K1): 120 × 14/28 = 60.00 + 2,000 ×
      0.01 = 20.00 → 80.00, a monthly bill: 10 % = 8.00; 72.00 either way;
    - the annual invoice dated 15 February, term 15 February 2027 – 15 February 2028 (K2):
      1,440.00; 10 % = 144.00 → 1,296.00 for a coupon of both intervals, nothing off for a
      coupon of monthly bills only (1,440.00);
    - February's close (1 March): its overage was billed by the final invoice: nothing;
    - March, 13,000 MTUs: an overage-only invoice of kind `monthly` dated 1 April for the
      annual term (K2): 30.00; it is an annual subscription's bill, so 3.00 off (27.00) for a
      coupon of both intervals, none (30.00) for one of monthly bills only."""
    promo = coupon(percent_off="10", duration="forever", intervals=intervals)

    def actions(day):
        if day == date(2027, 1, 1):
            paid_monthly(day, slug="acme")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 1, 5):
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        if day == date(2027, 2, 10):
            services.record_usage(ws, month=date(2027, 2, 1), mtus=12_000)
        if day == date(2027, 2, 15):
            services.change_interval(ws, interval="annual", as_of=day)
        if day == date(2027, 3, 20):
            services.record_usage(ws, month=date(2027, 3, 1), mtus=13_000)

    def read():
        ws = Workspace.objects.get(slug="acme")
        return [(b[0], b[1], b[2], b[3], b[4], b[5], b[8]) for b in bills(ws)]

    invoices = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 4, 2), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 2, 1), date(2027, 1, 1), date(2027, 2, 1), D("120.00"),
         D("12.00"), D("108.00")),
        ("final", date(2027, 2, 15), date(2027, 2, 1), date(2027, 2, 15), D("80.00"),
         D("8.00"), D("72.00")),
        ("annual", date(2027, 2, 15), date(2027, 2, 15), date(2028, 2, 15), D("1440.00"),
         annual_discount, annual_total),
        ("monthly", date(2027, 4, 1), date(2027, 3, 1), date(2027, 4, 1), D("30.00"),
         overage_discount, overage_total),
    ]  # fmt: skip


@pytest.mark.parametrize(
    "months, discount, total",
    [(1, D("0.00"), D("111.43")), (2, D("55.72"), D("55.71"))],
    ids=["one-month", "two-months"],
)
def test_c5_t3_m2_d4_a_repeating_coupon_redeemed_in_a_trial_month_counts_that_month(
    db, django_capture_on_commit_callbacks, support, months, discount, total
):
    """Signed up into Team with a card on 20 January 2027: trial 20 January – 2 February, end
    date and first paid day 3 February (T3, T4). 50 % off `repeating` N months redeemed on
    25 January. C5: N billing months starting with the month of redemption, January, which
    has no invoice (no paid day, M1).

    February (1 March): 3–28 February, 26 paid days of 28: 120 × 26/28 = 111.428… → 111.43,
    no overage line (M3). With N = 1 the coupon's only month was January: it runs out on
    1 February unused, 111.43 to pay. With N = 2, February is its second month: 50 % of
    111.43 = 55.715 → 55.72 off (half up), 55.71 to pay."""
    promo = coupon(code="HALF", percent_off="50", duration="repeating", duration_months=months)

    def actions(day):
        if day == date(2027, 1, 20):
            workspace(as_of=day, plan="team", card=True, slug="acme")
        if day == date(2027, 1, 25):
            coupons.redeem_coupon(
                Workspace.objects.get(slug="acme"), promo.code, by=support, as_of=day
            )

    def read():
        return [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(Workspace.objects.get())]

    invoices = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 20), date(2027, 3, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 3, 1), date(2027, 2, 3), D("111.43"), discount, total)
    ]


def test_c5_c4_d4_a_once_coupon_redeemed_on_the_1st_goes_to_that_days_invoice(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027, 12,000 MTUs in January. 25 % off `once` redeemed on
    1 February, before that day is processed (D1). C5: the first invoice whose issue date is
    on or after the redemption date is January's, issued 1 February by January's close:
    120.00 + 20.00 = 140.00, 25 % = 35.00 off (C4: the percent follows the bill, overage
    included), 105.00. February (1 March): 120.00, the coupon used."""
    promo = coupon(code="ONCE25", percent_off="25", duration="once")

    def actions(day):
        if day == date(2027, 1, 1):
            ws = paid_monthly(day, slug="acme")
            services.record_usage(ws, month=date(2027, 1, 1), mtus=12_000)
        if day == date(2027, 2, 1):
            coupons.redeem_coupon(
                Workspace.objects.get(slug="acme"), promo.code, by=support, as_of=day
            )

    def read():
        ws = Workspace.objects.get(slug="acme")
        return [(b[1], b[4], b[5], b[8]) for b in bills(ws)], redemptions(ws)

    invoices, used = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    assert invoices == [
        (date(2027, 2, 1), D("140.00"), D("35.00"), D("105.00")),
        (date(2027, 3, 1), D("120.00"), D("0.00"), D("120.00")),
    ]
    assert used == [("ONCE25", date(2027, 2, 1), False, False, "ended", date(2027, 2, 1))]


# --- C5: follow-ups -----------------------------------------------------------------------------


def test_c5_k1_d4_a_follow_up_used_by_a_final_invoice_before_the_clock_wrote_it(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027. `A`: 50 % off `repeating` 1 month, redeemed 10
    January, follow-up `B`: 20.00 off `once`. January (1 February): 60.00 off, 60.00. `A`
    runs out on 1 February and `B` is applied that day (C5). Cancelled on 10 February (K1):
    the final invoice for 1–9 February, 120 × 9/28 = 38.5714… → 38.57, is `B`'s first invoice
    on or after 1 February: 20.00 off, 18.57. Back on Team on 20 February: February's close
    (1 March) bills 20–28 February, 9 days, 38.57, with nothing off (`B` used).

    D4: in one run at the end, the final invoice is issued on 10 February before the clock has
    written `B` (it runs out `A` only when it processes 1 February): the same invoices and the
    same redemptions either way."""
    b = coupon(code="THEN20", amount_off="20.00", duration="once")
    a = coupon(code="FIRST50", percent_off="50", duration="repeating", duration_months=1,
               follow_up=b)  # fmt: skip

    def actions(day):
        if day == date(2027, 1, 1):
            paid_monthly(day, slug="acme")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 1, 10):
            coupons.redeem_coupon(ws, a.code, by=support, as_of=day)
        if day == date(2027, 2, 10):
            services.change_to_free(ws, as_of=day)
        if day == date(2027, 2, 20):
            services.change_to_team(ws, as_of=day)

    def read():
        ws = Workspace.objects.get(slug="acme")
        return [(b_[0], b_[1], b_[4], b_[5], b_[8]) for b_ in bills(ws)], redemptions(ws)

    invoices, used = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 2, 1), D("120.00"), D("60.00"), D("60.00")),
        ("final", date(2027, 2, 10), D("38.57"), D("20.00"), D("18.57")),
        ("monthly", date(2027, 3, 1), D("38.57"), D("0.00"), D("38.57")),
    ]
    assert used == [
        ("FIRST50", date(2027, 1, 10), False, False, "ended", date(2027, 2, 1)),
        ("THEN20", date(2027, 2, 1), True, True, "ended", date(2027, 2, 10)),
    ]


def test_c5_d4_follow_ups_chained_twice_past_redeem_by_and_maximum(
    db, django_capture_on_commit_callbacks, support
):
    """Three coupons chained (C5): `A` 50 % off `repeating` 1 month → follow-up `B` 25 % off
    `repeating` 2 months, redeem-by 31 January 2027 → follow-up `C` 10.00 off `repeating` 1
    month, at most 1 redemption, which `other` (Free) took on 5 January. Paid monthly from
    1 January 2027, `acme` receives `A` on 10 January.

    - January (1 February): 120 × 50 % = 60.00 off: 60.00. `A` runs out on 1 February; `B` is
      applied by the system that day, though past its redeem-by date (C5), for the billing
      months February and March.
    - February, 12,000 MTUs (1 March): 140.00 × 25 % = 35.00 off: 105.00 (C4: the percent
      follows the bill).
    - March (1 April): 120.00 − 30.00 = 90.00. `B` runs out on 1 April; `C` is applied that
      day, though its maximum is reached (C5), for April.
    - April, 13,000 MTUs (1 May): 150.00 − 10.00 = 140.00. `C` runs out on 1 May, no follow-up.
    - May (1 June): 120.00.

    SPEC is silent on whether a follow-up applied by the system counts toward the follow-up
    coupon's maximum; the code does not count it (C stays at 1 of 1): pinned."""
    c = coupon(code="CHAIN-C", amount_off="10.00", duration="repeating", duration_months=1,
               max_redemptions=1)  # fmt: skip
    b = coupon(code="CHAIN-B", percent_off="25", duration="repeating", duration_months=2,
               redeem_by=date(2027, 1, 31), follow_up=c)  # fmt: skip
    a = coupon(code="CHAIN-A", percent_off="50", duration="repeating", duration_months=1,
               follow_up=b)  # fmt: skip

    def actions(day):
        if day == date(2027, 1, 1):
            paid_monthly(day, slug="acme")
            workspace(as_of=day, slug="other")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 1, 5):
            coupons.redeem_coupon(
                Workspace.objects.get(slug="other"), c.code, by=support, as_of=day
            )
        if day == date(2027, 1, 10):
            coupons.redeem_coupon(ws, a.code, by=support, as_of=day)
        if day == date(2027, 2, 10):
            services.record_usage(ws, month=date(2027, 2, 1), mtus=12_000)
        if day == date(2027, 4, 10):
            services.record_usage(ws, month=date(2027, 4, 1), mtus=13_000)

    def read():
        ws = Workspace.objects.get(slug="acme")
        return (
            [(b[1], b[4], b[5], b[8]) for b in bills(ws)],
            redemptions(ws),
            Coupon.objects.get(code="CHAIN-C").times_redeemed,
        )

    invoices, used, c_count = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 6, 1), actions, read
    )
    assert invoices == [
        (date(2027, 2, 1), D("120.00"), D("60.00"), D("60.00")),
        (date(2027, 3, 1), D("140.00"), D("35.00"), D("105.00")),
        (date(2027, 4, 1), D("120.00"), D("30.00"), D("90.00")),
        (date(2027, 5, 1), D("150.00"), D("10.00"), D("140.00")),
        (date(2027, 6, 1), D("120.00"), D("0.00"), D("120.00")),
    ]
    assert used == [
        ("CHAIN-A", date(2027, 1, 10), False, False, "ended", date(2027, 2, 1)),
        ("CHAIN-B", date(2027, 2, 1), True, True, "ended", date(2027, 4, 1)),
        ("CHAIN-C", date(2027, 4, 1), True, True, "ended", date(2027, 5, 1)),
    ]
    assert c_count == 1


def test_c2_c5_redeem_by_on_the_day_itself_the_maximum_reached_and_a_follow_up_never_twice(
    db, support
):
    """`F`: 20 % off `forever`, redeem-by 31 January 2027, at most 3 redemptions. `A`: 50 % off
    `repeating` 1 month, follow-up `F`. All paid monthly from 1 January 2027 but `x`, `y`, `z`
    (Free).

    - `x` receives `F` on 5 January (1 of 3), `b` on 6 January (2 of 3); `b`'s is removed on
      7 January; `a` and `b` receive `A` on 10 January.
    - 31 January, the redeem-by day itself (included, C1): `y` receives `F` (3 of 3); `z` is
      refused the same day for the maximum (C2).
    - 1 February: `A` runs out for `a` and `b`. `a` gets `F` from the system (C5: its redeem-by
      date and maximum do not apply); `b` received `F` before, so it does not (C5: never twice)
      and its bill returns to the normal rate.
    - 2 February: `z` is refused as past the redeem-by date (C2 names that reason first).

    Invoices: `a` January (1 February) 60.00, February (1 March) 120.00 − 24.00 = 96.00; `b`
    January 60.00 (`F` removed before, so `A` is its one discount), February 120.00."""
    f = coupon(code="FOLLOW-F", percent_off="20", duration="forever",
               redeem_by=date(2027, 1, 31), max_redemptions=3)  # fmt: skip
    a_coupon = coupon(code="FIRST-A", percent_off="50", duration="repeating",
                      duration_months=1, follow_up=f)  # fmt: skip
    a = paid_monthly(date(2027, 1, 1), slug="a")
    b = paid_monthly(date(2027, 1, 1), slug="b")
    x, y, z = (workspace(as_of=date(2027, 1, 1), slug=s) for s in ("x", "y", "z"))
    coupons.redeem_coupon(x, f.code, by=support, as_of=date(2027, 1, 5))
    coupons.redeem_coupon(b, f.code, by=support, as_of=date(2027, 1, 6))
    coupons.remove_discount(b, by=support, reason="Wrong coupon", as_of=date(2027, 1, 7))
    for ws in (a, b):
        coupons.redeem_coupon(ws, a_coupon.code, by=support, as_of=date(2027, 1, 10))
    services.run_billing(as_of=date(2027, 1, 30))
    coupons.redeem_coupon(y, f.code, by=support, as_of=date(2027, 1, 31))
    assert refusal(z, f.code, date(2027, 1, 31), support) == CouponRefused.MAXIMUM_REACHED
    services.run_billing(as_of=date(2027, 2, 1))
    assert refusal(z, f.code, date(2027, 2, 2), support) == CouponRefused.PAST_REDEEM_BY
    services.run_billing(as_of=date(2027, 3, 1))

    assert [(b_[1], b_[5], b_[8]) for b_ in bills(a)] == [
        (date(2027, 2, 1), D("60.00"), D("60.00")),
        (date(2027, 3, 1), D("24.00"), D("96.00")),
    ]
    assert [(b_[1], b_[5], b_[8]) for b_ in bills(b)] == [
        (date(2027, 2, 1), D("60.00"), D("60.00")),
        (date(2027, 3, 1), D("0.00"), D("120.00")),
    ]
    assert redemptions(a)[1] == ("FOLLOW-F", date(2027, 2, 1), True, True, "active", None)
    assert [r[0] for r in redemptions(b)] == ["FOLLOW-F", "FIRST-A"]
    assert Coupon.objects.get(code="FOLLOW-F").times_redeemed == 3
    assert not Redemption.objects.filter(workspace=z).exists()


# --- C2: refusals on edge days ------------------------------------------------------------------


def test_c2_c5_a_discount_already_active_until_the_day_a_repeating_coupon_runs_out(db, support):
    """`plain` and `chained`, paid monthly from 1 January 2027, each receive 25 % off
    `repeating` 2 months on 1 January (billing months January and February; it runs out on
    1 March); `chained`'s coupon has a follow-up, 5 % off `forever`. `N`: 10 % off `repeating`
    3 months.

    - 28 February, the last day of its last month: `N` is refused to `plain` (a discount is
      already active, C2).
    - 1 March: the 25 % ran out that day; `plain` receives `N` (billing months March, April,
      May); `chained` is refused: its follow-up is active from 1 March (C5, C2).

    `plain`: January and February 90.00 each (1 February, 1 March); March–May 108.00 each
    (1 April, 1 May, 1 June); June 120.00 (1 July). `chained`: 90.00, 90.00, then 120.00 −
    6.00 = 114.00 each month from March (1 April … 1 July)."""
    after = coupon(code="AFTER5", percent_off="5", duration="forever")
    first = coupon(code="FIRST25", percent_off="25", duration="repeating", duration_months=2)
    first_chained = coupon(code="FIRST25F", percent_off="25", duration="repeating",
                           duration_months=2, follow_up=after)  # fmt: skip
    n = coupon(code="NEXT10", percent_off="10", duration="repeating", duration_months=3)
    plain = paid_monthly(date(2027, 1, 1), slug="plain")
    chained = paid_monthly(date(2027, 1, 1), slug="chained")
    coupons.redeem_coupon(plain, first.code, by=support, as_of=date(2027, 1, 1))
    coupons.redeem_coupon(chained, first_chained.code, by=support, as_of=date(2027, 1, 1))
    services.run_billing(as_of=date(2027, 2, 27))
    assert refusal(plain, n.code, date(2027, 2, 28), support) == CouponRefused.DISCOUNT_ACTIVE
    services.run_billing(as_of=date(2027, 2, 28))
    coupons.redeem_coupon(plain, n.code, by=support, as_of=date(2027, 3, 1))
    assert refusal(chained, n.code, date(2027, 3, 1), support) == CouponRefused.DISCOUNT_ACTIVE
    services.run_billing(as_of=date(2027, 7, 1))
    assert [(b[1], b[5], b[8]) for b in bills(plain)] == [
        (date(2027, 2, 1), D("30.00"), D("90.00")),
        (date(2027, 3, 1), D("30.00"), D("90.00")),
        (date(2027, 4, 1), D("12.00"), D("108.00")),
        (date(2027, 5, 1), D("12.00"), D("108.00")),
        (date(2027, 6, 1), D("12.00"), D("108.00")),
        (date(2027, 7, 1), D("0.00"), D("120.00")),
    ]
    assert [b[8] for b in bills(chained)] == [D("90.00"), D("90.00")] + [D("114.00")] * 4


def test_c2_k4_a_monthly_only_coupon_on_the_days_of_a_change_to_annual(db, support):
    """`M`: 10 % off `forever`, monthly bills only. Two workspaces paid monthly from 1 January
    2027 move to annual on 15 March (K4).

    - `early` receives `M` on 14 March, still monthly: accepted. Its final invoice dated
      15 March for 1–14 March, 120 × 14/31 = 54.1935… → 54.19, takes 10 % = 5.419 → 5.42:
      48.77; its annual invoice that day, 1,440.00, takes nothing (C1: monthly bills only).
    - `late` is refused `M` on 15 March, after its change that day: on annual Team, an
      interval the coupon does not cover (C2). Its final invoice: 54.19; annual 1,440.00."""
    m = coupon(code="MONTHLY10", percent_off="10", duration="forever", intervals=("monthly",))
    early = paid_monthly(date(2027, 1, 1), slug="early")
    late = paid_monthly(date(2027, 1, 1), slug="late")
    services.run_billing(as_of=date(2027, 3, 13))
    coupons.redeem_coupon(early, m.code, by=support, as_of=date(2027, 3, 14))
    for ws in (early, late):
        services.change_interval(ws, interval="annual", as_of=date(2027, 3, 15))
    assert refusal(late, m.code, date(2027, 3, 15), support) == CouponRefused.INTERVAL_NOT_COVERED
    services.run_billing(as_of=date(2027, 4, 2))
    march = date(2027, 3, 15)
    assert [(b[0], b[1], b[4], b[5], b[8]) for b in bills(early) if b[1] >= march] == [
        ("final", march, D("54.19"), D("5.42"), D("48.77")),
        ("annual", march, D("1440.00"), D("0.00"), D("1440.00")),
    ]
    assert [(b[0], b[1], b[4], b[5], b[8]) for b in bills(late) if b[1] >= march] == [
        ("final", march, D("54.19"), D("0.00"), D("54.19")),
        ("annual", march, D("1440.00"), D("0.00"), D("1440.00")),
    ]


def test_c2_k4_a_monthly_only_coupon_on_the_day_an_annual_term_turns_monthly(db, support):
    """Annual Team from 10 January 2026 (term to 10 January 2027); on 1 June 2026 asked to go
    monthly, which K4 applies at the term's end: from 10 January 2027 it is on monthly Team.
    `M` (10 % off `forever`, monthly bills only):

    - on 9 January 2027, the term's last day, refused: on annual Team (C2);
    - on 10 January 2027, the term's end date and its first monthly day, accepted: on that
      date the workspace is on monthly Team, an interval the coupon covers.

    January 2027's invoice (1 February): 10–31 January, 120 × 22/31 = 85.1612… → 85.16; 10 %
    = 8.516 → 8.52; 76.64.

    The code refused the coupon on 10 January as "on Team billed annually": `redeem_coupon`
    catches the workspace up to the day before only (`catch_up`, as_of − 1), so the term's
    end (a switch to monthly dated that day) was not applied yet when C2 read the interval;
    C2 now reads the interval that day's term end gives (`coupons.redemptions.team_on`)."""
    m = coupon(code="MONTHLY10", percent_off="10", duration="forever", intervals=("monthly",))
    ws = paid_annual(date(2026, 1, 10), slug="acme")
    services.change_interval(ws, interval="monthly", as_of=date(2026, 6, 1))
    services.run_billing(as_of=date(2027, 1, 8))
    assert refusal(ws, m.code, date(2027, 1, 9), support) == CouponRefused.INTERVAL_NOT_COVERED
    services.run_billing(as_of=date(2027, 1, 9))
    coupons.redeem_coupon(ws, m.code, by=support, as_of=date(2027, 1, 10))
    services.run_billing(as_of=date(2027, 2, 1))
    assert [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(ws)][-1] == (
        "monthly",
        date(2027, 2, 1),
        date(2027, 1, 10),
        D("85.16"),
        D("8.52"),
        D("76.64"),
    )


# --- C6, C7: non-profit proofs and partners' credit ---------------------------------------------


def test_c6_c4_x3_k4_a_non_profit_proof_on_a_prorated_month_and_a_move_to_annual(
    db, django_capture_on_commit_callbacks, support
):
    """California, 7.25 % (seeded). Paid monthly from 20 January 2027. C6: `NONPROFIT` ($120.00
    off the monthly Team bill, forever) only with an approved proof: refused on 20 January (no
    proof) and on 21 January (a proof submitted that day, not approved); the proof approved on
    22 January applies it at once.

    - January, 12 paid days of 31 (1 February): 120 × 12/31 = 46.4516… → 46.45; C4: min(120.00,
      46.45) = 46.45 off; 0.00, no tax, still issued (M1).
    - February, 13,000 MTUs (1 March): 120.00 + 30.00 = 150.00 − 120.00 = 30.00; tax 30.00 ×
      7.25 % = 2.175 → 2.18 (half up); 32.18.
    - Monthly → annual on 16 March (K4): final invoice dated 16 March for 1–15 March, 120 ×
      15/31 = 58.0645… → 58.06, all of it off: 0.00; the annual invoice the same day, 1,440.00:
      `NONPROFIT` covers monthly bills only (C8): tax 104.40, 1,544.40."""
    refused = []

    def actions(day):
        if day == date(2027, 1, 20):
            ws = paid_monthly(day, slug="shelter", business_region="CA")
            refused.append(refusal(ws, "NONPROFIT", day, support))
        ws = Workspace.objects.get(slug="shelter")
        if day == date(2027, 1, 21):
            proof = coupons.submit_nonprofit_proof(
                ws, document=ContentFile(PDF, name="status.pdf"), by=support, as_of=day
            )
            refused.append(refusal(ws, "NONPROFIT", day, support))
            assert proof.status == NonprofitProof.Status.SUBMITTED
        if day == date(2027, 1, 22):
            proof = NonprofitProof.objects.get(workspace=ws)
            coupons.approve_nonprofit_proof(proof, by=support, as_of=day)
        if day == date(2027, 2, 10):
            services.record_usage(ws, month=date(2027, 2, 1), mtus=13_000)
        if day == date(2027, 3, 16):
            services.change_interval(ws, interval="annual", as_of=day)

    def read():
        found = list(refused)
        refused.clear()
        ws = Workspace.objects.get(slug="shelter")
        return [(b[0], b[1], b[4], b[5], b[7], b[8]) for b in bills(ws)], found

    invoices, reasons = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 20), date(2027, 3, 20), actions, read
    )
    assert reasons == [CouponRefused.NO_NONPROFIT_PROOF] * 2
    assert invoices == [
        ("monthly", date(2027, 2, 1), D("46.45"), D("46.45"), D("0.00"), D("0.00")),
        ("monthly", date(2027, 3, 1), D("150.00"), D("120.00"), D("2.18"), D("32.18")),
        ("final", date(2027, 3, 16), D("58.06"), D("58.06"), D("0.00"), D("0.00")),
        ("annual", date(2027, 3, 16), D("1440.00"), D("0.00"), D("104.40"), D("1544.40")),
    ]


def test_c7_cr1_cr2_a_partners_credit_amount_changed_between_two_approvals(db, reviewer, support):
    """An accelerator partner applies on 4 January 2027 and is approved on 5 January with its
    own credit of 5,000.00 a year (C7). `one`, paid monthly from 1 February, is approved into
    the program on 10 February: a 5,000.00 grant, 10 February 2027 – 10 February 2028 (CR1).
    The partner's amount is then changed to 8,000.00; `two`, approved on 20 February, gets
    8,000.00, and `one`'s grant stays 5,000.00 (a grant is made with the amount of its day).
    The partner is deactivated on 25 February; `three`, approved on 26 February, gets the
    `STARTUP` coupon's 25,000.00 (SPEC is silent on an inactive partner's amount: C7's
    override is read as the active partner's; pinned).

    February's invoices, 1 March (CR2): 120.00 each, credited in full: 4,880.00, 7,880.00 and
    24,880.00 left."""
    partner = coupons.apply_as_partner(
        "Harbor Labs",
        contact_name="Ines",
        contact_email="ines@harbor.example",
        as_of=date(2027, 1, 4),
    )
    coupons.approve_partner(partner, by=support, as_of=date(2027, 1, 5), credit_amount="5000.00",
                            note="Cohort terms agreed")  # fmt: skip
    one, two, three = (paid_monthly(date(2027, 2, 1), slug=s) for s in ("one", "two", "three"))
    apps = [application(workspace=ws, partner=partner, as_of=date(2027, 2, 2)) for ws in (one, two)]
    startups.approve_application(apps[0], by=reviewer, as_of=date(2027, 2, 10))
    coupons.update_partner(partner, by=support, reason="New cohort terms", credit_amount="8000.00")
    startups.approve_application(apps[1], by=reviewer, as_of=date(2027, 2, 20))
    coupons.deactivate_partner(partner, by=support, reason="Program ended",
                               as_of=date(2027, 2, 25))  # fmt: skip
    late = application(workspace=three, partner=partner, as_of=date(2027, 2, 25))
    startups.approve_application(late, by=reviewer, as_of=date(2027, 2, 26))
    grants = [
        (g.workspace.slug, g.amount, g.valid_from, g.valid_until)
        for g in CreditGrant.objects.order_by("valid_from")
    ]
    assert grants == [
        ("one", D("5000.00"), date(2027, 2, 10), date(2028, 2, 10)),
        ("two", D("8000.00"), date(2027, 2, 20), date(2028, 2, 20)),
        ("three", D("25000.00"), date(2027, 2, 26), date(2028, 2, 26)),
    ]
    services.run_billing(as_of=date(2027, 3, 1))
    for ws, left in ((one, "4880.00"), (two, "7880.00"), (three, "24880.00")):
        february = Invoice.objects.get(workspace=ws, issue_date=date(2027, 3, 1))
        assert (february.subtotal, february.credits, february.total) == (
            D("120.00"),
            D("120.00"),
            D("0.00"),
        )
        assert workspace_status(ws, as_of=date(2027, 3, 1))["credit_balance"] == D(left)


# --- X: tax with coupons and credits -------------------------------------------------------------


def test_x3_c4_cr2_i2_i5_half_cents_round_up_on_the_discount_and_on_the_tax(
    db, django_capture_on_commit_callbacks, support
):
    """California, 7.25 %. Paid monthly from 1 January 2027; 12.5 % off `once` and a 73.37
    grant, both on 15 January. January, 12,100 MTUs (1 February):

    - 120.00 + 2,100 × 0.01 = 21.00 → subtotal 141.00;
    - C4: 141.00 × 12.5 / 100 = 17.625 → 17.63 (half up; to even would give 17.62);
    - CR2: after the discount 123.37, credited 73.37 (all the grant), 50.00 left to tax;
    - X3: 50.00 × 7.25 % = 3.625 → 3.63 (half up; to even would give 3.62);
    - I2: 141.00 − 17.63 − 73.37 + 3.63 = 53.63; its lines add up to it.

    February (1 March): 120.00, the coupon used and the grant empty: tax 8.70, 128.70.
    I5: the document lists the stored lines and totals, the tax rate 7.25 %."""

    def actions(day):
        if day == date(2027, 1, 1):
            paid_monthly(day, slug="acme", business_region="CA", name="Acme")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 1, 15):
            promo = coupon(code="HALF125", percent_off="12.5", duration="once")
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
            coupons.grant_credits(ws, amount="73.37", as_of=day, year=1, by=support)
        if day == date(2027, 1, 20):
            services.record_usage(ws, month=date(2027, 1, 1), mtus=12_100)

    def read():
        ws = Workspace.objects.get(slug="acme")
        lines = [
            sorted((line.kind, line.amount) for line in invoice.lines.all())
            for invoice in Invoice.objects.filter(workspace=ws).order_by("issue_date")
        ]
        return [b[1:] for b in bills(ws)], lines

    invoices, lines = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    jan, feb, mar = date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1)
    assert invoices == [
        (feb, jan, feb, D("141.00"), D("17.63"), D("73.37"), D("3.63"), D("53.63")),
        (mar, feb, mar, D("120.00"), D("0.00"), D("0.00"), D("8.70"), D("128.70")),
    ]
    assert lines[0] == [
        ("base", D("120.00")),
        ("credit", D("-73.37")),
        ("discount", D("-17.63")),
        ("overage", D("21.00")),
        ("tax", D("3.63")),
    ]
    assert sum(amount for _, amount in lines[0]) == D("53.63")

    # The same days, kept this time, for the document (I5).
    services.run_billing(as_of=date(2027, 1, 1))  # nothing dated yet: a fresh start
    for day in (date(2027, 1, 1), date(2027, 1, 15), date(2027, 1, 20)):
        actions(day)
    services.run_billing(as_of=date(2027, 2, 1))
    doc = invoice_document(Invoice.objects.get(workspace__slug="acme"))
    assert (doc.number, doc.customer_name, doc.customer_location) == (
        "INV-2027-000001",
        "Acme",
        "California, United States of America",
    )
    assert ("Tax rate", "7.25 %") in doc.facts
    assert [line.amount for line in doc.lines] == ["$120.00", "$21.00"]
    assert [amount for _, amount in doc.totals] == [
        "$141.00",
        "-$17.63",
        "-$73.37",
        "$3.63",
        "$53.63",
    ]


def test_x4_k1_an_exemption_certificate_starting_mid_month(
    db, django_capture_on_commit_callbacks, finance, settings, tmp_path
):
    """California, 7.25 %. Paid monthly from 1 January 2027. A non-profit certificate for CA,
    valid from 15 February 2027 (no end), submitted on 1 February and approved on 5 February.
    X4: tax is waived only when the certificate was approved by the issue date and is valid
    on it.

    - January (1 February): submitted that day, not approved: 120.00 + 8.70 = 128.70, the tax
      note naming it as still in review.
    - Cancelled on 10 February (K1): final invoice for 1–9 February, 120 × 9/28 = 38.5714… →
      38.57; approved, but not valid before 15 February: 38.57 × 7.25 % = 2.7963… → 2.80;
      41.37, the note saying so.
    - Back on Team on 20 February (T1): February's close (1 March) bills 20–28 February, 9
      days: 38.57 again, now exempt: tax 0.00, total 38.57, note "exempt: certificate #N
      (nonprofit)"."""
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"

    def actions(day):
        if day == date(2027, 1, 1):
            paid_monthly(day, slug="acme", business_region="CA")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 2, 1):
            certificate(ws, "CA", on=day, valid_from=date(2027, 2, 15))
        if day == date(2027, 2, 5):
            services.approve_exemption(
                TaxExemption.objects.get(workspace=ws), by=finance, as_of=day
            )
        if day == date(2027, 2, 10):
            services.change_to_free(ws, as_of=day)
        if day == date(2027, 2, 20):
            services.change_to_team(ws, as_of=day)

    def read():
        pk = TaxExemption.objects.get().pk
        return [
            (i.kind, i.issue_date, i.subtotal, i.tax, i.total, i.tax_note.replace(f"#{pk} ", "#N "))
            for i in Invoice.objects.order_by("issue_date", "id")
        ]

    invoices = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 3, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 2, 1), D("120.00"), D("8.70"), D("128.70"),
         "certificate #N still in review on 1 Feb 2027"),
        ("final", date(2027, 2, 10), D("38.57"), D("2.80"), D("41.37"),
         "certificate #N valid from 15 Feb 2027, not on 10 Feb 2027"),
        ("monthly", date(2027, 3, 1), D("38.57"), D("0.00"), D("38.57"),
         "exempt: certificate #N (nonprofit)"),
    ]  # fmt: skip


def test_x2_w1_k1_a_rate_change_on_the_1st_and_closures_that_day_and_the_day_after(
    db, django_capture_on_commit_callbacks, support
):
    """Texas, 6.25 % seeded; 6.5 % from 1 March 2027 (X2, entered ahead). `closer` and `leaver`,
    paid monthly from 1 February 2027, 12,500 MTUs each in February; `leaver` reports 10,100
    for March on 1 March.

    - `closer` is closed on 1 March (W1): March has no paid day before the 1st, so no final
      invoice (K1); February's close that day bills 120.00 + 25.00 = 145.00 at the rate in
      force on its issue date, 6.5 %: 9.425 → 9.43 (half up); 154.43.
    - `leaver` is closed on 2 March: February's invoice the same 154.43; its final invoice
      dated 2 March bills 1 March, 120 × 1/31 = 3.8709… → 3.87 + 100 × 0.01 = 1.00 → 4.87,
      tax 4.87 × 6.5 % = 0.31655 → 0.32; 5.19.

    Then nothing more for either (W1: data stopped, no further usage billed)."""
    services.set_tax_rate("US", region="TX", rate="6.5", name="TX sales tax",
                          valid_from=date(2027, 3, 1))  # fmt: skip

    def actions(day):
        if day == date(2027, 2, 1):
            for slug in ("closer", "leaver"):
                paid_monthly(day, slug=slug, business_region="TX")
        closer, leaver = (Workspace.objects.get(slug=s) for s in ("closer", "leaver"))
        if day == date(2027, 2, 10):
            for ws in (closer, leaver):
                services.record_usage(ws, month=date(2027, 2, 1), mtus=12_500)
        if day == date(2027, 3, 1):
            services.record_usage(leaver, month=date(2027, 3, 1), mtus=10_100)
            close(closer, support, day)
        if day == date(2027, 3, 2):
            close(leaver, support, day)

    def read():
        return {
            slug: [(b[0], b[1], b[2], b[3], b[4], b[7], b[8]) for b in bills(ws)]
            for slug, ws in ((s, Workspace.objects.get(slug=s)) for s in ("closer", "leaver"))
        }

    invoices = both_ways(
        django_capture_on_commit_callbacks, date(2027, 2, 1), date(2027, 4, 2), actions, read
    )
    feb, mar1, mar2 = date(2027, 2, 1), date(2027, 3, 1), date(2027, 3, 2)
    february = ("monthly", mar1, feb, mar1, D("145.00"), D("9.43"), D("154.43"))
    assert invoices == {
        "closer": [february],
        "leaver": [february, ("final", mar2, mar1, mar2, D("4.87"), D("0.32"), D("5.19"))],
    }


# --- K3, I3: credit notes ------------------------------------------------------------------------


def test_k3_x3_i3_credit_notes_give_back_tax_in_parts_with_waiting_requests(db, support, finance):
    """California, 7.25 %. Paid monthly from 1 January 2027; 25 % off `once` and a 40.00
    grant from 2 January. January, 12,000 MTUs (1 February): 140.00 − 35.00 (C4) − 40.00
    (CR2) = 65.00 taxable; tax 65.00 × 7.25 % = 4.7125 → 4.71; total 69.71.

    K3 on it: 30.00 requested on 5 February and waiting; 40.00 more is refused (with 30.00
    waiting, at most 69.71 − 30.00 = 39.71 now); 39.71 is accepted. Approved on 6 and 7
    February, they give back tax in proportion, to the cent, the second taking what is left:
    30.00 × 4.71 / 69.71 = 2.0269… → 2.03; then 69.71 × 4.71 / 69.71 = 4.71, less 2.03 =
    2.68. 2.03 + 2.68 = 4.71, the invoice's tax exactly. Nothing is left: 0.01 more is refused,
    and so is a void (I3: refunded already).

    February (1 March): 120.00 + 8.70 = 128.70 (coupon used, grant empty). Voided on 2 March
    (I3), after which a credit note on it is refused: nothing to refund."""
    ws = paid_monthly(date(2027, 1, 1), business_region="CA")
    coupons.redeem_coupon(
        ws, coupon(percent_off="25", duration="once").code, by=support, as_of=date(2027, 1, 2)
    )
    coupons.grant_credits(ws, amount="40.00", as_of=date(2027, 1, 2), year=1, by=support)
    services.record_usage(ws, month=date(2027, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2027, 2, 1))
    january = Invoice.objects.get(workspace=ws)
    assert (january.subtotal, january.discount, january.credits, january.tax, january.total) == (
        D("140.00"),
        D("35.00"),
        D("40.00"),
        D("4.71"),
        D("69.71"),
    )

    def ask(amount, reason):
        return services.request_credit_note(
            january, by=support, amount=amount, reason=reason, as_of=date(2027, 2, 5)
        )

    first = ask("30.00", "Outage on 12 January")
    with pytest.raises(BillingError, match=r"at most \$39\.71 now"):
        ask("40.00", "Slow syncs")
    second = ask("39.71", "Slow syncs")
    notes = [
        services.decide_credit_note(note, by=finance, approve=True, as_of=on)
        for note, on in ((first, date(2027, 2, 6)), (second, date(2027, 2, 7)))
    ]
    assert [(n.amount, n.tax) for n in notes] == [(D("30.00"), D("2.03")), (D("39.71"), D("2.68"))]
    assert sum(n.tax for n in notes) == january.tax
    assert services.refundable_amount(january) == D("0.00")
    with pytest.raises(BillingError, match=r"at most \$0\.00"):
        ask("0.01", "Goodwill")
    with pytest.raises(BillingError, match=r"\$69\.71 of it was refunded already"):
        services.void_invoice(january, by=finance, reason="Duplicate", as_of=date(2027, 2, 8))

    services.run_billing(as_of=date(2027, 3, 1))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2027, 3, 1))
    assert (february.subtotal, february.tax, february.total) == (
        D("120.00"),
        D("8.70"),
        D("128.70"),
    )
    services.void_invoice(february, by=finance, reason="Billed in error", as_of=date(2027, 3, 2))
    with pytest.raises(BillingError, match="is void: there is nothing to refund"):
        services.request_credit_note(
            february, by=support, amount="10.00", reason="Outage", as_of=date(2027, 3, 3)
        )
    # I5: the voided invoice's document still shows what it billed, marked void.
    february.refresh_from_db()
    doc = invoice_document(february)
    assert (doc.banner, doc.notes) == (
        "Void",
        ["Voided on 2 Mar 2027: nothing is due on this invoice."],
    )
    assert doc.totals[-1] == ("Total (USD)", "$128.70")


def test_i5_k3_the_credit_note_document_shows_the_tax_given_back(db, support, finance):
    """California, 7.25 %: paid monthly from 1 January 2027, January 120.00 + 8.70 = 128.70
    (1 February). A credit note of 50.00 approved on 3 February gives back 50.00 × 8.70 /
    128.70 = 3.3799… → 3.38 of tax: its document (I5) credits 50.00 − 3.38 = 46.62 before
    tax, 3.38 of tax, 50.00 in all, naming the invoice, its date and period, and the customer
    as invoiced."""
    ws = paid_monthly(date(2027, 1, 1), business_region="CA", name="Acme")
    services.run_billing(as_of=date(2027, 2, 1))
    invoice = Invoice.objects.get(workspace=ws)
    note = services.request_credit_note(
        invoice, by=support, amount="50.00", reason="Outage", as_of=date(2027, 2, 2)
    )
    note = services.decide_credit_note(note, by=finance, approve=True, as_of=date(2027, 2, 3))
    doc = credit_note_document(note)
    facts = dict(doc.facts)
    assert (facts["Credits invoice"], facts["Invoice total"]) == (
        "INV-2027-000001 of 1 Feb 2027",
        "$128.70",
    )
    assert (doc.customer_name, doc.customer_location) == (
        "Acme",
        "California, United States of America",
    )
    assert [line.amount for line in doc.lines] == ["$46.62"]
    assert doc.totals == [("Tax given back", "$3.38"), ("Total credited (USD)", "$50.00")]


# --- G1–G3: campaigns ---------------------------------------------------------------------------


def _audience(promo, on, **filters):
    """G1: the slugs a campaign with `filters` reaches on `on`, and its refusals by reason."""
    campaign = create_campaign(
        f"Spring {Campaign.objects.count() + 1}",  # a name of its own (G1)
        promo.code,
        "10 % off",
        "Ten percent off your next bill.",
        filters,
    )
    ids, refusals = campaign_audience(campaign, on)
    return sorted(Workspace.objects.filter(pk__in=ids).values_list("slug", flat=True)), refusals


def test_g1_audiences_read_on_the_last_day_of_january_and_on_2_february(db, support):
    """Workspaces (US, Oregon):
    - `member`: paid monthly from 1 January 2026, a grant from 1 February 2026, valid up to,
      not including, 1 February 2027 (CR1): a member through 31 January 2027, not after;
    - `mover`: paid monthly from 1 January 2027, annual from 1 February 2027 (K4);
    - `heavy`: paid monthly from 1 January 2027, 11,000 MTUs in January; `over`: the same with
      11,001;
    - `locker`: Free from 1 December 2026, 2,000 MTUs in January: a strike at January's close
      (1 February), `locked` from that day (F1, F2);
    - `light`: Free from 1 December 2026, 1,000 MTUs in January (no strike: not more than
      1,000);
    - `newcomer`: Free, signed up on 1 February 2027.

    On 31 January 2027 (the clock through 30 January): `locked` reaches nobody; members:
    `member`; monthly Team: `heavy`, `member`, `mover`, `over`.
    On 2 February 2027 (the clock through 1 February; January is the last closed month):
    `locked`: `locker`; members: nobody; monthly Team: `heavy`, `member`, `over`; annual Team:
    `mover`; MTUs from 1,001 to 11,000 in January: `heavy` and `locker` (both bounds included:
    `light`'s 1,000 and `over`'s 11,001 are out); created before 2027-02-01: all but
    `newcomer`; created after 2027-01-31: `newcomer` only.

    SPEC is silent on whether "created before/after a date" includes the date and whether an
    MTU range includes its bounds: the code reads the dates strictly (created on the date is
    neither before nor after it) and the bounds inclusively; pinned. The promotion (10 % off
    once, both intervals) refuses nobody here."""
    promo = coupon(code="SPRING10", percent_off="10", duration="once")
    member = paid_monthly(date(2026, 1, 1), slug="member")
    coupons.grant_credits(member, amount="100.00", as_of=date(2026, 2, 1), year=1, by=support)
    mover = paid_monthly(date(2027, 1, 1), slug="mover")
    heavy = paid_monthly(date(2027, 1, 1), slug="heavy")
    over = paid_monthly(date(2027, 1, 1), slug="over")
    locker = workspace(as_of=date(2026, 12, 1), slug="locker")
    light = workspace(as_of=date(2026, 12, 1), slug="light")
    for ws, mtus in ((heavy, 11_000), (over, 11_001), (locker, 2_000), (light, 1_000)):
        services.record_usage(ws, month=date(2027, 1, 1), mtus=mtus)
    services.run_billing(as_of=date(2027, 1, 30))
    jan31 = date(2027, 1, 31)
    assert _audience(promo, jan31, lock="locked") == ([], {})
    assert _audience(promo, jan31, startup_member=True) == (["member"], {})
    assert _audience(promo, jan31, plan="team", interval="monthly") == (
        ["heavy", "member", "mover", "over"],
        {},
    )

    # Entered after the look on 31 January: K4's annual invoice dated 1 February, issued at
    # once, would otherwise leave `mover` out that day as invoiced already (D4, C2).
    services.change_interval(mover, interval="annual", as_of=date(2027, 2, 1))
    workspace(as_of=date(2027, 2, 1), slug="newcomer")
    services.run_billing(as_of=date(2027, 2, 1))
    feb2 = date(2027, 2, 2)
    assert _audience(promo, feb2, lock="locked") == (["locker"], {})
    assert _audience(promo, feb2, startup_member=True) == ([], {})
    assert _audience(promo, feb2, plan="team", interval="monthly") == (
        ["heavy", "member", "over"],
        {},
    )
    assert _audience(promo, feb2, plan="team", interval="annual") == (["mover"], {})
    assert _audience(promo, feb2, min_mtus=1_001, max_mtus=11_000) == (["heavy", "locker"], {})
    assert _audience(promo, feb2, created_before="2027-02-01") == (
        ["heavy", "light", "locker", "member", "mover", "over"],
        {},
    )
    assert _audience(promo, feb2, created_after="2027-01-31") == (["newcomer"], {})


def test_g2_g3_w1_i3_launched_on_28_february_redemptions_and_discount_given(
    db, django_capture_on_commit_callbacks, support, finance
):
    """20 % off `repeating` 2 months, monthly bills (C5: the billing months of the redemption
    and the next). `a`, `b`, `c` paid monthly from 1 February 2027. `b` receives the coupon
    on 27 February, before any launch: left out as already received (G1) and not attributed.
    Launched on 28 February, the month's last day (G2): `a` and `c` emailed, once each; both
    redeem that day: attributed (G3), billing months February and March.

    - `a`, 15,000 MTUs in February (1 March): 170.00 × 20 % = 34.00 off; March (1 April):
      24.00 off.
    - `c`: February 24.00 off; closed on 15 March (W1): final invoice for 1–14 March, 120 ×
      14/31 = 54.1935… → 54.19, 20 % = 10.838 → 10.84 off, 43.35; the discount then ends.
    - Discount given by the campaign: 34.00 + 24.00 + 24.00 + 10.84 = 92.84 (March's issue
      dates 58.00 + 10.84 = 68.84, April's 24.00). `c`'s final invoice voided on 20 March
      (I3): a voided invoice gave nothing: 82.00 (March 58.00).

    A launch needs the clock up to date (a month close not run before its day makes it wait:
    D4), so this runs with the clock day by day only."""
    spring = coupon(code="SPRING20", percent_off="20", duration="repeating", duration_months=2,
                    intervals=("monthly",))  # fmt: skip
    a, b, c = (paid_monthly(date(2027, 2, 1), slug=s) for s in ("a", "b", "c"))
    services.record_usage(a, month=date(2027, 2, 1), mtus=15_000)
    campaign = create_campaign(
        "Spring", spring.code, "20 % off", "Two months at 20 % off.", {"plan": "team"}, by=support
    )
    services.run_billing(as_of=date(2027, 2, 26))
    coupons.redeem_coupon(b, spring.code, by=support, as_of=date(2027, 2, 27))
    services.run_billing(as_of=date(2027, 2, 27))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 2, 28)) == 2
        assert launch_campaign(campaign, by=support, as_of=date(2027, 2, 28)) == 0
    assert sorted(m.to[0] for m in mail.outbox) == sorted([a.billing_email, c.billing_email])
    for ws in (a, c):
        coupons.redeem_coupon(ws, spring.code, by=support, as_of=date(2027, 2, 28))
    assert {r.workspace.slug: r.campaign_id for r in Redemption.objects.all()} == {
        "a": campaign.pk,
        "b": None,
        "c": campaign.pk,
    }
    services.run_billing(as_of=date(2027, 3, 14))
    close(c, support, date(2027, 3, 15))
    services.run_billing(as_of=date(2027, 4, 1))
    assert [(i[0], i[1], i[4], i[5], i[8]) for i in bills(c)] == [
        ("monthly", date(2027, 3, 1), D("120.00"), D("24.00"), D("96.00")),
        ("final", date(2027, 3, 15), D("54.19"), D("10.84"), D("43.35")),
    ]
    assert [(i[1], i[5], i[8]) for i in bills(a)] == [
        (date(2027, 3, 1), D("34.00"), D("136.00")),
        (date(2027, 4, 1), D("24.00"), D("96.00")),
    ]

    def given():
        results = campaign_results(campaign)
        series = [(p["month"], p["redemptions"], p["discount"]) for p in results["series"]]
        return results["notified"], results["redeemed"], results["discount"], series

    assert given() == (
        2,
        2,
        D("92.84"),
        [
            (date(2027, 2, 1), 2, D("0.00")),
            (date(2027, 3, 1), 0, D("68.84")),
            (date(2027, 4, 1), 0, D("24.00")),
        ],
    )
    final = Invoice.objects.get(workspace=c, kind="final")
    services.void_invoice(final, by=finance, reason="Closed in error", as_of=date(2027, 4, 2))
    assert given()[2:] == (
        D("82.00"),
        [
            (date(2027, 2, 1), 2, D("0.00")),
            (date(2027, 3, 1), 0, D("58.00")),
            (date(2027, 4, 1), 0, D("24.00")),
        ],
    )


# --- I1, I6: numbers across the year end ---------------------------------------------------------


def test_i1_i6_c5_a_november_invoice_set_aside_is_issued_in_january_under_2026(db, support):
    """Three workspaces paid monthly from 1 November 2026. `bad` received 50.00 off `once` on
    15 November and has a November figure from before input was bounded (10,000,000,000,000
    MTUs): November's close (1 December 2026) issues `good` INV-2026-000001 and `leaver`
    INV-2026-000002 (120.00 each) and sets `bad` aside (I6). `leaver` cancels on 31 December:
    final invoice for 1–30 December, 120 × 30/31 = 116.129… → 116.13, INV-2026-000003.
    December's close (1 January 2027): `good` INV-2027-000001, 120.00; `bad`'s December
    invoice is set aside too, waiting for its November one (SPEC is silent on a set-aside
    workspace's next month; the code keeps its invoices in date order: pinned).

    The figure corrected to 12,000 MTUs, the run of 3 January 2027 issues `bad`'s November
    invoice, dated 1 December 2026 (M1): 120.00 + 20.00 = 140.00; the `once` coupon belongs to
    the first invoice dated on or after 15 November, this one (C5): 50.00 off, 90.00. I1:
    numbered in its issue date's year, the next 2026 number, INV-2026-000004 (given when
    issued, gapless); then its December invoice, dated 1 January 2027, 120.00 with nothing
    off, INV-2027-000002. Sequences: 2026 → 4, 2027 → 2."""
    good = paid_monthly(date(2026, 11, 1), slug="good")
    bad = paid_monthly(date(2026, 11, 1), slug="bad")
    leaver = paid_monthly(date(2026, 11, 1), slug="leaver")
    coupons.redeem_coupon(
        bad, coupon(amount_off="50.00", duration="once").code, by=support,
        as_of=date(2026, 11, 15),
    )  # fmt: skip
    Usage.objects.create(workspace=bad, month=date(2026, 11, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 12, 30))
    services.change_to_free(leaver, as_of=date(2026, 12, 31))
    services.run_billing(as_of=date(2027, 1, 2))
    waiting = SetAsideInvoice.objects.filter(workspace=bad).order_by("close__month")
    assert [(e.close.month, e.first_seen_on, e.resolved_on) for e in waiting] == [
        (date(2026, 11, 1), date(2026, 12, 1), None),
        (date(2026, 12, 1), date(2027, 1, 1), None),
    ]
    assert not Invoice.objects.filter(workspace=bad).exists()
    Usage.objects.filter(workspace=bad).update(mtus=12_000)
    services.run_billing(as_of=date(2027, 1, 3))

    numbered = [
        (i.number, i.workspace.slug, i.issue_date, i.subtotal, i.discount, i.total)
        for i in Invoice.objects.order_by("id")
    ]
    dec1, dec31, jan1 = date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 1)
    assert numbered == [
        ("INV-2026-000001", "good", dec1, D("120.00"), D("0.00"), D("120.00")),
        ("INV-2026-000002", "leaver", dec1, D("120.00"), D("0.00"), D("120.00")),
        ("INV-2026-000003", "leaver", dec31, D("116.13"), D("0.00"), D("116.13")),
        ("INV-2027-000001", "good", jan1, D("120.00"), D("0.00"), D("120.00")),
        ("INV-2026-000004", "bad", dec1, D("140.00"), D("50.00"), D("90.00")),
        ("INV-2027-000002", "bad", jan1, D("120.00"), D("0.00"), D("120.00")),
    ]
    assert dict(InvoiceSequence.objects.values_list("year", "last_number")) == {2026: 4, 2027: 2}
    assert {e.resolved_on for e in waiting.all()} == {date(2027, 1, 3)}
    assert good.pk


# --- W1: closures on a trial's end date, a term's end and a month's last day --------------------


def test_w1_t5_c2_closed_on_a_trials_end_date_with_an_unused_coupon(
    db, django_capture_on_commit_callbacks, support
):
    """Signed up into Team with a card on 18 January 2027: trial 18–31 January, end date
    1 February (T3). 20 % off `once` redeemed on 20 January, unused (no invoice yet). Closed
    on the end date, 1 February (W1): the day's changes come first (D1), so the trial ends
    uncharged (T5) and the discount ends; no invoice for January (no paid day). Reopened on
    2 February (Free), back on Team on 3 February, paid at once (T1: it had Team): February
    3–28, 26 days of 28, 120 × 26/28 = 111.428… → 111.43, dated 1 March, with no discount.
    The coupon cannot be given again on 3 February: already received (C2: once, ever)."""
    promo = coupon(code="TRIAL20", percent_off="20", duration="once")
    refused = []

    def actions(day):
        if day == date(2027, 1, 18):
            workspace(as_of=day, plan="team", card=True, slug="acme")
        ws = Workspace.objects.get(slug="acme")
        if day == date(2027, 1, 20):
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        if day == date(2027, 2, 1):
            close(ws, support, day)
        if day == date(2027, 2, 2):
            services.reopen_workspace(ws, by=support, reason="Came back", as_of=day)
        if day == date(2027, 2, 3):
            services.change_to_team(ws, as_of=day)
            refused.append(refusal(ws, promo.code, day, support))

    def read():
        found = list(refused)
        refused.clear()
        ws = Workspace.objects.get(slug="acme")
        return [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(ws)], redemptions(ws), found

    invoices, used, reasons = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 18), date(2027, 3, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 3, 1), date(2027, 2, 3), D("111.43"), D("0.00"), D("111.43"))
    ]
    assert used == [("TRIAL20", date(2027, 1, 20), False, False, "removed", date(2027, 2, 1))]
    assert reasons == [CouponRefused.ALREADY_RECEIVED]


@pytest.mark.parametrize(
    "closed_on, renewed",
    [(date(2027, 3, 14), False), (date(2027, 3, 15), False), (date(2027, 3, 16), True)],
    ids=["the-terms-last-day", "its-end-date", "the-day-after"],
)
def test_w1_k2_c5_annual_team_with_a_forever_coupon_closed_around_its_terms_end(
    db, django_capture_on_commit_callbacks, support, closed_on, renewed
):
    """Annual Team from 15 March 2026 with 10 % off `forever` (both intervals) redeemed that
    day: 1,440.00 − 144.00 = 1,296.00 for 15 March 2026 – 15 March 2027 (K2, C5). 12,000 MTUs
    in March 2027.

    - Closed on 14 March 2027 (the term's last day) or on 15 March (its end date: the day's
      changes come before the renewal, D1): not renewed (W1), nothing more.
    - Closed on 16 March: renewed on 15 March, 1,296.00 again for 15 March 2027 – 15 March
      2028 (the coupon still running), no refund.

    Either way no overage for March 2027 (W1: an annual term bills no further overage after
    a closure) and the discount ends on the closure's day."""
    start = date(2026, 3, 15)
    ws = workspace(as_of=start, card=True, slug="acme")
    services.change_to_team(ws, as_of=start)  # a trial, cancelled at once (T5): Team before,
    services.change_to_free(ws, as_of=start)  # so annual Team below starts paid (T1)
    coupons.redeem_coupon(  # before the change that issues the annual invoice, the same day
        ws, coupon(code="ALWAYS10", percent_off="10", duration="forever").code, by=support,
        as_of=start,
    )  # fmt: skip
    services.change_to_team(ws, interval="annual", as_of=start)

    def actions(day):
        if day == date(2027, 3, 10):
            services.record_usage(ws, month=date(2027, 3, 1), mtus=12_000)
        if day == closed_on:
            close(ws, support, day)

    def read():
        return [(b[0], b[1], b[2], b[3], b[4], b[5], b[8]) for b in bills(ws)], redemptions(ws)

    invoices, used = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 1), date(2027, 4, 2), actions, read
    )
    first = ("annual", date(2026, 3, 15), date(2026, 3, 15), date(2027, 3, 15), D("1440.00"),
             D("144.00"), D("1296.00"))  # fmt: skip
    second = ("annual", date(2027, 3, 15), date(2027, 3, 15), date(2028, 3, 15), D("1440.00"),
              D("144.00"), D("1296.00"))  # fmt: skip
    assert invoices == ([first, second] if renewed else [first])
    assert used == [("ALWAYS10", date(2026, 3, 15), False, False, "removed", closed_on)]


def test_w1_c6_x3_k1_a_non_profit_closed_on_a_months_last_day(
    db, django_capture_on_commit_callbacks, support, settings, tmp_path
):
    """California, 7.25 %. Paid monthly from 1 April 2027; its non-profit proof approved on
    5 April with `NONPROFIT` ($120.00 off, forever, C6). April (1 May): 120.00 − 120.00 = 0.00.
    12,000 MTUs in May; closed on 31 May, the month's last day (W1, K1): final invoice for
    1–30 May, 120 × 30/31 = 116.129… → 116.13 + 20.00 = 136.13; 120.00 off; 16.13 taxed at
    7.25 % = 1.169… → 1.17; 17.30. May's close (1 June) bills nothing more. Reopened on
    1 June, back on Team on 2 June (paid at once, T1): June 2–30, 29 days of 30, 120 × 29/30
    = 116.00 with no discount (W1 ended it, and C2 refuses `NONPROFIT` a second time, already
    received): tax 8.41, 124.41 (1 July)."""
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    refused = []

    def actions(day):
        if day == date(2027, 4, 1):
            paid_monthly(day, slug="shelter", business_region="CA")
        ws = Workspace.objects.get(slug="shelter")
        if day == date(2027, 4, 5):
            proof = coupons.submit_nonprofit_proof(
                ws, document=ContentFile(PDF, name="status.pdf"), by=support, as_of=day
            )
            coupons.approve_nonprofit_proof(proof, by=support, as_of=day)
        if day == date(2027, 5, 10):
            services.record_usage(ws, month=date(2027, 5, 1), mtus=12_000)
        if day == date(2027, 5, 31):
            close(ws, support, day)
        if day == date(2027, 6, 1):
            services.reopen_workspace(ws, by=support, reason="Came back", as_of=day)
        if day == date(2027, 6, 2):
            services.change_to_team(ws, as_of=day)
            refused.append(refusal(ws, "NONPROFIT", day, support))

    def read():
        found = list(refused)
        refused.clear()
        ws = Workspace.objects.get(slug="shelter")
        return [(b[0], b[1], b[2], b[3], b[4], b[5], b[7], b[8]) for b in bills(ws)], found

    invoices, reasons = both_ways(
        django_capture_on_commit_callbacks, date(2027, 4, 1), date(2027, 7, 1), actions, read
    )
    assert invoices == [
        ("monthly", date(2027, 5, 1), date(2027, 4, 1), date(2027, 5, 1), D("120.00"),
         D("120.00"), D("0.00"), D("0.00")),
        ("final", date(2027, 5, 31), date(2027, 5, 1), date(2027, 5, 31), D("136.13"),
         D("120.00"), D("1.17"), D("17.30")),
        ("monthly", date(2027, 7, 1), date(2027, 6, 2), date(2027, 7, 1), D("116.00"),
         D("0.00"), D("8.41"), D("124.41")),
    ]  # fmt: skip
    assert reasons == [CouponRefused.ALREADY_RECEIVED]


def test_k3_c4_cr2_nothing_to_refund_on_an_invoice_brought_to_zero(db, support):
    """Paid monthly from 1 January 2027 with 100.00 off `forever` and a 20.00 grant, both from
    1 January. January (1 February): 120.00 − 100.00 (C4) − 20.00 (CR2) = 0.00, still issued
    (M1). K3: a credit note never exceeds what is left unrefunded: 0.00, so even 0.01 is
    refused; February (1 March), 120.00 − 100.00 = 20.00 with the grant spent, can be credited
    20.00 and not 20.01."""
    ws = paid_monthly(date(2027, 1, 1))
    coupons.redeem_coupon(ws, coupon(amount_off="100.00", duration="forever").code,
                          by=support, as_of=date(2027, 1, 1))  # fmt: skip
    coupons.grant_credits(ws, amount="20.00", as_of=date(2027, 1, 1), year=1, by=support)
    services.run_billing(as_of=date(2027, 3, 1))
    january, february = Invoice.objects.filter(workspace=ws).order_by("issue_date")
    assert (january.discount, january.credits, january.total) == (
        D("100.00"),
        D("20.00"),
        D("0.00"),
    )
    assert (february.discount, february.credits, february.total) == (
        D("100.00"),
        D("0.00"),
        D("20.00"),
    )

    def ask(invoice, amount):
        return services.request_credit_note(
            invoice, by=support, amount=amount, reason="Outage", as_of=date(2027, 3, 2)
        )

    with pytest.raises(BillingError, match=r"at most \$0\.00"):
        ask(january, "0.01")
    with pytest.raises(BillingError, match=r"at most \$20\.00"):
        ask(february, "20.01")
    assert ask(february, "20.00").amount == D("20.00")
