"""A fifth set of edge days and edge figures, each worked by hand from SPEC (the figures are in
each test's docstring and comments; nothing is computed by the code under test), on what the
first four files cover least:

- M, K: two cancellations and two returns in one 30-day month (by day and in one run, D4), a
  cancellation and a return on the same day of a 29-day February, a paid first day on the last
  day of a 28/29/30/31-day month followed by a cancellation on the 1st, monthly → annual on a
  month's last day, an interval change and "cancel, then annual" the same day billing alike
  (D4), a coupon and a cancellation dated the same day in either order.
- P: Team's terms changed ahead (price, annual price, allowance, overage rate) and the next
  invoices: a renewal on the terms' first day, an annual term's overage invoices, the first
  monthly month after a term, a 29-day February's final invoice, a trial spanning the change.
- U: an import and single reports replacing one another, an import with a line for a closed
  month or one not started (nothing written), usage imported on the close's day before the
  clock runs, usage reported after a final invoice, the month's allowance not prorated, the
  largest figure accepted billed to the cent (I6).
- T, F7: a trial from 31 December, one from 16 February in a 28-day year ending on 2 March
  (with and without a card), a trial cancelled then paid the same month, a card and an
  interval change on the end date in either order (D4), a trial ended without a card putting
  the lock back and the next close lifting it (F3, F6), a trial paid on the 1st and cancelled
  on the 2nd, the last day of a month on Free or on a trial (F1); D3: the interval a trial
  continued with on a day before it was changed.
- S, CR, C7: E1 around an incorporation on 29 February, approval on a trial's end date with
  and without a card (S7), a Free member who trials then pays, a partner's small credit running
  out inside an invoice (still a member), year two ending on the second anniversary, year two
  confirmed before or on an anniversary that is an invoice date.
- D4: a coupon, a grant and an upgrade dated mid-February ahead of a clock that never ran.
- I5: the document of a final invoice of a month with two returns lists the stored lines.
"""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail

from billing import services
from billing.errors import BillingError, UsageImportError
from billing.invoice_documents import invoice_document
from billing.models import Invoice, LockEvent, OutboundEmail, Plan, Strike, Usage
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import AcceleratorPartner, CreditGrant
from startups import services as startups
from startups.models import RenewalReview
from tests.billing.factories import paid_annual, paid_monthly, workspace
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import bills, ledger
from tests.startups.factories import application, confirm_year_two

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


def team():
    return Plan.objects.get(code="team")


def short(ws):
    """(kind, issue date, period start, period end, subtotal, total) of each invoice."""
    return [(b[0], b[1], b[2], b[3], b[4], b[8]) for b in bills(ws)]


def reminders():
    return [m for m in mail.outbox if "ends on" in m.subject]


def usage_file(tmp_path, name, *lines):
    path = tmp_path / name
    path.write_text("workspace,month,mtus\n" + "".join(f"{line}\n" for line in lines))
    return path


# --- M, K: several changes in one month ---------------------------------------------------------


def _two_returns_in_april(daily, capture):
    """Paid monthly from 1 March 2027; in April 2027 (30 days) cancelled on the 6th and the 20th,
    back on Team (paid at once, T1) on the 10th and the 25th; April's figure reported as 11,000
    before the 6th, 12,500 on the 15th, 13,000 on the 28th (U1: each replaces the last)."""
    ws = paid_monthly(date(2027, 3, 1), slug="twice")
    april = date(2027, 4, 1)

    def actions(day):
        if day == date(2027, 4, 5):
            services.record_usage(ws, month=april, mtus=11_000)
        elif day in (date(2027, 4, 6), date(2027, 4, 20)):
            services.change_to_free(ws, as_of=day)
        elif day in (date(2027, 4, 10), date(2027, 4, 25)):
            services.change_to_team(ws, as_of=day)
        elif day == date(2027, 4, 15):
            services.record_usage(ws, month=april, mtus=12_500)
        elif day == date(2027, 4, 28):
            services.record_usage(ws, month=april, mtus=13_000)

    run_days(date(2027, 4, 1), date(2027, 5, 1), daily=daily, capture=capture, actions=actions)
    second_final = Invoice.objects.get(workspace=ws, kind="final", issue_date=date(2027, 4, 20))
    document = invoice_document(second_final)
    return {
        "bills": short(ws),
        "strikes": list(Strike.objects.filter(workspace=ws).values_list("month", flat=True)),
        "document": (
            [(line.description, line.quantity, line.amount) for line in document.lines],
            document.totals[-1],
        ),
    }


