"""A twelfth set of edge days, on where the edges of days, months and years meet each other,
each worked by hand from SPEC (figures in each test's docstring and comments, none computed by
the code under test):

- D4 × CR2 × C5 × K1/K4/W1: a small grant or a `once` coupon that belongs to December's
  invoice (dated 1 January) taken by a final invoice dated 20 January that was entered before
  the clock's first run (two xfails: the catch-up gives them to the later invoice).
- D4 × T3 × T4 × T6 × K2 × C5 × W1: one year end with a trial ending on 4 January (with and
  without a card), an annual renewal on 1 January with a `once` coupon redeemed on 31
  December, a repeating coupon's last month and its follow-up, and a closure on 31 December.
- CR2 × K4 × K2: an annual term's last overage invoice, dated the day it turns monthly, is
  never credited; monthly → annual on a grant's last valid day and on its anniversary.
- I6 × X4 × X2 × CR1 × C5: a set-aside December invoice issued after a certificate approval,
  a grant and a `once` coupon dated after its issue date: none of them applies to it.
- K3 × X3 × C4 × CR2 × I5: tax given back rounds half up to the cent (a 33.333 % rate makes
  the share exactly half a cent); R3: the tax report gives back in January what a credit note
  approved then took off an invoice of 31 December.
- G1–G3 × C5 × T4: a campaign launched on 31 December, a trial's end date, and a repeating
  coupon's discount across the year end.
- FC1: across the year end with a coupon ending and a grant lapsing; across an annual trial's
  end; under a closure (monthly with coupon, credit and tax; annual) or monthly → annual
  proposed on 31 December; average3 reading October–December; new plan terms from 1 January
  with a renewal that day (P2) — each equal to what the clock then issues, nothing written.
- T4 × K1 × M3 × F1: a trial ending on 31 December cancelled on 1 January; K2 × F1: an annual
  term ending on 1 or 2 January; F1–F6 × U1: over the limit on 31 December after an unlock by
  hand that day; P1 × P2 × T3: the Free allowance and the trial length change on 1 January.
- I1 × M1: numbers and the invoice export by issue month across the year end.

The multi-day scenarios run the billing clock day by day and in one catch-up run (D4) where
the catch-up is meaningful, as the other edge-day files do.
"""

import csv
from datetime import date
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.management import call_command

from billing import reports, services
from billing.forecast import forecast_invoices
from billing.invoice_documents import credit_note_document
from billing.models import CreditNote, Invoice, Plan, SetAsideInvoice, Usage
from coupons import services as coupons
from coupons.campaigns import campaign_results, create_campaign, launch_campaign
from coupons.models import CreditGrant, Redemption
from tests.billing.factories import certificate
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import (
    close,
    everything,
    forecast_figures,
    ledger,
    locks,
    short,
    status,
    taxes,
)
from tests.scenarios.workspaces import new, paid, ws_

M = "monthly"

# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


# --- Helpers ------------------------------------------------------------------------------------


def two_runs(capture, start, end, actions, read):
    """D4: `actions(day)` from `start` through `end` with the clock run each day, then the same
    with one run at the end (each change entered before the clock has run at all: a clock that
    never ran refuses nothing, D2). Returns (daily, catch-up), each `read()` with the emails
    sent as (recipient, subject)."""

    def run(daily):
        run_days(start, end, daily=daily, capture=capture, actions=actions)
        return {**read(), "letters": sorted((m.to[0], m.subject) for m in mail.outbox)}

    return daily_and_catch_up(run)


def check(outcomes, expected):
    """Each run against the hand-worked figures (daily first), then the two runs alike."""
    daily, catch_up = outcomes
    for name, outcome in (("daily", daily), ("catch-up", catch_up)):
        assert {key: outcome[key] for key in expected} == expected, name
    assert daily == catch_up


def ledgers(slug):
    return [ledger(g) for g in CreditGrant.objects.filter(workspace__slug=slug).order_by("id")]


def redemptions(slug):
    """(code, redeemed on, status, ends or ended on), oldest first."""
    return [
        (r.coupon.code, r.redeemed_on, r.status, r.ended_on or r.runs_out_on)
        for r in Redemption.objects.filter(workspace__slug=slug).order_by("redeemed_on", "id")
    ]


# --- D4 × CR2 × K1 × W1: a limited grant and a final invoice entered ahead of a close ----------


@pytest.mark.xfail(
    strict=True,
    reason="D4, CR2: a K1/W1 change entered before the clock's first run issues its final "
    "invoice (20 Jan) ahead of December's close, and it draws the grant first: catch-up "
    "credits 73.55 on the final and 76.45 (cancel) or, the rest lapsed by the closure, 0.00 "
    "on the 1 Jan invoice, not 30.00 and 120.00",
)
@pytest.mark.parametrize("how", ["cancel", "closure"])
def test_d4_cr2_k1_w1_a_small_grant_goes_to_the_earlier_invoice_whatever_the_clock_did(
    db, django_capture_on_commit_callbacks, support, how
):
    """`up` paid monthly from 1 December 2027 with a 150.00 grant from 10 December (valid to
    10 December 2028, CR1). December's invoice is dated 1 January 2028 (M1): 120.00, credited
    120.00 (CR2), 30.00 left. Cancelled (K1) or closed (W1) on 20 January 2028: final invoice
    for 1–19 January, 120 × 19/31 = 73.548… → 73.55, credited the 30.00 left, 43.55 to pay;
    nothing lapses but with a closure (W1: unused credit lapses; 0.00 here, none written).

    D4: the same whether the clock runs every day or once at the end, when the cancellation
    was entered before December's close had run (D2 refuses nothing of a clock that never
    ran). CR2 draws "up to what is left of the grants valid on the invoice date": the invoice
    dated 1 January comes before the one dated 20 January."""

    def actions(day):
        if day == date(2027, 12, 1):
            paid("up", day)
        if day == date(2027, 12, 10):
            coupons.grant_credits(ws_("up"), amount="150.00", as_of=day, year=1, by=support)
        if day == date(2028, 1, 20):
            if how == "cancel":
                services.change_to_free(ws_("up"), as_of=day)
            else:
                close(ws_("up"), support, day)

    def read():
        return {
            "bills": [b[:2] + b[4:] for b in short("up")],
            "draws": [e for e in ledgers("up")[0] if e[0] == "draw"],
        }

    outcomes = two_runs(
        django_capture_on_commit_callbacks, date(2027, 12, 1), date(2028, 2, 1), actions, read
    )
    check(
        outcomes,
        {
            "bills": [
                (M, date(2028, 1, 1), D("120.00"), D("0.00"), D("120.00"), D("0.00"), D("0.00")),
                (
                    "final",
                    date(2028, 1, 20),
                    D("73.55"),
                    D("0.00"),
                    D("30.00"),
                    D("0.00"),
                    D("43.55"),
                ),
            ],
            "draws": [
                ("draw", date(2028, 1, 1), D("-120.00")),
                ("draw", date(2028, 1, 20), D("-30.00")),
            ],
        },
    )


@pytest.mark.xfail(
    strict=True,
    reason="D4, C5: a K1/K4 change entered before the clock's first run issues its final "
    "invoice (20 Jan) ahead of December's close, and it takes the once coupon (14.71 off): "
    "December's invoice dated 1 Jan, the first on or after the redemption, gets nothing",
)
@pytest.mark.parametrize("how", ["cancel", "annual"])
def test_d4_c5_k1_k4_a_once_coupon_goes_to_the_earlier_invoice_whatever_the_clock_did(
    db, django_capture_on_commit_callbacks, support, how
):
    """`up` paid monthly from 1 December 2027, 20 % off `once` redeemed on 10 December (C5:
    the first invoice whose issue date is on or after the redemption): December's invoice,
    dated 1 January 2028 (M1), 120.00 − 24.00 = 96.00. On 20 January 2028 it cancels (K1) or
    moves to annual (K4): a final invoice for 1–19 January, 120 × 19/31 = 73.548… → 73.55,
    with nothing off (the coupon is used); with K4 also the annual invoice, 1,440.00.

    D4: the same when the change was entered before December's close had run (a clock that
    never ran refuses nothing, D2), the clock then run once to 1 February."""

    def actions(day):
        if day == date(2027, 12, 1):
            paid("up", day)
            coupon(code="ONCE20", percent_off="20", duration="once")
        if day == date(2027, 12, 10):
            coupons.redeem_coupon(ws_("up"), "ONCE20", by=support, as_of=day)
        if day == date(2028, 1, 20):
            if how == "cancel":
                services.change_to_free(ws_("up"), as_of=day)
            else:
                services.change_interval(ws_("up"), interval="annual", as_of=day)

    def read():
        return {
            "bills": [b[:2] + b[4:6] + b[8:] for b in short("up")],
            "redemptions": redemptions("up"),
        }

    outcomes = two_runs(
        django_capture_on_commit_callbacks, date(2027, 12, 1), date(2028, 2, 1), actions, read
    )
    annual = [("annual", date(2028, 1, 20), D("1440.00"), D("0.00"), D("1440.00"))]
    check(
        outcomes,
        {
            "bills": [
                (M, date(2028, 1, 1), D("120.00"), D("24.00"), D("96.00")),
                ("final", date(2028, 1, 20), D("73.55"), D("0.00"), D("73.55")),
            ]
            + (annual if how == "annual" else []),
            "redemptions": [("ONCE20", date(2027, 12, 10), "ended", date(2028, 1, 1))],
        },
    )


