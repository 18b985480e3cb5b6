"""A fourteenth set of edge days, each worked by hand from SPEC (figures in each test's docstring
and comments, none computed by the code under test), on combinations the first thirteen files
leave out:

- D1 × I1 × M1 × D2: the billing clock's edge at UTC midnight across a year end: the command and
  the beat's task at 23:59 on 31 December and at 00:15 on 1 and on 2 January: yesterday is
  processed, today refused, December's close (dated 1 January, INV-2028-000001) issued only by
  the run of 2 January, after a final invoice of 31 December (INV-2027-000001).
- T3 × T4 × T6 × M2 × M3 × K1 × K2 × P2: trials ending on the last day of a 31-, 28-, 29- and
  30-day month with Team's terms dated that very day: the one paid day billed at the month's
  first-day terms, the next month and the annual term at the new ones, a cancellation that day
  billing nothing, the reminder three days before.
- C5 × C4 × X2 × X3 × K1: a two-month coupon redeemed on 31 January whose last month is
  February, across a rate from 1 March: its last invoice (dated 1 March) discounted and taxed at
  the new rate, a final invoice of 28 February at the old one, a cancellation on 1 March.
- P2 × M2 × K1 × K2 × T3: Team's terms dated the 1st or the 2nd of March: the month at the terms
  of its first day, annual terms from the 1st and the 2nd, trials started on either day.
- FC1 × P2: a forecast across terms dated the 1st or the 2nd, equal to what the clock issues;
  a forecast of a trial ending on 28 February 2027 with terms from that day.
- K1 × P2 × U1 × T1: terms changed mid-month, a final invoice and a return that month: both at
  the terms of the month's first day, the return billing only overage not billed yet.
- W1 × T1 × T5 × M3 × F1: signed up into Team on the 1st or the last day of a month and closed
  the next day: nothing billed, no strike; reopened, Team again paid at once, no trial day.
- D2 × U1 × U2 × K1 × M1: usage for March after March's close and before the next run, refused
  (one report and an import alike); April's reported the same day and billed by a final invoice.
- C5 × C4 × M1 × T3: `once` coupons (an amount larger than the bill, a percent) on the one paid
  day of a trial ending on 30 April: a 0.00 invoice still issued, nothing carried over.
- D1: a day ends at 00:00:00 UTC, not at 23:59:59.999999.
- P1 × P2 × F1–F3: the Free allowance raised from 31 March: March still counts against 1 March's
  1,000 (also for a workspace signed up on the 31st), April against the new 2,000.

The multi-day scenarios run the billing clock day by day and in one catch-up run (D4), with
identical outcomes, as the other edge-day files do.
"""

from datetime import UTC, date, datetime
from decimal import Decimal as D
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from billing import services, tasks
from billing.clock import last_processed_day
from billing.errors import BillingError, DayAlreadyProcessed
from billing.forecast import forecast_invoices
from billing.models import Invoice, Plan, Strike, Usage
from billing.usage_import import UsageImportError
from coupons import services as coupons
from tests.coupons.factories import coupon
from tests.scenarios.clock import both_ways, daily_and_catch_up
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

M = "monthly"
ZERO = D("0.00")


# --- Helpers ------------------------------------------------------------------------------------


def lines(slug):
    """Each invoice's lines as (kind, amount), by issue date."""
    return [
        sorted((line.kind, line.amount) for line in invoice.lines.all())
        for invoice in Invoice.objects.filter(workspace__slug=slug).order_by("issue_date", "id")
    ]


# --- 1. UTC midnight across a year end ----------------------------------------------------------


def _beat(way, as_of=None):
    """The daily run as the command or as the beat's task, through `as_of` or yesterday (UTC):
    what it says, or "refused" when the day has not ended (D1)."""
    if way == "command":
        out = StringIO()
        args = ("--as-of", as_of.isoformat()) if as_of else ()
        try:
            call_command("run_billing", *args, stdout=out)
        except CommandError as refused:
            assert "has not ended yet" in str(refused)
            return "refused"
        return out.getvalue()
    counts = tasks.run_daily_billing(as_of.isoformat() if as_of else None)
    return "refused" if counts == {"refused": 1} else counts