def test_k1_m2_d4_i5_two_cancellations_and_two_returns_in_one_30_day_month(
    db, django_capture_on_commit_callbacks
):
    """K1, M2, M3 in April 2027 (30 days):
    - cancelled 6 April: final invoice for 1–5 April, 120 × 5/30 = 20.00, plus the overage of
      the 11,000 reported so far, 1,000 × 0.01 = 10.00: 30.00;
    - back 10 April, cancelled 20 April: final invoice for 10–19 April, 120 × 10/30 = 40.00,
      plus the overage not billed yet, (12,500 − 10,000) − 1,000 = 1,500 × 0.01 = 15.00: 55.00;
    - back 25 April: April's close (1 May) bills 25–30 April, 120 × 6/30 = 24.00, plus
      (13,000 − 10,000) − 2,500 = 500 × 0.01 = 5.00: 29.00.
    The base adds up to 20 + 40 + 24 = 84.00 = 120 × 21/30 (21 paid days), the overage to
    30.00 = 3,000 × 0.01, each day and each MTU billed once. March (1 April): 120.00. F1: April
    had Team days: no strike. I5: the second final invoice's document lists its two stored
    lines (their wording is pinned as the code writes it). The same by day and in one run
    (D4)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _two_returns_in_april(is_daily, django_capture_on_commit_callbacks)
    )
    assert daily == catch_up
    apr1, may1 = date(2027, 4, 1), date(2027, 5, 1)
    apr6, apr10, apr20, apr25 = (date(2027, 4, d) for d in (6, 10, 20, 25))
    assert daily["bills"] == [
        ("monthly", apr1, date(2027, 3, 1), apr1, D("120.00"), D("120.00")),
        ("final", apr6, apr1, apr6, D("30.00"), D("30.00")),
        ("final", apr20, apr10, apr20, D("55.00"), D("55.00")),
        ("monthly", may1, apr25, may1, D("29.00"), D("29.00")),
    ]
    assert daily["strikes"] == []
    assert daily["document"] == (
        [
            ("Team monthly, April 2027: 10 of 30 days", "10 days", "$40.00"),
            ("Overage, April 2027: 1,500 MTUs at $0.01", "1,500 MTUs", "$15.00"),
        ],
        ("Total (USD)", "$55.00"),
    )


def test_k1_m2_cancelled_and_back_the_same_day_of_a_29_day_february(db):
    """Paid monthly from 1 January 2028, 12,000 MTUs reported for February 2028 (29 days). On
    15 February it is cancelled and moved back to Team the same day (paid at once, T1). K1: the
    final invoice dated 15 February bills 1–14 February, 120 × 14/29 = 57.931… → 57.93, plus
    (12,000 − 10,000) × 0.01 = 20.00: 77.93. February's close (1 March) bills 15–29 February,
    120 × 15/29 = 62.068… → 62.07, and no overage (billed already). 57.93 + 62.07 = 120.00:
    nothing lost or billed twice to the rounding here. January (1 February): 120.00."""
    ws = paid_monthly(date(2028, 1, 1))
    services.record_usage(ws, month=date(2028, 2, 1), mtus=12_000)
    services.change_to_free(ws, as_of=date(2028, 2, 15))
    services.change_to_team(ws, as_of=date(2028, 2, 15))
    services.run_billing(as_of=date(2028, 3, 1))
    feb1, feb15, mar1 = date(2028, 2, 1), date(2028, 2, 15), date(2028, 3, 1)
    assert short(ws) == [
        ("monthly", feb1, date(2028, 1, 1), feb1, D("120.00"), D("120.00")),
        ("final", feb15, feb1, feb15, D("77.93"), D("77.93")),
        ("monthly", mar1, feb15, mar1, D("62.07"), D("62.07")),
    ]


@pytest.mark.parametrize(
    "last_day, next_first, base",
    [
        (date(2027, 2, 28), date(2027, 3, 1), D("4.29")),  # 120 / 28 = 4.2857…
        (date(2028, 2, 29), date(2028, 3, 1), D("4.14")),  # 120 / 29 = 4.1379…
        (date(2027, 4, 30), date(2027, 5, 1), D("4.00")),  # 120 / 30
        (date(2027, 12, 31), date(2028, 1, 1), D("3.87")),  # 120 / 31 = 3.8709…
    ],
    ids=["28-days", "29-days", "30-days", "31-days"],
)
def test_m2_k1_paid_only_on_a_months_last_day_then_cancelled_on_the_1st(
    db, last_day, next_first, base
):
    """M2: paid monthly Team from a month's last day only: 1 paid day of 28, 29, 30 or 31.
    Cancelled on the 1st of the next month: K1, no paid day of that month before the 1st, so
    no final invoice. The close (dated that 1st, M1) bills the one day; the next month, Free
    from its first day, gets no invoice at all (not even 0.00) a month later."""
    ws = paid_monthly(last_day)
    services.change_to_free(ws, as_of=next_first)
    month_after = date(next_first.year + next_first.month // 12, next_first.month % 12 + 1, 1)
    services.run_billing(as_of=month_after)
    assert short(ws) == [("monthly", next_first, last_day, next_first, base, base)]
    assert workspace_status(ws, as_of=next_first)["plan"] == "free"


@pytest.mark.parametrize(
    "last_day, base, term_end",
    [
        (date(2027, 1, 31), D("116.13"), date(2028, 1, 31)),  # 120 × 30/31 = 116.129…
        (date(2027, 2, 28), D("115.71"), date(2028, 2, 28)),  # 120 × 27/28 = 115.714…
        (date(2028, 2, 29), D("115.86"), date(2029, 3, 1)),  # 120 × 28/29 = 115.862…
        (date(2027, 4, 30), D("116.00"), date(2028, 4, 30)),  # 120 × 29/30
    ],
    ids=["31-days", "28-days", "29-days", "30-days"],
)
def test_k4_k1_k2_monthly_to_annual_on_a_months_last_day(db, last_day, base, term_end):
    """Paid monthly from the month's 1st, 10,500 MTUs reported for the month; moved to annual
    on its last day (K4, at once). K1: a final invoice dated that day for the days before it,
    base as given, plus (10,500 − 10,000) × 0.01 = 5.00. K2: the annual invoice, 1,440.00,
    dated the same day, for a year from it (29 February runs to 1 March, CR1's reading). The
    month's close bills nothing more: the term's day has no base and the overage was billed."""
    first = last_day.replace(day=1)
    ws = paid_monthly(first)
    services.record_usage(ws, month=first, mtus=10_500)
    services.change_interval(ws, interval="annual", as_of=last_day)
    services.run_billing(as_of=last_day + timedelta(days=1))
    assert short(ws) == [
        ("final", last_day, first, last_day, base + D("5.00"), base + D("5.00")),
        ("annual", last_day, last_day, term_end, D("1440.00"), D("1440.00")),
    ]


def _february_2027_world(daily, capture):
    """February–March 2027, the clock from 1 February to 1 April each day or once:
    - `switch` and `route`: paid monthly from 1 January, 12,000 MTUs for February; on
      15 February `switch` moves to annual (K4) while `route` cancels and moves back to Team,
      annual, the same day; February's figure rises to 13,000 on the 20th.
    - `onfirst`: paid monthly from 1 January; on 1 March, 12,000 MTUs for March reported,
      then cancelled and back on monthly Team the same day.
    - `trialist`: signs up into Team with a card on 16 February (T3: trial 16 February –
      1 March, end date 2 March: 2027 has no 29 February); 15,000 MTUs for March."""
    with capture(execute=True):
        switch = paid_monthly(date(2027, 1, 1), slug="switch")
        route = paid_monthly(date(2027, 1, 1), slug="route")
        onfirst = paid_monthly(date(2027, 1, 1), slug="onfirst")
    for ws in (switch, route):
        services.record_usage(ws, month=date(2027, 2, 1), mtus=12_000)
    made = {}

    def actions(day):
        if day == date(2027, 2, 15):
            services.change_interval(switch, interval="annual", as_of=day)
            services.change_to_free(route, as_of=day)
            services.change_to_team(route, interval="annual", as_of=day)
        elif day == date(2027, 2, 16):
            made["trialist"] = workspace(
                as_of=day, plan="team", card=True, slug="trialist", name="Trialist"
            )
        elif day == date(2027, 2, 20):
            for ws in (switch, route):
                services.record_usage(ws, month=date(2027, 2, 1), mtus=13_000)
        elif day == date(2027, 3, 1):
            services.record_usage(onfirst, month=date(2027, 3, 1), mtus=12_000)
            services.record_usage(made["trialist"], month=date(2027, 3, 1), mtus=15_000)
            services.change_to_free(onfirst, as_of=day)
            services.change_to_team(onfirst, as_of=day)

    run_days(date(2027, 2, 1), date(2027, 4, 1), daily=daily, capture=capture, actions=actions)
    return {
        slug: short(ws)
        for slug, ws in {
            "switch": switch,
            "route": route,
            "onfirst": onfirst,
            "trialist": made["trialist"],
        }.items()
    }


def test_d4_k4_k1_k2_an_interval_change_and_cancel_then_annual_the_same_day_bill_alike(
    db, django_capture_on_commit_callbacks
):
    """K4 monthly → annual on 15 February 2027 is "a final invoice for the monthly part (K1),
    then a new annual term from that day (K2)": the same invoices as cancelling and taking
    annual Team the same day. For both: January (1 February) 120.00; final invoice dated
    15 February for 1–14 February, 120 × 14/28 = 60.00 + (12,000 − 10,000) × 0.01 = 20.00 =
    80.00; annual 1,440.00 for 15 February 2027 – 15 February 2028; February's close
    (1 March) bills the term's month its overage not billed yet: (13,000 − 10,000) − 2,000 =
    1,000 × 0.01 = 10.00, an invoice of kind `monthly` for 15 February – 1 March.
    `onfirst` (K1 on the 1st: no paid day of March before it, no final invoice): February
    (1 March) 120.00, March (1 April) 120.00 + 20.00 = 140.00, one invoice per month.
    `trialist` (M2, M3): March, 30 paid days (2–31), 120 × 30/31 = 116.129… → 116.13, no
    overage (1 March was a trial day). The same by day and in one run (D4)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _february_2027_world(is_daily, django_capture_on_commit_callbacks)
    )
    assert daily == catch_up
    jan1, feb1, feb15 = date(2027, 1, 1), date(2027, 2, 1), date(2027, 2, 15)
    mar1, mar2, apr1 = date(2027, 3, 1), date(2027, 3, 2), date(2027, 4, 1)
    moved = [
        ("monthly", feb1, jan1, feb1, D("120.00"), D("120.00")),
        ("final", feb15, feb1, feb15, D("80.00"), D("80.00")),
        ("annual", feb15, feb15, date(2028, 2, 15), D("1440.00"), D("1440.00")),
        ("monthly", mar1, feb15, mar1, D("10.00"), D("10.00")),
    ]
    assert daily == {
        "switch": moved,
        "route": moved,
        "onfirst": [
            ("monthly", feb1, jan1, feb1, D("120.00"), D("120.00")),
            ("monthly", mar1, feb1, mar1, D("120.00"), D("120.00")),
            ("monthly", apr1, mar1, apr1, D("140.00"), D("140.00")),
        ],
        "trialist": [("monthly", apr1, mar2, apr1, D("116.13"), D("116.13"))],
    }


