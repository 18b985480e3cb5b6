"""More edge days and edge figures, each worked by hand from SPEC (the figures in each test's
docstring and comments; nothing is computed by the code under test):

- F: a downgrade on the 1st or the last day of a month, usage reported after the month ended
  (and replaced) before its close ran, the six-month strike window across a year end, an
  upgrade on the 1st after a month over the limit.
- C: half-cent percent discounts, an amount off larger than a final invoice, a repeating coupon
  redeemed on the 1st and one of 12 months from 29 February, redeem-by and the maximum reached
  on 29 February.
- T: trials ending on the 1st (card added that day, removed that day, no card, annual) and on
  31 May before a 30-day June.
- X: a tax half-cent, a final invoice the day before a rate change on the 1st and an annual
  invoice on it, a certificate whose last day is a final invoice's date.
- K: monthly → annual on the 1st, a cancellation and a return on the last day, annual terms
  from the 29th/30th/31st and 28 February, a cancelled term from 31 January, annual → monthly at
  a term end on the 31st, a cancellation or interval change dated the term's end day.
- D: a run over a range across a month end equals a run every day, and a day run twice.
"""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail

from billing import services
from billing.errors import BillingError
from billing.models import Invoice, InvoiceLine, LockEvent, Strike
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.errors import CouponRefused
from coupons.models import Redemption
from tests.billing.factories import certificate, paid_annual, paid_monthly, workspace
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


def bills(ws):
    """(kind, issue date, period start, period end, subtotal, discount, total), issue order."""
    return [
        (i.kind, i.issue_date, i.period_start, i.period_end, i.subtotal, i.discount, i.total)
        for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")
    ]


def strikes(ws):
    return sorted(Strike.objects.filter(workspace=ws).values_list("month", "mtus"))


def lock_events(ws):
    return list(ws.lock_events.order_by("id").values_list("on", "month", "to_lock", "cause"))


def lock_of(ws):
    ws.refresh_from_db()
    return ws.lock, ws.data_flow


def reminders():
    return [m for m in mail.outbox if "ends on" in m.subject]


# --- F: the Free limit at month ends -----------------------------------------------------------


def test_f1_k1_downgraded_on_the_1st_the_whole_month_is_free_and_strikes(db):
    """Paid monthly from 1 December 2025 (12,000 MTUs in December), cancelled on 1 January 2026.
    K1: January has no paid day before the 1st: no final invoice. December's close (1 January)
    bills the full month: 120.00 + (12,000 − 10,000) × 0.01 = 140.00. F1: January was Free on
    every day, 1,001 > 1,000 MTUs: a strike; F2: one strike → `locked` at January's close,
    1 February, data still flowing."""
    ws = paid_monthly(date(2025, 12, 1))
    services.record_usage(ws, month=date(2025, 12, 1), mtus=12_000)
    services.change_to_free(ws, as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=1_001)
    services.run_billing(as_of=date(2026, 2, 1))
    assert bills(ws) == [
        (
            "monthly",
            date(2026, 1, 1),
            date(2025, 12, 1),
            date(2026, 1, 1),
            D("140.00"),
            D("0.00"),
            D("140.00"),
        )
    ]
    assert strikes(ws) == [(date(2026, 1, 1), 1_001)]
    assert lock_of(ws) == ("locked", True)
    assert lock_events(ws) == [(date(2026, 2, 1), date(2026, 1, 1), "locked", "free_limit")]


def test_f1_k1_downgraded_on_the_last_day_that_month_is_a_team_month_the_next_strikes(db):
    """Paid monthly from 1 January 2026, 50,000 MTUs in January, cancelled on 31 January. K1:
    final invoice dated 31 January for 1–30 January: 120 × 30/31 = 116.129… → 116.13, plus
    (50,000 − 10,000) × 0.01 = 400.00: 516.13; no January invoice at the close. F1: January
    had paid Team days: no strike whatever its MTUs. February, Free every day, 1,001 MTUs: a
    strike, `locked` at its close on 1 March."""
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=50_000)
    services.change_to_free(ws, as_of=date(2026, 1, 31))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=1_001)
    services.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        (
            "final",
            date(2026, 1, 31),
            date(2026, 1, 1),
            date(2026, 1, 31),
            D("516.13"),
            D("0.00"),
            D("516.13"),
        )
    ]
    assert strikes(ws) == [(date(2026, 2, 1), 1_001)]
    assert lock_events(ws) == [(date(2026, 3, 1), date(2026, 2, 1), "locked", "free_limit")]
    assert workspace_status(ws, as_of=date(2026, 1, 31))["plan"] == "free"


