"""An eighth set of edge days, each worked by hand from SPEC (figures in each test's docstring
and comments, none computed by the code under test), on the rules the first seven files touch
least:

- P1, P3: Free at exactly 1,000 MTUs and at 1,001 on a sign-up on the month's last day; exactly
  one current subscription after six plan and interval changes on one day.
- T2: Free → Team with a card removed, replaced or added the same day; a sign-up straight into
  Team without one.
- M1, M4: paid monthly Team for only the last day of a month (with 100 % off: a 0.00 invoice
  still issued) and for only the 1st (billed by its final invoice alone); M4's worked example
  moved to the leap February of 2028.
- C1, C3, C8: a coupon's bounds (100 %, an amount larger than the bill, repeating N = 1 on a
  month's last day and on the 1st, redeem-by on the day, the maximum reached by the last one);
  the seeded coupons; non-profit and accelerator coupons for long-standing customers.
- G1–G3: audiences on the day of a sign-up, the last closed month's MTUs mid-month and before
  the close has run, locks and program membership as of the day, refusals counted by reason;
  launches and a retried batch emailing once; discount given across a credit note and a void.
- FC1: forecasts on 29 February 2028, across a trial's end, under a closure proposed on the 1st
  and with a coupon whose redeem-by is that day, each equal to the cent to what the clock then
  issues, and nothing written.
- S1, S5, S6: an application entered by staff, one rejection email, partner deal requests on
  the program's last day and the day after.
- F5, F6, F2: an unlock by hand, its email and cause, and the strikes still counted after it.
- I2, I4, U2, X5: a total held at zero, a close run again, an import refused whole, a
  certificate's document at the size limit.
- D4: the multi-day scenarios run day by day and in one run, with identical outcomes.
"""

from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail

from billing import services
from billing.errors import BillingError
from billing.forecast import forecast_invoices
from billing.models import Invoice, LockEvent, Strike, Subscription, Workspace
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.campaigns import campaign_audience, create_campaign, launch_campaign
from coupons.errors import CouponRefused
from coupons.models import Campaign, Redemption
from startups import services as startups
from tests.coupons.factories import coupon
from tests.scenarios.clock import both_ways, letters
from tests.scenarios.figures import bills, everything, forecast_figures, locks, subjects
from tests.scenarios.workspaces import new, paid, ws_

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


# --- Helpers ------------------------------------------------------------------------------------


def short(slug):
    """(kind, issue date, period start, period end, subtotal, discount, credits, total)."""
    return [(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[8]) for b in bills(ws_(slug))]


NOT_LOCKED, LOCKED, STOPPED = "unlocked", "locked", "locked_data_stopped"


# --- P1, P3: the plans --------------------------------------------------------------------------


def test_p1_f1_f2_d4_free_at_1000_mtus_and_at_1001_signed_up_on_the_months_last_day(
    db, django_capture_on_commit_callbacks
):
    """P1: Free includes 1,000 MTUs a month and bills no overage. `even`, Free from 1 January
    2027, reports exactly 1,000 for January: not more than 1,000, no strike (F1). `edge` signs
    up on 31 January, January's last day, and reports 1,001: on Free on every day of January
    on which it existed (one), over the limit: a strike for January at its close (1 February)
    and `locked` (one strike in six months, F2), with its email "Edge is locked". Neither is
    ever invoiced (P1: no overage billing on Free). Both runs alike."""

    def actions(day):
        if day == date(2027, 1, 1):
            new("even", day)
        if day == date(2027, 1, 31):
            new("edge", day)
            services.record_usage(ws_("even"), month=date(2027, 1, 1), mtus=1_000)
            services.record_usage(ws_("edge"), month=date(2027, 1, 1), mtus=1_001)

    def read():
        return {
            "strikes": sorted(Strike.objects.values_list("workspace__slug", "month", "mtus")),
            "locks": {slug: locks(slug) for slug in ("even", "edge")},
            "invoices": Invoice.objects.count(),
            "status": {
                slug: workspace_status(ws_(slug), as_of=date(2027, 2, 1))["lock"]
                for slug in ("even", "edge")
            },
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 1, 1), date(2027, 2, 2), actions, read
    )
    assert outcome == {
        "strikes": [("edge", date(2027, 1, 1), 1_001)],
        "locks": {
            "even": [],
            "edge": [(date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit")],
        },
        "invoices": 0,
        "status": {"even": NOT_LOCKED, "edge": LOCKED},
        "letters": [("edge@example.com", "Edge is locked")],
    }


def test_p3_t1_k4_exactly_one_current_subscription_after_six_changes_on_one_day(db):
    """Free with a card from 1 March 2027. On 10 March: Team (a trial, T1: never had Team),
    Free (T5: cancelled in its trial, nothing billed), Team (paid at once: it had Team, T1),
    Free (K1: no paid day of March before the 10th, so no final invoice), Team monthly again,
    then annual (K4: the monthly part has no paid day before the 10th, nothing to bill; an
    annual term from 10 March 2027 to 10 March 2028, 1,440.00 dated 10 March, K2).

    P3: exactly one current subscription (Team, annual, started 10 March), every earlier one
    kept as history and ended (the first Free one on 10 March too). D3: 9 March Free; 10 March
    Team annual, not trialing."""
    ws = new("up", date(2027, 3, 1), card=True)
    day = date(2027, 3, 10)
    services.change_to_team(ws, as_of=day)
    services.change_to_free(ws, as_of=day)
    services.change_to_team(ws, as_of=day)
    services.change_to_free(ws, as_of=day)
    services.change_to_team(ws, as_of=day)
    services.change_interval(ws, interval="annual", as_of=day)

    subs = Subscription.objects.filter(workspace=ws)
    current = subs.filter(ended_on=None)
    assert current.count() == 1
    assert current.values_list("plan__code", "interval", "started_on").get() == (
        "team",
        "annual",
        day,
    )
    # Seven rows: the first Free, the cancelled trial, Free, paid Team, Free, monthly Team
    # (ended by K4) and the annual term, the only one running.
    rows = subs.values_list("plan__code", "interval", "started_on", "ended_on", "trial_outcome")
    assert sorted(rows, key=str) == [
        ("free", "monthly", date(2027, 3, 1), day, ""),
        ("free", "monthly", day, day, ""),
        ("free", "monthly", day, day, ""),
        ("team", "annual", day, None, ""),
        ("team", "monthly", day, day, ""),
        ("team", "monthly", day, day, ""),
        ("team", "monthly", day, day, "cancelled"),
    ]
    assert set(subs.exclude(ended_on=None).values_list("ended_on", flat=True)) == {day}
    assert sorted(subs.filter(plan__code="free").values_list("started_on", "ended_on")) == [
        (date(2027, 3, 1), day),
        (day, day),
        (day, day),
    ]
    assert short("up") == [
        ("annual", day, day, date(2028, 3, 10), D("1440.00"), D("0.00"), D("0.00"), D("1440.00"))
    ]
    before, then = (workspace_status(ws, as_of=d) for d in (date(2027, 3, 9), day))
    assert (before["plan"], then["plan"], then["interval"], then["trialing"]) == (
        "free",
        "team",
        "annual",
        False,
    )


# --- T2: a card on the day of the move ----------------------------------------------------------


def test_t2_t1_t4_d4_free_to_team_with_a_card_removed_replaced_or_added_that_day(
    db, django_capture_on_commit_callbacks
):
    """Free workspaces with a card from 1 March 2027.

    - `gone`: card removed on 10 March, then asked to move to Team that day: refused (T2, no
      card on file that day); a card added on 12 March and the move made that day: a trial
      12–25 March, end date 26 March (T1, T3), the card on file then: paid monthly from
      26 March (T4). March (1 April): 26–31 March, 120 × 6/31 = 23.2258… → 23.23, no overage
      (a trial month, M3).
    - `swap`: card removed and a new one added on 10 March, moved the same day: accepted;
      trial 10–23 March, paid from 24 March: 120 × 8/31 = 30.9677… → 30.97.
    - `direct`: signed up straight into Team without a card on 12 March (T2: allowed), trial
      to 25 March, reminder on 23 March (T6), back on Free on 26 March (T4): nothing billed.

    Emails: "Gone is now on Team", "Swap is now on Team", Direct's reminder and "trial ended".
    Both runs alike."""
    refused = []

    def actions(day):
        if day == date(2027, 3, 1):
            new("gone", day, card=True)
            new("swap", day, card=True)
        if day == date(2027, 3, 10):
            services.remove_payment_method(ws_("gone"), as_of=day)
            try:
                services.change_to_team(ws_("gone"), as_of=day)
            except BillingError as exc:
                refused.append((day, str(exc)))
            services.remove_payment_method(ws_("swap"), as_of=day)
            services.add_payment_method(ws_("swap"), as_of=day, brand="Visa", last4="4242")
            services.change_to_team(ws_("swap"), as_of=day)
        if day == date(2027, 3, 12):
            services.add_payment_method(ws_("gone"), as_of=day)
            services.change_to_team(ws_("gone"), as_of=day)
            new("direct", day, plan="team")

    def read():
        got = {
            "refused": list(refused),
            "bills": {s: short(s) for s in ("gone", "swap", "direct")},
            "status": {
                s: [
                    tuple(workspace_status(ws_(s), as_of=d)[k] for k in ("plan", "trialing"))
                    for d in (date(2027, 3, 10), date(2027, 3, 12), date(2027, 3, 26))
                ]
                for s in ("gone", "swap")
            },
            "trial_end": workspace_status(ws_("direct"), as_of=date(2027, 3, 12))["trial_end"],
        }
        refused.clear()
        return got

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 1), date(2027, 4, 2), actions, read
    )
    assert outcome == {
        "refused": [
            (
                date(2027, 3, 10),
                "A payment method is needed to move from Free to Team. Add one first.",
            )
        ],
        "bills": {
            "gone": [
                (
                    "monthly",
                    date(2027, 4, 1),
                    date(2027, 3, 26),
                    date(2027, 4, 1),
                    D("23.23"),
                    D("0.00"),
                    D("0.00"),
                    D("23.23"),
                )
            ],
            "swap": [
                (
                    "monthly",
                    date(2027, 4, 1),
                    date(2027, 3, 24),
                    date(2027, 4, 1),
                    D("30.97"),
                    D("0.00"),
                    D("0.00"),
                    D("30.97"),
                )
            ],
            "direct": [],
        },
        "status": {
            "gone": [("free", False), ("team", True), ("team", False)],
            "swap": [("team", True), ("team", True), ("team", False)],
        },
        "trial_end": date(2027, 3, 26),
        "letters": sorted(
            [
                ("direct@example.com", "Your Team trial for Direct ends on 26 Mar 2027"),
                ("direct@example.com", "Your Team trial for Direct has ended"),
                ("gone@example.com", "Gone is now on Team"),
                ("swap@example.com", "Swap is now on Team"),
            ]
        ),
    }