@pytest.mark.parametrize("order", ["coupon-first", "cancel-first"])
def test_c5_k1_d4_a_coupon_and_a_cancellation_dated_the_same_day(db, support, order):
    """Paid monthly from 1 March 2027, the clock through 15 April. On 16 April: 20.00 off
    `once` and a cancellation. C5: `once` applies to the first invoice dated on or after the
    redemption, here the final invoice dated 16 April (K1: 1–15 April, 120 × 15/30 = 60.00),
    which becomes 60.00 − 20.00 = 40.00. Entered coupon first, that is what happens. Entered
    cancellation first, the final invoice is issued at 60.00 and never edited (I3), so the
    coupon dated 16 April, which C5 would put on it, is refused (D4: a change dated a day an
    invoice of the workspace was already issued for must not give a different result by its
    order of entry)."""
    ws = paid_monthly(date(2027, 3, 1))
    services.run_billing(as_of=date(2027, 4, 15))
    promo = coupon(amount_off="20.00", duration="once")
    day = date(2027, 4, 16)
    if order == "coupon-first":
        coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        services.change_to_free(ws, as_of=day)
        expected = (D("60.00"), D("20.00"), D("40.00"))
    else:
        services.change_to_free(ws, as_of=day)
        with pytest.raises(BillingError, match="INV-2027-000002, dated 16 Apr 2027, was issued"):
            coupons.redeem_coupon(ws, promo.code, by=support, as_of=day)
        expected = (D("60.00"), D("0.00"), D("60.00"))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.issue_date, final.subtotal, final.discount, final.total) == (day, *expected)


# --- P: terms changed ahead ---------------------------------------------------------------------


def test_p2_k2_k4_new_terms_on_a_renewal_day_and_on_an_annual_terms_months(db, finance):
    """Team's terms from 1 March 2028 (P2, configurable, dated ahead): 150.00 a month,
    1,800.00 a year, 8,000 MTUs included, 0.015 an MTU above. 9,000 MTUs every month.
    - `renews`: annual from 1 March 2027 (1,440.00). February 2028, at February's terms
      (10,000 included), has no overage: nothing issued on 1 March. It renews on 1 March 2028,
      the terms' first day, at 1,800.00 (K2: the term's price on its first day). March 2028,
      at March's terms: (9,000 − 8,000) × 0.015 = 15.00 (P2: an annual term has the same
      monthly allowance and overage rate; SPEC is silent on whether a prepaid term keeps the
      allowance of its first day, pinned: it follows the month's), issued 1 April; April
      likewise, 1 May.
    - `switcher`: annual from 16 March 2027 (1,440.00), asked for monthly on 1 June 2027
      (K4: at the term's end, 16 March 2028). March 2028: 16 monthly days (16–31) at March's
      terms, 150 × 16/31 = 77.419… → 77.42, plus 15.00 overage: 92.42 (1 April). April:
      150.00 + 15.00 = 165.00 (1 May)."""
    renews = paid_annual(date(2027, 3, 1), slug="renews")
    switcher = paid_annual(date(2027, 3, 16), slug="switcher")
    services.change_interval(switcher, interval="monthly", as_of=date(2027, 6, 1))
    services.update_plan(
        team(),
        by=finance,
        reason="2028 price list",
        effective_on=date(2028, 3, 1),
        monthly_price="150.00",
        annual_price="1800.00",
        included_mtus=8_000,
        overage_rate="0.0150",
    )
    for ws in (renews, switcher):
        for month in (date(2028, 2, 1), date(2028, 3, 1), date(2028, 4, 1)):
            services.record_usage(ws, month=month, mtus=9_000)
    services.run_billing(as_of=date(2028, 5, 1))
    mar1_27, mar16_27 = date(2027, 3, 1), date(2027, 3, 16)
    mar1, mar16, apr1, may1 = (
        date(2028, 3, 1),
        date(2028, 3, 16),
        date(2028, 4, 1),
        date(2028, 5, 1),
    )
    assert short(renews) == [
        ("annual", mar1_27, mar1_27, mar1, D("1440.00"), D("1440.00")),
        ("annual", mar1, mar1, date(2029, 3, 1), D("1800.00"), D("1800.00")),
        ("monthly", apr1, mar1, apr1, D("15.00"), D("15.00")),
        ("monthly", may1, apr1, may1, D("15.00"), D("15.00")),
    ]
    assert short(switcher) == [
        ("annual", mar16_27, mar16_27, mar16, D("1440.00"), D("1440.00")),
        ("monthly", apr1, mar16, apr1, D("92.42"), D("92.42")),
        ("monthly", may1, apr1, may1, D("165.00"), D("165.00")),
    ]


def test_p2_m2_k1_a_price_rise_from_1_february_2028_and_the_leap_month(db, finance):
    """150.00 a month from 1 February 2028 (entered ahead). January's invoice is issued on
    1 February, the rise's first day, but bills January at January's terms: 120.00 (SPEC is
    silent on which day's terms bill a month; pinned: those of its first day, as the code's
    PlanTerms says). February 2028 has 29 days:
    - `stayer` (paid from 1 January): February, 150.00, issued 1 March;
    - `leaver` (paid from 1 January) cancels on 29 February: final invoice for 1–28 February,
      150 × 28/29 = 144.827… → 144.83 (K1);
    - `leapling` paid from 29 February only: 150 × 1/29 = 5.172… → 5.17, issued 1 March."""
    stayer = paid_monthly(date(2028, 1, 1), slug="stayer")
    leaver = paid_monthly(date(2028, 1, 1), slug="leaver")
    services.update_plan(
        team(), by=finance, reason="2028 prices", effective_on=date(2028, 2, 1), monthly_price="150"
    )
    leapling = paid_monthly(date(2028, 2, 29), slug="leapling")
    services.change_to_free(leaver, as_of=date(2028, 2, 29))
    services.run_billing(as_of=date(2028, 3, 1))
    jan1, feb1, feb29, mar1 = (
        date(2028, 1, 1),
        date(2028, 2, 1),
        date(2028, 2, 29),
        date(2028, 3, 1),
    )
    assert short(stayer) == [
        ("monthly", feb1, jan1, feb1, D("120.00"), D("120.00")),
        ("monthly", mar1, feb1, mar1, D("150.00"), D("150.00")),
    ]
    assert short(leaver) == [
        ("monthly", feb1, jan1, feb1, D("120.00"), D("120.00")),
        ("final", feb29, feb1, feb29, D("144.83"), D("144.83")),
    ]
    assert short(leapling) == [("monthly", mar1, feb29, mar1, D("5.17"), D("5.17"))]


def test_p2_t3_m3_a_trial_spanning_a_price_rise_on_the_1st(db, finance):
    """Team 150.00 a month from 1 March 2027 (entered ahead). A sign-up into Team with a card on
    20 February 2027 gets the trial of its day's terms, 14 days (T3): 20 February – 5 March,
    end date 6 March. March: 26 paid days (6–31) at March's terms, 150 × 26/31 = 125.806… →
    125.81, and no overage for its 13,000 MTUs (trial days, M3). April: 150.00 + (13,000 −
    10,000) × 0.01 = 30.00 → 180.00."""
    ws = workspace(as_of=date(2027, 2, 20), plan="team", card=True)
    services.update_plan(
        team(), by=finance, reason="2027 prices", effective_on=date(2027, 3, 1), monthly_price="150"
    )
    for month in (date(2027, 3, 1), date(2027, 4, 1)):
        services.record_usage(ws, month=month, mtus=13_000)
    services.run_billing(as_of=date(2027, 5, 1))
    assert ws.subscriptions.get(plan__code="team").trial_end == date(2027, 3, 6)
    apr1, may1 = date(2027, 4, 1), date(2027, 5, 1)
    assert short(ws) == [
        ("monthly", apr1, date(2027, 3, 6), apr1, D("125.81"), D("125.81")),
        ("monthly", may1, apr1, may1, D("180.00"), D("180.00")),
    ]


# --- U: usage reports and imports ---------------------------------------------------------------


