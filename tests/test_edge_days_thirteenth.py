"""A thirteenth set of edge days, each worked by hand from SPEC (figures in each test's docstring
and comments, none computed by the code under test), on combinations the first twelve files
leave out:

- T3 × T4 × T6 × M3 × K2 × F1: trials started on 29 February 2028 (monthly and annual with a
  card, monthly without one): end date 14 March, the reminder on 11 March, March's overage
  waived, the annual term from the end date, the reverted one struck in April.
- P2 × M2 × K1 × K4 × T3 × K2: Team's terms (price, annual price, trial length) dated
  29 February 2028, a mid-month day: a final invoice that day, monthly → annual that day, a
  sign-up into Team the day before and on it, annual Team from it; then terms dated an annual
  and a monthly trial's end date (15 March 2027) with a cancellation and a K4 move that day;
  then terms on the 1st with a cancellation that day and a return mid-month (allowance and
  overage rate changed too).
- C5 × C4 × C6 × P2: one-month repeating coupons redeemed on 31 January and on 29 February
  2028 with a `once` follow-up (half a cent rounded up on a one-day month); a percent and the
  NONPROFIT amount off across a price rise dated 29 February.
- X2 × X3 × K1 × K2 × M1: a tax rate from 29 February 2028 against final, annual and close
  invoices dated 27, 28 and 29 February and 1 March.
- K1 × U1: a month's usage lowered after a final invoice billed its overage, then a return:
  no negative overage.
- W1 × K1 × C5 × T1 × T5 × M3: a workspace closed, reopened and closed again within one month,
  with a forever coupon and raised usage, or after a trial; no trial the second time.
- K2 × F1 × U1: an annual term cancelled to end mid-month whose month's usage is reported on
  its last day; an annual term from 29 February 2028 ending on 1 March 2029, to monthly or Free.
- K3 × X2 × X3 × I3 × M1: credit notes give back the invoice's own tax after the rate changed;
  a 0.00 invoice has nothing to refund, is voided the day after its close and not on it.
- FC1 × P2 × K4 × T3: forecasts of monthly → annual on 28 and on 29 February 2028 across terms
  from 29 February, and of a move to Team before terms that shorten the trial, each equal to
  what the clock then issues, nothing written; a forecast of a one-month coupon from 31
  January whose `once` follow-up the forecast's clock never writes.
- W1 × K2 × T1: an annual term closed and annual Team taken again in the same month: the
  month's overage billed once, on the new term.

The multi-day scenarios run the billing clock day by day and in one catch-up run (D4), with
identical outcomes, as the other edge-day files do.
"""

from datetime import date
from decimal import Decimal as D

import pytest

from billing import services
from billing.errors import BillingError, DayAlreadyProcessed
from billing.forecast import forecast_invoices
from billing.models import Invoice, Strike
from coupons import services as coupons
from coupons.models import Redemption
from tests.coupons.factories import approved_proof, coupon
from tests.scenarios.clock import both_ways
from tests.scenarios.figures import (
    brief,
    everything,
    forecast_figures,
    locks,
    status,
    totals,
)
from tests.scenarios.workspaces import new, new_terms, paid, ws_

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")

LEAP_DAY = date(2028, 2, 29)
M = "monthly"
ZERO = D("0.00")


# --- 1. Trials started on 29 February 2028 -----------------------------------------------------


def test_t3_t4_t6_m3_k2_f1_trials_started_on_29_february_2028(
    db, django_capture_on_commit_callbacks
):
    """Three sign-ups straight into Team on 29 February 2028 (T2: no card needed). T3: the
    trial covers 29 February – 13 March (14 days), its end date is 14 March (29 Feb + 14).
    Each reports 20,000 MTUs for February, 12,000 for March and for April.

    - `leapm`, monthly with a card: February has no paid day, no invoice (M1). March: 18 paid
      days (14–31) of 31, 120 × 18/31 = 69.677… → 69.68, no overage (trial days, M3), dated
      1 April. April: 120.00 + 2,000 × 0.01 = 140.00, dated 1 May.
    - `leapa`, annual with a card: the annual invoice dated 14 March 2028, 1,440.00, for
      14 March 2028 – 14 March 2029 (K2). March: trial days, no overage invoice. April: an
      overage-only invoice of kind `monthly`, 20.00, dated 1 May.
    - `leapn`, monthly without a card: the reminder on 11 March (three days before 14 March,
      T6), Free from 14 March (T4), nothing billed. March: not Free on every day (F1), no
      strike; April on Free with 12,000 > 1,000: a strike, `locked` on 1 May (F2)."""
    feb, mar, apr = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)

    def actions(day):
        if day == LEAP_DAY:
            new("leapm", day, plan="team", card=True)
            new("leapa", day, plan="team", card=True, interval="annual")
            new("leapn", day, plan="team")
            for slug in ("leapm", "leapa", "leapn"):
                services.record_usage(ws_(slug), month=feb, mtus=20_000)
        if day == date(2028, 3, 31):
            for slug in ("leapm", "leapa", "leapn"):
                services.record_usage(ws_(slug), month=mar, mtus=12_000)
        if day == date(2028, 4, 30):
            for slug in ("leapm", "leapa", "leapn"):
                services.record_usage(ws_(slug), month=apr, mtus=12_000)

    def read():
        return {slug: totals(slug) for slug in ("leapm", "leapa", "leapn")} | {
            "on_13_march": status("leapm", date(2028, 3, 13), "plan", "trialing", "trial_end"),
            "on_14_march": status("leapm", date(2028, 3, 14), "plan", "trialing"),
            "leapn_14_march": status("leapn", date(2028, 3, 14), "plan", "trialing"),
            "locks": locks("leapn"),
            "strikes": list(Strike.objects.values_list("workspace__slug", "month")),
        }

    out = both_ways(django_capture_on_commit_callbacks, LEAP_DAY, date(2028, 5, 1), actions, read)
    may1, mar14 = date(2028, 5, 1), date(2028, 3, 14)
    assert out["leapm"] == [
        (M, apr, mar14, apr, D("69.68")),
        (M, may1, apr, may1, D("140.00")),
    ]
    assert out["leapa"] == [
        ("annual", mar14, mar14, date(2029, 3, 14), D("1440.00")),
        (M, may1, apr, may1, D("20.00")),
    ]
    assert out["leapn"] == []
    assert out["on_13_march"] == ("team", True, mar14)
    assert out["on_14_march"] == ("team", False)
    assert out["leapn_14_march"] == ("free", False)
    assert out["strikes"] == [("leapn", apr)]
    assert out["locks"] == [(may1, "unlocked", "locked", "free_limit")]
    reminders = [(to, s) for to, s in out["letters"] if "ends on" in s]
    assert reminders == [("leapn@example.com", "Your Team trial for Leapn ends on 14 Mar 2028")]