@pytest.mark.parametrize("way", ["command", "task"])
def test_d1_i1_m1_d2_the_clock_at_23_59_and_00_15_utc_across_a_year_end(
    db, django_capture_on_commit_callbacks, monkeypatch, way
):
    """D1: the clock processes a day only once it has ended; without a day it runs "yesterday"
    (UTC), the daily schedule shortly after midnight UTC for the day before. Dates are
    calendar dates in UTC (SPEC's preamble). `dec` and `leave`, paid monthly from 1 December
    2027; the clock through 30 December.

    - 31 December 23:59 UTC: the run without a day processes 30 December (nothing new); a run
      for 31 December is refused (not ended). `leave` cancels that day (K1): final invoice for
      1–30 December, 120 × 30/31 = 116.129… → 116.13, dated 31 December: the first number of
      2027, INV-2027-000001 (I1).
    - 1 January 2028 00:15 UTC: the run processes 31 December; December's close is dated
      1 January and runs on or after it (M1), so nothing is issued for `dec` yet; a run for
      1 January is refused; a change dated 31 December is refused naming it (D2).
    - 2 January 00:15 UTC: the run processes 1 January: December's close issues `dec`'s
      120.00 dated 1 January 2028, INV-2028-000001 (numbers per year, I1).

    The catch-up (D4): the clock left at 30 November and run once, at 2 January 00:15, issues
    the same invoices with the same numbers."""
    dec1, dec30, dec31, jan1 = (
        date(2027, 12, 1),
        date(2027, 12, 30),
        date(2027, 12, 31),
        date(2028, 1, 1),
    )

    def at(*moment):
        monkeypatch.setattr(timezone, "now", lambda: datetime(*moment, tzinfo=UTC))

    def run(daily):
        with django_capture_on_commit_callbacks(execute=True):
            services.run_billing(as_of=date(2027, 11, 30))
            paid("dec", dec1)
            paid("leave", dec1)
            seen = {}
            if daily:
                services.run_billing(as_of=dec30)
            at(2027, 12, 31, 23, 59)
            if daily:
                seen["23:59"] = (_beat(way), _beat(way, dec31), last_processed_day())
            services.change_to_free(ws_("leave"), as_of=dec31)
            if daily:
                at(2028, 1, 1, 0, 15)
                seen["00:15"] = (
                    _beat(way),
                    _beat(way, jan1),
                    last_processed_day(),
                    Invoice.objects.filter(workspace__slug="dec").count(),
                )
                with pytest.raises(DayAlreadyProcessed, match="31 Dec 2027"):
                    services.change_to_free(ws_("dec"), as_of=dec31)
            at(2028, 1, 2, 0, 15)
            _beat(way)
            seen["invoices"] = list(
                Invoice.objects.order_by("number").values_list(
                    "number", "workspace__slug", "kind", "issue_date", "period_start", "total"
                )
            )
            seen["last"] = last_processed_day()
            return seen

    daily, catch_up = daily_and_catch_up(run)
    invoices = [
        ("INV-2027-000001", "leave", "final", dec31, dec1, D("116.13")),
        ("INV-2028-000001", "dec", M, jan1, dec1, D("120.00")),
    ]
    assert daily["invoices"] == catch_up["invoices"] == invoices
    assert daily["last"] == catch_up["last"] == jan1
    ran_2359, refused_2359, last_2359 = daily["23:59"]
    ran_0015, refused_0015, last_0015, dec_bills = daily["00:15"]
    assert (refused_2359, last_2359) == ("refused", dec30)
    assert (refused_0015, last_0015, dec_bills) == ("refused", dec31, 0)
    if way == "command":
        assert "Billing run through 2027-12-30: nothing to do" in ran_2359
        assert "Billing run through 2027-12-31" in ran_0015


# --- 2. Trials ending on a month's last day, Team's terms dated that day ------------------------