def test_u1_u2_an_import_and_single_reports_replace_one_another(db, tmp_path):
    """U1: the last figure for a month replaces the others, however it came. `acme` reports
    11,000 for March 2027, an import sets 15,000 (a replacement) and `beta`'s 10,001 (new), then
    `acme` reports 12,500. March's close (1 April): `acme` 120.00 + 2,500 × 0.01 = 145.00;
    `beta` 120.00 + 1 × 0.01 = 120.01."""
    acme = paid_monthly(date(2027, 3, 1), slug="acme")
    beta = paid_monthly(date(2027, 3, 1), slug="beta")
    march = date(2027, 3, 1)
    services.record_usage(acme, month=march, mtus=11_000)
    result = services.import_usage(
        usage_file(tmp_path, "march.csv", "acme,2027-03,15000", "beta,2027-03,10001"),
        as_of=date(2027, 3, 31),
    )
    assert result == {"created": 1, "replaced": 1, "unchanged": 0}
    assert Usage.objects.get(workspace=acme, month=march).mtus == 15_000
    services.record_usage(acme, month=march, mtus=12_500)
    services.run_billing(as_of=date(2027, 4, 1))
    apr1 = date(2027, 4, 1)
    assert short(acme) == [("monthly", apr1, march, apr1, D("145.00"), D("145.00"))]
    assert short(beta) == [("monthly", apr1, march, apr1, D("120.01"), D("120.01"))]


def test_u2_d2_an_import_with_a_closed_or_unstarted_month_writes_nothing(db, tmp_path):
    """The clock through 1 April 2027 (March closed). `acme` reported 11,000 for April. A file
    imported on 30 April: line 2 `acme` April 12,000 (good), line 3 `beta` March 5,000 (closed,
    D2), line 4 `acme` May 1 (not started on 30 April, U2): refused whole, naming lines 3 and 4;
    April stays 11,000. Imported on 1 May (the close's day, before the clock runs) with `beta`
    May 900 instead: accepted. April's close (1 May): `acme` 120.00 + 2,000 × 0.01 = 140.00,
    `beta` 120.00."""
    acme = paid_monthly(date(2027, 3, 1), slug="acme")
    beta = paid_monthly(date(2027, 3, 1), slug="beta")
    services.run_billing(as_of=date(2027, 4, 1))
    april = date(2027, 4, 1)
    services.record_usage(acme, month=april, mtus=11_000)
    bad = usage_file(
        tmp_path, "bad.csv", "acme,2027-04,12000", "beta,2027-03,5000", "acme,2027-05,1"
    )
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(bad, as_of=date(2027, 4, 30), listed=None)
    errors = refused.value.errors
    assert [e.split(":")[0] for e in errors] == ["Line 3", "Line 4"]
    assert "2027-03 is closed (its invoices are issued)" in errors[0]
    assert "2027-05 has not started" in errors[1]
    assert Usage.objects.get(workspace=acme, month=april).mtus == 11_000
    assert not Usage.objects.filter(workspace=beta).exists()
    good = usage_file(tmp_path, "good.csv", "acme,2027-04,12000", "beta,2027-05,900")
    assert services.import_usage(good, as_of=date(2027, 5, 1)) == {
        "created": 1,
        "replaced": 1,
        "unchanged": 0,
    }
    services.run_billing(as_of=date(2027, 5, 1))
    may1 = date(2027, 5, 1)
    assert short(acme)[-1] == ("monthly", may1, april, may1, D("140.00"), D("140.00"))
    assert short(beta)[-1] == ("monthly", may1, april, may1, D("120.00"), D("120.00"))


def test_u1_d2_usage_imported_on_the_closes_day_before_the_clock_runs_is_billed(db, tmp_path):
    """The clock through 31 March 2027; `acme` (paid monthly from 1 March) reported 11,000 for
    March. On 1 April, before that day's run, an import sets 13,500 (U1): March's close that
    day bills 120.00 + 3,500 × 0.01 = 35.00 → 155.00. Afterwards March is closed (D2): a single
    report and an import line for it are refused, and the invoice stands."""
    acme = paid_monthly(date(2027, 3, 1), slug="acme")
    march = date(2027, 3, 1)
    services.record_usage(acme, month=march, mtus=11_000)
    services.run_billing(as_of=date(2027, 3, 31))
    late = usage_file(tmp_path, "late.csv", "acme,2027-03,13500")
    assert services.import_usage(late, as_of=date(2027, 4, 1)) == {
        "created": 0,
        "replaced": 1,
        "unchanged": 0,
    }
    services.run_billing(as_of=date(2027, 4, 1))
    apr1 = date(2027, 4, 1)
    assert short(acme) == [("monthly", apr1, march, apr1, D("155.00"), D("155.00"))]
    with pytest.raises(BillingError, match="closed"):
        services.record_usage(acme, month=march, mtus=20_000)
    again = usage_file(tmp_path, "again.csv", "acme,2027-03,20000")
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(again, as_of=date(2027, 4, 2))
    assert refused.value.errors == ["Line 2: 2027-03 is closed (its invoices are issued)."]
    assert Usage.objects.get(workspace=acme, month=march).mtus == 13_500


def test_k1_u1_usage_reported_after_the_final_invoice_is_not_billed(db):
    """Paid monthly from 1 March 2027; 10,500 MTUs reported for April; cancelled 16 April. K1:
    the final invoice bills 1–15 April, 120 × 15/30 = 60.00, plus overage "on the MTUs reported
    for that month so far", 500 × 0.01 = 5.00: 65.00. April's figure is then raised to 14,000
    (U1: accepted, April is open), but the workspace is on Free from 16 April and does not
    return: April's close issues nothing more (M1: billed by the final invoice), and no strike
    (F1: April had Team days). The 3,500 MTUs above what was billed stay unbilled (SPEC's letter:
    "reported so far")."""
    ws = paid_monthly(date(2027, 3, 1))
    april = date(2027, 4, 1)
    services.record_usage(ws, month=april, mtus=10_500)
    services.change_to_free(ws, as_of=date(2027, 4, 16))
    services.record_usage(ws, month=april, mtus=14_000)
    services.run_billing(as_of=date(2027, 6, 1))
    assert short(ws) == [
        ("monthly", april, date(2027, 3, 1), april, D("120.00"), D("120.00")),
        ("final", date(2027, 4, 16), april, date(2027, 4, 16), D("65.00"), D("65.00")),
    ]
    assert Usage.objects.get(workspace=ws, month=april).mtus == 14_000
    assert not Strike.objects.filter(workspace=ws).exists()


@pytest.mark.parametrize(
    "back_on, base",
    [(date(2027, 4, 16), D("60.00")), (date(2027, 4, 30), D("4.00"))],
    ids=["the-16th", "the-last-day"],
)
def test_m2_m3_t1_back_on_team_mid_month_the_allowance_is_not_prorated(db, back_on, base):
    """Paid monthly from 1 January 2027, cancelled on 1 February (no final invoice, K1), Free
    through the spring with 900 MTUs a month (no strike), back on Team (paid at once, T1) on
    16 April or on 30 April, with 12,000 MTUs for April. M2 prorates the base (120 × 15/30 =
    60.00, or 120 × 1/30 = 4.00), but M3's overage is on the month's MTUs against the whole
    10,000: 2,000 × 0.01 = 20.00 either way. April (1 May): 80.00 or 24.00. January
    (1 February): 120.00. No strike for April (F1: Team days)."""
    ws = paid_monthly(date(2027, 1, 1))
    services.change_to_free(ws, as_of=date(2027, 2, 1))
    for month in (2, 3):
        services.record_usage(ws, month=date(2027, month, 1), mtus=900)
    services.record_usage(ws, month=date(2027, 4, 1), mtus=12_000)
    services.change_to_team(ws, as_of=back_on)
    services.run_billing(as_of=date(2027, 5, 1))
    feb1, may1 = date(2027, 2, 1), date(2027, 5, 1)
    total = base + D("20.00")
    assert short(ws) == [
        ("monthly", feb1, date(2027, 1, 1), feb1, D("120.00"), D("120.00")),
        ("monthly", may1, back_on, may1, total, total),
    ]
    assert not Strike.objects.filter(workspace=ws).exists()