# --- M1, M4: one paid day; the worked example in a leap February -------------------------------


def test_m1_m2_c4_d4_paid_team_for_only_the_last_day_of_january_at_100_percent_off(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly Team from 31 January 2027 (January's last day), 100 % off `once` redeemed
    that day, 12,000 MTUs for January, cancelled on 1 February (K1: no paid day of February
    before the 1st, no final invoice). January's close (1 February) still bills the one paid
    day (M1): period 31 January – 1 February, 120 × 1/31 = 3.8709… → 3.87, overage 2,000 ×
    0.01 = 20.00 (no trial day, M3): 23.87; 100 % off: 23.87; total 0.00 — issued all the same
    (M1). Nothing for February. Both runs alike; no email."""

    def actions(day):
        if day == date(2027, 1, 31):
            paid("last", day)
            coupon(code="ALL100", percent_off="100", duration="once")
            coupons.redeem_coupon(ws_("last"), "ALL100", by=support, as_of=day)
            services.record_usage(ws_("last"), month=date(2027, 1, 1), mtus=12_000)
        if day == date(2027, 2, 1):
            services.change_to_free(ws_("last"), as_of=day)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 1, 31),
        date(2027, 3, 2),
        actions,
        lambda: {"bills": short("last")},
    )
    assert outcome == {
        "bills": [
            (
                "monthly",
                date(2027, 2, 1),
                date(2027, 1, 31),
                date(2027, 2, 1),
                D("23.87"),
                D("23.87"),
                D("0.00"),
                D("0.00"),
            )
        ],
        "letters": [],
    }


def test_m1_k1_d4_paid_team_for_only_the_1st_of_march_is_billed_by_its_final_invoice(
    db, django_capture_on_commit_callbacks
):
    """Paid monthly Team from 1 March 2027, 10,500 MTUs reported for March that day, cancelled
    on 2 March (K1): a final invoice dated 2 March for the paid days before it, 1 March:
    120 × 1/31 = 3.87 + 500 × 0.01 = 5.00 → 8.87. March's close (1 April) issues nothing for
    it: the month is already billed by a final invoice (M1). One invoice; both runs alike."""

    def actions(day):
        if day == date(2027, 3, 1):
            paid("first", day)
            services.record_usage(ws_("first"), month=date(2027, 3, 1), mtus=10_500)
        if day == date(2027, 3, 2):
            services.change_to_free(ws_("first"), as_of=day)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2027, 3, 1),
        date(2027, 4, 2),
        actions,
        lambda: {"bills": short("first")},
    )
    assert outcome["bills"] == [
        (
            "final",
            date(2027, 3, 2),
            date(2027, 3, 1),
            date(2027, 3, 2),
            D("8.87"),
            D("0.00"),
            D("0.00"),
            D("8.87"),
        )
    ]


def test_m4_m2_m3_t3_d4_the_worked_example_moved_to_the_leap_february_of_2028(
    db, django_capture_on_commit_callbacks
):
    """M4 moved a month on, into a leap February: signed up into Team with a card on
    10 February 2028, trial 10–23 February, end date 24 February (T3), monthly. February 2028
    has 29 days: 6 paid (24–29) → 120 × 6/29 = 24.8275… → 24.83; 14,000 MTUs but February had
    trial days → no overage (M3): 24.83, issued 1 March. March, 12,500 MTUs: 120.00 + 2,500 ×
    0.01 = 25.00 → 145.00, issued 1 April. One email, "Up is now on Team" (T4). Both runs
    alike."""

    def actions(day):
        if day == date(2028, 2, 10):
            new("up", day, plan="team", card=True)
        if day == date(2028, 2, 29):
            services.record_usage(ws_("up"), month=date(2028, 2, 1), mtus=14_000)
        if day == date(2028, 3, 31):
            services.record_usage(ws_("up"), month=date(2028, 3, 1), mtus=12_500)

    outcome = both_ways(
        django_capture_on_commit_callbacks,
        date(2028, 2, 10),
        date(2028, 4, 1),
        actions,
        lambda: {"bills": short("up")},
    )
    assert outcome == {
        "bills": [
            (
                "monthly",
                date(2028, 3, 1),
                date(2028, 2, 24),
                date(2028, 3, 1),
                D("24.83"),
                D("0.00"),
                D("0.00"),
                D("24.83"),
            ),
            (
                "monthly",
                date(2028, 4, 1),
                date(2028, 3, 1),
                date(2028, 4, 1),
                D("145.00"),
                D("0.00"),
                D("0.00"),
                D("145.00"),
            ),
        ],
        "letters": [("up@example.com", "Up is now on Team")],
    }


# --- C1–C5, C8: a coupon's bounds on edge days --------------------------------------------------


def test_c1_a_coupons_bounds_are_refused_one_past_them_and_accepted_on_them(db):
    """C1: exactly one of percent off (0 < p ≤ 100), amount off (> 0) or, for the
    startup-program kind only, a credit amount; `repeating` for N ≥ 1 months. On the bounds:
    100 %, 0.01 off and repeating for 1 month are accepted; one step past them (0 %, 100.01 %,
    0.00 off, repeating for 0 months, a percent and an amount together, a credit on a
    promotion) each refused with CouponError, and no coupon written."""
    from coupons.errors import CouponError
    from coupons.models import Coupon

    seeded = Coupon.objects.count()
    bad = [
        {"percent_off": "0"},
        {"percent_off": "100.01"},
        {"amount_off": "0.00"},
        {"percent_off": "10", "duration": "repeating", "duration_months": 0},
        {"percent_off": "10", "amount_off": "5.00"},
        {"credit_amount": "1000.00"},
    ]
    for n, values in enumerate(bad):
        with pytest.raises(CouponError):
            coupons.create_coupon(f"BAD{n}", "Bad", "promotion", **values)
    assert Coupon.objects.count() == seeded
    full = coupons.create_coupon("FULL", "Full", "promotion", percent_off="100")
    cent = coupons.create_coupon("CENT", "Cent", "promotion", amount_off="0.01")
    one = coupons.create_coupon(
        "ONE", "One", "promotion", percent_off="5", duration="repeating", duration_months=1
    )
    assert (full.percent_off, cent.amount_off, one.duration_months) == (D("100"), D("0.01"), 1)
    assert Coupon.objects.count() == seeded + 3


def test_c1_c4_i2_cr2_d4_100_percent_off_and_an_amount_off_larger_than_the_bill(
    db, django_capture_on_commit_callbacks, support
):
    """C4: percent → subtotal × p / 100; amount → min(amount, subtotal). I2: never below zero;
    CR2: credits after discounts, so nothing is drawn from a bill already at zero.

    - `full`: paid monthly from 1 March 2027, 100 % off `forever` redeemed that day, 12,000
      MTUs in March: 140.00 − 140.00 = 0.00 (1 April); April, no usage: 120.00 − 120.00 = 0.00
      (1 May). Both issued (M1).
    - `big`: paid monthly from 15 March 2027, 500.00 off `once` and a 50.00 grant, both that
      day. March: 17 paid days, 120 × 17/31 = 65.8064… → 65.81; discount min(500.00, 65.81) =
      65.81; credits 0.00; total 0.00. April: 120.00, the `once` coupon used up; credits 50.00;
      70.00. The grant is then drawn to 0.00.
    Both runs alike."""

    def actions(day):
        if day == date(2027, 3, 1):
            paid("full", day)
            coupon(code="FREEBIE", percent_off="100", duration="forever")
            coupon(code="BIG500", amount_off="500.00", duration="once")
            coupons.redeem_coupon(ws_("full"), "FREEBIE", by=support, as_of=day)
        if day == date(2027, 3, 15):
            paid("big", day)
            coupons.redeem_coupon(ws_("big"), "BIG500", by=support, as_of=day)
            coupons.grant_credits(ws_("big"), amount="50.00", as_of=day, year=1, by=support)
        if day == date(2027, 3, 31):
            services.record_usage(ws_("full"), month=date(2027, 3, 1), mtus=12_000)

    def read():
        return {
            "full": [(b[1], b[4], b[5], b[6], b[7]) for b in short("full")],
            "big": [(b[1], b[4], b[5], b[6], b[7]) for b in short("big")],
            "balance": workspace_status(ws_("big"), as_of=date(2027, 5, 1))["credit_balance"],
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 1), date(2027, 5, 2), actions, read
    )
    assert outcome == {
        "full": [
            (date(2027, 4, 1), D("140.00"), D("140.00"), D("0.00"), D("0.00")),
            (date(2027, 5, 1), D("120.00"), D("120.00"), D("0.00"), D("0.00")),
        ],
        "big": [
            (date(2027, 4, 1), D("65.81"), D("65.81"), D("0.00"), D("0.00")),
            (date(2027, 5, 1), D("120.00"), D("0.00"), D("50.00"), D("70.00")),
        ],
        "balance": D("0.00"),
        "letters": [],
    }


def test_c5_c1_d4_repeating_for_one_month_redeemed_on_a_months_last_day_and_on_the_1st(
    db, django_capture_on_commit_callbacks, support
):
    """30 % off `repeating` N = 1 (C1's least N): the billing month of the redemption only
    (C5). `mar` and `apr` paid monthly from 1 March 2027.

    - `mar` redeems on 31 March: March's invoice (1 April) 120.00 − 36.00 = 84.00; April's
      (1 May) back to 120.00; the redemption runs out on 1 April.
    - `apr` redeems on 1 April (the close of March is that day, but March is not its billing
      month): March 120.00; April 84.00; it runs out on 1 May.
    Both runs alike."""

    def actions(day):
        if day == date(2027, 3, 1):
            paid("mar", day)
            paid("apr", day)
            coupon(code="ONEMONTH", percent_off="30", duration="repeating", duration_months=1)
        if day == date(2027, 3, 31):
            coupons.redeem_coupon(ws_("mar"), "ONEMONTH", by=support, as_of=day)
        if day == date(2027, 4, 1):
            coupons.redeem_coupon(ws_("apr"), "ONEMONTH", by=support, as_of=day)

    def read():
        return {
            slug: (
                [(b[1], b[5], b[7]) for b in short(slug)],
                list(
                    Redemption.objects.filter(workspace__slug=slug).values_list(
                        "redeemed_on", "status", "ended_on"
                    )
                ),
            )
            for slug in ("mar", "apr")
        }

    outcome = both_ways(
        django_capture_on_commit_callbacks, date(2027, 3, 1), date(2027, 5, 2), actions, read
    )
    assert outcome == {
        "mar": (
            [
                (date(2027, 4, 1), D("36.00"), D("84.00")),
                (date(2027, 5, 1), D("0.00"), D("120.00")),
            ],
            [(date(2027, 3, 31), "ended", date(2027, 4, 1))],
        ),
        "apr": (
            [
                (date(2027, 4, 1), D("0.00"), D("120.00")),
                (date(2027, 5, 1), D("36.00"), D("84.00")),
            ],
            [(date(2027, 4, 1), "ended", date(2027, 5, 1))],
        ),
        "letters": [],
    }


def test_c2_c1_redeem_by_on_the_day_and_the_maximum_reached_by_the_last_one(db, support):
    """`LASTDAY`: 10 % off once, redeem-by 31 March 2027, at most 2 redemptions. On 31 March
    `a` and `b` receive it (the day itself is within its redeem-by, C1; `b` is the last one the
    maximum allows); `c` the same day is refused, maximum reached; `d` on 1 April is refused
    as past its redeem-by (C2 names that reason first when both hold). The count stays at 2,
    and the refusals write nothing."""
    lastday = coupon(
        code="LASTDAY", percent_off="10", redeem_by=date(2027, 3, 31), max_redemptions=2
    )
    for slug in "abcd":
        paid(slug, date(2027, 3, 1))
    on = date(2027, 3, 31)
    coupons.redeem_coupon(ws_("a"), "LASTDAY", by=support, as_of=on)
    coupons.redeem_coupon(ws_("b"), "LASTDAY", by=support, as_of=on)
    reasons = []
    for slug, day in (("c", on), ("d", date(2027, 4, 1))):
        with pytest.raises(CouponRefused) as refused:
            coupons.redeem_coupon(ws_(slug), "LASTDAY", by=support, as_of=day)
        reasons.append(refused.value.reason)
    assert reasons == [CouponRefused.MAXIMUM_REACHED, CouponRefused.PAST_REDEEM_BY]
    lastday.refresh_from_db()
    assert lastday.times_redeemed == 2
    assert sorted(
        Redemption.objects.filter(coupon=lastday).values_list("workspace__slug", "redeemed_on")
    ) == [("a", on), ("b", on)]


def test_c8_c3_c2_seeded_coupons_and_long_standing_customers(db, support):
    """C8: `NONPROFIT` is 120.00 off, `forever`, non-profit kind (C6); `STARTUP` is the
    startup-program credit, 25,000.00 a year, both intervals.

    C3: `old` (paid monthly since 1 October 2026) received 10 % off `once` on 1 October 2026
    (used on October's invoice); on 15 March 2027 it receives an accelerator coupon (20 % off
    `forever`): long-standing and couponed before, yet allowed. `npo`, the same age and
    history, has its non-profit proof approved on 15 March, which applies `NONPROFIT` at once.
    The startup program, by contrast, refuses `old` (C2: it received a coupon before).
    `young`, paid monthly from 15 March, receives the accelerator coupon too.

    March's invoices (1 April): `old` 120.00 − 24.00 = 96.00; `npo` 120.00 − 120.00 = 0.00;
    `young` 120 × 17/31 = 65.8064… → 65.81, 20 % = 13.162 → 13.16, 52.65."""
    from coupons.models import Coupon
    from tests.coupons.factories import approved_proof

    nonprofit, startup = Coupon.objects.get(code="NONPROFIT"), Coupon.objects.get(code="STARTUP")
    assert (nonprofit.kind, nonprofit.amount_off, nonprofit.duration) == (
        "nonprofit",
        D("120.00"),
        "forever",
    )
    assert (startup.kind, startup.credit_amount, startup.intervals) == (
        "startup_program",
        D("25000.00"),
        ("monthly", "annual"),
    )
    coupon(code="WELCOME", percent_off="10", duration="once")
    coupon(code="ACCEL20", kind="accelerator", percent_off="20", duration="forever")
    for slug in ("old", "npo"):
        paid(slug, date(2026, 10, 1))
        coupons.redeem_coupon(ws_(slug), "WELCOME", by=support, as_of=date(2026, 10, 1))
    services.run_billing(as_of=date(2027, 3, 14))
    on = date(2027, 3, 15)
    paid("young", on)
    coupons.redeem_coupon(ws_("old"), "ACCEL20", by=support, as_of=on)
    coupons.redeem_coupon(ws_("young"), "ACCEL20", by=support, as_of=on)
    approved_proof(ws_("npo"), support, as_of=on, apply_discount=True)
    with pytest.raises(CouponRefused) as refused:
        coupons.redeem_coupon(ws_("old"), "STARTUP", by=support, as_of=on)
    assert refused.value.reason == CouponRefused.STARTUP_AFTER_COUPON
    services.run_billing(as_of=date(2027, 4, 1))
    march = {
        slug: Invoice.objects.filter(workspace__slug=slug, issue_date=date(2027, 4, 1))
        .values_list("subtotal", "discount", "total")
        .get()
        for slug in ("old", "npo", "young")
    }
    assert march == {
        "old": (D("120.00"), D("24.00"), D("96.00")),
        "npo": (D("120.00"), D("120.00"), D("0.00")),
        "young": (D("65.81"), D("13.16"), D("52.65")),
    }
    assert Invoice.objects.get(workspace__slug="old", issue_date=date(2026, 11, 1)).discount == D(
        "12.00"
    )


# --- G1: audiences on edge days -----------------------------------------------------------------


def _reach(code, on, **filters):
    """G1: the slugs a campaign for `code` with `filters` reaches on `on`, and its refusals."""
    name = f"Look {Campaign.objects.count() + 1}"  # a name of its own (G1)
    campaign = create_campaign(name, code, "An offer", "An offer for you.", filters)
    ids, refusals = campaign_audience(campaign, on)
    return sorted(Workspace.objects.filter(pk__in=ids).values_list("slug", flat=True)), refusals


def test_g1_d3_created_before_and_after_read_on_a_sign_up_day_and_one_entered_ahead(db):
    """Free workspaces signed up on 9 March 2027 (`eve`), 10 March (`day`) and 11 March
    (`ahead`, entered before the clock reached it); the clock through 9 March. On 10 March the
    audience is the workspaces as they stood that day (D3): `ahead` did not exist yet.

    - no filter: `day`, `eve`;
    - created after 2027-03-09: `day` (created on the 10th: after the 9th);
    - created before 2027-03-10: `eve` (created on the 10th is not before the 10th);
    - created after 2027-03-10: nobody (`ahead` comes the next day).
    On 11 March (the clock through the 10th): no filter: all three; created after 2027-03-10:
    `ahead`. The promotion refuses nobody."""
    coupon(code="HELLO", percent_off="10", duration="once")
    new("eve", date(2027, 3, 9))
    new("day", date(2027, 3, 10))
    new("ahead", date(2027, 3, 11))
    services.run_billing(as_of=date(2027, 3, 9))
    on = date(2027, 3, 10)
    assert _reach("HELLO", on) == (["day", "eve"], {})
    assert _reach("HELLO", on, created_after="2027-03-09") == (["day"], {})
    assert _reach("HELLO", on, created_before="2027-03-10") == (["eve"], {})
    assert _reach("HELLO", on, created_after="2027-03-10") == ([], {})
    services.run_billing(as_of=on)
    assert _reach("HELLO", date(2027, 3, 11)) == (["ahead", "day", "eve"], {})
    assert _reach("HELLO", date(2027, 3, 11), created_after="2027-03-10") == (["ahead"], {})


def test_g1_u1_the_last_closed_months_mtus_before_its_successors_close_and_mid_month(db):
    """Free workspaces from 1 December 2026: `a` reports 800 MTUs for December, 500 for
    January and 950 for February (a running total); `b` 900 for January only; `c` nothing.
    The clock through 31 January 2027: December is the last closed month (closed on
    1 January); January's close runs with 1 February.

    - On 1 February, MTUs 600–1,000: December's figures: `a` (800); `b`'s January 900 is not
      a closed month's yet.
    - The clock through 14 February; on 15 February (mid-month, January closed on the 1st):
      MTUs 600–1,000: January's: `b` (900); `a`'s 500 is out and its February 950 is not read
      (February is not closed). MTUs 0–0: `c` (no report is 0 MTUs)."""
    coupon(code="HELLO", percent_off="10", duration="once")
    a, b, _ = (new(s, date(2026, 12, 1)) for s in ("a", "b", "c"))
    services.record_usage(a, month=date(2026, 12, 1), mtus=800)
    services.record_usage(a, month=date(2027, 1, 1), mtus=500)
    services.record_usage(b, month=date(2027, 1, 1), mtus=900)
    services.run_billing(as_of=date(2027, 1, 31))
    assert _reach("HELLO", date(2027, 2, 1), min_mtus=600, max_mtus=1_000) == (["a"], {})
    services.run_billing(as_of=date(2027, 2, 10))
    services.record_usage(a, month=date(2027, 2, 1), mtus=950)
    services.run_billing(as_of=date(2027, 2, 14))
    on = date(2027, 2, 15)
    assert _reach("HELLO", on, min_mtus=600, max_mtus=1_000) == (["b"], {})
    assert _reach("HELLO", on, min_mtus=0, max_mtus=0) == (["c"], {})


def test_g1_f5_s4_d3_lock_and_program_membership_as_of_the_day(db, support):
    """`locker`: Free from 1 January 2027, 2,000 MTUs in February: `locked` at February's close
    (1 March, F1, F2). `member`: paid monthly from 1 February 2027 with a grant from that day
    valid up to, not including, 15 March 2027 (a member through 14 March, S4). `other`: Free,
    nothing reported. The clock through 8 March.

    On 9 March: locked → `locker`; members → `member`. An unlock by hand dated 10 March is then
    entered (F5): 9 March still reads `locker` as locked (D3), and it is left out only as the
    coupon would now refuse it on 9 March (a change dated later was entered: the code's D4
    refusal, counted by its reason). The clock through 13 March; on
    14 March: locked → nobody; unlocked → all three; members → `member`. The clock through
    14 March; on 15 March, the grant's end: members → nobody; not members → all three."""
    coupon(code="HELLO", percent_off="10", duration="once")
    locker = new("locker", date(2027, 1, 1))
    new("other", date(2027, 1, 1))
    member = paid("member", date(2027, 2, 1))
    coupons.grant_credits(
        member,
        amount="500.00",
        as_of=date(2027, 2, 1),
        year=1,
        by=support,
        valid_until=date(2027, 3, 15),
    )
    services.record_usage(locker, month=date(2027, 2, 1), mtus=2_000)
    services.run_billing(as_of=date(2027, 3, 8))
    on = date(2027, 3, 9)
    assert _reach("HELLO", on, lock=LOCKED) == (["locker"], {})
    assert _reach("HELLO", on, startup_member=True) == (["member"], {})
    services.unlock_workspace(
        locker, by=support, reason="Agreed to upgrade next week", as_of=date(2027, 3, 10)
    )
    # Still locked on 9 March (D3), so it matches; but a coupon dated 9 March would now be
    # refused for it (a change dated later was entered), so it is counted out for that reason.
    assert _reach("HELLO", on, lock=LOCKED) == ([], {"out_of_date_order": 1})
    services.run_billing(as_of=date(2027, 3, 13))
    on = date(2027, 3, 14)
    assert _reach("HELLO", on, lock=LOCKED) == ([], {})
    assert _reach("HELLO", on, lock=NOT_LOCKED) == (["locker", "member", "other"], {})
    assert _reach("HELLO", on, startup_member=True) == (["member"], {})
    services.run_billing(as_of=on)
    on = date(2027, 3, 15)
    assert _reach("HELLO", on, startup_member=True) == ([], {})
    assert _reach("HELLO", on, startup_member=False) == (["locker", "member", "other"], {})


def test_g1_c2_w1_refusals_counted_by_reason_on_the_redeem_by_day_and_the_day_after(
    db, django_capture_on_commit_callbacks, support
):
    """`SPRING`: 20 % off once, monthly bills only, redeem-by 31 March 2027; `KEEP`: 10 % off
    forever. Workspaces from 1 March 2027: `free` (Free), `m` (paid monthly), `ann` (paid
    annual), `had` (monthly, received SPRING on 10 March), `disc` (monthly, KEEP running since
    10 March), `shut` (monthly, closed on 20 March, W1). The clock through 30 March.

    On 31 March, the redeem-by day, no filter: reached `free` and `m`; left out, counted by
    reason (G1, C2): on an interval the coupon does not cover 1, already received 1, a
    discount already active 1, closed 1. The preview shows a reach of 2 and the sample Free,
    M. The clock through 31 March; on 1 April every open workspace is refused as past the
    redeem-by date (5), the closed one as closed (1)."""
    from coupons.campaigns import audience_preview

    coupon(
        code="SPRING",
        percent_off="20",
        duration="once",
        intervals=("monthly",),
        redeem_by=date(2027, 3, 31),
    )
    coupon(code="KEEP", percent_off="10", duration="forever")
    start = date(2027, 3, 1)
    new("free", start)
    for slug in ("m", "had", "disc", "shut"):
        paid(slug, start)
    paid("ann", start, interval="annual")
    coupons.redeem_coupon(ws_("had"), "SPRING", by=support, as_of=date(2027, 3, 10))
    coupons.redeem_coupon(ws_("disc"), "KEEP", by=support, as_of=date(2027, 3, 10))
    services.close_workspace(ws_("shut"), by=support, reason="Asked", as_of=date(2027, 3, 20))
    services.run_billing(as_of=date(2027, 3, 30))
    on = date(2027, 3, 31)
    assert _reach("SPRING", on) == (
        ["free", "m"],
        {
            "interval_not_covered": 1,
            "already_received": 1,
            "discount_active": 1,
            "workspace_closed": 1,
        },
    )
    campaign = create_campaign("Spring", "SPRING", "Spring", "20 % off.", {})
    preview = audience_preview(campaign, as_of=on)
    assert (preview["reach"], preview["refused"], [s.name for s in preview["sample"]]) == (
        2,
        4,
        ["Free", "M"],
    )
    services.run_billing(as_of=on)
    assert _reach("SPRING", date(2027, 4, 1)) == (
        [],
        {"past_redeem_by": 5, "workspace_closed": 1},
    )


# --- G2, G3: launches and what they gave --------------------------------------------------------


def test_g2_launched_twice_a_batch_retried_and_a_newcomer_each_emailed_once(
    db, django_capture_on_commit_callbacks, support
):
    """`a`, `b`, `c` paid monthly from 1 March 2027; a campaign for Team workspaces, subject
    "Spring at 15 % off". The clock through 9 March. Launched on 10 March: 3 reached, one email
    each (G2); launched again that day: 0; its batch handed to a worker again (a retried task):
    0, nothing sent. `d` signs up on Team on 11 March; launched on 11 March (the clock through
    10 March): 1 new, `d` alone emailed. Four emails in all, one per workspace, each with the
    campaign's subject; progress: 4 reached, none waiting."""
    from coupons.campaigns import campaign_progress
    from coupons.models import CampaignRecipient
    from coupons.tasks import send_campaign_batch

    coupon(code="SPRING15", percent_off="15", duration="once")
    for slug in "abc":
        paid(slug, date(2027, 3, 1))
    campaign = create_campaign(
        "Spring", "SPRING15", "Spring at 15 % off", "15 % off your next bill.", {"plan": "team"}
    )
    services.run_billing(as_of=date(2027, 3, 9))
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 10)) == 3
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 10)) == 0
    ids = sorted(CampaignRecipient.objects.values_list("pk", flat=True))
    with django_capture_on_commit_callbacks(execute=True):
        assert send_campaign_batch(campaign.pk, ids[0], ids[-1]) == 0
    assert letters() == [(f"{s}@example.com", "Spring at 15 % off") for s in "abc"]
    paid("d", date(2027, 3, 11))
    services.run_billing(as_of=date(2027, 3, 10))
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 11)) == 1
    assert letters() == [(f"{s}@example.com", "Spring at 15 % off") for s in "abcd"]
    progress = campaign_progress(campaign)
    assert (progress["reached"], progress["waiting"]) == (4, 0)