@pytest.mark.parametrize(
    "end, days, one_day, year_later",
    [
        # 120 × 1/31 = 3.870… → 3.87
        (date(2027, 1, 31), 31, "3.87", date(2028, 1, 31)),
        # 120 × 1/28 = 4.285… → 4.29
        (date(2027, 2, 28), 28, "4.29", date(2028, 2, 28)),
        # 120 × 1/29 = 4.137… → 4.14; a year from 29 February 2028 is 1 March 2029
        (date(2028, 2, 29), 29, "4.14", date(2029, 3, 1)),
        # 120 × 1/30 = 4.00
        (date(2027, 4, 30), 30, "4.00", date(2028, 4, 30)),
    ],
    ids=["31-january", "28-february", "29-february", "30-april"],
)
def test_t3_t4_t6_m2_m3_k1_k2_p2_a_trial_ending_on_a_months_last_day_with_terms_from_that_day(
    db, django_capture_on_commit_callbacks, finance, end, days, one_day, year_later
):
    """Four sign-ups straight into Team 14 days before `end` (T2: no card needed; T3: D +
    14 = `end`, the last day of a month of `days` days, the first paid day). Team's terms from
    `end` (entered on the sign-up day): 150.00 a month, 1,800.00 a year. README: "A month is
    billed at the terms in force on its first day, an annual term at those of its first day, a
    trial lasts as the terms of the day it starts say". 12,000 MTUs for `end`'s month and for
    the next.

    - `mon`, monthly with a card: `end`'s month, one paid day at the old terms, 120 × 1/`days`
      = `one_day`, no overage (trial days, M3), dated the 1st after; the next month at the new
      terms: 150.00 + 2,000 × 0.01 = 170.00.
    - `ann`, annual with a card: the annual invoice dated `end` at that day's price, 1,800.00,
      for `end` – `year_later` (K2); `end`'s month has trial days: no overage invoice; the
      next month overage only, 20.00, kind `monthly`.
    - `cut`, monthly with a card, cancels on `end`: Free from that day, no paid day before it
      (K1), no paid day in the month at all (M1): nothing billed.
    - `nocard`, monthly without a card: one reminder, three days before `end` (T6); Free from
      `end` (T4); nothing billed."""
    start = date.fromordinal(end.toordinal() - 14)
    first_after = date.fromordinal(end.toordinal() + 1)
    second_after = date(first_after.year + first_after.month // 12, first_after.month % 12 + 1, 1)
    slugs = ("mon", "ann", "cut", "nocard")

    def actions(day):
        if day == start:
            new_terms(finance, end, monthly_price="150.00", annual_price="1800.00")
            new("mon", day, plan="team", card=True)
            new("ann", day, plan="team", card=True, interval="annual")
            new("cut", day, plan="team", card=True)
            new("nocard", day, plan="team")
        if day == end:
            services.change_to_free(ws_("cut"), as_of=day)
            for slug in ("mon", "ann"):
                services.record_usage(ws_(slug), month=date(end.year, end.month, 1), mtus=12_000)
        if day == date.fromordinal(second_after.toordinal() - 1):
            for slug in ("mon", "ann"):
                services.record_usage(ws_(slug), month=first_after, mtus=12_000)

    def read():
        return {slug: totals(slug) for slug in slugs} | {
            "eve": [status(s, date.fromordinal(end.toordinal() - 1), "trialing") for s in slugs],
            "end": [status(s, end, "plan", "trialing") for s in slugs],
        }

    out = both_ways(django_capture_on_commit_callbacks, start, second_after, actions, read)
    assert out["mon"] == [
        (M, first_after, end, first_after, D(one_day)),
        (M, second_after, first_after, second_after, D("170.00")),
    ]
    assert out["ann"] == [
        ("annual", end, end, year_later, D("1800.00")),
        (M, second_after, first_after, second_after, D("20.00")),
    ]
    assert out["cut"] == []
    assert out["nocard"] == []
    assert out["eve"] == [(True,)] * 4
    assert out["end"] == [("team", False), ("team", False), ("free", False), ("free", False)]
    reminders = [(to, s) for to, s in out["letters"] if "ends on" in s]
    # Each `end` is the 28th or later: no leading zero to drop.
    assert reminders == [
        ("nocard@example.com", f"Your Team trial for Nocard ends on {end:%d %b %Y}")
    ]


# --- 3. A coupon's last month, February, across a rate from 1 March ----------------------------


def test_c5_c4_x2_x3_k1_a_two_month_coupon_from_31_january_across_a_rate_from_1_march(
    db, django_capture_on_commit_callbacks, support
):
    """California: 7.25 % (seeded), 9.50 % from 1 March 2027 (X2: in force from its start date;
    the time of an invoice is its issue date). `QUARTER2`: 25 % off, repeating 2 months: the
    billing months of January and February for a redemption on 31 January (C5). X3: tax on
    the amount after the discount, rounded per invoice.

    - `rep`, paid monthly from 1 January, redeems on 31 January: January (1 February) 120.00
      − 30.00 = 90.00 + 7.25 % = 6.525 → 6.53: 96.53; February (1 March) 90.00 + 9.50 % =
      8.55: 98.55; March (1 April), the coupon run out, 120.00 + 11.40 = 131.40.
    - `fin`, the same, cancels on 28 February: final invoice for 1–27 February, 120 × 27/28 =
      115.714… → 115.71, 25 % = 28.9275 → 28.93, 86.78 + 7.25 % = 6.29155 → 6.29: 93.07.
    - `first`, the same, cancels on 1 March: no paid day of March before it, no final invoice
      (K1); February's close, dated 1 March, bills it as for `rep`: 98.55."""
    jan1, jan31, feb1, feb28, mar1, apr1 = (
        date(2027, 1, 1),
        date(2027, 1, 31),
        date(2027, 2, 1),
        date(2027, 2, 28),
        date(2027, 3, 1),
        date(2027, 4, 1),
    )
    ca = {"business_region": "CA"}
    slugs = ("rep", "fin", "first")

    def actions(day):
        if day == jan1:
            services.set_tax_rate("US", region="CA", rate="9.50", name="CA sales tax",
                                  valid_from=mar1)  # fmt: skip
            coupon(code="QUARTER2", percent_off="25", duration="repeating", duration_months=2)
            for slug in slugs:
                paid(slug, day, **ca)
        if day == jan31:
            for slug in slugs:
                coupons.redeem_coupon(ws_(slug), "QUARTER2", by=support, as_of=day)
        if day == feb28:
            services.change_to_free(ws_("fin"), as_of=day)
        if day == mar1:
            services.change_to_free(ws_("first"), as_of=day)

    def read():
        return {slug: brief(slug) for slug in slugs} | {"lines": lines("fin")}

    out = both_ways(django_capture_on_commit_callbacks, jan1, apr1, actions, read)
    january = (M, feb1, jan1, feb1, D("120.00"), D("30.00"), D("6.53"), D("96.53"))
    february = (M, mar1, feb1, mar1, D("120.00"), D("30.00"), D("8.55"), D("98.55"))
    assert out["rep"] == [
        january,
        february,
        (M, apr1, mar1, apr1, D("120.00"), ZERO, D("11.40"), D("131.40")),
    ]
    assert out["fin"] == [
        january,
        ("final", feb28, feb1, feb28, D("115.71"), D("28.93"), D("6.29"), D("93.07")),
    ]
    assert out["first"] == [january, february]
    assert out["lines"][1] == [
        ("base", D("115.71")),
        ("discount", D("-28.93")),
        ("tax", D("6.29")),
    ]


# --- 4. Terms dated the 1st or the 2nd -----------------------------------------------------------


@pytest.mark.parametrize(
    "on, march, cut, ann1, tri1, tri2",
    [
        # March at 150.00; 150 × 2/31 = 9.677… → 9.68; 7-day trials: 1 March → 8 March, 24
        # paid days, 150 × 24/31 = 116.129… → 116.13; 2 March → 9 March, 23 days,
        # 150 × 23/31 = 111.290… → 111.29.
        (date(2027, 3, 1), "150.00", "9.68", "1800.00", (date(2027, 3, 8), "116.13"),
         (date(2027, 3, 9), "111.29")),
        # March at 120.00; 120 × 2/31 = 7.741… → 7.74; 1 March: a 14-day trial → 15 March, 17
        # paid days, 120 × 17/31 = 65.806… → 65.81; 2 March: 7 days → 9 March, 23 days,
        # 120 × 23/31 = 89.032… → 89.03.
        (date(2027, 3, 2), "120.00", "7.74", "1440.00", (date(2027, 3, 15), "65.81"),
         (date(2027, 3, 9), "89.03")),
    ],
    ids=["terms-on-the-1st", "terms-on-the-2nd"],
)  # fmt: skip
def test_p2_m2_k1_k2_t3_team_terms_dated_the_1st_or_the_2nd(
    db, django_capture_on_commit_callbacks, finance, on, march, cut, ann1, tri1, tri2
):
    """Team's terms from `on` (1 or 2 March 2027, entered on 1 February): 150.00 a month,
    1,800.00 a year, a 7-day trial. README (P2): a month is billed at the terms in force on its
    first day, an annual term at those of its first day, a trial lasts as the terms of the day
    it starts say.

    - `stay`, paid monthly from 1 February: February 120.00 (1 March); March at 1 March's
      terms, `march` (1 April); April 150.00 (1 May).
    - `cut`, paid monthly from 1 February, cancels on 3 March: final invoice for 1–2 March at
      March's terms, price × 2/31 = `cut` (K1).
    - `ann1`, paid annual from 1 March: `ann1` (1 March's price), to 1 March 2028 (K2).
    - `ann2`, paid annual from 2 March: 1,800.00 either way, to 2 March 2028.
    - `tri1`, `tri2`: straight into Team with a card on 1 and on 2 March: the trial's length
      from its first day's terms (T3), March's paid days at March's terms (M2), no overage;
      April 150.00."""
    feb1, mar1, mar2, apr1, may1 = (
        date(2027, 2, 1),
        date(2027, 3, 1),
        date(2027, 3, 2),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )

    def actions(day):
        if day == feb1:
            new_terms(finance, on, monthly_price="150.00", annual_price="1800.00", trial_days=7)
            paid("stay", day)
            paid("cut", day)
        if day == mar1:
            paid("ann1", day, interval="annual")
            new("tri1", day, plan="team", card=True)
        if day == mar2:
            paid("ann2", day, interval="annual")
            new("tri2", day, plan="team", card=True)
        if day == date(2027, 3, 3):
            services.change_to_free(ws_("cut"), as_of=day)

    def read():
        return {slug: totals(slug) for slug in ("stay", "cut", "ann1", "ann2", "tri1", "tri2")}

    out = both_ways(django_capture_on_commit_callbacks, feb1, may1, actions, read)
    february = (M, mar1, feb1, mar1, D("120.00"))
    april = (M, may1, apr1, may1, D("150.00"))
    assert out["stay"] == [february, (M, apr1, mar1, apr1, D(march)), april]
    assert out["cut"] == [february, ("final", date(2027, 3, 3), mar1, date(2027, 3, 3), D(cut))]
    assert out["ann1"] == [("annual", mar1, mar1, date(2028, 3, 1), D(ann1))]
    assert out["ann2"] == [("annual", mar2, mar2, date(2028, 3, 2), D("1800.00"))]
    assert out["tri1"] == [(M, apr1, tri1[0], apr1, D(tri1[1])), april]
    assert out["tri2"] == [(M, apr1, tri2[0], apr1, D(tri2[1])), april]


# --- 5. Forecasts across dated terms ------------------------------------------------------------


@pytest.mark.parametrize(
    "on, march",
    [
        # March at the new terms: 150.00 + (12,000 − 8,000) × 0.02 = 80.00
        (date(2027, 3, 1), "230.00"),
        # March at the old terms: 120.00 + (12,000 − 10,000) × 0.01 = 20.00
        (date(2027, 3, 2), "140.00"),
    ],
    ids=["terms-on-the-1st", "terms-on-the-2nd"],
)
def test_fc1_p2_m1_a_forecast_across_terms_dated_the_1st_or_the_2nd(db, finance, on, march):
    """`fc`, paid monthly from 1 January 2027, 12,000 MTUs in January and February; the clock
    through 14 February. Team from `on`: 150.00 a month, 8,000 MTUs included, 0.02 an MTU
    above. A forecast on 15 February of 3 months at 12,000 MTUs (FC1): February (1 March) at
    February's terms, 120.00 + 20.00 = 140.00; March (1 April) at 1 March's terms, `march`;
    April (1 May) at the new terms, 230.00. Nothing written; then the usage reported and the
    clock run to 1 May: the same invoices, field by field and line by line."""
    jan1, feb1, mar1, apr1, may1 = (
        date(2027, 1, 1),
        date(2027, 2, 1),
        date(2027, 3, 1),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )
    ws = paid("fc", jan1)
    services.record_usage(ws, month=jan1, mtus=12_000)
    services.run_billing(as_of=date(2027, 2, 14))
    new_terms(
        finance, on, monthly_price="150.00", included_mtus=8_000, overage_rate="0.0200"
    )  # fmt: skip
    services.record_usage(ws, month=feb1, mtus=12_000)
    before = everything()
    forecast = forecast_invoices(ws, as_of=date(2027, 2, 15), months=3, mtus=12_000)
    assert everything() == before
    assert [(i.issue_date, i.period_start, i.period_end, i.total) for i in forecast] == [
        (mar1, feb1, mar1, D("140.00")),
        (apr1, mar1, apr1, D(march)),
        (may1, apr1, may1, D("230.00")),
    ]
    for month in (mar1, apr1):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=may1)
    issued = Invoice.objects.filter(workspace=ws, issue_date__gte=mar1)
    assert forecast_figures(forecast) == forecast_figures(issued)