def test_i6_u1_the_largest_figure_accepted_is_billed_to_the_cent(db):
    """I6: 10,000,000,000 MTUs for a month is accepted, one more is refused at input. March 2027
    at the bound: 120.00 + (10,000,000,000 − 10,000) × 0.01 = 99,999,900.00 → 100,000,020.00,
    issued by the close (within what an invoice holds)."""
    ws = paid_monthly(date(2027, 3, 1))
    march = date(2027, 3, 1)
    with pytest.raises(BillingError, match="more than the 10,000,000,000"):
        services.record_usage(ws, month=march, mtus=10_000_000_001)
    services.record_usage(ws, month=march, mtus=10_000_000_000)
    services.run_billing(as_of=date(2027, 4, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert sorted(invoice.lines.values_list("kind", "amount")) == [
        ("base", D("120.00")),
        ("overage", D("99999900.00")),
    ]
    assert (invoice.subtotal, invoice.total) == (D("100000020.00"), D("100000020.00"))


# --- T, F7: trials ------------------------------------------------------------------------------


def test_t3_m3_a_trial_from_31_december_and_the_first_invoice_of_the_year(db):
    """A sign-up into Team with a card on 31 December 2026: trial 31 December – 13 January, end
    date 14 January 2027 (T3). December has no paid day: no invoice, whatever its 15,000 MTUs
    (no strike either: a trial day). January: 18 paid days (14–31), 120 × 18/31 = 69.677… →
    69.68, no overage for its 20,000 MTUs (trial days, M3), issued 1 February 2027 as
    INV-2027-000001. February, 12,000 MTUs: 120.00 + 20.00 = 140.00, INV-2027-000002."""
    ws = workspace(as_of=date(2026, 12, 31), plan="team", card=True)
    for month, mtus in ((date(2026, 12, 1), 15_000), (date(2027, 1, 1), 20_000)):
        services.record_usage(ws, month=month, mtus=mtus)
    services.record_usage(ws, month=date(2027, 2, 1), mtus=12_000)
    services.run_billing(as_of=date(2027, 3, 1))
    assert ws.subscriptions.get(plan__code="team").trial_end == date(2027, 1, 14)
    feb1, mar1 = date(2027, 2, 1), date(2027, 3, 1)
    assert short(ws) == [
        ("monthly", feb1, date(2027, 1, 14), feb1, D("69.68"), D("69.68")),
        ("monthly", mar1, feb1, mar1, D("140.00"), D("140.00")),
    ]
    assert list(Invoice.objects.order_by("number").values_list("number", flat=True)) == [
        "INV-2027-000001",
        "INV-2027-000002",
    ]
    assert not Strike.objects.exists()


def test_t3_t6_t4_f1_a_cardless_trial_from_16_february_2027_ends_on_2_march(
    db, django_capture_on_commit_callbacks
):
    """2027 has no 29 February: a trial from 16 February covers 16 February – 1 March, end date
    2 March (T3). T6: the reminder goes on 27 February (three days before), not the 26th. T4:
    no card on 2 March: Free from then, nothing billed (T5). F1: March had a trial day (the 1st):
    no strike for its 5,000 MTUs; April, Free every day, 1,001 MTUs: a strike, `locked` on
    1 May (F2)."""
    ws = workspace(as_of=date(2027, 2, 16), plan="team")
    services.record_usage(ws, month=date(2027, 3, 1), mtus=5_000)
    services.record_usage(ws, month=date(2027, 4, 1), mtus=1_001)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 2, 26))
    assert reminders() == []
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 2, 27))
    assert [m.to for m in reminders()] == [[ws.billing_email]]
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 5, 1))
    assert len(reminders()) == 1
    assert workspace_status(ws, as_of=date(2027, 3, 1))["trialing"] is True
    assert workspace_status(ws, as_of=date(2027, 3, 2))["plan"] == "free"
    assert bills(ws) == []
    assert list(Strike.objects.filter(workspace=ws).values_list("month", "mtus")) == [
        (date(2027, 4, 1), 1_001)
    ]
    assert list(ws.lock_events.values_list("on", "to_lock", "cause")) == [
        (date(2027, 5, 1), "locked", "free_limit")
    ]


def test_t1_t5_m3_a_trial_cancelled_then_paid_later_the_same_month(db):
    """Free with a card from 1 April 2027. Moved to Team on 5 April: a trial (T1), cancelled on
    8 April: nothing charged (T5). Back on Team on 20 April: it had Team, so paid at once, no
    second trial (T1). April: 11 paid days (20–30), 120 × 11/30 = 44.00, and no overage for
    its 12,000 MTUs: April had trial days (5–7, M3). May, 12,000 MTUs: 140.00."""
    ws = workspace(as_of=date(2027, 4, 1), card=True)
    services.change_to_team(ws, as_of=date(2027, 4, 5))
    services.change_to_free(ws, as_of=date(2027, 4, 8))
    back = services.change_to_team(ws, as_of=date(2027, 4, 20))
    assert (back.trial_end, back.paid_from) == (None, date(2027, 4, 20))
    for month in (date(2027, 4, 1), date(2027, 5, 1)):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=date(2027, 6, 1))
    may1, jun1 = date(2027, 5, 1), date(2027, 6, 1)
    assert short(ws) == [
        ("monthly", may1, date(2027, 4, 20), may1, D("44.00"), D("44.00")),
        ("monthly", jun1, may1, jun1, D("140.00"), D("140.00")),
    ]


def _card_and_annual_on_the_end_date(daily, capture, card_first):
    """Signed up into Team without a card on 16 February 2027 (T2): end date 2 March. On
    2 March a card is added and the interval changed to annual, in the order given."""
    with capture(execute=True):
        ws = workspace(
            as_of=date(2027, 2, 16),
            plan="team",
            slug="late-card",
            name="Late Card",
            billing_email="late@example.com",
        )
    services.record_usage(ws, month=date(2027, 3, 1), mtus=12_000)

    def actions(day):
        if day != date(2027, 3, 2):
            return
        if card_first:
            services.add_payment_method(ws, as_of=day)
            services.change_interval(ws, interval="annual", as_of=day)
        else:
            services.change_interval(ws, interval="annual", as_of=day)
            services.add_payment_method(ws, as_of=day)

    run_days(date(2027, 2, 20), date(2027, 4, 1), daily=daily, capture=capture, actions=actions)
    return {
        "bills": short(ws),
        "reminders": [(m.to, m.subject) for m in reminders()],
        "status": (
            workspace_status(ws, as_of=date(2027, 3, 1))["trialing"],
            workspace_status(ws, as_of=date(2027, 3, 2))["interval"],
            workspace_status(ws, as_of=date(2027, 3, 2))["trialing"],
        ),
    }