# --- D4 × T3 × K2 × C5 × W1: one year end with everything on it ---------------------------------


def _year_end_before():
    """Before the clock starts: `renew` on annual Team from 1 January 2027 (its first term to
    1 January 2028), `coupon` paid monthly from 1 October 2027; the coupons LAST3 (25 % off,
    repeating 3 months, follow-up NEXT10: 10 % off, repeating 1 month) and ONCE25 (25 % off
    `once`)."""
    paid("renew", date(2027, 1, 1), interval="annual")
    paid("coupon", date(2027, 10, 1))
    then = coupon(code="NEXT10", percent_off="10", duration="repeating", duration_months=1)
    coupon(code="LAST3", percent_off="25", duration="repeating", duration_months=3, follow_up=then)
    coupon(code="ONCE25", percent_off="25", duration="once")


def test_d4_t3_t4_t6_k2_c5_w1_k1_a_year_end_with_a_trial_end_a_renewal_a_coupons_last_month(
    db, django_capture_on_commit_callbacks, support
):
    """From 1 December 2027 to 1 February 2028, the clock run every day and once at the end:

    - `renew` (annual from 1 January 2027, 10,700 MTUs in December 2027) receives 25 % off
      `once` on 31 December. December's close bills overage only (K2): 700 × 0.01 = 7.00,
      dated 1 January 2028; the term ends and renews that day: 1,440.00 dated 1 January 2028
      for 1 January 2028 – 1 January 2029. Both are the first invoices dated on or after the
      redemption (C5); the close comes first on a day (D1, and first in number), so the
      overage invoice takes the coupon: 25 % of 7.00 = 1.75, 5.25; the renewal 1,440.00
      (SPEC does not say which of two invoices of one day is "first": pinned, both runs
      alike).
    - `coupon` (LAST3 from 15 October: billing months October, November, December, C5):
      November's invoice (1 December) 120.00 − 30.00 = 90.00; December's (1 January 2028),
      12,000 MTUs: 120.00 + 20.00 = 140.00 − 25 % = 35.00 → 105.00, LAST3's last; it runs
      out on 1 January 2028 and NEXT10 is applied by the system that day (its month: January):
      January's (1 February), 10,000 MTUs: 120.00 − 12.00 = 108.00.
    - `trial` signs up straight into Team with a card on 21 December 2027: trial 21 December
      – 3 January, end date 4 January 2028 (T3), paid from then (T4). December: no paid day,
      no invoice (M1). January: 28 paid days (4–31) of 31: 120 × 28/31 = 108.387… → 108.39;
      15,000 MTUs but trial days in January, no overage (M3); dated 1 February 2028 for
      4 January – 1 February.
    - `cardless` the same without a card: reminded on 1 January 2028 (three days before
      4 January, T6), Free from 4 January (T4), no invoice.
    - `shut` paid monthly from 1 December 2027, 11,000 MTUs for December reported on
      20 December, closed on 31 December (W1): final invoice dated 31 December for 1–30
      December, 120 × 30/31 = 116.129… → 116.13 + 1,000 × 0.01 = 10.00 → 126.13 (K1);
      December's close issues nothing more for it."""
    _year_end_before()
    coupons.redeem_coupon(ws_("coupon"), "LAST3", by=support, as_of=date(2027, 10, 15))

    def actions(day):
        if day == date(2027, 12, 1):
            paid("shut", day)
        if day == date(2027, 12, 15):
            services.record_usage(ws_("renew"), month=date(2027, 12, 1), mtus=10_700)
        if day == date(2027, 12, 20):
            services.record_usage(ws_("shut"), month=date(2027, 12, 1), mtus=11_000)
        if day == date(2027, 12, 21):
            new("trial", day, plan="team", card=True)
            new("cardless", day, plan="team")
        if day == date(2027, 12, 31):
            services.record_usage(ws_("coupon"), month=date(2027, 12, 1), mtus=12_000)
            close(ws_("shut"), support, day)
            coupons.redeem_coupon(ws_("renew"), "ONCE25", by=support, as_of=day)
        if day == date(2028, 1, 31):
            services.record_usage(ws_("coupon"), month=date(2028, 1, 1), mtus=10_000)
            services.record_usage(ws_("trial"), month=date(2028, 1, 1), mtus=15_000)

    def read():
        return {
            slug: [b[:4] + b[5:6] + b[8:] for b in short(slug) if b[1] >= date(2027, 12, 1)]
            for slug in ("renew", "coupon", "trial", "cardless", "shut")
        } | {
            "redemptions": redemptions("coupon"),
            "trial_status": [
                status("trial", on, "plan", "trialing", "trial_end")
                for on in (date(2028, 1, 3), date(2028, 1, 4))
            ],
            "cardless_status": status("cardless", date(2028, 1, 4), "plan", "trialing"),
        }

    jan1, feb1 = date(2028, 1, 1), date(2028, 2, 1)
    outcomes = two_runs(django_capture_on_commit_callbacks, date(2027, 12, 1), feb1, actions, read)
    zero = D("0.00")
    check(
        outcomes,
        {
            "renew": [
                (M, jan1, date(2027, 12, 1), jan1, D("1.75"), D("5.25")),
                ("annual", jan1, jan1, date(2029, 1, 1), zero, D("1440.00")),
            ],
            "coupon": [
                (
                    M,
                    date(2027, 12, 1),
                    date(2027, 11, 1),
                    date(2027, 12, 1),
                    D("30.00"),
                    D("90.00"),
                ),
                (M, jan1, date(2027, 12, 1), jan1, D("35.00"), D("105.00")),
                (M, feb1, jan1, feb1, D("12.00"), D("108.00")),
            ],
            "trial": [(M, feb1, date(2028, 1, 4), feb1, zero, D("108.39"))],
            "cardless": [],
            "shut": [
                (
                    "final",
                    date(2027, 12, 31),
                    date(2027, 12, 1),
                    date(2027, 12, 31),
                    zero,
                    D("126.13"),
                )
            ],
            "redemptions": [
                ("LAST3", date(2027, 10, 15), "ended", jan1),
                ("NEXT10", jan1, "ended", feb1),
            ],
            "trial_status": [("team", True, date(2028, 1, 4)), ("team", False, None)],
            "cardless_status": ("free", False),
            "letters": [
                ("cardless@example.com", "Your Team trial for Cardless ends on 4 Jan 2028"),
                ("cardless@example.com", "Your Team trial for Cardless has ended"),
                ("shut@example.com", "Shut is closed"),
                ("trial@example.com", "Trial is now on Team"),
            ],
        },
    )


# --- CR2 × K4 × K2: the annual term's last overage invoice and the first monthly days ---------