def test_fc1_t3_p2_m2_m3_a_forecast_of_a_trial_ending_on_28_february_with_terms_from_that_day(
    db, finance
):
    """`up`, on Free with a card from 1 January 2027; the clock through 13 February. Team from
    28 February 2027: 150.00 a month. A forecast on 14 February of a move to Team that day, 3
    months at 12,000 MTUs: a 14-day trial (the terms of its first day, T3), 14–27 February,
    end date 28 February, the month's last day. February (1 March): one paid day at
    February's terms, 120 × 1/28 = 4.285… → 4.29, no overage (trial days, M3); March (1 April)
    150.00 + 20.00 = 170.00; April (1 May) 170.00. Nothing written; then the move made for
    real, the usage reported and the clock run to 1 May: the same invoices."""
    feb1, feb28, mar1, apr1, may1 = (
        date(2027, 2, 1),
        date(2027, 2, 28),
        date(2027, 3, 1),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )
    feb14 = date(2027, 2, 14)
    ws = new("up", date(2027, 1, 1), card=True)
    services.run_billing(as_of=date(2027, 2, 13))
    new_terms(finance, feb28, monthly_price="150.00")

    def to_team(w, as_of):
        return services.change_to_team(w, as_of=as_of)

    before = everything()
    forecast = forecast_invoices(ws, as_of=feb14, months=3, mtus=12_000, changes=[to_team])
    assert everything() == before
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in forecast] == [
        (M, mar1, feb28, mar1, D("4.29")),
        (M, apr1, mar1, apr1, D("170.00")),
        (M, may1, apr1, may1, D("170.00")),
    ]
    to_team(ws, feb14)
    for month in (feb1, mar1, apr1):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=may1)
    assert ws.subscriptions.get(plan__code="team").trial_end == feb28
    assert forecast_figures(forecast) == forecast_figures(Invoice.objects.filter(workspace=ws))