@pytest.mark.parametrize("card_first", [True, False], ids=["card-first", "interval-first"])
def test_t4_k4_d4_a_card_and_annual_on_the_trial_end_date_in_either_order(
    db, django_capture_on_commit_callbacks, card_first
):
    """D1: the day's changes come before T4. On the end date, 2 March 2027, a card is on file
    (T4) and the trial continues as annual (K4: during a trial a change only sets the interval
    T4 continues with): the annual invoice, 1,440.00, dated 2 March 2027 for 2 March 2027 –
    2 March 2028 (K2). March 2027 had a trial day (the 1st): no overage invoice for its 12,000
    MTUs (K2). T6: one reminder, on 27 February (no card then). The same in either order of
    entry, by day and in one run (D4)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _card_and_annual_on_the_end_date(
            is_daily, django_capture_on_commit_callbacks, card_first
        )
    )
    assert daily == catch_up
    mar2 = date(2027, 3, 2)
    assert daily["bills"] == [("annual", mar2, mar2, date(2028, 3, 2), D("1440.00"), D("1440.00"))]
    assert len(daily["reminders"]) == 1
    assert daily["status"] == (True, "annual", False)


def test_d3_k4_status_before_a_trials_interval_change_reads_the_interval_then(db):
    """D3: workspace_status answers as things stood on the day asked. A trial signed up as
    monthly Team on 16 February 2027 is set on 25 February to continue as annual (K4). On
    20 February it still continued as monthly: interval "monthly"; from 25 February
    "annual"."""
    ws = workspace(as_of=date(2027, 2, 16), plan="team")
    services.change_interval(ws, interval="annual", as_of=date(2027, 2, 25))
    assert workspace_status(ws, as_of=date(2027, 2, 25))["interval"] == "annual"
    assert workspace_status(ws, as_of=date(2027, 2, 20))["interval"] == "monthly"
    # Set back to monthly on 27 February and to annual again on 1 March: the row keeps only
    # the last change; the days of the earlier ones are read from its history (they read
    # "monthly" before the last change).
    services.change_interval(ws, interval="monthly", as_of=date(2027, 2, 27))
    services.change_interval(ws, interval="annual", as_of=date(2027, 3, 1))
    services.change_interval(ws, interval="monthly", as_of=date(2027, 3, 1))
    services.change_interval(ws, interval="annual", as_of=date(2027, 3, 1))
    intervals = {
        d.day: workspace_status(ws, as_of=d)["interval"]
        for d in (date(2027, 2, 20), date(2027, 2, 25), date(2027, 2, 26), date(2027, 2, 27))
    }
    assert intervals == {20: "monthly", 25: "annual", 26: "annual", 27: "monthly"}
    assert workspace_status(ws, as_of=date(2027, 3, 1))["interval"] == "annual"


def test_f7_f3_f6_a_trial_ended_without_a_card_puts_the_lock_back_and_the_close_lifts_it(
    db, django_capture_on_commit_callbacks
):
    """Free with a card from 1 December 2026; 2,000 MTUs in January 2027: a strike, `locked` at
    its close on 1 February (F1, F2). Moved to Team on 10 February: a trial, unlocked at once
    (F4). The card is removed on 15 February; the end date, 24 February, has no card: Free
    (T4), and F7 puts back the lock the upgrade lifted, `locked`, cause "trial ended before
    paying". February (5,000 MTUs) had trial days: no strike (F1), so its close on 1 March
    unlocks the `locked` workspace (F3). F6: four lock emails (1 February, 10 February,
    24 February, 1 March). Nothing billed."""
    ws = workspace(as_of=date(2026, 12, 1), card=True)
    services.record_usage(ws, month=date(2027, 1, 1), mtus=2_000)
    services.record_usage(ws, month=date(2027, 2, 1), mtus=5_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 2, 9))
        services.change_to_team(ws, as_of=date(2027, 2, 10))
        services.remove_payment_method(ws, as_of=date(2027, 2, 15))
        services.run_billing(as_of=date(2027, 3, 1))
    assert list(ws.lock_events.order_by("id").values_list("on", "to_lock", "cause")) == [
        (date(2027, 2, 1), "locked", "free_limit"),
        (date(2027, 2, 10), "unlocked", "moved_to_team"),
        (date(2027, 2, 24), "locked", "trial_not_paid"),
        (date(2027, 3, 1), "unlocked", "under_limit"),
    ]
    assert LockEvent.Cause("trial_not_paid").label == "Trial ended before paying"
    assert list(Strike.objects.filter(workspace=ws).values_list("month", flat=True)) == [
        date(2027, 1, 1)
    ]
    kinds = OutboundEmail.objects.filter(to=ws.billing_email, kind__in=["locked", "unlocked"])
    assert list(kinds.order_by("id").values_list("kind", flat=True)) == [
        "locked",
        "unlocked",
        "locked",
        "unlocked",
    ]
    on_the_end_date = workspace_status(ws, as_of=date(2027, 2, 24))
    assert (on_the_end_date["plan"], on_the_end_date["lock"]) == ("free", "locked")
    assert workspace_status(ws, as_of=date(2027, 2, 23))["lock"] == "unlocked"
    assert bills(ws) == []


def test_k1_m3_a_trial_turned_paid_on_the_1st_cancelled_on_the_2nd(db):
    """A sign-up into Team with a card on 18 January 2027: trial 18–31 January, end date and
    first paid day 1 February (T3, T4). Cancelled on 2 February (K1): the final invoice dated
    2 February bills 1 paid day, 120 × 1/28 = 4.285… → 4.29, and, February having no trial
    day (M3), the overage of the 10,100 MTUs reported so far, 100 × 0.01 = 1.00: 5.29.
    January (trial only) and February's close bill nothing."""
    ws = workspace(as_of=date(2027, 1, 18), plan="team", card=True)
    services.record_usage(ws, month=date(2027, 1, 1), mtus=30_000)
    services.record_usage(ws, month=date(2027, 2, 1), mtus=10_100)
    services.change_to_free(ws, as_of=date(2027, 2, 2))
    services.run_billing(as_of=date(2027, 3, 1))
    feb1, feb2 = date(2027, 2, 1), date(2027, 2, 2)
    assert short(ws) == [("final", feb2, feb1, feb2, D("5.29"), D("5.29"))]


def test_f1_t3_m3_the_last_day_of_a_month_on_free_or_on_a_trial(db):
    """F1 at March 2027's close (1 April), by the days each workspace existed:
    - `late` signed up on Free on 31 March with 1,001 MTUs: on Free every day it existed (one):
      a strike, `locked` on 1 April (F2), unlocked at April's close on 1 May (F3: no usage,
      no strike);
    - `mover`, on Free from 1 March with a card and 5,000 MTUs, moved to Team on 31 March:
      a trial day in March, so no strike (and no invoice: no paid day). Its trial runs
      31 March – 13 April, end date 14 April (T3): April, 17 paid days (14–30), 120 × 17/30
      = 68.00, no overage for its 12,000 MTUs (trial days, M3), issued 1 May."""
    late = workspace(as_of=date(2027, 3, 31), slug="late")
    mover = workspace(as_of=date(2027, 3, 1), card=True, slug="mover")
    services.record_usage(late, month=date(2027, 3, 1), mtus=1_001)
    services.record_usage(mover, month=date(2027, 3, 1), mtus=5_000)
    services.record_usage(mover, month=date(2027, 4, 1), mtus=12_000)
    services.change_to_team(mover, as_of=date(2027, 3, 31))
    services.run_billing(as_of=date(2027, 5, 1))
    assert list(Strike.objects.values_list("workspace__slug", "month", "mtus")) == [
        ("late", date(2027, 3, 1), 1_001)
    ]
    assert list(late.lock_events.order_by("id").values_list("on", "to_lock", "cause")) == [
        (date(2027, 4, 1), "locked", "free_limit"),
        (date(2027, 5, 1), "unlocked", "under_limit"),
    ]
    may1 = date(2027, 5, 1)
    assert short(mover) == [("monthly", may1, date(2027, 4, 14), may1, D("68.00"), D("68.00"))]
    assert short(late) == []


# --- S, CR: the startup program -----------------------------------------------------------------


def test_s2_e1_s3_incorporated_on_29_february_applied_28_february_or_1_march(db, reviewer):
    """E1 is judged on the application date (S2). Incorporated 29 February 2024:
    - applied 28 February 2026: two years before it is 28 February 2024, and 29 February 2024
      is after that: less than two years, E1 passes. Approved on 15 March 2026 (after the
      second anniversary of incorporation) without an override (S3): the checks still read
      the application date. Year one: 15 March 2026 – 15 March 2027 (CR1).
    - applied 1 March 2026: two years before is 1 March 2024; 29 February 2024 is before it:
      E1 fails, and approving without an override is refused, naming E1."""
    incorporated = date(2024, 2, 29)
    on_time = application(
        workspace=paid_monthly(date(2026, 2, 1)),
        as_of=date(2026, 2, 28),
        incorporation_date=incorporated,
        company_name="Leap Labs",
    )
    too_late = application(
        workspace=paid_monthly(date(2026, 2, 1)),
        as_of=date(2026, 3, 1),
        incorporation_date=incorporated,
        company_name="Hop Labs",
    )
    assert [(c["id"], c["passed"]) for c in on_time.checks][0] == ("E1", True)
    assert [(c["id"], c["passed"]) for c in too_late.checks][0] == ("E1", False)
    startups.approve_application(on_time, by=reviewer, as_of=date(2026, 3, 15))
    grant = CreditGrant.objects.get(workspace=on_time.workspace)
    assert (grant.valid_from, grant.valid_until, grant.amount) == (
        date(2026, 3, 15),
        date(2027, 3, 15),
        D("25000.00"),
    )
    with pytest.raises(startups.ApplicationError, match="E1: Incorporated 29 Feb 2024"):
        startups.approve_application(too_late, by=reviewer, as_of=date(2026, 3, 15))
    assert not CreditGrant.objects.filter(workspace=too_late.workspace).exists()