def test_f1_u1_d2_usage_reported_after_the_month_ended_counts_at_its_close(db):
    """The clock has processed 31 January 2026; January's close (due 1 February) has not run,
    so January's usage may still be reported (D2) and replaces the earlier figure (U1). `up`
    reported 900 then 1,001: a strike (one over the limit); `down` reported 1,500 then 1,000:
    no strike (exactly at the limit). A catch-up through 3 February closes January on
    1 February: `up` is locked that day. January's usage is then refused (closed)."""
    up = workspace(as_of=date(2026, 1, 1))
    down = workspace(as_of=date(2026, 1, 1))
    services.record_usage(up, month=date(2026, 1, 1), mtus=900)
    services.record_usage(down, month=date(2026, 1, 1), mtus=1_500)
    services.run_billing(as_of=date(2026, 1, 31))
    assert not Strike.objects.exists()
    services.record_usage(up, month=date(2026, 1, 1), mtus=1_001)
    services.record_usage(down, month=date(2026, 1, 1), mtus=1_000)
    services.run_billing(as_of=date(2026, 2, 3))
    assert strikes(up) == [(date(2026, 1, 1), 1_001)]
    assert strikes(down) == []
    assert lock_events(up) == [(date(2026, 2, 1), date(2026, 1, 1), "locked", "free_limit")]
    assert lock_of(down) == ("unlocked", True)
    with pytest.raises(BillingError, match="closed"):
        services.record_usage(down, month=date(2026, 1, 1), mtus=5_000)


def test_f2_f3_the_six_month_window_across_a_year_end(db):
    """F2's window for January 2027 is August 2026 … January 2027 (M-5 .. M). `aug`: strikes
    in August 2026 and January 2027 → two in the window → `locked_data_stopped` on 1 February
    2027 (it was locked on 1 September, unlocked on 1 October by F3). `jul`: strikes in July
    2026 and January 2027, July being M-6 → one in the window → `locked`."""
    aug = workspace(as_of=date(2026, 7, 1))
    jul = workspace(as_of=date(2026, 7, 1))
    services.record_usage(aug, month=date(2026, 8, 1), mtus=2_000)
    services.record_usage(jul, month=date(2026, 7, 1), mtus=2_000)
    for ws in (aug, jul):
        services.record_usage(ws, month=date(2027, 1, 1), mtus=2_000)
    services.run_billing(as_of=date(2027, 2, 1))
    assert lock_events(aug) == [
        (date(2026, 9, 1), date(2026, 8, 1), "locked", "free_limit"),
        (date(2026, 10, 1), date(2026, 9, 1), "unlocked", "under_limit"),
        (date(2027, 2, 1), date(2027, 1, 1), "locked_data_stopped", "free_limit"),
    ]
    assert lock_of(aug) == ("locked_data_stopped", False)
    assert lock_events(jul) == [
        (date(2026, 8, 1), date(2026, 7, 1), "locked", "free_limit"),
        (date(2026, 9, 1), date(2026, 8, 1), "unlocked", "under_limit"),
        (date(2027, 2, 1), date(2027, 1, 1), "locked", "free_limit"),
    ]