# --- 2. Terms dated 29 February 2028 in every role ---------------------------------------------


def test_p2_m2_k1_k4_t3_k2_team_terms_dated_29_february_2028_in_every_role(
    db, django_capture_on_commit_callbacks, finance
):
    """Team's terms from 29 February 2028 (entered on 1 February): 150.00 a month, 1,800.00 a
    year, a 7-day trial. A month is billed at the terms of its first day, an annual term at
    those of its first day, a trial lasts as the terms of its first day say (README, P2).

    - `stay`, paid monthly from 1 February: February at 1 February's terms, 120.00 (1 March);
      March 150.00 (1 April).
    - `leave`, paid monthly from 1 February, cancels on 29 February: final invoice for 1–28
      February at February's terms, 120 × 28/29 = 115.862… → 115.86 (K1).
    - `k4`, paid monthly from 1 February, moves to annual on 29 February: the same final
      invoice 115.86, then the annual term from 29 February at that day's price, 1,800.00, to
      1 March 2029 (K4, K2).
    - `ann`, paid annual from 29 February: 1,800.00.
    - `before`, straight into Team with a card on 28 February: 14 days, end date 13 March;
      March: 19 paid days (13–31) at March's 150.00: 150 × 19/31 = 91.935… → 91.94.
    - `after`, the same on 29 February: 7 days, end date 7 March; March: 25 paid days (7–31),
      150 × 25/31 = 120.967… → 120.97."""
    feb1, mar1, apr1 = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)

    def actions(day):
        if day == feb1:
            new_terms(
                finance,
                LEAP_DAY,
                monthly_price="150.00",
                annual_price="1800.00",
                trial_days=7,
            )
            for slug in ("stay", "leave", "k4"):
                paid(slug, day)
        if day == date(2028, 2, 28):
            new("before", day, plan="team", card=True)
        if day == LEAP_DAY:
            services.change_to_free(ws_("leave"), as_of=day)
            services.change_interval(ws_("k4"), interval="annual", as_of=day)
            paid("ann", day, interval="annual")
            new("after", day, plan="team", card=True)

    def read():
        slugs = ("stay", "leave", "k4", "ann", "before", "after")
        return {slug: totals(slug) for slug in slugs}

    out = both_ways(django_capture_on_commit_callbacks, feb1, apr1, actions, read)
    final = ("final", LEAP_DAY, feb1, LEAP_DAY, D("115.86"))
    annual = ("annual", LEAP_DAY, LEAP_DAY, date(2029, 3, 1), D("1800.00"))
    assert out["stay"] == [(M, mar1, feb1, mar1, D("120.00")), (M, apr1, mar1, apr1, D("150.00"))]
    assert out["leave"] == [final]
    assert out["k4"] == [final, annual]
    assert out["ann"] == [annual]
    assert out["before"] == [(M, apr1, date(2028, 3, 13), apr1, D("91.94"))]
    assert out["after"] == [(M, apr1, date(2028, 3, 7), apr1, D("120.97"))]


# --- 3. Coupons from 31 January and 29 February 2028 --------------------------------------------


def test_c5_c4_one_month_coupons_from_31_january_and_29_february_2028_then_a_once_follow_up(
    db, django_capture_on_commit_callbacks, support
):
    """`HALF1`: 50 % off, repeating 1 month, follow-up `TENONCE` (10 % off, once).

    - `jan31`, paid monthly from 31 January 2028, redeems HALF1 that day: January (one paid
      day of 31, 120 × 1/31 = 3.870… → 3.87) at 50 %: 1.935 → 1.94 (ROUND_HALF_UP), 1.93 to
      pay, dated 1 February. HALF1 covers January only and runs out on 1 February; TENONCE is
      applied by the system that day (C5). The January invoice dated 1 February is HALF1's
      (one discount at a time, C2), so TENONCE goes to the next one: February, 120.00 − 12.00
      = 108.00 (1 March); March 120.00 (1 April).
    - `feb29`, paid monthly from 1 February, redeems HALF1 on 29 February: February 120.00 −
      60.00 = 60.00 (1 March); TENONCE from 1 March: March 108.00 (1 April)."""
    feb1, mar1, apr1 = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)
    jan31 = date(2028, 1, 31)
    then = coupon(code="TENONCE", percent_off="10", duration="once")
    coupon(code="HALF1", percent_off="50", duration="repeating", duration_months=1, follow_up=then)

    def actions(day):
        if day == jan31:
            paid("jan31", day)
            coupons.redeem_coupon(ws_("jan31"), "HALF1", by=support, as_of=day)
        if day == feb1:
            paid("feb29", day)
        if day == LEAP_DAY:
            coupons.redeem_coupon(ws_("feb29"), "HALF1", by=support, as_of=day)

    def read():
        return {
            "jan31": brief("jan31"),
            "feb29": brief("feb29"),
            "follow_ups": sorted(
                Redemption.objects.filter(coupon__code="TENONCE").values_list(
                    "workspace__slug", "redeemed_on", "is_follow_up"
                )
            ),
        }

    out = both_ways(django_capture_on_commit_callbacks, jan31, apr1, actions, read)
    assert out["jan31"] == [
        (M, feb1, jan31, feb1, D("3.87"), D("1.94"), ZERO, D("1.93")),
        (M, mar1, feb1, mar1, D("120.00"), D("12.00"), ZERO, D("108.00")),
        (M, apr1, mar1, apr1, D("120.00"), ZERO, ZERO, D("120.00")),
    ]
    assert out["feb29"] == [
        (M, mar1, feb1, mar1, D("120.00"), D("60.00"), ZERO, D("60.00")),
        (M, apr1, mar1, apr1, D("120.00"), D("12.00"), ZERO, D("108.00")),
    ]
    assert out["follow_ups"] == [("feb29", mar1, True), ("jan31", feb1, True)]