def test_g3_k3_i3_discount_given_across_a_credit_note_and_a_void(
    db, django_capture_on_commit_callbacks, support, finance
):
    """`HALF`: 50 % off `repeating` 2 months, monthly bills. `a`, `b`, `c` paid monthly from
    1 March 2027; the campaign (Team workspaces) launched on 5 March notifies the three. `a` and
    `b` redeem on 10 March: attributed (G3). `late` signs up (paid) on 6 March, after the
    launch, and redeems on 10 March: not notified, not attributed.

    Invoices (C5: March and April): `a` and `b` 120.00 − 60.00 = 60.00 on 1 April and 1 May.
    `late`: March 26 paid days, 120 × 26/31 = 100.6451… → 100.65, 50 % = 50.325 → 50.33 (half
    up), not the campaign's. Given by the campaign: 4 × 60.00 = 240.00; notified 3, redeemed 2.

    On 2 May finance approves a 30.00 credit note on `a`'s March invoice (K3): a refund, not a
    discount: the discount given stays 240.00 (SPEC is silent; the invoice's discount stands:
    pinned). `b`'s April invoice is voided that day (I3): it gave nothing: 180.00."""
    from coupons.campaigns import campaign_results

    coupon(code="HALF", percent_off="50", duration="repeating", duration_months=2,
           intervals=("monthly",))  # fmt: skip
    for slug in "abc":
        paid(slug, date(2027, 3, 1))
    campaign = create_campaign("Half", "HALF", "Half off", "Two months at half.", {"plan": "team"})
    services.run_billing(as_of=date(2027, 3, 4))
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2027, 3, 5)) == 3
    paid("late", date(2027, 3, 6))
    for slug in ("a", "b", "late"):
        coupons.redeem_coupon(ws_(slug), "HALF", by=support, as_of=date(2027, 3, 10))
    services.run_billing(as_of=date(2027, 5, 1))
    assert dict(Redemption.objects.values_list("workspace__slug", "campaign_id")) == {
        "a": campaign.pk,
        "b": campaign.pk,
        "late": None,
    }
    assert [(b[1], b[4], b[5], b[7]) for b in short("late")][0] == (
        date(2027, 4, 1),
        D("100.65"),
        D("50.33"),
        D("50.32"),
    )
    for slug in "ab":
        assert [(b[1], b[5], b[7]) for b in short(slug)] == [
            (date(2027, 4, 1), D("60.00"), D("60.00")),
            (date(2027, 5, 1), D("60.00"), D("60.00")),
        ]

    def given():
        results = campaign_results(campaign)
        return results["notified"], results["redeemed"], results["discount"]

    assert given() == (3, 2, D("240.00"))
    may2 = date(2027, 5, 2)
    march_a = Invoice.objects.get(workspace__slug="a", issue_date=date(2027, 4, 1))
    note = services.request_credit_note(
        march_a, by=support, amount="30.00", reason="Goodwill", as_of=may2
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=may2)
    assert given() == (3, 2, D("240.00"))
    april_b = Invoice.objects.get(workspace__slug="b", issue_date=date(2027, 5, 1))
    services.void_invoice(april_b, by=finance, reason="Billed in error", as_of=may2)
    assert given() == (3, 2, D("180.00"))