def test_f2_f4_an_upgrade_on_the_1st_is_not_undone_by_the_close_that_day(db):
    """Free from 1 December 2025 with 2,000 MTUs in December and in January (F1: strikes for
    both). December's close (1 January 2026) locks both workspaces (F2: one strike). `first`
    moves to Team (trial, card on file) on 1 February, `second` on 2 February. F4: moving to
    Team unlocks at once, at either level, and only a trial that turns paid keeps the unlock
    (F7): both trials turn paid on their end dates (15 and 16 February). January's close runs
    on 1 February and sees `first`'s move dated that day (D1): it must not stop the data of a
    workspace that has just moved to Team, else moving a day earlier leaves the customer worse
    off, for good (F3 never lowers `locked_data_stopped`), than moving a day later. On 2 March
    both are paid Team, unlocked, data flowing; February (Team days) has no strike."""
    first = workspace(as_of=date(2025, 12, 1), card=True)
    second = workspace(as_of=date(2025, 12, 1), card=True)
    for ws in (first, second):
        for month in (date(2025, 12, 1), date(2026, 1, 1)):
            services.record_usage(ws, month=month, mtus=2_000)
    services.run_billing(as_of=date(2026, 1, 31))
    assert lock_of(first) == lock_of(second) == ("locked", True)
    services.change_to_team(first, as_of=date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    services.change_to_team(second, as_of=date(2026, 2, 2))
    services.run_billing(as_of=date(2026, 3, 2))
    for ws in (first, second):
        assert strikes(ws) == [(date(2025, 12, 1), 2_000), (date(2026, 1, 1), 2_000)]
    assert lock_of(second) == ("unlocked", True)
    status = workspace_status(first, as_of=date(2026, 3, 2))
    assert (status["plan"], status["trialing"]) == ("team", False)
    assert (status["lock"], status["data_flow"]) == ("unlocked", True)
    assert lock_of(first) == ("unlocked", True)


def test_f7_f6_a_trial_from_the_1st_ended_unpaid_restores_the_lock_its_close_set(db):
    """F2, F4, F7, F6: as above, `first` moves to Team on 1 February, January's close that day
    records the data stop (two strikes) and the move lifts it at once: neither is emailed, as
    the lock never stood (the move's own unlock email went out). Cancelled on 5 February
    (T5), the trial restores the lock the close set, `locked_data_stopped`, as for a move on
    2 February, with its email."""
    from billing.models import OutboundEmail

    first = workspace(as_of=date(2025, 12, 1), card=True)
    for month in (date(2025, 12, 1), date(2026, 1, 1)):
        services.record_usage(first, month=month, mtus=2_000)
    services.run_billing(as_of=date(2026, 1, 31))
    services.change_to_team(first, as_of=date(2026, 2, 1))
    emails_before = OutboundEmail.objects.filter(kind__in=["locked", "unlocked"]).count()
    services.run_billing(as_of=date(2026, 2, 1))
    assert lock_of(first) == ("unlocked", True)
    assert list(
        first.lock_events.filter(on=date(2026, 2, 1))
        .order_by("id")
        .values_list("from_lock", "to_lock", "cause")
    ) == [
        ("locked", "unlocked", "moved_to_team"),
        ("unlocked", "locked_data_stopped", "free_limit"),
        ("locked_data_stopped", "unlocked", "moved_to_team"),
    ]
    assert OutboundEmail.objects.filter(kind__in=["locked", "unlocked"]).count() == emails_before
    services.change_to_free(first, as_of=date(2026, 2, 5))
    assert lock_of(first) == ("locked_data_stopped", False)
    assert OutboundEmail.objects.filter(kind="locked").count() == emails_before
    status = workspace_status(first, as_of=date(2026, 2, 1))
    assert (status["lock"], status["data_flow"]) == ("unlocked", True)


# --- C: coupons --------------------------------------------------------------------------------


def test_c4_percent_off_of_exactly_half_a_cent_rounds_up(db, support):
    """C4: percent → subtotal × p / 100, rounded half up. `half`: paid from 24 January 2026,
    8 of 31 days: 120 × 8/31 = 30.967… → 30.97; 50 % of it = 15.485 → 15.49 (not 15.48);
    total 30.97 − 15.49 = 15.48. `quarter`: 12,500 MTUs, 120.00 + 25.00 = 145.00; 2.5 % of it
    = 3.625 → 3.63 (not 3.62); total 141.37."""
    half = paid_monthly(date(2026, 1, 24))
    coupons.redeem_coupon(
        half, coupon(percent_off="50", duration="forever").code, by=support, as_of=date(2026, 1, 24)
    )
    quarter = paid_monthly(date(2026, 1, 1))
    services.record_usage(quarter, month=date(2026, 1, 1), mtus=12_500)
    coupons.redeem_coupon(
        quarter, coupon(percent_off="2.5").code, by=support, as_of=date(2026, 1, 1)
    )
    services.run_billing(as_of=date(2026, 2, 1))
    feb = date(2026, 2, 1)
    assert bills(half) == [
        ("monthly", feb, date(2026, 1, 24), feb, D("30.97"), D("15.49"), D("15.48"))
    ]
    assert bills(quarter) == [
        ("monthly", feb, date(2026, 1, 1), feb, D("145.00"), D("3.63"), D("141.37"))
    ]
    line = half.invoices.get().lines.get(kind="discount")
    assert line.amount == D("-15.49")


def test_c4_k1_an_amount_off_larger_than_a_final_invoice_takes_it_to_zero_once(db, support):
    """50.00 off once, redeemed 5 January 2026 on paid monthly Team; cancelled 10 January. The
    final invoice (K1) for 1–9 January: 120 × 9/31 = 34.838… → 34.84; C4: min(50.00, 34.84)
    = 34.84 off, total 0.00, still issued. The coupon was used there (C5 `once`): back on Team
    (paid at once, T1) from 3 February, February's invoice (1 March) bills 120 × 26/28 =
    111.428… → 111.43 with no discount."""
    ws = paid_monthly(date(2026, 1, 1))
    redemption = coupons.redeem_coupon(
        ws, coupon(amount_off="50.00", duration="once").code, by=support, as_of=date(2026, 1, 5)
    )
    services.change_to_free(ws, as_of=date(2026, 1, 10))
    services.change_to_team(ws, as_of=date(2026, 2, 3))
    services.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        (
            "final",
            date(2026, 1, 10),
            date(2026, 1, 1),
            date(2026, 1, 10),
            D("34.84"),
            D("34.84"),
            D("0.00"),
        ),
        (
            "monthly",
            date(2026, 3, 1),
            date(2026, 2, 3),
            date(2026, 3, 1),
            D("111.43"),
            D("0.00"),
            D("111.43"),
        ),
    ]
    redemption.refresh_from_db()
    assert redemption.runs_out_on == date(2026, 1, 10)


def test_c5_repeating_redeemed_on_the_1st_skips_the_invoice_issued_that_day(db, support):
    """25 % off for 2 months, redeemed on 1 February 2026 (the clock through 31 January). C5:
    the N billing months start with the month of redemption, February: the invoice issued that
    same day bills January and gets nothing (120.00); February's and March's (1 March, 1 April)
    get 120 × 25 % = 30.00 off (90.00); April's (1 May) 120.00 again."""
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    promo = coupon(percent_off="25", duration="repeating", duration_months=2)
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 5, 1))
    assert [(issued, discount, total) for _, issued, _, _, _, discount, total in bills(ws)] == [
        (date(2026, 2, 1), D("0.00"), D("120.00")),
        (date(2026, 3, 1), D("30.00"), D("90.00")),
        (date(2026, 4, 1), D("30.00"), D("90.00")),
        (date(2026, 5, 1), D("0.00"), D("120.00")),
    ]