def test_c4_c6_p2_a_percent_and_the_nonprofit_amount_off_across_a_price_rise_on_29_february(
    db, finance, support
):
    """Team at 150.00 from 29 February 2028. C4: a percent coupon's dollar value follows the
    bill; an amount off is min(amount, subtotal). C6: NONPROFIT is $120.00 off, not "the whole
    price".

    - `pct`, 10 % forever from 1 February: February (1 March) 120.00 − 12.00 = 108.00; March
      (1 April) 150.00 − 15.00 = 135.00.
    - `np`, approved non-profit on 1 February (NONPROFIT applied): February 120.00 − 120.00 =
      0.00, still issued (M1); March 150.00 − 120.00 = 30.00."""
    feb1, mar1, apr1 = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)
    new_terms(finance, LEAP_DAY, monthly_price="150.00")
    pct = paid("pct", feb1)
    coupons.redeem_coupon(
        pct, coupon(percent_off="10", duration="forever").code, by=support, as_of=feb1
    )
    np = paid("np", feb1)
    approved_proof(np, support, as_of=feb1, apply_discount=True)
    services.run_billing(as_of=apr1)
    assert brief("pct") == [
        (M, mar1, feb1, mar1, D("120.00"), D("12.00"), ZERO, D("108.00")),
        (M, apr1, mar1, apr1, D("150.00"), D("15.00"), ZERO, D("135.00")),
    ]
    assert brief("np") == [
        (M, mar1, feb1, mar1, D("120.00"), D("120.00"), ZERO, ZERO),
        (M, apr1, mar1, apr1, D("150.00"), D("120.00"), ZERO, D("30.00")),
    ]


# --- 4. A tax rate from 29 February 2028 --------------------------------------------------------


def test_x2_x3_k1_k2_m1_a_california_rate_from_29_february_2028(
    db, django_capture_on_commit_callbacks
):
    """California 7.25 % (seeded), 8.00 % from 29 February 2028 (X2: in force from its start
    date; every rule that looks at the time of an invoice uses its issue date).

    - `early`, paid monthly from 1 February, cancels on 28 February: final invoice for 1–27
      February, 120 × 27/29 = 111.724… → 111.72, tax 7.25 % = 8.0997 → 8.10: 119.82.
    - `leave`, the same cancelling on 29 February: 115.86 (28 days), tax 8 % = 9.2688 → 9.27:
      125.13.
    - `stay`, paid monthly from 1 February: February's invoice dated 1 March, 120.00 + 9.60 =
      129.60.
    - `ann28`, paid annual from 28 February: 1,440.00 + 7.25 % = 104.40: 1,544.40.
    - `ann29`, paid annual from 29 February: 1,440.00 + 8 % = 115.20: 1,555.20."""
    feb1, feb28, mar1 = date(2028, 2, 1), date(2028, 2, 28), date(2028, 3, 1)
    ca = {"business_region": "CA"}

    def actions(day):
        if day == feb1:
            services.set_tax_rate("US", region="CA", rate="8.00", name="CA sales tax",
                                  valid_from=LEAP_DAY)  # fmt: skip
            for slug in ("early", "leave", "stay"):
                paid(slug, day, **ca)
        if day == feb28:
            services.change_to_free(ws_("early"), as_of=day)
            paid("ann28", day, interval="annual", **ca)
        if day == LEAP_DAY:
            services.change_to_free(ws_("leave"), as_of=day)
            paid("ann29", day, interval="annual", **ca)

    def read():
        return {s: brief(s) for s in ("early", "leave", "stay", "ann28", "ann29")}

    out = both_ways(django_capture_on_commit_callbacks, feb1, mar1, actions, read)
    assert out["early"] == [("final", feb28, feb1, feb28, D("111.72"), ZERO, D("8.10"),
                             D("119.82"))]  # fmt: skip
    assert out["leave"] == [("final", LEAP_DAY, feb1, LEAP_DAY, D("115.86"), ZERO, D("9.27"),
                             D("125.13"))]  # fmt: skip
    assert out["stay"] == [(M, mar1, feb1, mar1, D("120.00"), ZERO, D("9.60"), D("129.60"))]
    assert out["ann28"] == [("annual", feb28, feb28, date(2029, 2, 28), D("1440.00"), ZERO,
                             D("104.40"), D("1544.40"))]  # fmt: skip
    assert out["ann29"] == [("annual", LEAP_DAY, LEAP_DAY, date(2029, 3, 1), D("1440.00"), ZERO,
                             D("115.20"), D("1555.20"))]  # fmt: skip


# --- 5. Terms dated a trial's end date, mid-month ------------------------------------------------