# --- 6. Terms changed mid-month, a final invoice and a return ------------------------------------


def test_k1_p2_u1_t1_terms_mid_month_a_final_invoice_and_a_return_at_the_first_days_terms(
    db, django_capture_on_commit_callbacks, finance
):
    """Team from 16 March 2027 (entered on 1 March): 150.00 a month, 8,000 MTUs included, 0.02
    an MTU above. March is billed at 1 March's terms (README, P2), whatever bills it.

    `back`, paid monthly from 1 March, 12,000 MTUs for March reported on 10 March, cancels on
    20 March: final invoice for 1–19 March, 120 × 19/31 = 73.548… → 73.55 + (12,000 − 10,000)
    × 0.01 = 20.00: 93.55 (K1). March's figure raised to 14,000 on 25 March (U1) and back on
    Team that day, paid at once (T1). March's close (1 April) bills the paid days after the
    return, 25–31 March, 120 × 7/31 = 27.096… → 27.10, and only overage not billed yet:
    4,000 × 0.01 = 40.00 − 20.00 = 20.00: 47.10 (K1). April at April's terms, 12,000 MTUs:
    150.00 + 4,000 × 0.02 = 80.00: 230.00 (1 May)."""
    mar1, mar20, mar25, apr1, may1 = (
        date(2027, 3, 1),
        date(2027, 3, 20),
        date(2027, 3, 25),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )

    def actions(day):
        if day == mar1:
            new_terms(
                finance,
                date(2027, 3, 16),
                monthly_price="150.00",
                included_mtus=8_000,
                overage_rate="0.0200",
            )
            paid("back", day)
        if day == date(2027, 3, 10):
            services.record_usage(ws_("back"), month=mar1, mtus=12_000)
        if day == mar20:
            services.change_to_free(ws_("back"), as_of=day)
        if day == mar25:
            services.record_usage(ws_("back"), month=mar1, mtus=14_000)
            services.change_to_team(ws_("back"), as_of=day)
        if day == date(2027, 4, 30):
            services.record_usage(ws_("back"), month=apr1, mtus=12_000)

    def read():
        return {"bills": totals("back"), "lines": lines("back")}

    out = both_ways(django_capture_on_commit_callbacks, mar1, may1, actions, read)
    assert out["bills"] == [
        ("final", mar20, mar1, mar20, D("93.55")),
        (M, apr1, mar25, apr1, D("47.10")),
        (M, may1, apr1, may1, D("230.00")),
    ]
    assert out["lines"] == [
        [("base", D("73.55")), ("overage", D("20.00"))],
        [("base", D("27.10")), ("overage", D("20.00"))],
        [("base", D("150.00")), ("overage", D("80.00"))],
    ]