def test_c5_repeating_twelve_months_from_29_february_2028(db, support):
    """20.00 off for 12 months redeemed on 29 February 2028: the billing months February 2028
    … January 2029, invoices issued 1 March 2028 … 1 February 2029: 12 × 20.00 = 240.00 off.
    February 2029 (issued 1 March 2029) is at the normal rate. It runs out on 1 February 2029
    (the 1st of the month after its last month)."""
    ws = paid_monthly(date(2028, 2, 1))
    redemption = coupons.redeem_coupon(
        ws,
        coupon(amount_off="20.00", duration="repeating", duration_months=12).code,
        by=support,
        as_of=date(2028, 2, 29),
    )
    services.run_billing(as_of=date(2029, 3, 1))
    discounts = [(issued, discount) for _, issued, _, _, _, discount, _ in bills(ws)]
    assert discounts[0] == (date(2028, 3, 1), D("20.00"))
    assert discounts[11] == (date(2029, 2, 1), D("20.00"))
    assert discounts[12:] == [(date(2029, 3, 1), D("0.00"))]
    assert sum(d for _, d in discounts) == D("240.00")
    redemption.refresh_from_db()
    assert (redemption.runs_out_on, redemption.status) == (date(2029, 2, 1), "ended")


def test_c2_redeem_by_29_february_and_the_maximum_reached_that_day(db):
    """Redeem-by 29 February 2028 (included), at most 2 redemptions. One on 28 February, the
    second (the last allowed) on 29 February itself; a third on 29 February is refused as the
    maximum, and on 1 March as past the redeem-by date. The count stays 2."""
    promo = coupon(redeem_by=date(2028, 2, 29), max_redemptions=2)
    coupons.redeem_coupon(
        workspace(as_of=date(2028, 2, 1)), promo.code, by=None, as_of=date(2028, 2, 28)
    )
    coupons.redeem_coupon(
        workspace(as_of=date(2028, 2, 1)), promo.code, by=None, as_of=date(2028, 2, 29)
    )
    with pytest.raises(CouponRefused) as maximum:
        coupons.redeem_coupon(
            workspace(as_of=date(2028, 2, 1)), promo.code, by=None, as_of=date(2028, 2, 29)
        )
    assert maximum.value.reason == CouponRefused.MAXIMUM_REACHED
    with pytest.raises(CouponRefused) as late:
        coupons.redeem_coupon(
            workspace(as_of=date(2028, 2, 1)), promo.code, by=None, as_of=date(2028, 3, 1)
        )
    assert late.value.reason == CouponRefused.PAST_REDEEM_BY
    promo.refresh_from_db()
    assert promo.times_redeemed == 2
    assert Redemption.objects.filter(coupon=promo).count() == 2


# --- T: trials ---------------------------------------------------------------------------------


def test_t3_t4_t6_a_trial_ending_on_the_1st_converted_by_a_card_added_that_day(
    db, django_capture_on_commit_callbacks
):
    """Signed up into Team without a card on 18 January 2026 (T2): the trial covers 18–31
    January, 1 February is its end date (T3). T6: the reminder goes on 29 January (three days
    before), not on the 28th. T4: a card added on 1 February is on file on the end date: paid
    Team from that day. January has no paid day: no invoice for it (M1), whatever its 20,000
    MTUs. February, no trial day: 120.00 + 2,000 × 0.01 = 140.00, issued 1 March."""
    ws = workspace(as_of=date(2026, 1, 18), plan="team")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=20_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=12_000)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 28))
    assert reminders() == []
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 1, 29))
    assert [m.to for m in reminders()] == [[ws.billing_email]]
    with django_capture_on_commit_callbacks(execute=True):
        services.add_payment_method(ws, as_of=date(2026, 2, 1))
        services.run_billing(as_of=date(2026, 3, 1))
    assert len(reminders()) == 1
    last_trial_day = workspace_status(ws, as_of=date(2026, 1, 31))
    assert (last_trial_day["trialing"], last_trial_day["trial_end"]) == (True, date(2026, 2, 1))
    first_paid = workspace_status(ws, as_of=date(2026, 2, 1))
    assert (first_paid["plan"], first_paid["trialing"]) == ("team", False)
    assert bills(ws) == [
        (
            "monthly",
            date(2026, 3, 1),
            date(2026, 2, 1),
            date(2026, 3, 1),
            D("140.00"),
            D("0.00"),
            D("140.00"),
        )
    ]


def test_t4_f1_a_cardless_trial_ending_on_the_1st_leaves_that_month_free(db):
    """Trial 18–31 January 2026, no card: Free from 1 February (T4), nothing billed (T5).
    January had trial days: no strike for its 5,000 MTUs (F1). February was Free every day:
    1,001 MTUs is a strike, `locked` on 1 March (F2)."""
    ws = workspace(as_of=date(2026, 1, 18), plan="team")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=5_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=1_001)
    services.run_billing(as_of=date(2026, 3, 1))
    assert workspace_status(ws, as_of=date(2026, 1, 31))["plan"] == "team"
    assert workspace_status(ws, as_of=date(2026, 2, 1))["plan"] == "free"
    assert bills(ws) == []
    assert strikes(ws) == [(date(2026, 2, 1), 1_001)]
    assert lock_events(ws) == [(date(2026, 3, 1), date(2026, 2, 1), "locked", "free_limit")]