def test_p2_t4_k1_k4_k2_d4_terms_from_the_trials_end_date_15_march_2027(
    db, django_capture_on_commit_callbacks, finance
):
    """Team's terms from 15 March 2027 (entered on 1 March): 150.00 a month, 1,800.00 a year.
    Trials started on 1 March 2027 end on 15 March (T3), the terms' first day.

    - `atrial`, annual with a card: T4 on 15 March starts the term at that day's price,
      1,800.00, for 15 March 2027 – 15 March 2028 (K2).
    - `mtrial`, monthly with a card: March is billed at 1 March's terms: 17 paid days (15–31),
      120 × 17/31 = 65.806… → 65.81 (1 April); April 150.00 (1 May).
    - `cut`, paid monthly from 1 March, cancels on 15 March: final invoice for 1–14 March at
      March's terms, 120 × 14/31 = 54.193… → 54.19.
    - `k4`, paid monthly from 1 March, monthly → annual on 15 March: the same final invoice,
      54.19, then 1,800.00 from 15 March (K4, at that day's annual price)."""
    mar1, mar15, apr1, may1 = (
        date(2027, 3, 1),
        date(2027, 3, 15),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )

    def actions(day):
        if day == mar1:
            new_terms(finance, mar15, monthly_price="150.00", annual_price="1800.00")
            new("atrial", day, plan="team", card=True, interval="annual")
            new("mtrial", day, plan="team", card=True)
            paid("cut", day)
            paid("k4", day)
        if day == mar15:
            services.change_to_free(ws_("cut"), as_of=day)
            services.change_interval(ws_("k4"), interval="annual", as_of=day)

    def read():
        return {slug: totals(slug) for slug in ("atrial", "mtrial", "cut", "k4")}

    out = both_ways(django_capture_on_commit_callbacks, mar1, may1, actions, read)
    year = date(2028, 3, 15)
    final = ("final", mar15, mar1, mar15, D("54.19"))
    assert out["atrial"] == [("annual", mar15, mar15, year, D("1800.00"))]
    assert out["mtrial"] == [
        (M, apr1, mar15, apr1, D("65.81")),
        (M, may1, apr1, may1, D("150.00")),
    ]
    assert out["cut"] == [final]
    assert out["k4"] == [final, ("annual", mar15, mar15, year, D("1800.00"))]


# --- 6. Terms on the 1st, cancelled that day, back mid-month ------------------------------------


def test_p2_m1_k1_m3_terms_on_the_1st_cancelled_that_day_and_back_mid_month(
    db, django_capture_on_commit_callbacks, finance
):
    """Team from 1 April 2027: 150.00 a month, 8,000 MTUs included, 0.02 an MTU above.
    `ret`, paid monthly from 1 March 2027, 12,000 MTUs in March, cancels on 1 April: no paid
    day of April before it, no final invoice (K1); March's close, dated 1 April, bills March
    whole at March's terms: 120.00 + 2,000 × 0.01 = 140.00 (M1: paid Team on days of March).
    Back on Team on 15 April, paid at once (T1): April, 16 paid days (15–30) of 30 at April's
    terms, 150 × 16/30 = 80.00, plus (9,000 − 8,000) × 0.02 = 20.00: 100.00, dated 1 May for
    15 April – 1 May. No strike for April (F1: not Free every day)."""
    mar1, apr1, apr15, may1 = (
        date(2027, 3, 1),
        date(2027, 4, 1),
        date(2027, 4, 15),
        date(2027, 5, 1),
    )

    def actions(day):
        if day == mar1:
            new_terms(
                finance, apr1, monthly_price="150.00", included_mtus=8_000, overage_rate="0.0200"
            )
            paid("ret", day)
        if day == date(2027, 3, 31):
            services.record_usage(ws_("ret"), month=mar1, mtus=12_000)
        if day == apr1:
            services.change_to_free(ws_("ret"), as_of=day)
        if day == apr15:
            services.change_to_team(ws_("ret"), as_of=day)
        if day == date(2027, 4, 30):
            services.record_usage(ws_("ret"), month=apr1, mtus=9_000)

    def read():
        return {"ret": totals("ret"), "strikes": Strike.objects.count()}

    out = both_ways(django_capture_on_commit_callbacks, mar1, may1, actions, read)
    assert out["ret"] == [
        (M, apr1, mar1, apr1, D("140.00")),
        (M, may1, apr15, may1, D("100.00")),
    ]
    assert out["strikes"] == 0


# --- 7. Usage lowered after a final invoice, then a return --------------------------------------


def test_k1_u1_usage_lowered_after_a_final_invoice_then_a_return_bills_no_negative_overage(
    db, django_capture_on_commit_callbacks
):
    """`low`, paid monthly from 1 March 2027, reports 15,000 MTUs for March on 5 March and
    cancels on 10 March: final invoice for 1–9 March, 120 × 9/31 = 34.838… → 34.84, plus
    5,000 × 0.01 = 50.00: 84.84 (K1). On 20 March the figure is corrected down to 11,000 (U1)
    and `low` is back on Team, paid at once (T1). March's close bills only the paid days after
    the return, 20–31 March, 120 × 12/31 = 46.451… → 46.45, and only overage not already
    billed: 11,000 − 10,000 = 1,000 over, 5,000 billed already: none (never a negative
    line): 46.45. The 40.00 billed too much is a matter for a credit note (K3)."""
    mar1, mar10, mar20, apr1 = (
        date(2027, 3, 1),
        date(2027, 3, 10),
        date(2027, 3, 20),
        date(2027, 4, 1),
    )

    def actions(day):
        if day == mar1:
            paid("low", day)
        if day == date(2027, 3, 5):
            services.record_usage(ws_("low"), month=mar1, mtus=15_000)
        if day == mar10:
            services.change_to_free(ws_("low"), as_of=day)
        if day == mar20:
            services.record_usage(ws_("low"), month=mar1, mtus=11_000)
            services.change_to_team(ws_("low"), as_of=day)

    def read():
        lines = [
            sorted((line.kind, line.amount) for line in invoice.lines.all())
            for invoice in Invoice.objects.filter(workspace__slug="low").order_by("issue_date")
        ]
        return {"low": totals("low"), "lines": lines}

    out = both_ways(django_capture_on_commit_callbacks, mar1, apr1, actions, read)
    assert out["low"] == [
        ("final", mar10, mar1, mar10, D("84.84")),
        (M, apr1, mar20, apr1, D("46.45")),
    ]
    assert out["lines"] == [
        [("base", D("34.84")), ("overage", D("50.00"))],
        [("base", D("46.45"))],
    ]