# --- 7. Signed up into Team on the 1st or the last day, closed the next day ---------------------


@pytest.mark.parametrize(
    "signed_up", [date(2027, 3, 1), date(2027, 3, 31)], ids=["on-the-1st", "on-the-31st"]
)
def test_w1_t1_t5_m3_f1_signed_up_into_team_then_closed_the_next_day(
    db, django_capture_on_commit_callbacks, support, signed_up
):
    """`up` signs up straight into Team with a card on `signed_up` (1 or 31 March 2027): a
    trial from that day (T1, T3), 5,000 MTUs for March reported that day. Closed the next day
    (W1): the trial ends uncharged (T5), nothing billed for March (no paid day, M1); March had
    a trial day: not Free on every day, no strike (F1); one closure email. Reopened on
    10 April (Free, unlocked) and on Team that day: paid at once, no trial (W1: "no trial if it
    ever had Team", T1). April, 12,000 MTUs: 21 paid days (10–30) of 30, 120 × 21/30 = 84.00,
    and no trial day in April, so overage 2,000 × 0.01 = 20.00 (M3): 104.00, dated 1 May."""
    closed_on = date.fromordinal(signed_up.toordinal() + 1)
    apr10, may1 = date(2027, 4, 10), date(2027, 5, 1)

    def actions(day):
        if day == signed_up:
            new("up", day, plan="team", card=True)
            services.record_usage(ws_("up"), month=date(2027, 3, 1), mtus=5_000)
        if day == closed_on:
            services.close_workspace(ws_("up"), by=support, reason="Asked", as_of=day)
        if day == apr10:
            services.reopen_workspace(ws_("up"), by=support, reason="Back", as_of=day)
            services.change_to_team(ws_("up"), as_of=day)
        if day == date(2027, 4, 30):
            services.record_usage(ws_("up"), month=date(2027, 4, 1), mtus=12_000)

    def read():
        return {
            "bills": totals("up"),
            "signed_up": status("up", signed_up, "plan", "trialing", "closed"),
            "closed": status("up", closed_on, "plan", "trialing", "closed", "data_flow"),
            "back": status("up", apr10, "plan", "trialing", "closed", "data_flow"),
            "strikes": Strike.objects.count(),
        }

    out = both_ways(django_capture_on_commit_callbacks, signed_up, may1, actions, read)
    assert out["bills"] == [(M, may1, apr10, may1, D("104.00"))]
    assert out["signed_up"] == ("team", True, False)
    assert out["closed"] == ("free", False, True, False)
    assert out["back"] == ("team", False, False, True)
    assert out["strikes"] == 0
    assert [s for _, s in out["letters"] if s == "Up is closed"] == ["Up is closed"]