def test_t3_m2_m3_a_trial_ending_on_31_may_then_a_30_day_june(db):
    """Trial from 17 May 2026 covers 17–30 May; 31 May is its end date and first paid day (card
    on file). May: 1 paid day of 31, 120 × 1/31 = 3.870… → 3.87, no overage for its 15,000
    MTUs (trial days, M3). June (30 days, all paid, no trial day): 120.00 + (10,001 − 10,000)
    × 0.01 = 120.01."""
    ws = workspace(as_of=date(2026, 5, 17), plan="team", card=True)
    services.record_usage(ws, month=date(2026, 5, 1), mtus=15_000)
    services.record_usage(ws, month=date(2026, 6, 1), mtus=10_001)
    services.run_billing(as_of=date(2026, 7, 1))
    assert ws.subscriptions.get(plan__code="team").trial_end == date(2026, 5, 31)
    jun, jul = date(2026, 6, 1), date(2026, 7, 1)
    assert bills(ws) == [
        ("monthly", jun, date(2026, 5, 31), jun, D("3.87"), D("0.00"), D("3.87")),
        ("monthly", jul, jun, jul, D("120.01"), D("0.00"), D("120.01")),
    ]


def test_t4_k2_an_annual_trial_ending_on_the_1st(db):
    """Annual Team trial from 18 January 2026, card on file: the annual invoice of 1,440.00 is
    dated 1 February, the first paid day, for the term 1 February 2026 – 1 February 2027 (K2).
    January had trial days: no overage for its 15,000 MTUs (K2, M3), no invoice. February,
    11,000 MTUs: an overage-only invoice of kind `monthly`, 1,000 × 0.01 = 10.00, on 1 March."""
    ws = workspace(as_of=date(2026, 1, 18), plan="team", interval="annual", card=True)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=15_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=11_000)
    services.run_billing(as_of=date(2026, 3, 1))
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    assert bills(ws) == [
        ("annual", feb, feb, date(2027, 2, 1), D("1440.00"), D("0.00"), D("1440.00")),
        ("monthly", mar, feb, mar, D("10.00"), D("0.00"), D("10.00")),
    ]


def test_t4_d3_a_card_removed_on_the_trial_end_date_ends_the_trial_unpaid(db):
    """T4: the card as it was on the end date. Trial 18–31 January 2026 with a card, which is
    removed on 1 February, the end date: no card on file that day, so Free from 1 February,
    nothing billed, whatever January's and February's 20,000 MTUs (T5)."""
    ws = workspace(as_of=date(2026, 1, 18), plan="team", card=True)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=20_000)
    services.remove_payment_method(ws, as_of=date(2026, 2, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=20_000)
    services.run_billing(as_of=date(2026, 3, 1))
    assert workspace_status(ws, as_of=date(2026, 2, 1))["plan"] == "free"
    assert bills(ws) == []


# --- X: tax ------------------------------------------------------------------------------------


def test_x3_tax_of_exactly_half_a_cent_rounds_up(db, support):
    """California, 7.25 % (seeded). `plain`: 10,200 MTUs, 120.00 + 2.00 = 122.00; tax 122.00 ×
    7.25 % = 8.845 → 8.85 (half up, not 8.84); total 130.85. `discounted`: 11,000 MTUs, 130.00,
    less 8.00 off (C4): 122.00 taxable (X3: after discounts), the same 8.85; total 130.85."""
    plain = paid_monthly(date(2026, 1, 1), business_region="CA")
    discounted = paid_monthly(date(2026, 1, 1), business_region="CA")
    services.record_usage(plain, month=date(2026, 1, 1), mtus=10_200)
    services.record_usage(discounted, month=date(2026, 1, 1), mtus=11_000)
    coupons.redeem_coupon(
        discounted, coupon(amount_off="8.00").code, by=support, as_of=date(2026, 1, 1)
    )
    services.run_billing(as_of=date(2026, 2, 1))
    got = {
        ws.pk: Invoice.objects.filter(workspace=ws).values_list(
            "subtotal", "discount", "tax", "total"
        )[0]
        for ws in (plain, discounted)
    }
    assert got[plain.pk] == (D("122.00"), D("0.00"), D("8.85"), D("130.85"))
    assert got[discounted.pk] == (D("130.00"), D("8.00"), D("8.85"), D("130.85"))
    tax_line = InvoiceLine.objects.get(invoice__workspace=plain, kind="tax")
    assert tax_line.amount == D("8.85")


def test_x2_k1_a_final_invoice_on_the_last_day_before_a_rate_change_on_the_1st(db):
    """Texas, 6.25 % seeded; 6.5 % from 1 March 2026. `leaver` cancels on 28 February: its
    final invoice, dated 28 February, is taxed at the rate then: 120 × 27/28 = 115.714… →
    115.71, tax 6.25 % = 7.231875 → 7.23, total 122.94. `stayer`'s February, issued 1 March, is
    taxed at the new rate (the issue date's): 120.00 × 6.5 % = 7.80, total 127.80; its January
    (1 February) 7.50, total 127.50."""
    services.set_tax_rate(
        "US", region="TX", rate="6.5", name="TX sales tax", valid_from=date(2026, 3, 1)
    )
    leaver = paid_monthly(date(2026, 1, 1), business_region="TX")
    stayer = paid_monthly(date(2026, 1, 1), business_region="TX")
    services.change_to_free(leaver, as_of=date(2026, 2, 28))
    services.run_billing(as_of=date(2026, 3, 1))

    def taxed(ws):
        return list(
            Invoice.objects.filter(workspace=ws)
            .order_by("issue_date")
            .values_list("kind", "issue_date", "subtotal", "tax", "total")
        )

    assert taxed(leaver) == [
        ("monthly", date(2026, 2, 1), D("120.00"), D("7.50"), D("127.50")),
        ("final", date(2026, 2, 28), D("115.71"), D("7.23"), D("122.94")),
    ]
    assert taxed(stayer) == [
        ("monthly", date(2026, 2, 1), D("120.00"), D("7.50"), D("127.50")),
        ("monthly", date(2026, 3, 1), D("120.00"), D("7.80"), D("127.80")),
    ]


def test_x4_k1_a_certificate_whose_last_day_is_a_final_invoices_date(db, finance):
    """Two Californian workspaces (7.25 %), each with an approved certificate valid 1 January –
    31 January 2026. `leaver` cancels on 31 January: the final invoice dated that day (1–30
    January, 120 × 30/31 = 116.13) falls on the certificate's last day: no tax (X4: both days
    included). `stayer`'s January invoice is issued 1 February, the day after: taxed, 120.00 ×
    7.25 % = 8.70, total 128.70, and its note says why."""
    leaver = paid_monthly(date(2026, 1, 1), business_region="CA")
    stayer = paid_monthly(date(2026, 1, 1), business_region="CA")
    certs = {}
    for ws in (leaver, stayer):
        cert = certificate(
            ws, "CA", on=date(2026, 1, 5), valid_from=date(2026, 1, 1), valid_to=date(2026, 1, 31)
        )
        services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 6))
        certs[ws.pk] = cert
    services.change_to_free(leaver, as_of=date(2026, 1, 31))
    services.run_billing(as_of=date(2026, 2, 1))
    final = Invoice.objects.get(workspace=leaver)
    assert (final.kind, final.issue_date, final.subtotal, final.tax, final.total) == (
        "final",
        date(2026, 1, 31),
        D("116.13"),
        D("0.00"),
        D("116.13"),
    )
    assert final.tax_note.startswith("exempt: ")
    january = Invoice.objects.get(workspace=stayer)
    assert (january.issue_date, january.tax, january.total) == (
        date(2026, 2, 1),
        D("8.70"),
        D("128.70"),
    )
    assert january.tax_note == (
        f"certificate #{certs[stayer.pk].pk} valid 1 Jan 2026 to 31 Jan 2026, not on 1 Feb 2026"
    )