# --- 8. Closed, reopened and closed again in one month ------------------------------------------


def test_w1_k1_c5_t1_closed_reopened_and_closed_again_in_one_month(
    db, django_capture_on_commit_callbacks, support
):
    """`twice`, paid monthly from 1 March 2027, 20 % off forever from that day, 12,000 MTUs for
    March reported on 1 March.

    - Closed on 10 March (W1): final invoice for 1–9 March, 120 × 9/31 = 34.838… → 34.84 +
      2,000 × 0.01 = 20.00 = 54.84, 20 % off = 10.968 → 10.97: 43.87. The discount ends.
    - Reopened on 15 March (Free, unlocked) and back on Team that day, paid at once (T1: it
      had Team). March's figure raised to 13,000 on 20 March (U1).
    - Closed again on 25 March: final invoice for 15–24 March, 120 × 10/31 = 38.709… → 38.71,
      plus only the overage not billed yet (K1): (13,000 − 10,000) − 2,000 = 1,000 → 10.00:
      48.71, no discount (ended at the first closure).
    - Reopened on 28 March and left on Free: March's close (1 April) bills nothing more (M1:
      both Team subscriptions of March were billed by final invoices); April nothing.

    Two closure emails, one per closure; on 26 March closed, Free, data stopped; on 28 March
    open, Free, data flowing."""
    mar1, mar10, mar15, mar25 = (
        date(2027, 3, 1),
        date(2027, 3, 10),
        date(2027, 3, 15),
        date(2027, 3, 25),
    )
    forever = coupon(percent_off="20", duration="forever")

    def actions(day):
        if day == mar1:
            paid("twice", day)
            coupons.redeem_coupon(ws_("twice"), forever.code, by=support, as_of=day)
            services.record_usage(ws_("twice"), month=mar1, mtus=12_000)
        if day in (mar10, mar25):
            services.close_workspace(ws_("twice"), by=support, reason="Asked", as_of=day)
        if day == mar15:
            services.reopen_workspace(ws_("twice"), by=support, reason="Back", as_of=day)
            services.change_to_team(ws_("twice"), as_of=day)
        if day == date(2027, 3, 20):
            services.record_usage(ws_("twice"), month=mar1, mtus=13_000)
        if day == date(2027, 3, 28):
            services.reopen_workspace(ws_("twice"), by=support, reason="Back again", as_of=day)

    def read():
        return {
            "bills": brief("twice"),
            "closed": status("twice", date(2027, 3, 26), "closed", "plan", "data_flow"),
            "open": status("twice", date(2027, 3, 28), "closed", "plan", "data_flow"),
            "trial": status("twice", mar15, "trialing"),
        }

    out = both_ways(django_capture_on_commit_callbacks, mar1, date(2027, 5, 1), actions, read)
    assert out["bills"] == [
        ("final", mar10, mar1, mar10, D("54.84"), D("10.97"), ZERO, D("43.87")),
        ("final", mar25, mar15, mar25, D("48.71"), ZERO, ZERO, D("48.71")),
    ]
    assert out["closed"] == (True, "free", False)
    assert out["open"] == (False, "free", True)
    assert out["trial"] == (False,)
    closures = [s for to, s in out["letters"] if s == "Twice is closed"]
    assert len(closures) == 2


def test_w1_t1_t5_m3_a_trial_closed_reopened_paid_then_closed_again_in_one_month(
    db, django_capture_on_commit_callbacks, support
):
    """`tri` on Free with a card from 1 March 2027, 15,000 MTUs for March reported that day.
    Team on 2 March: a trial (T1), 2–15 March, end date 16 March. Closed on 8 March: the
    trial ends uncharged (T5, W1). Reopened on 10 March and on Team again that day: paid at
    once, no second trial (W1, T1). Closed again on 20 March: final invoice for 10–19 March,
    120 × 10/31 = 38.709… → 38.71 and no overage: March had trial days (2–7, M3, K1). Reopened
    on 25 March, left on Free. March's close bills nothing more; no strike for March (F1)."""
    mar1 = date(2027, 3, 1)
    mar10, mar20 = date(2027, 3, 10), date(2027, 3, 20)

    def actions(day):
        if day == mar1:
            new("tri", day, card=True)
            services.record_usage(ws_("tri"), month=mar1, mtus=15_000)
        if day == date(2027, 3, 2):
            services.change_to_team(ws_("tri"), as_of=day)
        if day in (date(2027, 3, 8), mar20):
            services.close_workspace(ws_("tri"), by=support, reason="Asked", as_of=day)
        if day == mar10:
            services.reopen_workspace(ws_("tri"), by=support, reason="Back", as_of=day)
            services.change_to_team(ws_("tri"), as_of=day)
        if day == date(2027, 3, 25):
            services.reopen_workspace(ws_("tri"), by=support, reason="Back again", as_of=day)

    def read():
        return {
            "bills": totals("tri"),
            "trial": status("tri", date(2027, 3, 5), "trialing", "trial_end"),
            "paid": status("tri", date(2027, 3, 12), "plan", "trialing"),
            "strikes": Strike.objects.count(),
        }

    out = both_ways(django_capture_on_commit_callbacks, mar1, date(2027, 4, 2), actions, read)
    assert out["bills"] == [("final", mar20, mar10, mar20, D("38.71"))]
    assert out["trial"] == (True, date(2027, 3, 16))
    assert out["paid"] == ("team", False)
    assert out["strikes"] == 0