# --- 8. Usage for a closed month, the day after its close --------------------------------------


def test_d2_u1_u2_k1_m1_usage_for_march_after_its_close_and_before_the_next_run(db):
    """`late`, paid monthly from 1 March 2027, no usage reported for March; the clock runs
    1 April: March's close issues 120.00 dated 1 April (M1). On 2 April, before the clock runs
    that day: a report of 11,000 MTUs for March is refused, naming the month (D2: "Usage for a
    month whose close has run is refused"); so is an import with a good April line and that
    March line, whole, naming the March line (U2); nothing is written. April's 12,000 reported
    alone is taken; `late` cancels that day (K1): final invoice dated 2 April for 1 April,
    120 × 1/30 = 4.00 + 2,000 × 0.01 = 20.00: 24.00. April's close (1 May) bills nothing
    more (M1: billed by the final invoice); no strike for April (F1: paid Team on 1 April)."""
    mar1, apr1, apr2, may1 = date(2027, 3, 1), date(2027, 4, 1), date(2027, 4, 2), date(2027, 5, 1)
    ws = paid("late", mar1)
    services.run_billing(as_of=apr1)
    with pytest.raises(BillingError, match="March 2027 is closed"):
        services.record_usage(ws, month=mar1, mtus=11_000, as_of=apr2)
    rows = [
        (2, {"workspace": "late", "month": "2027-04", "mtus": "12000"}),
        (3, {"workspace": "late", "month": "2027-03", "mtus": "11000"}),
    ]
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(rows)
    assert refused.value.errors == ["Line 3: 2027-03 is closed (its invoices are issued)."]
    assert not Usage.objects.exists()
    services.record_usage(ws, month=apr1, mtus=12_000, as_of=apr2)
    services.change_to_free(ws, as_of=apr2)
    services.run_billing(as_of=may1)
    assert totals("late") == [
        (M, apr1, mar1, apr1, D("120.00")),
        ("final", apr2, apr1, apr2, D("24.00")),
    ]
    assert lines("late")[1] == [("base", D("4.00")), ("overage", D("20.00"))]
    assert Strike.objects.count() == 0


# --- 9. Once coupons on a one-day month after a trial ending on 30 April -------------------------


def test_c5_c4_m1_t3_once_coupons_on_the_one_paid_day_of_a_trial_ending_on_30_april(
    db, django_capture_on_commit_callbacks, support
):
    """Two sign-ups straight into Team with a card on 16 April 2027: trials 16–29 April, end
    date 30 April (T3), the month's last day; April, a 30-day month, has one paid day: 120 ×
    1/30 = 4.00, dated 1 May (M2). C5: `once` applies to the first invoice whose issue date is
    on or after the redemption date; C4: amount → min(amount, subtotal), percent → subtotal ×
    p / 100.

    - `amt`: 10.00 off once, redeemed on 20 April (in the trial): April 4.00 − min(10.00, 4.00)
      = 0.00, still issued (M1); the coupon is used: May (1 June) 120.00, the 6.00 left over
      is not carried.
    - `pct`: 50 % off once, redeemed on 30 April (the end date): April 4.00 − 2.00 = 2.00; May
      120.00."""
    apr16, apr30, may1, jun1 = (
        date(2027, 4, 16),
        date(2027, 4, 30),
        date(2027, 5, 1),
        date(2027, 6, 1),
    )

    def actions(day):
        if day == apr16:
            coupon(code="TENOFF", amount_off="10.00", duration="once")
            coupon(code="HALFONCE", percent_off="50", duration="once")
            new("amt", day, plan="team", card=True)
            new("pct", day, plan="team", card=True)
        if day == date(2027, 4, 20):
            coupons.redeem_coupon(ws_("amt"), "TENOFF", by=support, as_of=day)
        if day == apr30:
            coupons.redeem_coupon(ws_("pct"), "HALFONCE", by=support, as_of=day)

    def read():
        return {"amt": brief("amt"), "pct": brief("pct")}

    out = both_ways(django_capture_on_commit_callbacks, apr16, jun1, actions, read)
    may = (M, jun1, may1, jun1, D("120.00"), ZERO, ZERO, D("120.00"))
    assert out["amt"] == [(M, may1, apr30, may1, D("4.00"), D("4.00"), ZERO, ZERO), may]
    assert out["pct"] == [(M, may1, apr30, may1, D("4.00"), D("2.00"), ZERO, D("2.00")), may]