def test_x2_k2_an_annual_invoice_on_the_1st_takes_the_rate_starting_that_day(db):
    """Texas, 6.25 % seeded; 6.5 % from 1 March 2026. An annual term from 28 February 2026 is
    invoiced that day at 6.25 %: 1,440.00 × 6.25 % = 90.00, total 1,530.00; one from 1 March,
    the rate's first day, at 6.5 %: 1,440.00 × 6.5 % = 93.60, total 1,533.60 (X2: in force from
    its start date; the rule looks at the issue date)."""
    services.set_tax_rate(
        "US", region="TX", rate="6.5", name="TX sales tax", valid_from=date(2026, 3, 1)
    )
    before = paid_annual(date(2026, 2, 28), business_region="TX")
    on_the_day = paid_annual(date(2026, 3, 1), business_region="TX")
    got = {
        ws.pk: Invoice.objects.filter(workspace=ws, kind="annual").values_list(
            "issue_date", "subtotal", "tax", "total"
        )[0]
        for ws in (before, on_the_day)
    }
    assert got[before.pk] == (date(2026, 2, 28), D("1440.00"), D("90.00"), D("1530.00"))
    assert got[on_the_day.pk] == (date(2026, 3, 1), D("1440.00"), D("93.60"), D("1533.60"))


# --- K: cancellations and plan changes ---------------------------------------------------------


def test_k4_monthly_to_annual_on_the_1st_has_no_final_invoice(db):
    """Paid monthly from 1 January 2026, 12,000 MTUs in January; moved to annual on 1 February.
    K4/K1: February has no paid monthly day before the 1st: no final invoice. January's close
    (1 February) bills January as a monthly month: 120.00 + 20.00 = 140.00. K2: the annual
    invoice, 1,440.00, dated 1 February, term to 1 February 2027. February, 11,000 MTUs, inside
    the term: overage only, 10.00, issued 1 March."""
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.change_interval(ws, interval="annual", as_of=date(2026, 2, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=11_000)
    services.run_billing(as_of=date(2026, 3, 1))
    jan, feb, mar = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)
    assert sorted(bills(ws)) == sorted(
        [
            ("monthly", feb, jan, feb, D("140.00"), D("0.00"), D("140.00")),
            ("annual", feb, feb, date(2027, 2, 1), D("1440.00"), D("0.00"), D("1440.00")),
            ("monthly", mar, feb, mar, D("10.00"), D("0.00"), D("10.00")),
        ]
    )
    assert workspace_status(ws, as_of=feb)["term_end"] == date(2027, 2, 1)