# --- FC1: forecasts on edge days, equal to what the clock then issues ---------------------------


def _issued(slug, since):
    return list(Invoice.objects.filter(workspace__slug=slug, issue_date__gte=since))


def test_fc1_m2_a_forecast_on_29_february_2028_equals_what_the_clock_issues(db):
    """Paid monthly from 10 February 2028; the clock through 28 February. On 29 February (the
    leap day, February's last), forecast 2 months at 12,000 MTUs: February, dated 1 March,
    20 paid days of 29: 120 × 20/29 = 82.7586… → 82.76 + 2,000 × 0.01 = 20.00 → 102.76;
    March, dated 1 April, 140.00. Nothing written (FC1). The clock, given the same MTUs, then
    issues the same two, field by field and line by line."""
    paid("leap", date(2028, 2, 10))
    services.run_billing(as_of=date(2028, 2, 28))
    before = everything()
    forecast = forecast_invoices(ws_("leap"), as_of=date(2028, 2, 29), months=2, mtus=12_000)
    assert everything() == before
    assert [(i.kind, i.issue_date, i.subtotal, i.total) for i in forecast] == [
        ("monthly", date(2028, 3, 1), D("102.76"), D("102.76")),
        ("monthly", date(2028, 4, 1), D("140.00"), D("140.00")),
    ]
    for month in (date(2028, 2, 1), date(2028, 3, 1)):
        services.record_usage(ws_("leap"), month=month, mtus=12_000)
    services.run_billing(as_of=date(2028, 4, 1))
    assert forecast_figures(forecast) == forecast_figures(_issued("leap", date(2028, 3, 1)))