def test_cr2_k4_k2_the_terms_last_overage_invoice_on_its_switch_to_monthly_is_not_credited(
    db, support
):
    """`ann` on annual Team from 1 March 2027 (1,440.00, term to 1 March 2028), a 500.00 grant
    from 15 March 2027 (valid to 15 March 2028, CR1). Asked for monthly on 1 June 2027 (K4: at
    the term's end, 1 March 2028). Overage only while the term runs (K2): December 2027,
    12,000 MTUs: 20.00 dated 1 January 2028; February 2028 (29 days, all of the term), 13,000
    MTUs: 30.00 dated 1 March 2028 — the day the subscription turns monthly, with the grant
    valid — still an annual term's overage invoice: never credited (CR2).

    Monthly from 1 March 2028; 10,500 MTUs for March; cancelled on 10 March (K1): final
    invoice for 1–9 March, 120 × 9/31 = 34.838… → 34.84 + 500 × 0.01 = 5.00 → 39.84, a
    monthly subscription's invoice (kind `final`), credited 39.84 (CR2): total 0.00. The
    grant: 500.00 − 39.84 = 460.16 lapses on 15 March 2028 (CR3). Nothing on 1 April (March
    was billed by the final invoice)."""
    paid("ann", date(2027, 3, 1), interval="annual")
    coupons.grant_credits(ws_("ann"), amount="500.00", as_of=date(2027, 3, 15), year=1, by=support)
    services.change_interval(ws_("ann"), interval="monthly", as_of=date(2027, 6, 1))
    services.record_usage(ws_("ann"), month=date(2027, 12, 1), mtus=12_000)
    services.record_usage(ws_("ann"), month=date(2028, 2, 1), mtus=13_000)
    services.run_billing(as_of=date(2028, 3, 9))
    assert status("ann", date(2028, 3, 1), "plan", "interval") == ("team", M)
    services.record_usage(ws_("ann"), month=date(2028, 3, 1), mtus=10_500)
    services.change_to_free(ws_("ann"), as_of=date(2028, 3, 10))
    services.run_billing(as_of=date(2028, 4, 1))
    zero = D("0.00")
    assert [b[:3] + b[4:] for b in short("ann")] == [
        (
            "annual",
            date(2027, 3, 1),
            date(2027, 3, 1),
            D("1440.00"),
            zero,
            zero,
            zero,
            D("1440.00"),
        ),
        (M, date(2028, 1, 1), date(2027, 12, 1), D("20.00"), zero, zero, zero, D("20.00")),
        (M, date(2028, 3, 1), date(2028, 2, 1), D("30.00"), zero, zero, zero, D("30.00")),
        ("final", date(2028, 3, 10), date(2028, 3, 1), D("39.84"), zero, D("39.84"), zero, zero),
    ]
    assert ledgers("ann") == [
        [
            ("grant", date(2027, 3, 15), D("500.00")),
            ("draw", date(2028, 3, 10), D("-39.84")),
            ("lapse", date(2028, 3, 15), D("-460.16")),
        ]
    ]


@pytest.mark.parametrize(
    ("moved_on", "final", "credited", "lapsed"),
    [
        # 120 × 13/31 = 50.322… → 50.32 + 20.00; the grant's last valid day: credited.
        (date(2028, 3, 14), D("70.32"), D("70.32"), D("-309.68")),
        # 120 × 14/31 = 54.193… → 54.19 + 20.00; the anniversary: the grant is over.
        (date(2028, 3, 15), D("74.19"), D("0.00"), D("-380.00")),
    ],
    ids=["on-the-grants-last-day", "on-its-anniversary"],
)
def test_cr2_cr1_k4_monthly_to_annual_on_a_grants_last_day_or_its_anniversary(
    db, support, moved_on, final, credited, lapsed
):
    """`cr` Free with a card from 1 March 2027, a 500.00 grant on 15 March 2027 (valid up to,
    not including, 15 March 2028, CR1); paid monthly Team from 1 February 2028. February's
    invoice (1 March 2028): 120.00, credited (380.00 left). 12,000 MTUs for March reported on
    5 March. Moved to annual (K4) on 14 March: final invoice for 1–13 March, 120 × 13/31 =
    50.322… → 50.32 + 2,000 × 0.01 = 20.00 → 70.32, credited in full (the grant's last valid
    day), then 1,440.00 dated 14 March, never credited (CR2); 380.00 − 70.32 = 309.68 lapses
    on 15 March. Moved on 15 March, the anniversary: final invoice for 1–14 March, 120 × 14/31
    = 54.193… → 54.19 + 20.00 = 74.19, not credited (no grant valid that day); 380.00 lapses.
    March's close (1 April 2028) issues nothing: its overage was billed by the final invoice
    (K1: only overage not already billed)."""
    new("cr", date(2027, 3, 1), card=True)
    coupons.grant_credits(ws_("cr"), amount="500.00", as_of=date(2027, 3, 15), year=1, by=support)
    ws = ws_("cr")
    for step in ("team", "free", "team"):
        getattr(services, f"change_to_{step}")(ws, as_of=date(2028, 2, 1))
    services.record_usage(ws, month=date(2028, 3, 1), mtus=12_000)
    services.change_interval(ws_("cr"), interval="annual", as_of=moved_on)
    services.run_billing(as_of=date(2028, 4, 1))
    zero = D("0.00")
    assert [(b[0], b[1], b[4], b[6], b[8]) for b in short("cr")] == [
        (M, date(2028, 3, 1), D("120.00"), D("120.00"), zero),
        ("final", moved_on, final, credited, final - credited),
        ("annual", moved_on, D("1440.00"), zero, D("1440.00")),
    ]
    assert ledgers("cr")[0][-1] == ("lapse", date(2028, 3, 15), lapsed)


# --- I6 × X4, X2, CR1, C5: what is dated after a set-aside invoice's issue date ----------------


def _set_aside_december(slug, **kwargs):
    """`slug` paid monthly from 1 December 2026 with a December figure from before input was
    bounded (10,000,000,000,000 MTUs): December's close, on 1 January 2027, sets it aside
    (I6)."""
    ws = paid(slug, date(2026, 12, 1), **kwargs)
    Usage.objects.create(workspace=ws, month=date(2026, 12, 1), mtus=10**13)
    return ws


def _fix_december(slug):
    """The figure corrected through the service (U1: it replaces the old one; December is not
    closed for a workspace whose invoice was set aside, D2)."""
    services.record_usage(ws_(slug), month=date(2026, 12, 1), mtus=12_000)


def test_i6_x4_x2_a_set_aside_invoice_issued_after_its_certificate_was_approved_is_taxed(
    db, finance
):
    """California: 7.25 %, and 8.00 % from 1 January 2027 (X2, set ahead). `bad` (CA) submits
    a CA certificate on 15 December 2026, valid from 1 December 2026; December's invoice is set
    aside on 1 January 2027 (I6). Finance approves the certificate on 2 January. The figure
    corrected to 12,000 MTUs, the run of 3 January issues December's invoice, dated 1 January
    2027 (M1): 120.00 + 20.00 = 140.00. X4: tax is waived only for a certificate approved on
    or before the issue date; this one was still waiting on 1 January: taxed at the rate in
    force on 1 January, 140.00 × 8 % = 11.20, total 151.20, the note saying so. January's
    invoice (1 February): 120.00, exempt."""
    services.set_tax_rate(
        "US", region="CA", rate="8.00", name="CA sales tax", valid_from=date(2027, 1, 1)
    )
    ws = _set_aside_december("bad", business_region="CA")
    cert = certificate(ws, "CA", on=date(2026, 12, 15), valid_from=date(2026, 12, 1))
    services.run_billing(as_of=date(2027, 1, 1))
    assert not Invoice.objects.filter(workspace=ws).exists()
    services.approve_exemption(cert, by=finance, as_of=date(2027, 1, 2))
    services.run_billing(as_of=date(2027, 1, 2))
    _fix_december("bad")
    services.run_billing(as_of=date(2027, 1, 3))
    services.run_billing(as_of=date(2027, 2, 1))
    assert taxes("bad") == [
        (
            date(2027, 1, 1),
            D("11.20"),
            D("151.20"),
            "certificate #N still in review on 1 Jan 2027",
        ),
        (date(2027, 2, 1), D("0.00"), D("120.00"), "exempt: certificate #N (nonprofit)"),
    ]
    entries = SetAsideInvoice.objects.filter(workspace=ws)
    assert list(entries.values_list("close__month", "first_seen_on", "resolved_on")) == [
        (date(2026, 12, 1), date(2027, 1, 1), date(2027, 1, 3))
    ]