def test_k1_cancelled_then_back_on_the_last_day_of_the_month(db):
    """Paid monthly from 1 January 2026; 12,000 MTUs reported, cancelled 10 January: final
    invoice for 1–9 January, 120 × 9/31 = 34.838… → 34.84 + 20.00 = 54.84. January's figure
    rises to 13,000; back on Team (paid at once, T1) on 31 January. January's close bills only
    the day after the return, 120 × 1/31 = 3.870… → 3.87, and only the overage not billed
    yet, 1,000 × 0.01 = 10.00: 13.87 for 31 January – 1 February."""
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.change_to_free(ws, as_of=date(2026, 1, 10))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=13_000)
    services.change_to_team(ws, as_of=date(2026, 1, 31))
    services.run_billing(as_of=date(2026, 2, 1))
    assert bills(ws) == [
        (
            "final",
            date(2026, 1, 10),
            date(2026, 1, 1),
            date(2026, 1, 10),
            D("54.84"),
            D("0.00"),
            D("54.84"),
        ),
        (
            "monthly",
            date(2026, 2, 1),
            date(2026, 1, 31),
            date(2026, 2, 1),
            D("13.87"),
            D("0.00"),
            D("13.87"),
        ),
    ]


@pytest.mark.parametrize(
    "start, end",
    [
        (date(2027, 1, 29), date(2028, 1, 29)),
        (date(2027, 1, 30), date(2028, 1, 30)),
        (date(2027, 1, 31), date(2028, 1, 31)),
        (date(2027, 2, 28), date(2028, 2, 28)),  # not 29 February 2028
        (date(2027, 3, 31), date(2028, 3, 31)),  # 366 days: the leap day inside
    ],
)
def test_k2_an_annual_term_from_a_months_end_runs_to_the_same_date_a_year_later(db, start, end):
    """K2: the annual invoice (1,440.00) is dated the first paid day; the term runs a year from
    it, to the same date a year later (exclusive); there it renews with a new 1,440.00 for the
    next year: back to back, no day billed twice or missed."""
    ws = paid_annual(start)
    services.run_billing(as_of=end)
    annual = [b for b in bills(ws) if b[0] == "annual"]
    next_end = end.replace(year=end.year + 1)
    assert annual == [
        ("annual", start, start, end, D("1440.00"), D("0.00"), D("1440.00")),
        ("annual", end, end, next_end, D("1440.00"), D("0.00"), D("1440.00")),
    ]
    assert workspace_status(ws, as_of=end - timedelta(days=1))["term_end"] == end


def test_k2_a_cancelled_term_from_31_january_ends_on_31_january_with_its_overage(db):
    """Annual from 31 January 2026 (1,440.00), cancelled on 30 January 2027: no refund, no final
    invoice, the term runs to 31 January 2027 and the workspace is Free from then, not renewed.
    January 2027 (term days 1–30), 10,500 MTUs: overage only, 500 × 0.01 = 5.00, issued
    1 February 2027. No strike for January 2027: it had paid Team days (F1)."""
    ws = paid_annual(date(2026, 1, 31))
    services.change_to_free(ws, as_of=date(2027, 1, 30))
    services.record_usage(ws, month=date(2027, 1, 1), mtus=10_500)
    services.run_billing(as_of=date(2027, 3, 1))
    assert [(kind, issued, total) for kind, issued, *_, total in bills(ws)] == [
        ("annual", date(2026, 1, 31), D("1440.00")),
        ("monthly", date(2027, 2, 1), D("5.00")),
    ]
    assert workspace_status(ws, as_of=date(2027, 1, 30))["plan"] == "team"
    assert workspace_status(ws, as_of=date(2027, 1, 31))["plan"] == "free"
    assert strikes(ws) == []


def test_k4_annual_to_monthly_at_a_term_end_on_the_31st_bills_the_months_overage_once(db):
    """Annual from 31 January 2026; on 1 June 2026 asked to go monthly, which K4 applies at the
    term's end, 31 January 2027: no renewal. January 2027 has 30 annual days and 1 monthly day
    (the 31st), 13,000 MTUs. Its close (1 February 2027) bills the monthly base for 1 day,
    120 × 1/31 = 3.870… → 3.87, and the month's overage once, 3,000 × 0.01 = 30.00 (whichever
    invoice carries it): 33.87 in all. February 2027: 120.00."""
    ws = paid_annual(date(2026, 1, 31))
    services.change_interval(ws, interval="monthly", as_of=date(2026, 6, 1))
    services.record_usage(ws, month=date(2027, 1, 1), mtus=13_000)
    services.run_billing(as_of=date(2027, 3, 1))
    assert [i.issue_date for i in Invoice.objects.filter(workspace=ws, kind="annual")] == [
        date(2026, 1, 31)
    ]
    january = Invoice.objects.filter(workspace=ws, issue_date=date(2027, 2, 1))
    lines = sorted(InvoiceLine.objects.filter(invoice__in=january).values_list("kind", "amount"))
    assert lines == [("base", D("3.87")), ("overage", D("30.00"))]
    assert sum(i.total for i in january) == D("33.87")
    february = Invoice.objects.get(workspace=ws, issue_date=date(2027, 3, 1))
    assert (february.kind, february.total) == ("monthly", D("120.00"))