@pytest.mark.parametrize("card", [True, False], ids=["with-card", "without-card"])
def test_s4_s7_cr2_approved_on_the_trial_end_date_with_or_without_a_card(db, reviewer, card):
    """Signed up into Team on 18 January 2027 (trial to 31 January, end date 1 February),
    applied 20 January, approved on 1 February, the end date (the clock through 31 January).
    With a card, T4 makes it paid monthly Team that day: S7 asks nothing, and February's
    invoice (1 March), 120.00, is credited in full (CR2): 25,000.00 − 120.00 = 24,880.00 left.
    Without a card it moves to Free that day: S7 needs the reviewer's confirmation; nothing is
    billed, 25,000.00 left on 1 March. A member from 1 February either way (S4, CR1)."""
    ws = workspace(as_of=date(2027, 1, 18), plan="team", card=card)
    app = application(workspace=ws, as_of=date(2027, 1, 20))
    services.run_billing(as_of=date(2027, 1, 31))
    feb1, mar1 = date(2027, 2, 1), date(2027, 3, 1)
    if card:
        startups.approve_application(app, by=reviewer, as_of=feb1)
    else:
        with pytest.raises(startups.ApplicationError, match="ends its Team trial today"):
            startups.approve_application(app, by=reviewer, as_of=feb1)
        startups.approve_application(app, by=reviewer, as_of=feb1, credits_scope_confirmed=True)
    services.run_billing(as_of=mar1)
    status = workspace_status(ws, as_of=mar1)
    assert status["startup_member"] is True
    assert workspace_status(ws, as_of=feb1)["plan"] == ("team" if card else "free")
    if card:
        assert [(b[1], b[4], b[6], b[8]) for b in bills(ws)] == [
            (mar1, D("120.00"), D("120.00"), D("0.00"))
        ]
        assert status["credit_balance"] == D("24880.00")
    else:
        assert bills(ws) == []
        assert status["credit_balance"] == D("25000.00")