def test_i6_cr1_c5_a_grant_and_a_once_coupon_dated_after_the_set_aside_invoices_date(db, support):
    """`bad`'s December invoice is set aside on 1 January 2027 (I6). On 2 January it receives
    a 50.00 grant (valid from 2 January, CR1) and 10 % off `once` (C5). The figure corrected
    to 12,000 MTUs, the run of 3 January issues December's invoice, dated 1 January: 120.00 +
    20.00 = 140.00, with neither (C5: `once` goes to the first invoice dated on or after its
    redemption; CR2: grants valid on the invoice date): 140.00. January's invoice (1 February):
    120.00 − 12.00 = 108.00, credited 50.00, 58.00."""
    ws = _set_aside_december("bad")
    promo = coupon(code="LATE10", percent_off="10", duration="once")
    services.run_billing(as_of=date(2027, 1, 1))
    coupons.grant_credits(ws, amount="50.00", as_of=date(2027, 1, 2), year=1, by=support)
    coupons.redeem_coupon(ws_("bad"), promo.code, by=support, as_of=date(2027, 1, 2))
    services.run_billing(as_of=date(2027, 1, 2))
    _fix_december("bad")
    services.run_billing(as_of=date(2027, 2, 1))
    zero = D("0.00")
    assert [(b[1], b[4], b[5], b[6], b[8]) for b in short("bad")] == [
        (date(2027, 1, 1), D("140.00"), zero, zero, D("140.00")),
        (date(2027, 2, 1), D("120.00"), D("12.00"), D("50.00"), D("58.00")),
    ]


# --- K3 × X3 × C4 × CR2: tax given back by a credit note, half up ------------------------------


def test_k3_x3_c4_cr2_i5_tax_given_back_rounds_half_up_to_the_cent(db, support, finance):
    """Washington at 33.333 % from 1 January 2027 (X2: three decimals). `wa` paid monthly from
    1 January 2027, 12,000 MTUs in January, 25 % off `once` and a 30.00 grant on 5 January.
    January's invoice (1 February): 120.00 + 20.00 = 140.00; discount 35.00 (C4); credits
    30.00 (CR2, after the discount); taxable 75.00; tax 75.00 × 33.333 % = 24.99975 → 25.00
    (X3); total 100.00.

    K3: a credit note of 10.02 (requested 2 February, approved 3 February) gives back its
    share of the tax: 10.02 × 25.00 / 100.00 = 2.505 → 2.51 (ROUND_HALF_UP; half-even would
    give 2.50); its document credits 10.02 − 2.51 = 7.51 before tax. The rest, 89.98
    (approved 4 February): 100.00 × 25.00 / 100.00 = 25.00 less 2.51 = 22.49. 2.51 + 22.49 =
    25.00, the invoice's tax; nothing left to refund (not the discount, not the credit)."""

    services.set_tax_rate(
        "US", region="WA", rate="33.333", name="WA test rate", valid_from=date(2027, 1, 1)
    )
    ws = paid("wa", date(2027, 1, 1), business_region="WA")
    services.record_usage(ws, month=date(2027, 1, 1), mtus=12_000)
    promo = coupon(code="QUARTER", percent_off="25", duration="once")
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2027, 1, 5))
    coupons.grant_credits(ws_("wa"), amount="30.00", as_of=date(2027, 1, 5), year=1, by=support)
    services.run_billing(as_of=date(2027, 2, 1))
    invoice = Invoice.objects.get(workspace__slug="wa")
    assert (invoice.subtotal, invoice.discount, invoice.credits, invoice.tax, invoice.total) == (
        D("140.00"),
        D("35.00"),
        D("30.00"),
        D("25.00"),
        D("100.00"),
    )

    def approved(amount, asked, decided):
        note = services.request_credit_note(
            invoice, by=support, amount=amount, reason=f"Refund {amount}", as_of=asked
        )
        return services.decide_credit_note(note, by=finance, approve=True, as_of=decided)

    first = approved("10.02", date(2027, 2, 2), date(2027, 2, 3))
    second = approved("89.98", date(2027, 2, 3), date(2027, 2, 4))
    assert [(n.amount, n.tax) for n in (first, second)] == [
        (D("10.02"), D("2.51")),
        (D("89.98"), D("22.49")),
    ]
    assert services.refundable_amount(invoice) == D("0.00")
    doc = credit_note_document(first)
    assert [line.amount for line in doc.lines] == ["$7.51"]
    assert doc.totals == [("Tax given back", "$2.51"), ("Total credited (USD)", "$10.02")]


# --- G1–G3 × C5 × T4: a campaign across the year end --------------------------------------------


def test_g2_g3_c5_t4_launched_on_31_december_a_trials_end_date_repeating_across_the_year(
    db, django_capture_on_commit_callbacks, support
):
    """YEAR15: 15 % off, repeating 2 months, monthly bills (C5). A campaign for monthly Team
    (G1) is launched on 31 December 2027 and both workspaces redeem that day (G3):

    - `old` paid monthly from 1 December 2027: December's invoice (1 January 2028) 120.00 −
      18.00 = 102.00; January, 12,345 MTUs: 120.00 + 23.45 = 143.45, 15 % = 21.5175 → 21.52,
      121.93 (dated 1 February).
    - `trial` signed up straight into Team with a card on 17 December 2027: trial 17–30
      December, end date 31 December (T3), paid from then (T4); on Team monthly on the launch
      day either way. December: one paid day, 120 × 1/31 = 3.870… → 3.87, 15 % = 0.5805 →
      0.58, 3.29 (no overage: trial days, M3); January: 120.00 − 18.00 = 102.00.

    Campaign page: notified 2, redeemed 2, discount given 18.00 + 21.52 + 0.58 + 18.00 =
    58.10; by month of issue: December (the redemptions, nothing given yet), January 18.58,
    February 39.52. One campaign email each (G2). A launch needs the clock up to date (the
    sixth file's campaign test): the clock runs day by day here."""

    paid("old", date(2027, 12, 1))
    coupon(
        code="YEAR15",
        percent_off="15",
        duration="repeating",
        duration_months=2,
        intervals=("monthly",),
    )
    campaign = create_campaign(
        "Year end", "YEAR15", "15 % off", "15 % off for two months.",
        {"plan": "team", "interval": M}, by=support,
    )  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2027, 12, 16))
        new("trial", date(2027, 12, 17), plan="team", card=True)
        services.run_billing(as_of=date(2027, 12, 30))
    eve = date(2027, 12, 31)
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=eve) == 2
    for slug in ("old", "trial"):
        coupons.redeem_coupon(ws_(slug), "YEAR15", by=support, as_of=eve)
    services.record_usage(ws_("old"), month=date(2028, 1, 1), mtus=12_345)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2028, 2, 1))
    jan1, feb1 = date(2028, 1, 1), date(2028, 2, 1)
    assert [(b[1], b[4], b[5], b[8]) for b in short("old")] == [
        (jan1, D("120.00"), D("18.00"), D("102.00")),
        (feb1, D("143.45"), D("21.52"), D("121.93")),
    ]
    assert [(b[1], b[2], b[4], b[5], b[8]) for b in short("trial")] == [
        (jan1, eve, D("3.87"), D("0.58"), D("3.29")),
        (feb1, jan1, D("120.00"), D("18.00"), D("102.00")),
    ]
    results = campaign_results(campaign)
    assert (results["notified"], results["redeemed"], results["discount"]) == (2, 2, D("58.10"))
    assert [(p["month"], p["redemptions"], p["discount"]) for p in results["series"]] == [
        (date(2027, 12, 1), 2, D("0.00")),
        (jan1, 0, D("18.58")),
        (feb1, 0, D("39.52")),
    ]
    assert dict(Redemption.objects.values_list("workspace__slug", "campaign_id")) == {
        "old": campaign.pk,
        "trial": campaign.pk,
    }
    assert sorted((m.to[0], m.subject) for m in mail.outbox) == [
        ("old@example.com", "15 % off"),
        ("trial@example.com", "15 % off"),
        ("trial@example.com", "Trial is now on Team"),
    ]


# --- FC1 across the year end ----------------------------------------------------------------------


def _forecast_and_compare(slug, on, months, mtus, *, then):
    """FC1: the forecast of `months` months on `on` writes nothing and sends nothing; `then()`
    makes the assumed usage real and runs the clock; the invoices issued from `on` on equal the
    forecast, field by field and line by line. Returns the forecast."""

    before = everything()
    forecast = forecast_invoices(ws_(slug), as_of=on, months=months, mtus=mtus)
    assert everything() == before
    then()
    issued = Invoice.objects.filter(workspace__slug=slug, issue_date__gte=on)
    assert forecast_figures(forecast) == forecast_figures(issued)
    return forecast