def test_fc1_t4_m3_a_forecast_across_a_trial_end_sends_nothing(
    db, django_capture_on_commit_callbacks
):
    """Signed up into Team with a card on 20 January 2027, monthly: trial 20 January –
    2 February, end date 3 February (T3). The clock through 30 January. On 31 January, forecast
    3 months at 12,000 MTUs: January has no paid day, no invoice; February, dated 1 March,
    26 paid days (3–28) of 28: 120 × 26/28 = 111.4285… → 111.43, no overage (trial days in
    February, M3); March, dated 1 April, 120.00 + 20.00 = 140.00. The trial's conversion inside
    the forecast sends no email and writes nothing (FC1). The clock then issues the same two
    and sends "Trial is now on Team" once."""
    with django_capture_on_commit_callbacks(execute=True):
        new("trial", date(2027, 1, 20), plan="team", card=True)
        services.run_billing(as_of=date(2027, 1, 30))
    mail.outbox.clear()
    before = everything()
    with django_capture_on_commit_callbacks(execute=True):
        forecast = forecast_invoices(ws_("trial"), as_of=date(2027, 1, 31), months=3, mtus=12_000)
    assert everything() == before
    assert [(i.issue_date, i.period_start, i.subtotal, i.total) for i in forecast] == [
        (date(2027, 3, 1), date(2027, 2, 3), D("111.43"), D("111.43")),
        (date(2027, 4, 1), date(2027, 3, 1), D("140.00"), D("140.00")),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        for month in (date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1)):
            services.record_usage(ws_("trial"), month=month, mtus=12_000)
        services.run_billing(as_of=date(2027, 4, 1))
    assert forecast_figures(forecast) == forecast_figures(_issued("trial", date(2027, 1, 31)))
    assert subjects() == ["Trial is now on Team"]