# --- 9. Annual terms ending mid-month and on 1 March 2029 --------------------------------------


def test_k2_f1_u1_a_cancelled_terms_last_month_reported_on_its_last_day(db):
    """`ann`, paid annual from 15 March 2026 (1,440.00), cancelled on 1 February 2027: the term
    ends on 15 March 2027, Free from then (K2). 13,000 MTUs for March 2027 reported on
    31 March: March's close (1 April) bills the term's month its overage, 3,000 × 0.01 =
    30.00, an invoice of kind `monthly` for 1–15 March (the term's days); no strike for March
    (F1: annual Team on 1–14 March). April on Free, 13,000 MTUs: a strike, `locked` on 1 May
    (F1, F2), nothing billed (P1)."""
    mar15_26, mar15 = date(2026, 3, 15), date(2027, 3, 15)
    apr1, may1 = date(2027, 4, 1), date(2027, 5, 1)
    ws = paid("ann", mar15_26, interval="annual")
    services.change_to_free(ws, as_of=date(2027, 2, 1))
    services.run_billing(as_of=date(2027, 3, 30))
    services.record_usage(ws, month=date(2027, 3, 1), mtus=13_000)
    services.run_billing(as_of=date(2027, 4, 29))
    services.record_usage(ws, month=apr1, mtus=13_000)
    services.run_billing(as_of=may1)
    assert totals("ann") == [
        ("annual", mar15_26, mar15_26, mar15, D("1440.00")),
        (M, apr1, date(2027, 3, 1), mar15, D("30.00")),
    ]
    assert list(Strike.objects.values_list("month", flat=True)) == [apr1]
    assert locks("ann") == [(may1, "unlocked", "locked", "free_limit")]
    assert status("ann", mar15, "plan") == ("free",)


def test_k2_k4_f1_annual_terms_from_29_february_2028_end_on_1_march_2029(db):
    """Two annual terms from 29 February 2028 (1,440.00 each), to 1 March 2029 (K2: a year
    from the leap day, never a day short), 11,500 MTUs every month from February 2029.

    - `tomonthly` asks for monthly billing on 10 May 2028 (K4: at the term's end). February
      2029 is the term's: 1,500 × 0.01 = 15.00 overage only, kind `monthly`, dated 1 March
      2029. March 2029 is a full monthly month: 120.00 + 15.00 = 135.00, dated 1 April 2029.
    - `tofree` cancels on 10 May 2028: Free from 1 March 2029. February 2029 likewise 15.00.
      March on Free with 11,500 MTUs: a strike (F1), `locked` on 1 April 2029."""
    mar1_29, apr1_29 = date(2029, 3, 1), date(2029, 4, 1)
    tomonthly = paid("tomonthly", LEAP_DAY, interval="annual")
    tofree = paid("tofree", LEAP_DAY, interval="annual")
    services.change_interval(tomonthly, interval="monthly", as_of=date(2028, 5, 10))
    services.change_to_free(tofree, as_of=date(2028, 5, 10))
    services.run_billing(as_of=date(2029, 2, 27))
    for ws in (tomonthly, tofree):
        services.record_usage(ws, month=date(2029, 2, 1), mtus=11_500)
    services.run_billing(as_of=date(2029, 3, 30))
    for ws in (tomonthly, tofree):
        services.record_usage(ws, month=mar1_29, mtus=11_500)
    services.run_billing(as_of=apr1_29)
    annual = ("annual", LEAP_DAY, LEAP_DAY, mar1_29, D("1440.00"))
    feb = (M, mar1_29, date(2029, 2, 1), mar1_29, D("15.00"))
    assert totals("tomonthly") == [annual, feb, (M, apr1_29, mar1_29, apr1_29, D("135.00"))]
    assert totals("tofree") == [annual, feb]
    assert status("tomonthly", mar1_29, "plan", "interval") == ("team", "monthly")
    assert status("tofree", mar1_29, "plan") == ("free",)
    assert locks("tofree") == [(apr1_29, "unlocked", "locked", "free_limit")]
    assert locks("tomonthly") == []


# --- 10. Credit notes, voids and a rate change -------------------------------------------------


def test_k3_x2_x3_credit_notes_give_back_the_invoices_own_tax_after_the_rate_changed(
    db, support, finance
):
    """`ca`, California, paid monthly from 1 January 2027: January's invoice (1 February),
    120.00 + 7.25 % = 8.70: 128.70. The rate is 9.00 % from 1 March 2027 (X2): February's
    invoice (1 March) 120.00 + 10.80 = 130.80.

    K3 on January's invoice, in March: 50.00 gives back its share of that invoice's tax,
    50 × 8.70 / 128.70 = 3.3799… → 3.38 (not 9 % of anything); then the remaining 78.70 gives
    back 8.70 − 3.38 = 5.32, so the two give back exactly the invoice's tax; then 0.01 more is
    refused (nothing left). On February's invoice, 30.00 gives back 30 × 10.80 / 130.80 =
    2.4770… → 2.48."""
    feb1, mar1 = date(2027, 2, 1), date(2027, 3, 1)
    ws = paid("ca", date(2027, 1, 1), business_region="CA")
    services.run_billing(as_of=date(2027, 2, 10))
    services.set_tax_rate("US", region="CA", rate="9.00", name="CA sales tax", valid_from=mar1)
    services.run_billing(as_of=date(2027, 3, 4))
    january = Invoice.objects.get(workspace=ws, issue_date=feb1)
    february = Invoice.objects.get(workspace=ws, issue_date=mar1)
    assert (january.tax, january.total) == (D("8.70"), D("128.70"))
    assert (february.tax, february.total) == (D("10.80"), D("130.80"))

    def refund(invoice, amount, day):
        note = services.request_credit_note(
            invoice, by=support, amount=amount, reason=f"Goodwill {amount}", as_of=day
        )
        return services.decide_credit_note(note, by=finance, approve=True, as_of=day).tax

    assert refund(january, "50.00", date(2027, 3, 5)) == D("3.38")
    assert refund(january, "78.70", date(2027, 3, 6)) == D("5.32")
    with pytest.raises(BillingError, match="at most"):
        services.request_credit_note(
            january, by=support, amount="0.01", reason="One cent", as_of=date(2027, 3, 7)
        )
    assert services.refundable_amount(january) == ZERO
    assert refund(february, "30.00", date(2027, 3, 7)) == D("2.48")