def test_fc1_c5_cr2_cr1_a_forecast_across_the_year_end_with_a_coupon_ending_and_a_grant_lapsing(
    db, support
):
    """`fc` Free with a card from 1 January 2027, a 500.00 grant on 15 January 2027 (valid to
    15 January 2028, CR1), paid monthly Team from 1 September 2027. TWO20 (20 % off,
    repeating 2 months, follow-up THIRTY: 30.00 off, repeating 2 months) redeemed on
    5 October: October and November at 20 %, then December and January at 30.00 off (C5).
    September 10,000 MTUs: 120.00 credited (380.00 left); October 11,500: 135.00 − 27.00 =
    108.00 credited (272.00 left).

    On 10 November 2027 (the clock through 9 November, 5,000 MTUs for November so far), a
    forecast of 3 months with last month's MTUs (October's 11,500; November at least its
    5,000):
    - November (1 December): 120.00 + 15.00 = 135.00 − 27.00 = 108.00, credited: 0.00
      (164.00 left);
    - December (1 January 2028): 135.00 − 30.00 = 105.00, credited: 0.00 (59.00 left);
    - January (1 February 2028): 135.00 − 30.00 = 105.00; the grant lapsed on 15 January
      (CR3: 59.00): 105.00 to pay.
    Nothing written (FC1: not THIRTY's redemption, not a draw). The usage then reported as
    assumed and the clock run to 1 February 2028 issue exactly these."""
    new("fc", date(2027, 1, 1), card=True)
    coupons.grant_credits(ws_("fc"), amount="500.00", as_of=date(2027, 1, 15), year=1, by=support)
    for step in ("team", "free", "team"):
        getattr(services, f"change_to_{step}")(ws_("fc"), as_of=date(2027, 9, 1))
    thirty = coupon(code="THIRTY", amount_off="30.00", duration="repeating", duration_months=2)
    coupon(
        code="TWO20", percent_off="20", duration="repeating", duration_months=2, follow_up=thirty
    )
    coupons.redeem_coupon(ws_("fc"), "TWO20", by=support, as_of=date(2027, 10, 5))
    for month, mtus in ((9, 10_000), (10, 11_500), (11, 5_000)):
        services.record_usage(ws_("fc"), month=date(2027, month, 1), mtus=mtus)
    services.run_billing(as_of=date(2027, 11, 9))

    def then():
        for month in (date(2027, 11, 1), date(2027, 12, 1), date(2028, 1, 1)):
            services.record_usage(ws_("fc"), month=month, mtus=11_500)
        services.run_billing(as_of=date(2028, 2, 1))

    forecast = _forecast_and_compare("fc", date(2027, 11, 10), 3, "last", then=then)
    zero = D("0.00")
    assert [(i.issue_date, i.subtotal, i.discount, i.credits, i.total) for i in forecast] == [
        (date(2027, 12, 1), D("135.00"), D("27.00"), D("108.00"), zero),
        (date(2028, 1, 1), D("135.00"), D("30.00"), D("105.00"), zero),
        (date(2028, 2, 1), D("135.00"), D("30.00"), zero, D("105.00")),
    ]
    assert ledgers("fc")[0][-1] == ("lapse", date(2028, 1, 15), D("-59.00"))


def test_fc1_t3_t4_k2_a_forecast_across_an_annual_trials_end_on_24_december(db):
    """`an` signs up straight into annual Team with a card on 10 December 2027: trial 10–23
    December, end date 24 December (T3); paid annual from then: 1,440.00 dated 24 December
    2027, the term to 24 December 2028 (T4, K2). On 20 December (the clock through
    19 December), a forecast of 3 months assuming 12,000 MTUs a month: the annual invoice;
    no overage for December (trial days, K2); January 2028: (12,000 − 10,000) × 0.01 = 20.00,
    dated 1 February; February: 20.00, dated 1 March. The clock then issues exactly these."""
    new("an", date(2027, 12, 10), plan="team", interval="annual", card=True)
    services.run_billing(as_of=date(2027, 12, 19))

    def then():
        for month in (date(2027, 12, 1), date(2028, 1, 1), date(2028, 2, 1)):
            services.record_usage(ws_("an"), month=month, mtus=12_000)
        services.run_billing(as_of=date(2028, 3, 1))

    forecast = _forecast_and_compare("an", date(2027, 12, 20), 3, 12_000, then=then)
    assert [(i.kind, i.issue_date, i.period_start, i.period_end, i.total) for i in forecast] == [
        ("annual", date(2027, 12, 24), date(2027, 12, 24), date(2028, 12, 24), D("1440.00")),
        (M, date(2028, 2, 1), date(2028, 1, 1), date(2028, 2, 1), D("20.00")),
        (M, date(2028, 3, 1), date(2028, 2, 1), date(2028, 3, 1), D("20.00")),
    ]


def test_fc1_w1_c5_cr2_x3_a_closure_proposed_on_31_december_with_a_coupon_credit_and_tax(
    db, django_capture_on_commit_callbacks, support
):
    """California, 7.25 %. `shut` paid monthly from 1 October 2027, 25 % off repeating
    3 months (October–December) and a 200.00 grant, both on 1 October. 11,000 MTUs in
    November and December. October (1 November): 120.00 − 30.00 = 90.00, credited (110.00
    left); November (1 December): 130.00 − 32.50 = 97.50, credited (12.50 left).

    On 31 December 2027 (the clock through 30 December), forecasts of 2 months (MTUs as last
    month's, November's 11,000):
    - today: December (1 January 2028): 130.00 − 32.50 = 97.50 − 12.50 = 85.00, tax 85.00 ×
      7.25 % = 6.1625 → 6.16, 91.16; January (1 February): 130.00, nothing off, tax 9.425 →
      9.43, 139.43;
    - under a closure proposed that day (W1): the final invoice dated 31 December for 1–30
      December, 120 × 30/31 = 116.129… → 116.13 + 10.00 = 126.13 (K1), 25 % = 31.5325 → 31.53
      (December is the coupon's third month), 94.60 − 12.50 = 82.10, tax 82.10 × 7.25 % =
      5.95225 → 5.95, 88.05; nothing after.
    The closure then made that day and the clock run to 1 February 2028 issue exactly it."""

    paid("shut", date(2027, 10, 1), business_region="CA")
    promo = coupon(code="Q4", percent_off="25", duration="repeating", duration_months=3)
    coupons.redeem_coupon(ws_("shut"), promo.code, by=support, as_of=date(2027, 10, 1))
    coupons.grant_credits(ws_("shut"), amount="200.00", as_of=date(2027, 10, 1), year=1, by=support)
    for month in (date(2027, 11, 1), date(2027, 12, 1)):
        services.record_usage(ws_("shut"), month=month, mtus=11_000)
    services.run_billing(as_of=date(2027, 12, 30))
    on = date(2027, 12, 31)

    def closure(ws, as_of):
        close(ws, support, as_of)

    before = everything()
    with django_capture_on_commit_callbacks(execute=True):
        today = forecast_invoices(ws_("shut"), as_of=on, months=2)
        proposed = forecast_invoices(ws_("shut"), as_of=on, months=2, changes=[closure])
    assert everything() == before
    assert [(i.issue_date, i.discount, i.credits, i.tax, i.total) for i in today] == [
        (date(2028, 1, 1), D("32.50"), D("12.50"), D("6.16"), D("91.16")),
        (date(2028, 2, 1), D("0.00"), D("0.00"), D("9.43"), D("139.43")),
    ]
    assert [
        (i.kind, i.issue_date, i.subtotal, i.discount, i.credits, i.tax, i.total) for i in proposed
    ] == [("final", on, D("126.13"), D("31.53"), D("12.50"), D("5.95"), D("88.05"))]
    close(ws_("shut"), support, on)
    services.run_billing(as_of=date(2028, 2, 1))
    issued = Invoice.objects.filter(workspace__slug="shut", issue_date__gte=on)
    assert forecast_figures(proposed) == forecast_figures(issued)