def test_fc1_w1_k1_a_forecast_under_a_closure_proposed_on_the_1st(
    db, django_capture_on_commit_callbacks, support
):
    """Paid monthly from 1 January 2027, 11,000 MTUs for February; the clock through
    28 February. On 1 March, forecast 2 months, March and April (MTUs as last month's,
    11,000), with February's close, which the clock has yet to run that day:

    - from today's state: February (1 March) 120.00 + 10.00 = 130.00; March (1 April) and
      April (1 May) 130.00 each;
    - under a closure proposed on 1 March (W1): February is still billed, 130.00 (its days were
      paid Team, M1); the closure's final invoice would cover March's paid days before
      1 March: none, so no final invoice (K1); nothing after. One invoice.
    Nothing written and no closure email (FC1). The closure then made on 1 March and the
    clock run to 1 May issue exactly that one invoice, and one email "Shut is closed"."""
    paid("shut", date(2027, 1, 1))
    services.record_usage(ws_("shut"), month=date(2027, 2, 1), mtus=11_000)
    services.run_billing(as_of=date(2027, 2, 28))
    on = date(2027, 3, 1)
    mail.outbox.clear()
    before = everything()

    def closure(ws, as_of):
        services.close_workspace(ws, by=support, reason="Asked", as_of=as_of)

    with django_capture_on_commit_callbacks(execute=True):
        today = forecast_invoices(ws_("shut"), as_of=on, months=2)
        proposed = forecast_invoices(ws_("shut"), as_of=on, months=2, changes=[closure])
    assert everything() == before
    assert [(i.kind, i.issue_date, i.total) for i in today] == [
        ("monthly", date(2027, 3, 1), D("130.00")),
        ("monthly", date(2027, 4, 1), D("130.00")),
        ("monthly", date(2027, 5, 1), D("130.00")),
    ]
    assert [(i.kind, i.issue_date, i.period_start, i.total) for i in proposed] == [
        ("monthly", date(2027, 3, 1), date(2027, 2, 1), D("130.00")),
    ]
    with django_capture_on_commit_callbacks(execute=True):
        closure(ws_("shut"), on)
        services.run_billing(as_of=date(2027, 5, 1))
    assert forecast_figures(proposed) == forecast_figures(_issued("shut", on))
    assert subjects() == ["Shut is closed"]


def test_fc1_c2_c5_a_forecast_with_a_coupon_on_its_redeem_by_day_takes_no_redemption(db, support):
    """Paid monthly from 1 January 2027; `LAST25`: 25 % off `once`, redeem-by 15 March 2027,
    at most 1 redemption. The clock through 14 March. On 15 March (the redeem-by day), forecast
    1 month at 10,000 MTUs with the coupon applied that day: March, dated 1 April, 120.00 −
    30.00 = 90.00. Nothing survives: no redemption, the count still 0 (FC1), so the one
    redemption it allows is still there: applied for real that day, then the clock issues the
    same invoice."""
    paid("cpn", date(2027, 1, 1))
    last25 = coupon(
        code="LAST25",
        percent_off="25",
        duration="once",
        redeem_by=date(2027, 3, 15),
        max_redemptions=1,
    )
    services.run_billing(as_of=date(2027, 3, 14))
    on = date(2027, 3, 15)

    def redeem(ws, as_of):
        coupons.redeem_coupon(ws, "LAST25", by=support, as_of=as_of)

    before = everything()
    forecast = forecast_invoices(ws_("cpn"), as_of=on, months=1, mtus=10_000, changes=[redeem])
    assert everything() == before
    last25.refresh_from_db()
    assert last25.times_redeemed == 0
    assert [(i.issue_date, i.subtotal, i.discount, i.total) for i in forecast] == [
        (date(2027, 4, 1), D("120.00"), D("30.00"), D("90.00")),
    ]
    redeem(ws_("cpn"), on)
    services.record_usage(ws_("cpn"), month=date(2027, 3, 1), mtus=10_000)
    services.run_billing(as_of=date(2027, 4, 1))
    assert forecast_figures(forecast) == forecast_figures(_issued("cpn", on))


# --- S1, S5, S6: applications and partner deals ---------------------------------------------------