def test_s7_s4_cr2_t1_a_free_member_trials_then_its_first_paid_days_are_credited(db, reviewer):
    """Free with a card from 1 March 2027, applied 2 March, approved 10 March: S7 needs the
    reviewer's confirmation (Free: credits apply to monthly Team invoices only). Moved to Team
    on 15 March: a trial (T1: never had Team; the program's coupon does not change that),
    15–28 March, end date 29 March. March: 3 paid days (29–31), 120 × 3/31 = 11.612… → 11.61,
    no overage for its 12,000 MTUs (M3), credited in full (CR2), total 0.00 (1 April). April,
    12,000 MTUs: 140.00, credited, 0.00 (1 May). 25,000.00 − 11.61 − 140.00 = 24,848.39."""
    ws = workspace(as_of=date(2027, 3, 1), card=True)
    app = application(workspace=ws, as_of=date(2027, 3, 2))
    with pytest.raises(startups.ApplicationError, match="is on Free"):
        startups.approve_application(app, by=reviewer, as_of=date(2027, 3, 10))
    startups.approve_application(
        app, by=reviewer, as_of=date(2027, 3, 10), credits_scope_confirmed=True
    )
    trial = services.change_to_team(ws, as_of=date(2027, 3, 15))
    assert trial.trial_end == date(2027, 3, 29)
    for month in (date(2027, 3, 1), date(2027, 4, 1)):
        services.record_usage(ws, month=month, mtus=12_000)
    services.run_billing(as_of=date(2027, 5, 1))
    apr1, may1 = date(2027, 4, 1), date(2027, 5, 1)
    assert [(b[1], b[2], b[4], b[6], b[8]) for b in bills(ws)] == [
        (apr1, date(2027, 3, 29), D("11.61"), D("11.61"), D("0.00")),
        (may1, apr1, D("140.00"), D("140.00"), D("0.00")),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert ledger(grant) == [
        ("grant", date(2027, 3, 10), D("25000.00")),
        ("draw", apr1, D("-11.61")),
        ("draw", may1, D("-140.00")),
    ]
    assert workspace_status(ws, as_of=may1)["credit_balance"] == D("24848.39")


def test_c7_cr2_s4_a_partners_small_credit_runs_out_inside_an_invoice(db, reviewer):
    """An active accelerator partner whose startups get 200.00 a year (C7). Its startup, paid
    monthly from 1 March 2027, is approved on 31 March 2027: 200.00 valid 31 March 2027 –
    31 March 2028 (CR1). March (1 April): 120.00, credited 120.00, 80.00 left. April, 11,000
    MTUs (1 May): 120.00 + 10.00 = 130.00, credited the 80.00 left, 50.00 to pay ("usage
    beyond the credits is billed"). May (1 June): 120.00, nothing credited. S4 as amended: a
    member on the days its grant is valid, 0.00 left or not: on 1 June 2027 and on 30 March
    2028, not on 31 March 2028."""
    partner = AcceleratorPartner.objects.create(
        name="Tiny Accelerator",
        contact_name="Kim",
        contact_email="kim@tiny.example",
        status=AcceleratorPartner.Status.ACTIVE,
        credit_amount=D("200.00"),
        applied_on=date(2027, 1, 1),
    )
    ws = paid_monthly(date(2027, 3, 1))
    app = application(workspace=ws, partner=partner, as_of=date(2027, 3, 20))
    startups.approve_application(app, by=reviewer, as_of=date(2027, 3, 31))
    services.record_usage(ws, month=date(2027, 4, 1), mtus=11_000)
    services.run_billing(as_of=date(2027, 6, 1))
    assert [(b[1], b[4], b[6], b[8]) for b in bills(ws)] == [
        (date(2027, 4, 1), D("120.00"), D("120.00"), D("0.00")),
        (date(2027, 5, 1), D("130.00"), D("80.00"), D("50.00")),
        (date(2027, 6, 1), D("120.00"), D("0.00"), D("120.00")),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.amount, grant.valid_from, grant.valid_until, grant.remaining) == (
        D("200.00"),
        date(2027, 3, 31),
        date(2028, 3, 31),
        D("0.00"),
    )
    members = [
        (
            workspace_status(ws, as_of=day)["startup_member"],
            workspace_status(ws, as_of=day)["credit_balance"],
        )
        for day in (date(2027, 6, 1), date(2028, 3, 30), date(2028, 3, 31))
    ]
    assert members == [(True, D("0.00")), (True, D("0.00")), (False, D("0.00"))]


def test_cr3_s4_year_two_from_a_31_august_approval_ends_on_the_second_anniversary(db, reviewer):
    """Paid monthly from 1 August 2026, approved 31 August 2026: year one to 31 August 2027
    (CR1). CR3: the renewal review opens 30 days before, on 1 August 2027 (not on 31 July),
    due 31 August 2027; confirmed 20 August, year two runs 31 August 2027 – 31 August 2028.
    Year one credits the 12 invoices of 1 September 2026 … 1 August 2027 (1,440.00) and
    23,560.00 lapses on 31 August 2027; year two the 12 of 1 September 2027 … 1 August 2028,
    and 23,560.00 lapses on 31 August 2028. The invoice of 1 September 2028 is not credited:
    120.00. Never a third year: no other review opens. A member on 30 August 2028, not on
    31 August 2028 (S4)."""
    ws = paid_monthly(date(2026, 8, 1))
    app = startups.approve_application(
        application(workspace=ws, as_of=date(2026, 8, 20)), by=reviewer, as_of=date(2026, 8, 31)
    )
    services.run_billing(as_of=date(2027, 7, 31))
    assert not RenewalReview.objects.filter(application=app).exists()
    services.run_billing(as_of=date(2027, 8, 1))
    review = RenewalReview.objects.get(application=app)
    assert (review.year, review.due_on) == (2, date(2027, 8, 31))
    services.run_billing(as_of=date(2027, 8, 19))
    confirm_year_two(app, by=reviewer, as_of=date(2027, 8, 20))
    services.run_billing(as_of=date(2028, 9, 2))
    year_one = CreditGrant.objects.get(workspace=ws, year=1)
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    assert (year_two.valid_from, year_two.valid_until) == (date(2027, 8, 31), date(2028, 8, 31))
    assert ledger(year_one)[-1] == ("lapse", date(2027, 8, 31), D("-23560.00"))
    assert ledger(year_two)[-1] == ("lapse", date(2028, 8, 31), D("-23560.00"))
    credited = [(b[1], b[6]) for b in bills(ws)]
    assert credited[0] == (date(2026, 9, 1), D("120.00"))
    assert credited[23] == (date(2028, 8, 1), D("120.00"))
    assert credited[24:] == [(date(2028, 9, 1), D("0.00"))]
    assert sum(c for _, c in credited) == D("2880.00")
    assert RenewalReview.objects.filter(application=app).count() == 1
    assert workspace_status(ws, as_of=date(2028, 8, 30))["startup_member"] is True
    assert workspace_status(ws, as_of=date(2028, 8, 31))["startup_member"] is False


@pytest.mark.parametrize(
    "confirmed_on", [date(2027, 1, 15), date(2027, 2, 1)], ids=["before", "on-the-anniversary"]
)
def test_cr3_s4_year_two_confirmed_before_or_on_an_anniversary_that_is_an_invoice_date(
    db, reviewer, confirmed_on
):
    """Paid monthly from 1 January 2026, approved 1 February 2026: year one to 1 February 2027
    (CR1), its review open from 2 January 2027. Year two confirmed on 15 January 2027 or on
    1 February 2027 itself (before that day's close, D1) is valid from the anniversary,
    1 February 2027, to 1 February 2028 (CR3: the later of the anniversary and the
    confirmation). January 2027's invoice, dated 1 February 2027, is not "issued before it was
    confirmed": year two credits it, 120.00 (year one, ended that day, cannot). Year one
    credited the 12 invoices of 1 February 2026 … 1 January 2027 and lapses 23,560.00 on
    1 February 2027; year two has 25,000.00 − 120.00 = 24,880.00 left. A member without a gap
    (31 January and 1 February 2027, S4)."""
    ws = paid_monthly(date(2026, 1, 1))
    app = startups.approve_application(
        application(workspace=ws, as_of=date(2026, 1, 20)), by=reviewer, as_of=date(2026, 2, 1)
    )
    services.run_billing(as_of=confirmed_on - timedelta(days=1))
    confirm_year_two(app, by=reviewer, as_of=confirmed_on)
    services.run_billing(as_of=date(2027, 2, 1))
    year_one = CreditGrant.objects.get(workspace=ws, year=1)
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    assert (year_two.valid_from, year_two.valid_until) == (date(2027, 2, 1), date(2028, 2, 1))
    assert ledger(year_one)[-1] == ("lapse", date(2027, 2, 1), D("-23560.00"))
    assert ledger(year_two) == [
        ("grant", date(2027, 2, 1), D("25000.00")),
        ("draw", date(2027, 2, 1), D("-120.00")),
    ]
    last = Invoice.objects.get(workspace=ws, issue_date=date(2027, 2, 1))
    assert (last.credits, last.total) == (D("120.00"), D("0.00"))
    assert [
        workspace_status(ws, as_of=day)["startup_member"]
        for day in (date(2027, 1, 31), date(2027, 2, 1))
    ] == [True, True]


def _mid_february_changes(daily, capture, support):
    """The clock from 1 January to 1 April 2027, each day or once at the end (a clock that
    never ran before: D2 refuses nothing ahead of it). Entered on 15 February: `upgrader`
    (Free with a card from 1 December 2026, 2,000 MTUs in January) moves to Team; `couponed`
    (paid monthly from 1 January) gets 25 % off `once`; `granted` (paid monthly from
    1 January) gets a 100.00 credit grant."""
    with capture(execute=True):
        upgrader = workspace(as_of=date(2026, 12, 1), card=True, slug="upgrader", name="Up")
        couponed = paid_monthly(date(2027, 1, 1), slug="couponed", name="Coupon")
        granted = paid_monthly(date(2027, 1, 1), slug="granted", name="Granted")
    services.record_usage(upgrader, month=date(2027, 1, 1), mtus=2_000)
    promo = coupon(code="MIDFEB25", percent_off="25", duration="once")

    def actions(day):
        if day == date(2027, 2, 15):
            services.change_to_team(upgrader, as_of=day)
            coupons.redeem_coupon(couponed, promo.code, by=support, as_of=day)
            coupons.grant_credits(granted, amount="100.00", as_of=day, year=1, by=support)

    run_days(date(2027, 1, 1), date(2027, 4, 1), daily=daily, capture=capture, actions=actions)
    upgrader.refresh_from_db()
    return {
        "locks": list(upgrader.lock_events.order_by("id").values_list("on", "to_lock", "cause")),
        "lock": (upgrader.lock, upgrader.data_flow),
        "on_20_february": tuple(
            workspace_status(upgrader, as_of=date(2027, 2, 20))[key] for key in ("plan", "lock")
        ),
        "strikes": sorted(Strike.objects.values_list("workspace__slug", "month")),
        "couponed": [(b[1], b[5], b[8]) for b in bills(couponed)],
        "granted": [(b[1], b[6], b[8]) for b in bills(granted)],
    }


def test_d4_c5_cr2_a_coupon_and_a_grant_dated_mid_february_ahead_of_a_clock_that_never_ran(
    db, django_capture_on_commit_callbacks, support
):
    """D4: by day or in one run, the same invoices for changes dated 15 February 2027:
    - `couponed`: 25 % off `once` from 15 February (C5): January's invoice, dated 1 February,
      is before it: 120.00; February's (1 March) gets 30.00 off: 90.00; March's 120.00.
    - `granted`: 100.00 valid from 15 February (CR1): January's invoice (1 February) is not
      credited; February's (1 March) draws 100.00: 20.00; March's 120.00."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _mid_february_changes(
            is_daily, django_capture_on_commit_callbacks, support
        )
    )
    feb1, mar1, apr1 = date(2027, 2, 1), date(2027, 3, 1), date(2027, 4, 1)
    for outcome in (daily, catch_up):
        assert outcome["couponed"] == [
            (feb1, D("0.00"), D("120.00")),
            (mar1, D("30.00"), D("90.00")),
            (apr1, D("0.00"), D("120.00")),
        ]
        assert outcome["granted"] == [
            (feb1, D("0.00"), D("120.00")),
            (mar1, D("100.00"), D("20.00")),
            (apr1, D("0.00"), D("120.00")),
        ]


def test_d4_f4_an_upgrade_dated_after_an_unrun_close_of_a_clock_that_never_ran(
    db, django_capture_on_commit_callbacks, support
):
    """`upgrader`: Free with a card from 1 December 2026, 2,000 MTUs in January 2027: a strike
    and `locked` at January's close on 1 February (F1, F2). Moved to Team on 15 February: F4
    unlocks it at once; its trial (15–28 February, end date 1 March) turns paid with the card,
    keeping the unlock (F7); February had Team days, no strike. So: locked on 1 February,
    unlocked on 15 February (moved to Team), unlocked and data flowing on 20 February. D4:
    the same in one run from a clock that never ran, where the move is entered before the
    clock reaches 1 February (D2 refuses nothing then)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _mid_february_changes(
            is_daily, django_capture_on_commit_callbacks, support
        )
    )
    expected = [
        (date(2027, 2, 1), "locked", "free_limit"),
        (date(2027, 2, 15), "unlocked", "moved_to_team"),
    ]
    for outcome in (daily, catch_up):
        assert outcome["strikes"] == [("upgrader", date(2027, 1, 1))]
        assert outcome["lock"] == ("unlocked", True)
        assert outcome["on_20_february"] == ("team", "unlocked")
    assert daily["locks"] == expected
    assert catch_up["locks"] == expected