def test_fc1_average3_reads_october_to_december_in_a_january_forecast(db):
    """`avg` paid monthly from 1 October 2027: 12,000, 13,000 and 14,500 MTUs in October,
    November and December. On 15 January 2028 (the clock through 14 January), a forecast of
    1 month assuming the average of the last three months (FC1): (12,000 + 13,000 + 14,500) / 3
    = 13,166.67 → 13,167 (rounded half up), January at least its 2,000 reported so far:
    120.00 + 3,167 × 0.01 = 31.67 → 151.67, dated 1 February 2028."""

    paid("avg", date(2027, 10, 1))
    for month, mtus in ((10, 12_000), (11, 13_000), (12, 14_500)):
        services.record_usage(ws_("avg"), month=date(2027, month, 1), mtus=mtus)
    services.record_usage(ws_("avg"), month=date(2028, 1, 1), mtus=2_000)
    services.run_billing(as_of=date(2028, 1, 14))
    forecast = forecast_invoices(ws_("avg"), as_of=date(2028, 1, 15), months=1, mtus="average3")
    assert [(i.issue_date, i.subtotal, i.total) for i in forecast] == [
        (date(2028, 2, 1), D("151.67"), D("151.67"))
    ]
    assert sorted((line.kind, line.amount) for line in forecast[0].lines) == [
        ("base", D("120.00")),
        ("overage", D("31.67")),
    ]


# --- T4 × K1 × M3 × F1: a trial ending on 31 December, cancelled on 1 January -----------------


def test_t3_t4_k1_m3_f1_f2_a_trial_ending_31_december_cancelled_on_1_january(
    db, django_capture_on_commit_callbacks
):
    """`t` signs up straight into Team with a card on 17 December 2027: trial 17–30 December,
    end date 31 December (T3), paid from then (T4). 15,000 MTUs for December. Cancelled on
    1 January 2028 (K1): no paid day of January before it, so no final invoice. December's
    close (1 January, after the day's changes, D1) bills its one paid day: 120 × 1/31 = 3.870…
    → 3.87, no overage (trial days in December, M3).

    January: on Free every day (F1), 1,500 MTUs: a strike at January's close (1 February),
    `locked` that day (F2: one strike in six months). Emails: the trial turned paid, the
    lock. Both runs alike."""

    def actions(day):
        if day == date(2027, 12, 17):
            new("t", day, plan="team", card=True)
        if day == date(2027, 12, 31):
            services.record_usage(ws_("t"), month=date(2027, 12, 1), mtus=15_000)
        if day == date(2028, 1, 1):
            services.change_to_free(ws_("t"), as_of=day)
        if day == date(2028, 1, 31):
            services.record_usage(ws_("t"), month=date(2028, 1, 1), mtus=1_500)

    def read():
        return {
            "bills": [b[:4] + b[8:] for b in short("t")],
            "locks": locks("t"),
            "status": status("t", date(2027, 12, 31), "plan", "trialing"),
        }

    outcomes = two_runs(
        django_capture_on_commit_callbacks, date(2027, 12, 17), date(2028, 2, 1), actions, read
    )
    check(
        outcomes,
        {
            "bills": [(M, date(2028, 1, 1), date(2027, 12, 31), date(2028, 1, 1), D("3.87"))],
            "locks": [(date(2028, 2, 1), "unlocked", "locked", "free_limit")],
            "status": ("team", False),
            "letters": [("t@example.com", "T is locked"), ("t@example.com", "T is now on Team")],
        },
    )


# --- K2 × F1: an annual term cancelled to end on the 1st or the 2nd ------------------------------


@pytest.mark.parametrize(
    ("start", "expected_locks"),
    [
        (date(2027, 1, 1), [(date(2028, 2, 1), "unlocked", "locked", "free_limit")]),
        (date(2027, 1, 2), []),
    ],
    ids=["term-ends-on-1-january", "term-ends-on-2-january"],
)
def test_k2_f1_f2_a_cancelled_term_ending_on_the_1st_leaves_january_all_free(
    db, start, expected_locks
):
    """`ann` on annual Team from `start` (1,440.00), cancelled on 1 June 2027 (K2: the term
    runs to its end, then Free, not renewed). 1,500 MTUs for January 2028.

    - From 1 January 2027: the term ends on 1 January 2028, Free from that day: January 2028
      is Free on every day (F1, more than 1,000 MTUs): a strike at its close, `locked` on
      1 February (F2).
    - From 2 January 2027: 1 January 2028 is the term's last paid day: January had a paid
      Team day: no strike, no lock; its overage: none (1,500 ≤ 10,000).
    One annual invoice either way, no renewal."""
    ws = paid("ann", start, interval="annual")
    services.change_to_free(ws, as_of=date(2027, 6, 1))
    services.record_usage(ws, month=date(2028, 1, 1), mtus=1_500)
    services.run_billing(as_of=date(2028, 2, 1))

    assert [(b[0], b[1], b[8]) for b in short("ann")] == [("annual", start, D("1440.00"))]
    assert locks("ann") == expected_locks
    assert status("ann", date(2028, 1, 1), "plan")[0] == ("free" if start.day == 1 else "team")


# --- K3 × X3 × W1: a credit note approved in the new year on December's final invoice ---------


def test_k3_x3_w1_r3_the_tax_report_gives_back_in_january_what_was_charged_on_31_december(
    db, support, finance
):
    """California, 7.25 %. `shut` paid monthly from 1 December 2027, 11,000 MTUs for December,
    closed on 31 December (W1): final invoice for 1–30 December, 120 × 30/31 = 116.129… →
    116.13 + 10.00 = 126.13 (K1), tax 126.13 × 7.25 % = 9.144425 → 9.14 (X3), total 135.27.
    A credit note of 50.00 requested that day, approved on 2 January 2028 (K3: allowed on a
    closed workspace's invoice, README), gives back 50.00 × 9.14 / 135.27 = 3.378… → 3.38 of
    tax, 46.62 before tax.

    The tax report (R3) counts the invoice in December 2027 (taxable 126.13, tax 9.14) and
    what the credit note gave back in the month it was approved, January 2028: taxable given
    back 46.62, tax 3.38, due −3.38."""

    paid("shut", date(2027, 12, 1), business_region="CA")
    services.record_usage(ws_("shut"), month=date(2027, 12, 1), mtus=11_000)
    final = close(ws_("shut"), support, date(2027, 12, 31)).final_invoice
    assert (final.subtotal, final.tax, final.total) == (D("126.13"), D("9.14"), D("135.27"))
    note = services.request_credit_note(
        final, by=support, amount="50.00", reason="Goodwill", as_of=date(2027, 12, 31)
    )
    note = services.decide_credit_note(note, by=finance, approve=True, as_of=date(2028, 1, 2))
    assert note.tax == D("3.38")
    rows = reports.tax_report(credit_notes=CreditNote.objects.all())
    keys = ("month", "jurisdiction", "invoices", "taxable", "tax_total")
    keys += ("taxable_given_back", "tax_given_back", "net_taxable", "tax_due")
    zero = D("0.00")
    assert [tuple(row[k] for k in keys) for row in rows] == [
        (date(2027, 12, 1), "US-CA", 1, D("126.13"), D("9.14"), zero, zero, D("126.13"), D("9.14")),
        (date(2028, 1, 1), "US-CA", 0, zero, zero, D("46.62"), D("3.38"), D("-46.62"), D("-3.38")),
    ]


# --- I1 × M1: numbers and the export by issue month across the year end ------------------------