def test_k3_i3_m1_c4_a_zero_invoice_has_nothing_to_refund_and_is_voided_after_its_day(
    db, support, finance
):
    """`free100`, paid monthly from 1 March 2027 with 100 % off forever: March's invoice,
    dated 1 April, 120.00 − 120.00 = 0.00, still issued (M1). K3: a credit note of 0.01 is
    refused (nothing unrefunded). I3, D2: a void dated 1 April, a day the clock processed to
    issue it, is refused naming that day; dated 2 April it is voided. April's invoice, dated
    1 May, 0.00 again: the void changed nothing after it."""
    mar1, apr1, may1 = date(2027, 3, 1), date(2027, 4, 1), date(2027, 5, 1)
    ws = paid("free100", mar1)
    coupons.redeem_coupon(
        ws, coupon(percent_off="100", duration="forever").code, by=support, as_of=mar1
    )
    services.run_billing(as_of=apr1)
    march = Invoice.objects.get(workspace=ws, issue_date=apr1)
    assert (march.subtotal, march.discount, march.total) == (D("120.00"), D("120.00"), ZERO)
    with pytest.raises(BillingError, match="at most"):
        services.request_credit_note(march, by=support, amount="0.01", reason="Cent", as_of=apr1)
    with pytest.raises(DayAlreadyProcessed, match="1 Apr 2027"):
        services.void_invoice(march, by=finance, reason="Test", as_of=apr1)
    services.void_invoice(march, by=finance, reason="Issued by mistake", as_of=date(2027, 4, 2))
    services.run_billing(as_of=may1)
    assert brief("free100") == [
        (M, apr1, mar1, apr1, D("120.00"), D("120.00"), ZERO, ZERO),
        (M, may1, apr1, may1, D("120.00"), D("120.00"), ZERO, ZERO),
    ]
    assert Invoice.objects.get(pk=march.pk).status == "void"


# --- 11. Forecasts across terms dated 29 February 2028 ------------------------------------------


@pytest.mark.parametrize("on", [date(2028, 2, 28), LEAP_DAY], ids=["28-february", "29-february"])
def test_fc1_p2_k4_forecast_monthly_to_annual_across_terms_from_29_february_2028(db, finance, on):
    """`fc`, paid monthly from 1 January 2028, 12,000 MTUs a month. Team from 29 February
    2028: 1,800.00 a year, 0.02 an MTU above 10,000 (150.00 a month). Forecast on `on`
    (clock through 27 February) of monthly → annual that day (K4), 3 months at 12,000 MTUs:

    - on 28 February: final invoice for 1–27 February at February's terms, 120 × 27/29 =
      111.724… → 111.72 + 2,000 × 0.01 = 20.00: 131.72; the annual term from 28 February at
      that day's price, 1,440.00, to 28 February 2029;
    - on 29 February: final for 1–28 February, 120 × 28/29 = 115.862… → 115.86 + 20.00 =
      135.86; the annual term at 1,800.00 to 1 March 2029;
    - either way February's close bills nothing more (its overage is on the final invoice),
      March and April are overage-only at their terms, 2,000 × 0.02 = 40.00 each (1 April,
      1 May).

    Then the change made for real that day, the usage reported and the clock run to 1 May:
    the same invoices, field by field and line by line; the forecast wrote nothing (FC1)."""
    feb1 = date(2028, 2, 1)
    ws = paid("fc", date(2028, 1, 1))
    services.record_usage(ws, month=date(2028, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2028, 2, 27))
    new_terms(
        finance, LEAP_DAY, monthly_price="150.00", annual_price="1800.00", overage_rate="0.0200"
    )
    services.record_usage(ws, month=feb1, mtus=12_000)

    def to_annual(w, as_of):
        return services.change_interval(w, interval="annual", as_of=as_of)

    before = everything()
    forecast = forecast_invoices(ws, as_of=on, months=3, mtus=12_000, changes=[to_annual])
    assert everything() == before
    apr1, may1 = date(2028, 4, 1), date(2028, 5, 1)
    final = ("131.72", "1440.00", date(2029, 2, 28))
    if on == LEAP_DAY:
        final = ("135.86", "1800.00", date(2029, 3, 1))
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in forecast] == [
        ("final", on, feb1, on, D(final[0])),
        ("annual", on, on, final[2], D(final[1])),
        (M, apr1, date(2028, 3, 1), apr1, D("40.00")),
        (M, may1, apr1, may1, D("40.00")),
    ]

    to_annual(ws, on)
    for month in (date(2028, 3, 1), apr1):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=may1)
    issued = Invoice.objects.filter(workspace=ws, issue_date__gte=on)
    assert forecast_figures(forecast) == forecast_figures(issued)