# --- 10. The last microsecond of a day, UTC ----------------------------------------------------


def test_d1_a_day_ends_at_midnight_utc_not_a_microsecond_before(db, monkeypatch):
    """D1: the clock processes a day only once it has ended; dates are calendar dates in UTC.
    `ws` paid monthly from 1 December 2027, the clock through 30 December. At
    2027-12-31 23:59:59.999999 UTC both the command and the beat's task refuse 31 December
    (explicitly and as "yesterday" is 30 December, already processed: nothing new). At
    2028-01-01 00:00:00 UTC the task processes 31 December (yesterday); the command for
    31 December then has nothing to do; 1 January is refused by both. December's close
    (dated 1 January) has not run: no invoice."""
    dec30, dec31 = date(2027, 12, 30), date(2027, 12, 31)
    paid("ws", date(2027, 12, 1))
    services.run_billing(as_of=dec30)

    def at(moment):
        monkeypatch.setattr(timezone, "now", lambda: moment)

    at(datetime(2027, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
    assert _beat("command", dec31) == "refused"
    assert _beat("task", dec31) == "refused"
    assert last_processed_day() == dec30
    at(datetime(2028, 1, 1, tzinfo=UTC))
    assert _beat("task") != "refused"
    assert last_processed_day() == dec31
    assert "nothing to do" in _beat("command", dec31)
    assert _beat("command", date(2028, 1, 1)) == "refused"
    assert _beat("task", date(2028, 1, 1)) == "refused"
    assert last_processed_day() == dec31
    assert not Invoice.objects.exists()


# --- 11. The Free allowance raised from the last day of March ------------------------------------


def test_p1_p2_f1_f2_f3_a_free_allowance_raised_from_the_last_day_of_a_month(
    db, django_capture_on_commit_callbacks, finance
):
    """Free includes 2,000 MTUs from 31 March 2027 (was 1,000; entered on 1 March). README:
    "A month is billed at the terms in force on its first day … and a month's strikes count
    against that month's Free allowance" — March's is 1 March's, 1,000.

    - `over`, on Free from 1 March, 1,500 MTUs in March and in April: March's close (1 April)
      strikes (1,500 > 1,000, F1) and locks (one strike, `locked`, F2); April's (1 May) counts
      1,500 against 2,000: no strike, unlocked (F3).
    - `edge`, signed up on Free on 31 March, the new terms' first day, 1,500 MTUs in March:
      March's allowance is still 1,000: a strike, `locked` on 1 April; no April usage:
      unlocked on 1 May.
    - `under`, on Free from 1 March, 1,500 MTUs in April only: no strike, no lock."""
    mar1, mar31, apr1, may1 = (
        date(2027, 3, 1),
        date(2027, 3, 31),
        date(2027, 4, 1),
        date(2027, 5, 1),
    )

    def actions(day):
        if day == mar1:
            services.update_plan(
                Plan.objects.get(code="free"),
                by=finance,
                reason="More room on Free",
                effective_on=mar31,
                included_mtus=2_000,
            )
            new("over", day)
            new("under", day)
        if day == mar31:
            new("edge", day)
            for slug in ("over", "edge"):
                services.record_usage(ws_(slug), month=mar1, mtus=1_500)
        if day == date(2027, 4, 30):
            for slug in ("over", "under"):
                services.record_usage(ws_(slug), month=apr1, mtus=1_500)

    def read():
        return {slug: locks(slug) for slug in ("over", "edge", "under")} | {
            "strikes": sorted(Strike.objects.values_list("workspace__slug", "month"))
        }

    out = both_ways(django_capture_on_commit_callbacks, mar1, may1, actions, read)
    lock_then_unlock = [
        (apr1, "unlocked", "locked", "free_limit"),
        (may1, "locked", "unlocked", "under_limit"),
    ]
    assert out["over"] == lock_then_unlock
    assert out["edge"] == lock_then_unlock
    assert out["under"] == []
    assert out["strikes"] == [("edge", mar1), ("over", mar1)]