def test_i1_m1_w1_numbers_and_the_export_by_issue_month_across_the_year_end(db, support, tmp_path):
    """`a` paid monthly from 1 November 2027: invoices dated 1 December 2027 (INV-2027-000001),
    1 January 2028 (INV-2028-000001, the year's first, I1) and 1 February 2028
    (INV-2028-000003). `shut` paid monthly from 1 December 2027, closed on 31 December
    (the clock through 30 December): final invoice dated 31 December, 120 × 30/31 = 116.13,
    INV-2027-000002; `b` paid monthly from 1 January 2028, cancelled on 20 January: final
    invoice for 1–19 January, 120 × 19/31 = 73.548… → 73.55, INV-2028-000002 (numbers given
    when issued, gapless per year).

    `export_invoices --from 2027-12 --to 2028-01` (by issue month, both ends included):
    the three invoices dated December and the two dated January, not February's; `--from
    2028-01 --to 2028-01`: the two dated January."""

    paid("a", date(2027, 11, 1))
    paid("shut", date(2027, 12, 1))
    services.run_billing(as_of=date(2027, 12, 30))
    close(ws_("shut"), support, date(2027, 12, 31))
    services.run_billing(as_of=date(2027, 12, 31))
    paid("b", date(2028, 1, 1))
    services.run_billing(as_of=date(2028, 1, 19))
    services.change_to_free(ws_("b"), as_of=date(2028, 1, 20))
    services.run_billing(as_of=date(2028, 2, 1))
    assert list(
        Invoice.objects.order_by("issue_date", "number").values_list(
            "number", "workspace__slug", "issue_date", "total"
        )
    ) == [
        ("INV-2027-000001", "a", date(2027, 12, 1), D("120.00")),
        ("INV-2027-000002", "shut", date(2027, 12, 31), D("116.13")),
        ("INV-2028-000001", "a", date(2028, 1, 1), D("120.00")),
        ("INV-2028-000002", "b", date(2028, 1, 20), D("73.55")),
        ("INV-2028-000003", "a", date(2028, 2, 1), D("120.00")),
    ]

    def exported(first, last):
        out = tmp_path / f"{first}-{last}.csv"
        call_command("export_invoices", "--from", first, "--to", last, "-o", str(out))
        with out.open(newline="") as f:
            return sorted((r["number"], r["issue_date"], r["total"]) for r in csv.DictReader(f))

    assert exported("2027-12", "2028-01") == [
        ("INV-2027-000001", "2027-12-01", "120.00"),
        ("INV-2027-000002", "2027-12-31", "116.13"),
        ("INV-2028-000001", "2028-01-01", "120.00"),
        ("INV-2028-000002", "2028-01-20", "73.55"),
    ]
    assert exported("2028-01", "2028-01") == [
        ("INV-2028-000001", "2028-01-01", "120.00"),
        ("INV-2028-000002", "2028-01-20", "73.55"),
    ]


# --- FC1 × K4 × C5 × CR2: monthly → annual proposed on 31 December ------------------------------


def test_fc1_k4_c5_cr2_monthly_to_annual_proposed_on_31_december(
    db, django_capture_on_commit_callbacks, support
):
    """`mv` paid monthly from 1 November 2027 with a 200.00 grant that day; November 10,000
    MTUs: 120.00 credited (80.00 left). 10 % off `once` redeemed on 15 December; 12,000 MTUs
    for December. On 31 December (the clock through 30 December), forecasts of 2 months with
    last month's MTUs (November's 10,000):

    - today: December (1 January 2028): 120.00 + 20.00 = 140.00 − 14.00 = 126.00 − 80.00 =
      46.00; January (1 February): 120.00, nothing off.
    - under monthly → annual proposed that day (K4): the final invoice for 1–30 December,
      120 × 30/31 = 116.129… → 116.13 + 20.00 = 136.13 (K1: December's overage reported so
      far), 10 % = 13.613 → 13.61 (C5: the first invoice dated on or after 15 December),
      122.52, credited 80.00 (CR2): 42.52; then the annual invoice, 1,440.00, dated 31 December,
      no discount (used), no credit (CR2); December's close bills nothing more (its overage
      billed), January's no overage (10,000).
    Nothing written. The change then made that day and the clock run to 1 February 2028 issue
    exactly the proposed invoices."""

    paid("mv", date(2027, 11, 1))
    coupons.grant_credits(ws_("mv"), amount="200.00", as_of=date(2027, 11, 1), year=1, by=support)
    services.record_usage(ws_("mv"), month=date(2027, 11, 1), mtus=10_000)
    promo = coupon(code="DEC10", percent_off="10", duration="once")
    coupons.redeem_coupon(ws_("mv"), promo.code, by=support, as_of=date(2027, 12, 15))
    services.record_usage(ws_("mv"), month=date(2027, 12, 1), mtus=12_000)
    services.run_billing(as_of=date(2027, 12, 30))
    on = date(2027, 12, 31)

    def annual(ws, as_of):
        services.change_interval(ws, interval="annual", as_of=as_of)

    before = everything()
    with django_capture_on_commit_callbacks(execute=True):
        today = forecast_invoices(ws_("mv"), as_of=on, months=2)
        proposed = forecast_invoices(ws_("mv"), as_of=on, months=2, changes=[annual])
    assert everything() == before
    zero = D("0.00")
    assert [(i.kind, i.issue_date, i.subtotal, i.discount, i.credits, i.total) for i in today] == [
        (M, date(2028, 1, 1), D("140.00"), D("14.00"), D("80.00"), D("46.00")),
        (M, date(2028, 2, 1), D("120.00"), zero, zero, D("120.00")),
    ]
    assert [
        (i.kind, i.issue_date, i.subtotal, i.discount, i.credits, i.total) for i in proposed
    ] == [
        ("final", on, D("136.13"), D("13.61"), D("80.00"), D("42.52")),
        ("annual", on, D("1440.00"), zero, zero, D("1440.00")),
    ]
    annual(ws_("mv"), on)
    services.record_usage(ws_("mv"), month=date(2028, 1, 1), mtus=10_000)
    services.run_billing(as_of=date(2028, 2, 1))
    issued = Invoice.objects.filter(workspace__slug="mv", issue_date__gte=on)
    assert forecast_figures(proposed) == forecast_figures(issued)


# --- F1–F6 × U1 × D4: over the Free limit on 31 December, an unlock by hand that day -----------


def test_f1_f2_f3_f5_u1_d4_over_the_limit_on_31_december_after_an_unlock_by_hand_that_day(
    db, django_capture_on_commit_callbacks, support
):
    """`f` and `g` on Free from 1 November 2027, 2,000 MTUs each in November: a strike each
    at November's close, `locked` on 1 December (F1, F2).

    - `f`: 900 MTUs for December reported on 15 December, replaced on 31 December by 1,001
      (U1: the running total; more than 1,000); unlocked by support on 31 December (F5).
      December's close (1 January 2028) strikes: two strikes in July … December (F2, strikes
      stay counted after an unlock): `locked_data_stopped`. January, 500 MTUs: no strike; F3
      leaves a data stop as it is.
    - `g`: 1,000 MTUs for December (not more than 1,000): no strike; F3 unlocks it on
      1 January 2028.
    Each lock and unlock emails the workspace (F6). The clock runs day by day: entered ahead
    of a clock that never ran, the unlock finds nothing locked yet (the seventh file's xfail
    on F5, the same bug)."""

    def actions(day):
        if day == date(2027, 11, 1):
            new("f", day)
            new("g", day)
            for slug in "fg":
                services.record_usage(ws_(slug), month=day, mtus=2_000)
        if day == date(2027, 12, 15):
            services.record_usage(ws_("f"), month=date(2027, 12, 1), mtus=900)
            services.record_usage(ws_("g"), month=date(2027, 12, 1), mtus=1_000)
        if day == date(2027, 12, 31):
            services.record_usage(ws_("f"), month=date(2027, 12, 1), mtus=1_001)
            services.unlock_workspace(ws_("f"), by=support, reason="Asked nicely", as_of=day)
        if day == date(2028, 1, 31):
            services.record_usage(ws_("f"), month=date(2028, 1, 1), mtus=500)

    def read():
        return {
            "f": locks("f"),
            "g": locks("g"),
            "f_status": status("f", date(2028, 1, 1), "lock", "data_flow"),
        }

    run_days(
        date(2027, 11, 1),
        date(2028, 2, 1),
        daily=True,
        capture=django_capture_on_commit_callbacks,
        actions=actions,
    )
    dec1, dec31, jan1 = date(2027, 12, 1), date(2027, 12, 31), date(2028, 1, 1)
    assert {**read(), "letters": sorted((m.to[0], m.subject) for m in mail.outbox)} == (
        {
            "f": [
                (dec1, "unlocked", "locked", "free_limit"),
                (dec31, "locked", "unlocked", "manual"),
                (jan1, "unlocked", "locked_data_stopped", "free_limit"),
            ],
            "g": [
                (dec1, "unlocked", "locked", "free_limit"),
                (jan1, "locked", "unlocked", "under_limit"),
            ],
            "f_status": ("locked_data_stopped", False),
            "letters": [
                ("f@example.com", "F is locked"),
                ("f@example.com", "F is locked and data has stopped"),
                ("f@example.com", "F is unlocked"),
                ("g@example.com", "G is locked"),
                ("g@example.com", "G is unlocked"),
            ],
        }
    )