@pytest.mark.parametrize(
    "on, trial_end, march",
    [
        # 14 days from 20 February: end 5 March; 27 paid days of March, 150 × 27/31 = 130.645…
        (date(2028, 2, 20), date(2028, 3, 5), "130.65"),
        # 7 days from 29 February: end 7 March; 25 paid days, 150 × 25/31 = 120.967…
        (LEAP_DAY, date(2028, 3, 7), "120.97"),
    ],
    ids=["before-the-terms", "on-their-first-day"],
)
def test_fc1_p2_t3_m3_forecast_a_move_to_team_before_terms_that_shorten_the_trial(
    db, finance, on, trial_end, march
):
    """`up`, on Free with a card from 1 January 2028. Team from 29 February 2028: 150.00 a
    month, a 7-day trial. A forecast on `on` (the clock through the day before) of a move to
    Team that day, 3 months at 12,000 MTUs: the trial lasts as the terms of its first day say
    (T3): 14 days from 20 February, 7 from 29 February. February and March have trial days:
    no overage (M3). March, dated 1 April, for `trial_end` – 1 April at March's price;
    April 150.00 + 2,000 × 0.01 = 170.00, dated 1 May. Then the move made for real that day,
    the usage reported and the clock run to 1 May: the same invoices, nothing written by the
    forecast."""
    ws = new("up", date(2028, 1, 1), card=True)
    services.run_billing(as_of=date(2028, 2, 19))
    new_terms(finance, LEAP_DAY, monthly_price="150.00", trial_days=7)
    services.run_billing(as_of=date(2028, 2, 28) if on == LEAP_DAY else date(2028, 2, 19))

    def to_team(w, as_of):
        return services.change_to_team(w, as_of=as_of)

    before = everything()
    forecast = forecast_invoices(ws, as_of=on, months=3, mtus=12_000, changes=[to_team])
    assert everything() == before
    apr1, may1 = date(2028, 4, 1), date(2028, 5, 1)
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in forecast] == [
        (M, apr1, trial_end, apr1, D(march)),
        (M, may1, apr1, may1, D("170.00")),
    ]

    to_team(ws, on)
    for month in (date(2028, 2, 1), date(2028, 3, 1), apr1):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=may1)
    assert ws.subscriptions.get(plan__code="team").trial_end == trial_end
    issued = Invoice.objects.filter(workspace=ws)
    assert forecast_figures(forecast) == forecast_figures(issued)


def test_fc1_c5_forecast_of_a_one_month_coupon_from_31_january_with_its_pending_follow_up(
    db, support
):
    """`jan31`, paid monthly from 31 January 2028, no usage; the clock through 30 January. A
    forecast on 31 January of redeeming HALF1 (50 %, repeating 1 month, follow-up TENONCE,
    10 % once) that day, 4 months at 0 MTUs: the follow-up is applied by the system when
    HALF1 runs out on 1 February (C5), a day the forecast's clock never writes a step for;
    the invoices must still carry it as the clock does: January (1 February) 3.87 − 1.94 =
    1.93; February (1 March) 120.00 − 12.00 = 108.00; March and April 120.00. The redemption
    made for real and the clock run to 1 May issue the same invoices, line by line."""
    then = coupon(code="TENONCE", percent_off="10", duration="once")
    coupon(code="HALF1", percent_off="50", duration="repeating", duration_months=1, follow_up=then)
    jan31 = date(2028, 1, 31)
    ws = paid("jan31", jan31)
    services.run_billing(as_of=date(2028, 1, 30))

    def redeem(w, as_of):
        return coupons.redeem_coupon(w, "HALF1", by=support, as_of=as_of)

    before = everything()
    forecast = forecast_invoices(ws, as_of=jan31, months=4, mtus=0, changes=[redeem])
    assert everything() == before
    feb1, mar1, apr1, may1 = date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1), date(2028, 5, 1)
    assert [(i.issue_date, i.period_start, i.subtotal, i.discount, i.total) for i in forecast] == [
        (feb1, jan31, D("3.87"), D("1.94"), D("1.93")),
        (mar1, feb1, D("120.00"), D("12.00"), D("108.00")),
        (apr1, mar1, D("120.00"), ZERO, D("120.00")),
        (may1, apr1, D("120.00"), ZERO, D("120.00")),
    ]
    redeem(ws, jan31)
    services.run_billing(as_of=may1)
    assert forecast_figures(forecast) == forecast_figures(Invoice.objects.filter(workspace=ws))


# --- 12. An annual term closed and taken again in one month -------------------------------------


def test_w1_k2_t1_annual_closed_then_annual_again_in_one_month_bills_the_months_overage_once(
    db, support
):
    """`ann`, paid annual from 1 January 2027 (1,440.00), 15,000 MTUs for March reported on
    5 March, closed on 10 March: the term ends unrenewed, unrefunded and bills no further
    overage (W1; README: not even the closure month's). Reopened on 15 March and back on
    annual Team that day, paid at once (T1): a new term, 1,440.00 for 15 March 2027 – 15 March
    2028 (K2). That term runs in March, so March's close (1 April) bills March's overage on it
    (K2: overage only), once: 5,000 × 0.01 = 50.00, for 15 March – 1 April. (A question in the
    report: the MTUs reported before the closure are billed because of the return.)"""
    jan1, mar15, apr1 = date(2027, 1, 1), date(2027, 3, 15), date(2027, 4, 1)
    ws = paid("ann", jan1, interval="annual")
    services.record_usage(ws, month=date(2027, 3, 1), mtus=15_000)
    services.run_billing(as_of=date(2027, 3, 9))
    services.close_workspace(ws, by=support, reason="Asked", as_of=date(2027, 3, 10))
    services.reopen_workspace(ws, by=support, reason="Back", as_of=mar15)
    services.change_to_team(ws, interval="annual", as_of=mar15)
    services.run_billing(as_of=apr1)
    assert totals("ann") == [
        ("annual", jan1, jan1, date(2028, 1, 1), D("1440.00")),
        ("annual", mar15, mar15, date(2028, 3, 15), D("1440.00")),
        (M, apr1, mar15, apr1, D("50.00")),
    ]