def test_s1_s3_s4_an_application_entered_by_staff_is_linked_then_approved_on_the_day(
    db, django_capture_on_commit_callbacks, reviewer
):
    """S1: a reviewer enters an application on 10 March 2027 for Nimbus (incorporated
    1 June 2025, 400,000.00 raised, Germany) without a workspace. Approving it is refused
    (S3: approval needs a linked workspace) and changes nothing. Linked on 15 March to `nimbus`
    (paid monthly since 1 March), approved that day: the STARTUP coupon redeemed, a 25,000.00
    grant valid from 15 March 2027 up to 15 March 2028 (CR1), a member from 15 March and not
    on the 14th (S4). Emails to the contact: the confirmation of receipt and one acceptance."""
    from startups.errors import ApplicationError
    from startups.models import StartupApplication

    ws = paid("nimbus", date(2027, 3, 1))
    with django_capture_on_commit_callbacks(execute=True):
        app = startups.submit_application(
            "Nimbus",
            website="https://nimbus.example.com",
            contact_name="Noor",
            contact_email="noor@nimbus.example.com",
            incorporation_date=date(2025, 6, 1),
            total_funding=D("400000.00"),
            country="DE",
            as_of=date(2027, 3, 10),
            source=StartupApplication.Source.STAFF,
            by=reviewer,
        )
    with pytest.raises(ApplicationError, match="Link the applicant's workspace"):
        startups.approve_application(app, by=reviewer, as_of=date(2027, 3, 12))
    app.refresh_from_db()
    assert (app.status, Redemption.objects.count()) == ("submitted", 0)
    on = date(2027, 3, 15)
    with django_capture_on_commit_callbacks(execute=True):
        startups.link_application(
            app, by=reviewer, workspace=ws, partner=None, as_of=on, reason="Their workspace"
        )
        startups.approve_application(app, by=reviewer, as_of=on)
    grant = ws.credit_grants.get()
    assert (grant.amount, grant.valid_from, grant.valid_until) == (
        D("25000.00"),
        on,
        date(2028, 3, 15),
    )
    assert [workspace_status(ws, as_of=d)["startup_member"] for d in (date(2027, 3, 14), on)] == [
        False,
        True,
    ]
    assert letters() == [
        ("noor@nimbus.example.com", f"We received your Startup Program application #{app.pk}"),
        ("noor@nimbus.example.com", "Welcome to the Startup Program, Nimbus"),
    ]


def test_s5_s3_a_rejection_needs_a_reason_and_sends_one_email(
    db, django_capture_on_commit_callbacks, reviewer
):
    """An application submitted on 10 March 2027 (one confirmation email). A rejection without
    a reason is refused (S5). Rejected on 12 March with a reason: one rejection email to the
    contact, "Your Startup Program application #N". Rejecting it again, or approving it, is
    refused (S3: decided once) and sends nothing more: two emails in all."""
    from startups.errors import ApplicationError
    from tests.startups.factories import application

    with django_capture_on_commit_callbacks(execute=True):
        app = application(as_of=date(2027, 3, 10), contact_email="ceo@reject.example.com")
    with pytest.raises(ApplicationError):
        startups.reject_application(app, by=reviewer, reason="  ", as_of=date(2027, 3, 12))
    with django_capture_on_commit_callbacks(execute=True):
        startups.reject_application(
            app, by=reviewer, reason="Revenue above the program's stage", as_of=date(2027, 3, 12)
        )
    for decide in (
        lambda: startups.reject_application(
            app, by=reviewer, reason="Again", as_of=date(2027, 3, 13)
        ),
        lambda: startups.approve_application(app, by=reviewer, as_of=date(2027, 3, 13)),
    ):
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(ApplicationError):
            decide()
    app.refresh_from_db()
    assert (app.status, app.decided_on, app.rejection_reason) == (
        "rejected",
        date(2027, 3, 12),
        "Revenue above the program's stage",
    )
    assert letters() == [
        ("ceo@reject.example.com", f"We received your Startup Program application #{app.pk}"),
        ("ceo@reject.example.com", f"Your Startup Program application #{app.pk}"),
    ]


def test_s6_s4_partner_deals_requested_on_the_programs_last_day_and_the_day_after(db, reviewer):
    """Approved on 15 March 2027 (`deals`, paid monthly): the grant is valid up to, not
    including, 15 March 2028, so the startup is a member through 14 March 2028 (S4). It
    requests WarehouseCo's deal on 14 March 2028: accepted; asking again is refused (once per
    deal). MailCo's deal asked on 15 March 2028 is refused: the program ended that day. Staff
    fulfil the first request; declining it afterwards is refused (decided once). A second
    startup's request is declined: refused without a reason, kept with one."""
    from startups.errors import ApplicationError
    from startups.models import PartnerDeal
    from tests.startups.factories import application

    warehouse = PartnerDeal.objects.create(company="WarehouseCo", title="6 months free")
    mailco = PartnerDeal.objects.create(company="MailCo", title="20 % off")
    apps = []
    for slug in ("deals", "other"):
        app = application(workspace=paid(slug, date(2027, 3, 1)), as_of=date(2027, 3, 10))
        apps.append(startups.approve_application(app, by=reviewer, as_of=date(2027, 3, 15)))
    first = startups.request_deal(apps[0], deal=warehouse, as_of=date(2028, 3, 14))
    with pytest.raises(ApplicationError, match="already requested"):
        startups.request_deal(apps[0], deal=warehouse, as_of=date(2028, 3, 14))
    with pytest.raises(ApplicationError, match="ended on 15 Mar 2028"):
        startups.request_deal(apps[0], deal=mailco, as_of=date(2028, 3, 15))
    startups.decide_deal_request(first, by=reviewer, fulfil=True, as_of=date(2028, 3, 16))
    with pytest.raises(ApplicationError, match="already fulfilled"):
        startups.decide_deal_request(
            first, by=reviewer, fulfil=False, as_of=date(2028, 3, 17), note="Changed our mind"
        )
    second = startups.request_deal(apps[1], deal=mailco, as_of=date(2027, 3, 20))
    with pytest.raises(ApplicationError):
        startups.decide_deal_request(second, by=reviewer, fulfil=False, as_of=date(2027, 3, 21))
    startups.decide_deal_request(
        second, by=reviewer, fulfil=False, as_of=date(2027, 3, 21), note="Offer paused"
    )
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, first.decided_on) == ("fulfilled", date(2028, 3, 16))
    assert (second.status, second.decided_on, second.note) == (
        "declined",
        date(2027, 3, 21),
        "Offer paused",
    )
    assert apps[0].deal_requests.count() == 1


# --- F5, F6, F2: an unlock by hand ----------------------------------------------------------------


def test_f5_f6_f2_an_unlock_by_hand_its_email_its_cause_and_strikes_still_counted(
    db, django_capture_on_commit_callbacks, support
):
    """`up`: Free from 1 December 2026, 2,000 MTUs in January and in February 2027; the clock
    run day by day (an unlock entered ahead of the close that locks is the seventh file's
    known bug, not repeated here).

    - January's close (1 February): a strike, `locked` (F1, F2), "Up is locked".
    - Unlocked by hand on 10 February with the reason "Promised to upgrade" (F5): cause
      `manual`, the reason and who kept; "Up is unlocked" (F6).
    - February's close (1 March): a strike; the six months January–February hold two (the
      unlock does not wipe January's, F2): `locked_data_stopped`, "Up is locked and data has
      stopped".
    - Unlocked by hand again on 5 March (F5 lifts either level): "Up is unlocked". An unlock
      on 6 March is refused (not locked), one without a reason too; neither writes or sends.
    - March reports nothing: no strike; its close (1 April) finds it unlocked: nothing (F3).
    Four lock changes, four emails."""
    refused = []
    with django_capture_on_commit_callbacks(execute=True):
        ws = new("up", date(2026, 12, 1))
        services.record_usage(ws, month=date(2027, 1, 1), mtus=2_000)
        services.run_billing(as_of=date(2027, 2, 9))
        services.unlock_workspace(
            ws, by=support, reason="Promised to upgrade", as_of=date(2027, 2, 10)
        )
        services.record_usage(ws, month=date(2027, 2, 1), mtus=2_000)
        services.run_billing(as_of=date(2027, 3, 4))
        services.unlock_workspace(ws, by=support, reason="Paying next week", as_of=date(2027, 3, 5))
        services.run_billing(as_of=date(2027, 3, 5))
        for reason in ("Again", ""):
            try:
                services.unlock_workspace(ws, by=support, reason=reason, as_of=date(2027, 3, 6))
            except BillingError as exc:
                refused.append(str(exc))
        services.run_billing(as_of=date(2027, 4, 2))
    assert locks("up") == [
        (date(2027, 2, 1), NOT_LOCKED, LOCKED, "free_limit"),
        (date(2027, 2, 10), LOCKED, NOT_LOCKED, "manual"),
        (date(2027, 3, 1), NOT_LOCKED, STOPPED, "free_limit"),
        (date(2027, 3, 5), STOPPED, NOT_LOCKED, "manual"),
    ]
    assert list(
        LockEvent.objects.filter(cause="manual")
        .order_by("on")
        .values_list("on", "reason", "by__username")
    ) == [
        (date(2027, 2, 10), "Promised to upgrade", "support"),
        (date(2027, 3, 5), "Paying next week", "support"),
    ]
    assert list(Strike.objects.order_by("month").values_list("month", flat=True)) == [
        date(2027, 1, 1),
        date(2027, 2, 1),
    ]
    assert (len(refused), refused[0]) == (2, "Up is not locked.")
    assert letters() == sorted(
        [
            ("up@example.com", "Up is locked"),
            ("up@example.com", "Up is unlocked"),
            ("up@example.com", "Up is locked and data has stopped"),
            ("up@example.com", "Up is unlocked"),
        ]
    )