# --- FC1 × W1 × K2: a closure proposed for an annual term on 31 December -----------------------


def test_fc1_w1_k2_a_closure_proposed_for_an_annual_term_forecasts_nothing(
    db, django_capture_on_commit_callbacks, support
):
    """`ann` on annual Team from 1 March 2027 (term to 1 March 2028); 12,000 MTUs in November,
    15,000 reported for December by 30 December; the clock through 30 December. On
    31 December, forecasts of 2 months with last month's MTUs (November's 12,000; December at
    least its 15,000):
    - today: overage only (K2): December 5,000 × 0.01 = 50.00 (1 January 2028), January
      2,000 × 0.01 = 20.00 (1 February);
    - under a closure proposed that day (W1): nothing — the term is not renewed, not refunded
      and bills no further overage, not even December's (README "Closing a workspace").
    The closure then made and the clock run to 1 February 2028 issue nothing either."""

    paid("ann", date(2027, 3, 1), interval="annual")
    services.record_usage(ws_("ann"), month=date(2027, 11, 1), mtus=12_000)
    services.record_usage(ws_("ann"), month=date(2027, 12, 1), mtus=15_000)
    services.run_billing(as_of=date(2027, 12, 30))
    on = date(2027, 12, 31)

    def closure(ws, as_of):
        close(ws, support, as_of)

    before = everything()
    with django_capture_on_commit_callbacks(execute=True):
        today = forecast_invoices(ws_("ann"), as_of=on, months=2)
        proposed = forecast_invoices(ws_("ann"), as_of=on, months=2, changes=[closure])
    assert everything() == before
    assert [(i.kind, i.issue_date, i.total) for i in today] == [
        (M, date(2028, 1, 1), D("50.00")),
        (M, date(2028, 2, 1), D("20.00")),
    ]
    assert proposed == []
    close(ws_("ann"), support, on)
    services.run_billing(as_of=date(2028, 2, 1))
    assert not Invoice.objects.filter(workspace__slug="ann", issue_date__gte=on).exists()


# --- FC1 × P2 × K2: new terms from 1 January, a renewal that day, forecast and clock ----------


def test_fc1_p2_k2_m2_new_terms_from_1_january_a_renewal_that_day_forecast_then_issued(db, finance):
    """Team's terms change from 1 January 2028 (P2, set by finance on 1 November 2027):
    150.00 a month, 1,800.00 a year, 0.02 per MTU above 10,000. A month is billed at the terms
    in force on its first day, an annual term at those of its first day (README).

    - `mon` paid monthly from 1 October 2027, 11,000 MTUs in October (November 3,000 so far).
    - `ann` on annual Team from 1 January 2027 (1,440.00), 11,000 MTUs in October.

    On 10 November (the clock through 9 November), forecasts of 3 months with last month's
    MTUs (11,000):
    - `mon`: November (1 December) 120.00 + 1,000 × 0.01 = 130.00; December (1 January 2028)
      130.00 (December's terms are those of 1 December); January (1 February) 150.00 +
      1,000 × 0.02 = 170.00.
    - `ann`: overage only (K2): November 10.00 (1 December), December 10.00 (1 January 2028);
      the renewal on 1 January 2028 at the terms of its first day: 1,800.00 (after December's
      close the same day, D1); January 1,000 × 0.02 = 20.00 (1 February).
    The usage then reported as assumed and the clock run to 1 February 2028 issue exactly
    these, field by field and line by line."""

    paid("ann", date(2027, 1, 1), interval="annual")
    paid("mon", date(2027, 10, 1))
    for slug in ("ann", "mon"):
        services.record_usage(ws_(slug), month=date(2027, 10, 1), mtus=11_000)
    services.record_usage(ws_("mon"), month=date(2027, 11, 1), mtus=3_000)
    services.run_billing(as_of=date(2027, 10, 31))
    services.update_plan(
        Plan.objects.get(code="team"),
        by=finance,
        reason="2028 price list",
        effective_on=date(2028, 1, 1),
        monthly_price="150.00",
        annual_price="1800.00",
        overage_rate="0.0200",
    )
    services.run_billing(as_of=date(2027, 11, 9))
    on = date(2027, 11, 10)

    before = everything()
    forecasts = {slug: forecast_invoices(ws_(slug), as_of=on, months=3) for slug in ("mon", "ann")}
    assert everything() == before
    dec1, jan1, feb1 = date(2027, 12, 1), date(2028, 1, 1), date(2028, 2, 1)
    assert [(i.kind, i.issue_date, i.total) for i in forecasts["mon"]] == [
        (M, dec1, D("130.00")),
        (M, jan1, D("130.00")),
        (M, feb1, D("170.00")),
    ]
    assert [(i.kind, i.issue_date, i.period_end, i.total) for i in forecasts["ann"]] == [
        (M, dec1, dec1, D("10.00")),
        (M, jan1, jan1, D("10.00")),
        ("annual", jan1, date(2029, 1, 1), D("1800.00")),
        (M, feb1, feb1, D("20.00")),
    ]
    for slug in ("ann", "mon"):
        for month in (date(2027, 11, 1), dec1, jan1):
            services.record_usage(ws_(slug), month=month, mtus=11_000)
    services.run_billing(as_of=feb1)
    for slug, forecast in forecasts.items():
        issued = Invoice.objects.filter(workspace__slug=slug, issue_date__gte=on)
        assert forecast_figures(forecast) == forecast_figures(issued), slug


# --- P1 × P2 × F1 × T3 × D4: the Free allowance and the trial's length change on 1 January -----


def test_p1_p2_f1_f3_t3_d4_new_free_allowance_and_trial_length_from_1_january(
    db, django_capture_on_commit_callbacks, finance
):
    """From 1 January 2028 (P2, dated terms): Free includes 2,000 MTUs a month (was 1,000) and
    Team's trial lasts 30 days (was 14). A month's strikes count against that month's Free
    allowance; a trial lasts as the terms of the day it starts say (README).

    - `free` on Free from 1 December 2027, 1,500 MTUs in December and in January. December's
      close (1 January 2028, the new terms' first day) counts December against December's
      1,000: a strike, `locked` (F1, F2). January's against 2,000: no strike, unlocked on
      1 February (F3).
    - `late` signs up straight into Team with a card on 31 December 2027: 14 days, end date
      14 January 2028 (T3); January: 18 paid days (14–31) of 31, 120 × 18/31 = 69.677… →
      69.68, dated 1 February.
    - `early` the same on 1 January 2028: 30 days, end date 31 January; one paid day, 120 ×
      1/31 = 3.870… → 3.87.
    Both runs alike."""

    for code, terms in (("free", {"included_mtus": 2_000}), ("team", {"trial_days": 30})):
        services.update_plan(
            Plan.objects.get(code=code),
            by=finance,
            reason="2028 terms",
            effective_on=date(2028, 1, 1),
            **terms,
        )

    def actions(day):
        if day == date(2027, 12, 1):
            new("free", day)
        if day == date(2027, 12, 31):
            new("late", day, plan="team", card=True)
            services.record_usage(ws_("free"), month=date(2027, 12, 1), mtus=1_500)
        if day == date(2028, 1, 1):
            new("early", day, plan="team", card=True)
        if day == date(2028, 1, 31):
            services.record_usage(ws_("free"), month=date(2028, 1, 1), mtus=1_500)

    def read():
        return {
            "locks": locks("free"),
            "late": [(b[1], b[2], b[8]) for b in short("late")],
            "early": [(b[1], b[2], b[8]) for b in short("early")],
            "trial_ends": [
                status(slug, on, "trial_end")[0]
                for slug, on in (("late", date(2028, 1, 13)), ("early", date(2028, 1, 30)))
            ],
        }

    feb1 = date(2028, 2, 1)
    outcomes = two_runs(django_capture_on_commit_callbacks, date(2027, 12, 1), feb1, actions, read)
    check(
        outcomes,
        {
            "locks": [
                (date(2028, 1, 1), "unlocked", "locked", "free_limit"),
                (feb1, "locked", "unlocked", "under_limit"),
            ],
            "late": [(feb1, date(2028, 1, 14), D("69.68"))],
            "early": [(feb1, date(2028, 1, 31), D("3.87"))],
            "trial_ends": [date(2028, 1, 14), date(2028, 1, 31)],
        },
    )