@pytest.mark.parametrize("change", ["cancel", "monthly"])
def test_k2_k4_d1_a_change_dated_the_terms_end_day_stops_the_renewal(db, change):
    """Annual from 31 January 2026, term to 31 January 2027. On 31 January 2027 itself (the
    renewal day, which the clock processes after the day's changes, D1) the customer cancels
    (K2: ends at the term's end, not renewed: Free from 31 January 2027) or asks for monthly
    (K4: at the term's end: monthly from 31 January 2027). Either way no second 1,440.00. With
    monthly, January 2027's close bills 1 paid day, 120 × 1/31 = 3.87, and February 120.00."""
    ws = paid_annual(date(2026, 1, 31))
    services.run_billing(as_of=date(2027, 1, 30))
    if change == "cancel":
        services.change_to_free(ws, as_of=date(2027, 1, 31))
    else:
        services.change_interval(ws, interval="monthly", as_of=date(2027, 1, 31))
    services.run_billing(as_of=date(2027, 3, 1))
    got = [(kind, issued, total) for kind, issued, *_, total in bills(ws)]
    if change == "cancel":
        assert got == [("annual", date(2026, 1, 31), D("1440.00"))]
        assert workspace_status(ws, as_of=date(2027, 1, 31))["plan"] == "free"
    else:
        assert got == [
            ("annual", date(2026, 1, 31), D("1440.00")),
            ("monthly", date(2027, 2, 1), D("3.87")),
            ("monthly", date(2027, 3, 1), D("120.00")),
        ]
        status = workspace_status(ws, as_of=date(2027, 1, 31))
        assert (status["plan"], status["interval"]) == ("team", "monthly")


# --- D: the clock over a month end -------------------------------------------------------------


def _month_end_world(daily, capture, support):
    """Four workspaces around the end of January 2026, the clock from 25 January to 3 February
    (daily or once at the end), each change entered before its day is processed (D1):
    - `trialist`: Team without a card from 18 January; the card comes on 1 February, the end
      date: paid from then (T4); the reminder went on 29 January (T6).
    - `leaver`: paid monthly from 1 January, 12,000 MTUs, cancelled 31 January: final invoice
      120 × 30/31 = 116.13 + 20.00 = 136.13 (K1).
    - `couponed`: paid monthly from 1 January, 30.00 off once redeemed 31 January: January's
      invoice (1 February) 120.00 − 30.00 = 90.00 (C5).
    - `free`: 1,001 MTUs in January: a strike and a lock on 1 February (F1, F2)."""
    with capture(execute=True):
        trialist = workspace(
            as_of=date(2026, 1, 18),
            plan="team",
            slug="trialist",
            billing_email="trialist@example.com",
        )
        leaver = paid_monthly(date(2026, 1, 1), slug="leaver")
        couponed = paid_monthly(date(2026, 1, 1), slug="couponed")
        free = workspace(as_of=date(2026, 1, 1), slug="free")
    services.record_usage(leaver, month=date(2026, 1, 1), mtus=12_000)
    services.record_usage(free, month=date(2026, 1, 1), mtus=1_001)
    promo = coupon(code="EDGE30", amount_off="30.00", duration="once")

    def actions(day):
        if day == date(2026, 1, 31):
            services.change_to_free(leaver, as_of=day)
            coupons.redeem_coupon(couponed, promo.code, by=support, as_of=day)
        elif day == date(2026, 2, 1):
            services.add_payment_method(trialist, as_of=day)

    run_days(date(2026, 1, 25), date(2026, 2, 3), daily=daily, capture=capture, actions=actions)
    again = services.run_billing(as_of=date(2026, 2, 3))  # the same day twice: a no-op
    earlier = services.run_billing(as_of=date(2026, 2, 1))  # a day already processed
    return {
        "invoices": sorted(
            (i.workspace.slug, i.kind, i.issue_date, i.period_start, i.subtotal, i.total)
            for i in Invoice.objects.select_related("workspace")
        ),
        "strikes": sorted(Strike.objects.values_list("workspace__slug", "month", "mtus")),
        "locks": sorted(LockEvent.objects.values_list("workspace__slug", "on", "to_lock", "cause")),
        "reminders": sorted(m.to[0] for m in reminders()),
        "trialist": workspace_status(trialist, as_of=date(2026, 2, 1))["trialing"],
        "reruns": (again, earlier),
    }


def test_d4_d1_a_run_across_a_month_end_equals_a_run_each_day(
    db, django_capture_on_commit_callbacks, support
):
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _month_end_world(is_daily, django_capture_on_commit_callbacks, support)
    )
    assert daily == catch_up
    jan1, jan31, feb1 = date(2026, 1, 1), date(2026, 1, 31), date(2026, 2, 1)
    assert daily["invoices"] == [
        ("couponed", "monthly", feb1, jan1, D("120.00"), D("90.00")),
        ("leaver", "final", jan31, jan1, D("136.13"), D("136.13")),
    ]
    assert daily["strikes"] == [("free", jan1, 1_001)]
    assert daily["locks"] == [("free", feb1, "locked", "free_limit")]
    assert daily["reminders"] == ["trialist@example.com"]
    assert daily["trialist"] is False
    assert daily["reruns"] == ({}, {})