# --- I2, I4: totals and a close run again ---------------------------------------------------------


def test_i2_x3_cr2_c4_total_is_subtotal_less_discount_less_credits_plus_tax_line_by_line(
    db, support
):
    """California (7.25 % seeded), paid monthly from 1 March 2027; 25.00 off `once` and a
    50.00 grant, both on 1 March; 10,050 MTUs in March. March (1 April): base 120.00 + overage
    50 × 0.01 = 0.50 → subtotal 120.50; discount 25.00; credits 50.00; tax on 45.50 (X3):
    3.29875 → 3.30; total 120.50 − 25.00 − 50.00 + 3.30 = 48.80 (I2). Its lines (base,
    overage, discount, credit, tax) add up to the total (I1)."""
    ws = paid("ca", date(2027, 3, 1), business_region="CA")
    coupon(code="TWENTYFIVE", amount_off="25.00", duration="once")
    coupons.redeem_coupon(ws, "TWENTYFIVE", by=support, as_of=date(2027, 3, 1))
    coupons.grant_credits(ws, amount="50.00", as_of=date(2027, 3, 1), year=1, by=support)
    services.record_usage(ws, month=date(2027, 3, 1), mtus=10_050)
    services.run_billing(as_of=date(2027, 4, 1))
    invoice = Invoice.objects.get(workspace=ws)
    assert (invoice.subtotal, invoice.discount, invoice.credits, invoice.tax, invoice.total) == (
        D("120.50"),
        D("25.00"),
        D("50.00"),
        D("3.30"),
        D("48.80"),
    )
    lines = sorted(invoice.lines.values_list("kind", "amount"))
    assert lines == sorted(
        [
            ("base", D("120.00")),
            ("overage", D("0.50")),
            ("discount", D("-25.00")),
            ("credit", D("-50.00")),
            ("tax", D("3.30")),
        ]
    )
    assert sum(amount for _, amount in lines) == invoice.total


def test_i4_i1_m1_a_close_run_again_and_the_clock_rerun_issue_nothing_twice(db):
    """`stay` paid monthly from 1 January 2027; `gone` from 1 January, cancelled on
    20 January: final invoice INV-2027-000001, 1–19 January, 120 × 19/31 = 73.548… → 73.55.
    January's close (1 February): `stay` INV-2027-000002, 120.00; nothing for `gone` (its
    January billed by the final invoice, M1). January's close run again by hand on 2 February,
    and the clock run again for 1 and 2 February: nothing more (I4); the numbers stay gapless,
    the sequence at 2 (I1)."""
    from billing.models import InvoiceSequence

    paid("stay", date(2027, 1, 1))
    paid("gone", date(2027, 1, 1))
    services.change_to_free(ws_("gone"), as_of=date(2027, 1, 20))
    services.run_billing(as_of=date(2027, 2, 1))

    def numbers():
        return list(
            Invoice.objects.order_by("number").values_list(
                "number", "workspace__slug", "kind", "issue_date", "total"
            )
        )

    expected = [
        ("INV-2027-000001", "gone", "final", date(2027, 1, 20), D("73.55")),
        ("INV-2027-000002", "stay", "monthly", date(2027, 2, 1), D("120.00")),
    ]
    assert numbers() == expected
    assert not services.close_month(date(2027, 1, 1), as_of=date(2027, 2, 2))
    services.run_billing(as_of=date(2027, 2, 1))
    services.run_billing(as_of=date(2027, 2, 2))
    assert services.close_month(date(2027, 1, 1), as_of=date(2027, 2, 2)) == {}
    assert numbers() == expected
    assert list(InvoiceSequence.objects.values_list("year", "last_number")) == [(2027, 2)]


# --- U2, X5: input refused whole ------------------------------------------------------------------


def test_u2_i6_an_import_on_29_february_with_one_bad_row_of_each_kind_writes_nothing(db, tmp_path):
    """`acme` paid monthly from 1 February 2028, 11,000 MTUs reported for February. A file
    imported on 29 February 2028: line 2 good (February 12,000), then one bad line of each
    kind: 3 an unknown workspace, 4 a month that does not exist (2028-13), 5 negative MTUs,
    6 MTUs not a whole number, 7 a month not started on 29 February (March), 8 more than
    10,000,000,000 MTUs (I6). Refused whole, every bad line named (lines 3–8), and nothing
    imported: February stays 11,000 (U2)."""
    from billing.errors import UsageImportError
    from billing.models import Usage

    acme = paid("acme", date(2028, 2, 1))
    services.record_usage(acme, month=date(2028, 2, 1), mtus=11_000)
    path = tmp_path / "usage.csv"
    path.write_text(
        "workspace,month,mtus\n"
        "acme,2028-02,12000\n"
        "ghost,2028-02,5\n"
        "acme,2028-13,5\n"
        "acme,2028-02,-1\n"
        "acme,2028-02,1.5\n"
        "acme,2028-03,1\n"
        "acme,2028-02,10000000001\n"
    )
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(path, as_of=date(2028, 2, 29), listed=None)
    assert [e.split(":")[0] for e in refused.value.errors] == [f"Line {n}" for n in range(3, 9)]
    assert refused.value.bad_lines == 6
    assert list(Usage.objects.values_list("workspace__slug", "month", "mtus")) == [
        ("acme", date(2028, 2, 1), 11_000)
    ]


def test_x5_x4_a_certificate_document_at_10_mb_and_one_byte_over(db, settings, tmp_path):
    """X5: a certificate document must be PDF, PNG or JPEG by its content and at most 10 MB
    (10 × 1024 × 1024 = 10,485,760 bytes). A PDF of exactly 10,485,760 bytes is accepted; one
    byte more is refused; a text file named `c.pdf` is refused (its content is no PDF); a PNG
    named `scan.txt` is accepted (the content decides, not the name). Refusals write
    nothing: two certificates stored."""
    from django.core.files.base import ContentFile

    from billing.models import TaxExemption
    from tests.billing.factories import certificate
    from tests.coupons.factories import PDF, PNG

    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"
    ws = paid("cert", date(2027, 3, 1), business_region="CA")
    limit = 10 * 1024 * 1024
    on = date(2027, 3, 10)
    certificate(ws, "CA", on=on, document=ContentFile(PDF.ljust(limit, b"\n"), name="c.pdf"))
    for content, name in ((PDF.ljust(limit + 1, b"\n"), "c.pdf"), (b"just text\n", "c.pdf")):
        with pytest.raises(BillingError):
            certificate(ws, "TX", on=on, document=ContentFile(content, name=name))
    certificate(ws, "NV", on=on, document=ContentFile(PNG, name="scan.txt"))
    assert sorted(TaxExemption.objects.values_list("region", flat=True)) == ["CA", "NV"]
