"""A third set of edge days and edge figures, each worked by hand from SPEC (the figures are in
each test's docstring and comments; nothing is computed by the code under test):

- CR1–CR3: a grant approved on the 1st, whose first day and anniversary are invoice dates (by
  day and in one run, D4); a final invoice on a grant's last valid day and on its anniversary;
  earliest-expiring first with a later grant that ends sooner; credits after a discount and
  before tax on a prorated month; a monthly → annual move on the 1st and the first monthly
  invoice after an annual term (S7); year two confirmed on an invoice date or the day after;
  renewal reviews opening on 28 February and on 1 March.
- W1: a closure on the 1st (a forever discount ends by the invoice date; a repeating coupon
  that ran out that day keeps its last month) and on the last day of a month
  (discount and credit both end, then reopened and back on Team), an annual trial closed on its
  end date (the 1st) or the day after, annual Team closed the day before, on and the day after
  a month close, closed and reopened the same day.
- X4: a certificate approved on a final invoice's date or the day after, a leap-day annual
  invoice on a certificate's first or last day, one that ended the day before, one only
  submitted; a certificate for another state until the business moves there on the 1st.
- I2: an amount off larger than a prorated month leaves the credit untouched; I6: an invoice
  set aside by December's close, issued in January after the others, numbered after them.
- G2, G3: a campaign launched on 31 January and again on 1 February, redemptions attributed.
- FC1: a forecast from a month's last day up to a grant's anniversary, and one across a leap-year
  annual renewal, each equal to what the clock then issues, and writing nothing.
- D2: changes dated the last processed day (29 February) refused, the day after accepted.
"""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail

from billing import services
from billing.clock import last_processed_day
from billing.errors import BillingError, DayAlreadyProcessed, WorkspaceClosed
from billing.forecast import forecast_invoices
from billing.models import (
    Invoice,
    InvoiceSequence,
    SetAsideInvoice,
    Usage,
)
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.campaigns import campaign_audience, campaign_results, create_campaign, launch_campaign
from coupons.models import CreditGrant, Redemption
from startups import services as startups
from startups.models import RenewalReview
from tests.billing.factories import certificate, paid_annual, paid_monthly, workspace
from tests.coupons.factories import coupon
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.scenarios.figures import bills, close, everything, forecast_figures, ledger
from tests.startups.factories import application, confirm_year_two

LEAP_DAY = date(2028, 2, 29)


# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


@pytest.fixture(autouse=True)
def _private_media(settings, tmp_path):
    """Certificate documents (X5) go to a private folder of this test's own."""
    settings.MEDIA_ROOT = settings.PRIVATE_MEDIA_ROOT = tmp_path / "private-media"


# --- CR1–CR3: startup credits -------------------------------------------------------------------


def _approved_on_the_1st(daily, capture, reviewer):
    """Paid monthly from 1 January 2026, approved on 1 February 2026; the clock caught up to
    24 January 2027, then run from 25 January to 3 February 2027 each day or once (D4)."""
    with capture(execute=True):
        ws = paid_monthly(date(2026, 1, 1), slug="member", billing_email="m@example.com")
        app = application(workspace=ws, as_of=date(2026, 1, 20))
        startups.approve_application(app, by=reviewer, as_of=date(2026, 2, 1))
        services.run_billing(as_of=date(2027, 1, 24))
    run_days(
        date(2027, 1, 25), date(2027, 2, 3), daily=daily, capture=capture, actions=lambda d: None
    )
    grant = CreditGrant.objects.get(workspace=ws)
    return {
        "grant": (grant.valid_from, grant.valid_until, grant.remaining, grant.lapsed_on),
        "credited": [(b[1], b[6], b[8]) for b in bills(ws)],
        "lapse": list(grant.entries.filter(kind="lapse").values_list("on", "amount")),
        "days": [
            (day, s["startup_member"], s["credit_balance"])
            for day in (date(2027, 1, 31), date(2027, 2, 1))
            for s in [workspace_status(ws, as_of=day)]
        ],
        "reviews": list(
            RenewalReview.objects.filter(application=app).values_list("year", "due_on")
        ),
    }


def test_cr1_cr2_d4_a_grant_from_the_1st_credits_that_days_invoice_not_its_anniversarys(
    db, django_capture_on_commit_callbacks, reviewer
):
    """CR1: approved on 1 February 2026, the grant is valid from 1 February 2026 up to, not
    including, 1 February 2027. D1: the approval dated 1 February comes before that day's close,
    so January's invoice, dated 1 February 2026, is credited (CR2: valid on the invoice date).
    Credited: the 12 invoices of 1 February 2026 … 1 January 2027, 12 × 120.00 = 1,440.00;
    25,000.00 − 1,440.00 = 23,560.00 left on 31 January 2027, which lapses on 1 February 2027
    (CR3). January 2027's invoice, dated the anniversary, is not credited: 120.00. S4: a member
    on 31 January 2027, not on 1 February. CR3: the review opened on 2 January 2027 (30 days
    before), due 1 February 2027. The same by day and in one run (D4)."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _approved_on_the_1st(
            is_daily, django_capture_on_commit_callbacks, reviewer
        )
    )
    assert daily == catch_up
    assert daily["grant"] == (date(2026, 2, 1), date(2027, 2, 1), D("0.00"), date(2027, 2, 1))
    credited = daily["credited"]
    assert credited[0] == (date(2026, 2, 1), D("120.00"), D("0.00"))
    assert credited[11] == (date(2027, 1, 1), D("120.00"), D("0.00"))
    assert credited[12:] == [(date(2027, 2, 1), D("0.00"), D("120.00"))]
    assert sum(c for _, c, _ in credited) == D("1440.00")
    assert daily["lapse"] == [(date(2027, 2, 1), D("-23560.00"))]
    assert daily["days"] == [
        (date(2027, 1, 31), True, D("23560.00")),
        (date(2027, 2, 1), False, D("0.00")),
    ]
    assert daily["reviews"] == [(2, date(2027, 2, 1))]


@pytest.mark.parametrize(
    "cancelled_on, final_subtotal, final_credits, drawn, lapsed",
    [
        # K1: 1–8 March 2027, 120 × 8/31 = 30.967… → 30.97, all of it credited.
        (date(2027, 3, 9), D("30.97"), D("30.97"), D("1470.97"), D("23529.03")),
        # K1: 1–9 March 2027, 120 × 9/31 = 34.838… → 34.84, dated the anniversary: no credit.
        (date(2027, 3, 10), D("34.84"), D("0.00"), D("1440.00"), D("23560.00")),
    ],
    ids=["last-valid-day", "anniversary"],
)
def test_cr1_cr2_k1_a_final_invoice_on_the_grants_last_day_or_on_its_anniversary(
    db, reviewer, cancelled_on, final_subtotal, final_credits, drawn, lapsed
):
    """Paid monthly from 1 January 2026, approved 10 March 2026: valid up to, not including,
    10 March 2027 (CR1). The invoices of 1 April 2026 … 1 March 2027 (12 × 120.00 = 1,440.00)
    are credited. Cancelled on 9 March 2027, the grant's last valid day, the final invoice is
    credited too (CR2: kinds monthly and final); cancelled on 10 March 2027, the anniversary, it
    is not. What is left lapses on 10 March 2027: 25,000.00 − 1,470.97 = 23,529.03, or
    25,000.00 − 1,440.00 = 23,560.00."""
    ws = paid_monthly(date(2026, 1, 1))
    startups.approve_application(application(workspace=ws), by=reviewer, as_of=date(2026, 3, 10))
    services.run_billing(as_of=date(2027, 3, 8))
    services.change_to_free(ws, as_of=cancelled_on)
    services.run_billing(as_of=date(2027, 3, 11))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.issue_date, final.period_start, final.period_end) == (
        cancelled_on,
        date(2027, 3, 1),
        cancelled_on,
    )
    assert (final.subtotal, final.credits, final.total) == (
        final_subtotal,
        final_credits,
        final_subtotal - final_credits,
    )
    monthly = Invoice.objects.filter(workspace=ws, kind="monthly").order_by("issue_date")
    # January and February 2026 (1 February, 1 March) were issued before the approval.
    assert [i.credits for i in monthly] == [D("0.00")] * 2 + [D("120.00")] * 12
    grant = CreditGrant.objects.get(workspace=ws)
    draws = grant.entries.filter(kind="draw")
    assert -sum(e.amount for e in draws) == drawn
    assert ledger(grant)[-1] == ("lapse", date(2027, 3, 10), -lapsed)
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2027, 3, 10))


def test_cr2_cr1_the_grant_ending_first_is_drawn_first_though_granted_later(db, support):
    """Paid monthly from 1 January 2026, 12,000 MTUs in January. Year one: 1,000.00 from
    1 January 2026 (to 1 January 2027). Year two, by hand: 300.00 from 15 January 2026, valid
    up to 1 March 2026 — it ends first. CR2, earliest-expiring first: January's invoice (1
    February), 120.00 + 20.00 = 140.00, is drawn from year two (300.00 → 160.00). February's
    invoice is dated 1 March, year two's end (not included, CR1): 120.00 from year one
    (1,000.00 → 880.00); year two's 160.00 lapses on 1 March (CR3). Balances: 1,160.00 on
    28 February, 880.00 on 1 March."""
    ws = paid_monthly(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    year_one = coupons.grant_credits(
        ws, amount="1000.00", as_of=date(2026, 1, 1), year=1, by=support
    )
    year_two = coupons.grant_credits(
        ws,
        amount="300.00",
        as_of=date(2026, 1, 15),
        year=2,
        by=support,
        valid_until=date(2026, 3, 1),
    )
    services.run_billing(as_of=date(2026, 3, 1))
    assert [(b[1], b[4], b[6], b[8]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("140.00"), D("140.00"), D("0.00")),
        (date(2026, 3, 1), D("120.00"), D("120.00"), D("0.00")),
    ]
    assert ledger(year_two) == [
        ("grant", date(2026, 1, 15), D("300.00")),
        ("draw", date(2026, 2, 1), D("-140.00")),
        ("lapse", date(2026, 3, 1), D("-160.00")),
    ]
    assert ledger(year_one) == [
        ("grant", date(2026, 1, 1), D("1000.00")),
        ("draw", date(2026, 3, 1), D("-120.00")),
    ]
    assert workspace_status(ws, as_of=date(2026, 2, 28))["credit_balance"] == D("1160.00")
    assert workspace_status(ws, as_of=date(2026, 3, 1))["credit_balance"] == D("880.00")


def test_cr2_c4_x3_credits_after_a_discount_and_before_tax_on_a_prorated_month(db, support):
    """California, 7.25 %. Paid monthly from 9 January 2026: 23 paid days of 31, 120 × 23/31
    = 89.032… → 89.03 (M2). 20 % off forever (C4): 17.806 → 17.81, leaving 71.22. A 50.00
    grant dated 31 January (the month's last day), valid on 1 February: CR2 takes 50.00 after
    the discount; X3: tax on 21.22, 1.53845 → 1.54; total 22.76. February: 120.00 − 24.00 =
    96.00, no credit left, tax 6.96, total 102.96."""
    ws = paid_monthly(date(2026, 1, 9), business_region="CA")
    coupons.redeem_coupon(
        ws, coupon(percent_off="20", duration="forever").code, by=support, as_of=date(2026, 1, 9)
    )
    coupons.grant_credits(ws, amount="50.00", as_of=date(2026, 1, 31), year=1, by=support)
    services.run_billing(as_of=date(2026, 3, 1))
    assert [b[1:] for b in bills(ws)] == [
        (
            date(2026, 2, 1),
            date(2026, 1, 9),
            date(2026, 2, 1),
            D("89.03"),
            D("17.81"),
            D("50.00"),
            D("1.54"),
            D("22.76"),
        ),
        (
            date(2026, 3, 1),
            date(2026, 2, 1),
            date(2026, 3, 1),
            D("120.00"),
            D("24.00"),
            D("0.00"),
            D("6.96"),
            D("102.96"),
        ),
    ]
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    assert [(line.kind, line.amount) for line in january.lines.order_by("position")] == [
        ("base", D("89.03")),
        ("discount", D("-17.81")),
        ("credit", D("-50.00")),
        ("tax", D("1.54")),
    ]


def test_cr2_k4_monthly_to_annual_on_the_1st_credits_only_the_monthly_invoice(db, reviewer):
    """A member from 10 January 2026 (25,000.00), paid monthly from 1 January, 12,000 MTUs in
    January; moved to annual on 1 February (K4: no paid monthly day in February before it, so no
    final invoice). Three invoices: January's, dated 1 February, 120.00 + 20.00 = 140.00, a
    monthly subscription's: credited 140.00, total 0.00 (CR2); the annual invoice dated the same
    day, 1,440.00, and February's overage-only invoice of the term (11,000 MTUs: 10.00, dated
    1 March) are never credited. One draw of 140.00: 24,860.00 left."""
    ws = paid_monthly(date(2026, 1, 1))
    startups.approve_application(
        application(workspace=ws, as_of=date(2026, 1, 10)), by=reviewer, as_of=date(2026, 1, 10)
    )
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.change_interval(ws, interval="annual", as_of=date(2026, 2, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=11_000)
    services.run_billing(as_of=date(2026, 3, 1))
    assert sorted((b[0], b[1], b[4], b[6], b[8]) for b in bills(ws)) == [
        ("annual", date(2026, 2, 1), D("1440.00"), D("0.00"), D("1440.00")),
        ("monthly", date(2026, 2, 1), D("140.00"), D("140.00"), D("0.00")),
        ("monthly", date(2026, 3, 1), D("10.00"), D("0.00"), D("10.00")),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert ledger(grant)[1:] == [("draw", date(2026, 2, 1), D("-140.00"))]
    assert grant.remaining == D("24860.00")


def test_cr2_s7_k4_the_first_monthly_invoice_after_an_annual_term_is_credited(db, reviewer):
    """Annual Team from 15 January 2026 (term to 15 January 2027). S7: approving it needs the
    reviewer's confirmation; approved on 1 March 2026, the grant runs to 1 March 2027 (CR1).
    February's overage invoice, dated 1 March 2026 (12,000 MTUs: 20.00), the grant's first day,
    is an annual term's: not credited (CR2). Asked for monthly on 1 June 2026 (K4: at the term's
    end, 15 January 2027). January 2027: 17 monthly days (15–31), 120 × 17/31 = 65.806… →
    65.81, dated 1 February 2027: credited, total 0.00. February 2027's invoice is dated
    1 March 2027, the anniversary: 120.00, not credited. 25,000.00 − 65.81 = 24,934.19
    lapses on 1 March 2027."""
    ws = paid_annual(date(2026, 1, 15))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=12_000)
    app = application(workspace=ws, as_of=date(2026, 2, 20))
    with pytest.raises(startups.ApplicationError, match="monthly Team invoices only"):
        startups.approve_application(app, by=reviewer, as_of=date(2026, 3, 1))
    startups.approve_application(
        app, by=reviewer, as_of=date(2026, 3, 1), credits_scope_confirmed=True
    )
    services.change_interval(ws, interval="monthly", as_of=date(2026, 6, 1))
    services.run_billing(as_of=date(2027, 3, 1))
    got = [(b[0], b[1], b[4], b[6], b[8]) for b in bills(ws)]
    assert got == [
        ("annual", date(2026, 1, 15), D("1440.00"), D("0.00"), D("1440.00")),
        ("monthly", date(2026, 3, 1), D("20.00"), D("0.00"), D("20.00")),
        ("monthly", date(2027, 2, 1), D("65.81"), D("65.81"), D("0.00")),
        ("monthly", date(2027, 3, 1), D("120.00"), D("0.00"), D("120.00")),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert ledger(grant)[1:] == [
        ("draw", date(2027, 2, 1), D("-65.81")),
        ("lapse", date(2027, 3, 1), D("-24934.19")),
    ]


@pytest.mark.parametrize(
    "confirmed_on, february_first_credits, left",
    [
        (date(2027, 2, 1), D("120.00"), D("24760.00")),
        (date(2027, 2, 2), D("0.00"), D("24880.00")),
    ],
    ids=["on-the-invoice-date", "the-day-after"],
)
def test_cr3_s4_year_two_confirmed_on_an_invoice_date_or_the_day_after(
    db, reviewer, confirmed_on, february_first_credits, left
):
    """Approved 21 January 2026 (paid monthly from 1 January): year one to 21 January 2027,
    credited 12 × 120.00 = 1,440.00, and 23,560.00 lapses on 21 January 2027. No year two yet on
    the anniversary: not a member from then (S4). CR3: year two is valid from the later of the
    anniversary and its confirmation, to 21 January 2028. Confirmed on 1 February 2027 (before
    that day's close, D1), January's invoice dated 1 February is not "issued before it was
    confirmed": credited, 120.00. Confirmed on 2 February, that invoice was issued the day
    before: not credited again, 120.00 to pay. March's (1 March) is credited either way. Year
    two: 25,000.00 − 240.00 = 24,760.00, or − 120.00 = 24,880.00."""
    ws = paid_monthly(date(2026, 1, 1))
    app = startups.approve_application(
        application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21)
    )
    services.run_billing(as_of=confirmed_on - timedelta(days=1))
    assert not workspace_status(ws, as_of=date(2027, 1, 21))["startup_member"]
    confirm_year_two(app, by=reviewer, as_of=confirmed_on)
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    assert (year_two.valid_from, year_two.valid_until) == (confirmed_on, date(2028, 1, 21))
    services.run_billing(as_of=date(2027, 3, 1))
    credited = {b[1]: (b[6], b[8]) for b in bills(ws)}
    assert credited[date(2027, 1, 1)] == (D("120.00"), D("0.00"))
    assert credited[date(2027, 2, 1)] == (
        february_first_credits,
        D("120.00") - february_first_credits,
    )
    assert credited[date(2027, 3, 1)] == (D("120.00"), D("0.00"))
    year_two.refresh_from_db()
    assert year_two.remaining == left
    year_one = CreditGrant.objects.get(workspace=ws, year=1)
    assert ledger(year_one)[-1] == ("lapse", date(2027, 1, 21), D("-23560.00"))
    assert workspace_status(ws, as_of=confirmed_on)["startup_member"]
    assert not workspace_status(ws, as_of=confirmed_on - timedelta(days=1))["startup_member"]


def test_cr3_renewal_reviews_open_on_28_february_and_on_1_march(db, reviewer):
    """CR3: a review opens 30 days before the first anniversary. Approved 30 March 2026:
    anniversary 30 March 2027, opens 28 February 2027. Approved 31 March 2026: anniversary
    31 March 2027, opens 1 March 2027 (2027 is no leap year: 31 March − 30 days). Each opens
    once, on its day, due on its anniversary, and a day run twice opens nothing more."""
    early = paid_monthly(date(2026, 3, 1))
    late = paid_monthly(date(2026, 3, 1))
    early_app = startups.approve_application(
        application(workspace=early, as_of=date(2026, 3, 20)),
        by=reviewer,
        as_of=date(2026, 3, 30),
    )
    late_app = startups.approve_application(
        application(workspace=late, as_of=date(2026, 3, 20)),
        by=reviewer,
        as_of=date(2026, 3, 31),
    )

    def reviews():
        return sorted(RenewalReview.objects.values_list("application_id", "due_on"))

    services.run_billing(as_of=date(2027, 2, 27))
    assert reviews() == []
    services.run_billing(as_of=date(2027, 2, 28))
    assert reviews() == [(early_app.pk, date(2027, 3, 30))]
    services.run_billing(as_of=date(2027, 3, 1))
    services.run_billing(as_of=date(2027, 3, 1))
    services.run_billing(as_of=date(2027, 3, 3))
    assert reviews() == [(early_app.pk, date(2027, 3, 30)), (late_app.pk, date(2027, 3, 31))]


# --- W1: closing a workspace --------------------------------------------------------------------


def test_w1_k1_c5_closed_on_the_1st_the_last_month_is_billed_by_its_close(db, support):
    """Paid monthly from 1 January 2026 with 25 % off forever, 12,000 MTUs in February, closed
    on 1 March. K1: March has no paid day before the 1st: no final invoice. February was paid
    monthly Team every day: its close (1 March) bills it (M1): 120.00 + 20.00 = 140.00.
    January's invoice (1 February): 120.00 − 30.00 = 90.00. W1 ends the discount on 1 March,
    and the day's changes come before its close (D1), but C5's `forever` covers every billing
    month until removed, and February ended with it: February's invoice, dated 1 March, keeps
    it, 140.00 − 35.00 = 105.00, as a closure on 28 February (final invoice) or on 2 March
    (February billed the day before) would. It billed 140.00 until the twenty-fourth session:
    a one-day discontinuity, decided for the customer (`DiscountTerm.applies_to`)."""
    ws = paid_monthly(date(2026, 1, 1))
    coupons.redeem_coupon(
        ws, coupon(percent_off="25", duration="forever").code, by=support, as_of=date(2026, 1, 1)
    )
    services.record_usage(ws, month=date(2026, 2, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 2, 28))
    close(ws, support, date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 4, 2))
    assert [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(ws)] == [
        ("monthly", date(2026, 2, 1), date(2026, 1, 1), D("120.00"), D("30.00"), D("90.00")),
        ("monthly", date(2026, 3, 1), date(2026, 2, 1), D("140.00"), D("35.00"), D("105.00")),
    ]
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("removed", date(2026, 3, 1))


@pytest.mark.parametrize("how", ["cancelled", "closed"])
def test_w1_c5_k1_a_repeating_coupons_last_month_survives_a_closure_on_the_1st(db, support, how):
    """25 % off for 2 months (C5 `repeating`), redeemed on 1 January 2026 on paid monthly Team:
    the billing months January and February, invoices of 1 February and 1 March, 120.00 −
    30.00 = 90.00 each; the coupon runs out on 1 March (the 1st after its last month). On
    1 March the workspace is cancelled (K1) or closed (W1, which ends the discount "as in K1"
    for the subscription): March has no paid day before the 1st, so no final invoice, and
    February's close that day bills February with its discount: 90.00. A closure has no
    active discount to end on 1 March (it ran out that day), and a closure on 2 March leaves
    February's 90.00 as issued the day before: the 1st must not bill 120.00."""
    ws = paid_monthly(date(2026, 1, 1))
    promo = coupon(percent_off="25", duration="repeating", duration_months=2)
    coupons.redeem_coupon(ws, promo.code, by=support, as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 28))
    if how == "closed":
        close(ws, support, date(2026, 3, 1))
    else:
        services.change_to_free(ws, as_of=date(2026, 3, 1))
    services.run_billing(as_of=date(2026, 4, 2))
    assert [(b[0], b[1], b[2], b[4], b[5], b[8]) for b in bills(ws)] == [
        ("monthly", date(2026, 2, 1), date(2026, 1, 1), D("120.00"), D("30.00"), D("90.00")),
        ("monthly", date(2026, 3, 1), date(2026, 2, 1), D("120.00"), D("30.00"), D("90.00")),
    ]
    # It ran out on 1 March either way; the closure removed nothing.
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("ended", date(2026, 3, 1))


def test_w1_closed_on_the_last_day_discount_and_credit_end_then_reopened_and_back(db, support):
    """Paid monthly from 1 January 2026, 25 % off forever (C5); a 500.00 grant from 1 March.
    February's invoice, dated 1 March: 120.00 − 30.00 = 90.00, credited 90.00 (CR2), 410.00
    left. 12,000 MTUs in March; closed on 31 March (W1, K1): final invoice for 1–30 March,
    120 × 30/31 = 116.129… → 116.13 + 20.00 = 136.13; 25 % = 34.0325 → 34.03; 102.10
    credited; total 0.00. The discount ends and 410.00 − 102.10 = 307.90 lapses, both on
    31 March. Reopened on 1 April (Free), back on Team on 2 April, paid at once (T1): April,
    29 days of 30, 120 × 29/30 = 116.00, with neither discount nor credit, dated 1 May."""
    ws = paid_monthly(date(2026, 1, 1))
    coupons.redeem_coupon(
        ws, coupon(percent_off="25", duration="forever").code, by=support, as_of=date(2026, 1, 1)
    )
    grant = coupons.grant_credits(ws, amount="500.00", as_of=date(2026, 3, 1), year=1, by=support)
    services.record_usage(ws, month=date(2026, 3, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 3, 30))
    closure = close(ws, support, date(2026, 3, 31))
    services.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 4, 1))
    services.run_billing(as_of=date(2026, 4, 1))  # March's close: nothing for it (K1)
    status = workspace_status(ws, as_of=date(2026, 4, 1))
    assert (status["plan"], status["closed"], status["data_flow"]) == ("free", False, True)
    assert status["credit_balance"] == D("0.00")
    team = services.change_to_team(ws, as_of=date(2026, 4, 2))
    assert (team.trial_end, team.paid_from) == (None, date(2026, 4, 2))
    services.run_billing(as_of=date(2026, 5, 1))
    assert [(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[8]) for b in bills(ws)] == [
        (
            "monthly",
            date(2026, 2, 1),
            date(2026, 1, 1),
            date(2026, 2, 1),
            D("120.00"),
            D("30.00"),
            D("0.00"),
            D("90.00"),
        ),
        (
            "monthly",
            date(2026, 3, 1),
            date(2026, 2, 1),
            date(2026, 3, 1),
            D("120.00"),
            D("30.00"),
            D("90.00"),
            D("0.00"),
        ),
        (
            "final",
            date(2026, 3, 31),
            date(2026, 3, 1),
            date(2026, 3, 31),
            D("136.13"),
            D("34.03"),
            D("102.10"),
            D("0.00"),
        ),
        (
            "monthly",
            date(2026, 5, 1),
            date(2026, 4, 2),
            date(2026, 5, 1),
            D("116.00"),
            D("0.00"),
            D("0.00"),
            D("116.00"),
        ),
    ]
    assert closure.final_invoice.issue_date == date(2026, 3, 31)
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("removed", date(2026, 3, 31))
    assert ledger(grant) == [
        ("grant", date(2026, 3, 1), D("500.00")),
        ("draw", date(2026, 3, 1), D("-90.00")),
        ("draw", date(2026, 3, 31), D("-102.10")),
        ("lapse", date(2026, 3, 31), D("-307.90")),
    ]


@pytest.mark.parametrize(
    "closed_on, expected",
    [
        (date(2026, 2, 1), []),
        (
            date(2026, 2, 2),
            [("annual", date(2026, 2, 1), date(2026, 2, 1), date(2027, 2, 1), D("1440.00"))],
        ),
    ],
    ids=["on-the-end-date", "the-day-after"],
)
def test_w1_t5_k2_an_annual_trial_closed_on_its_end_date_the_1st(
    db, django_capture_on_commit_callbacks, support, closed_on, expected
):
    """Annual Team trial with a card from 18 January 2026: 18–31 January, end date 1 February
    (T3). Closed on 1 February, the end date: the closure (a change dated that day) comes
    before T4 (D1), so the trial ends uncharged (T5): nothing billed, whatever January's 15,000
    MTUs. Closed on 2 February: the trial turned paid on 1 February with the annual invoice of
    1,440.00 for 1 February 2026 – 1 February 2027 (K2), kept without refund, no overage
    after it, no renewal (W1). One email confirms the closure either way."""
    ws = workspace(as_of=date(2026, 1, 18), plan="team", interval="annual", card=True)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=15_000)
    with django_capture_on_commit_callbacks(execute=True):
        close(ws, support, closed_on)
        services.run_billing(as_of=date(2027, 2, 2))
    assert [(b[0], b[1], b[2], b[3], b[8]) for b in bills(ws)] == expected
    assert len([m for m in mail.outbox if m.subject == f"{ws.name} is closed"]) == 1
    status = workspace_status(ws, as_of=closed_on)
    assert (status["plan"], status["trialing"], status["closed"]) == ("free", False, True)


@pytest.mark.parametrize(
    "closed_on, expected",
    [
        (date(2026, 2, 28), [("annual", date(2026, 1, 1), D("1440.00"))]),
        (
            date(2026, 3, 1),
            [("annual", date(2026, 1, 1), D("1440.00")), ("monthly", date(2026, 3, 1), D("50.00"))],
        ),
        (
            date(2026, 3, 2),
            [("annual", date(2026, 1, 1), D("1440.00")), ("monthly", date(2026, 3, 1), D("50.00"))],
        ),
    ],
    ids=["last-day-of-february", "1-march", "2-march"],
)
def test_w1_k2_annual_team_closed_around_a_month_close(db, support, closed_on, expected):
    """Annual Team from 1 January 2026 (1,440.00), 15,000 MTUs in February. Closed on
    28 February: February's overage is not billed (W1: no further overage, no refund; not even
    the closure month's). Closed on 1 March, February is a month of the term that ended before
    the closure: its close that day bills its overage-only invoice (K2), (15,000 − 10,000) ×
    0.01 = 50.00, as a monthly workspace closed on the 1st gets its last month's invoice.
    Closed on 2 March: that invoice was issued the day before, and stays. Never renewed on
    1 January 2027; Free from the closure."""
    ws = paid_annual(date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=15_000)
    services.run_billing(as_of=closed_on - timedelta(days=1))
    close(ws, support, closed_on)
    services.run_billing(as_of=date(2027, 1, 2))
    assert [(b[0], b[1], b[8]) for b in bills(ws)] == expected
    assert workspace_status(ws, as_of=date(2027, 1, 1))["plan"] == "free"


def test_w1_closed_and_reopened_the_same_day_at_a_months_end(db, support):
    """Paid monthly from 1 June 2026, closed on 30 June: final invoice for 1–29 June, 120 ×
    29/30 = 116.00 (K1). The same day, a coupon is refused (closed: only reopening is
    accepted), and a reopening dated 29 June is refused (before the closure); reopened on
    30 June itself: Free, data flowing. Back on Team on 1 July, paid at once (T1: it had Team):
    July 120.00, dated 1 August. June has no monthly invoice (billed by the final one)."""
    ws = paid_monthly(date(2026, 6, 1))
    close(ws, support, date(2026, 6, 30))
    with pytest.raises(WorkspaceClosed, match="closed on 30 Jun 2026"):
        coupons.redeem_coupon(ws, coupon().code, by=support, as_of=date(2026, 6, 30))
    with pytest.raises(BillingError, match="cannot be dated 29 Jun 2026"):
        services.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 6, 29))
    services.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 6, 30))
    ws.refresh_from_db()
    assert (ws.closed_on, ws.data_flow, ws.lock) == (None, True, "unlocked")
    team = services.change_to_team(ws, as_of=date(2026, 7, 1))
    assert (team.trial_end, team.paid_from) == (None, date(2026, 7, 1))
    services.run_billing(as_of=date(2026, 8, 1))
    assert [(b[0], b[1], b[2], b[3], b[8]) for b in bills(ws)] == [
        ("final", date(2026, 6, 30), date(2026, 6, 1), date(2026, 6, 30), D("116.00")),
        ("monthly", date(2026, 8, 1), date(2026, 7, 1), date(2026, 8, 1), D("120.00")),
    ]


# --- X4: exemption certificates -----------------------------------------------------------------


def test_x4_k1_a_certificate_approved_on_a_final_invoices_date_or_the_day_after(db, finance):
    """California, 7.25 %. Two workspaces paid monthly from 1 January 2026, each with a
    certificate submitted 5 January, each cancelled on 20 January: final invoice for 1–19
    January, 120 × 19/31 = 73.548… → 73.55 (K1). `on_time`'s certificate is approved on
    20 January (entered before the cancellation): approved on the issue date, no tax, total
    73.55. `late`'s is approved on 21 January: taxed 73.55 × 7.25 % = 5.332… → 5.33, total
    78.88, with the note that it was still in review on 20 January. An approval dated
    20 January, once the final invoice of that day is issued, is refused (I3: an issued invoice
    is never changed)."""
    on_time = paid_monthly(date(2026, 1, 1), business_region="CA")
    late = paid_monthly(date(2026, 1, 1), business_region="CA")
    on_time_cert = certificate(on_time, "CA", on=date(2026, 1, 5))
    late_cert = certificate(late, "CA", on=date(2026, 1, 5))
    services.approve_exemption(on_time_cert, by=finance, as_of=date(2026, 1, 20))
    services.change_to_free(on_time, as_of=date(2026, 1, 20))
    services.change_to_free(late, as_of=date(2026, 1, 20))
    with pytest.raises(BillingError, match="was issued already"):
        services.approve_exemption(late_cert, by=finance, as_of=date(2026, 1, 20))
    services.approve_exemption(late_cert, by=finance, as_of=date(2026, 1, 21))
    waived = Invoice.objects.get(workspace=on_time)
    taxed = Invoice.objects.get(workspace=late)
    assert (waived.kind, waived.subtotal, waived.tax, waived.total) == (
        "final",
        D("73.55"),
        D("0.00"),
        D("73.55"),
    )
    assert waived.tax_note == f"exempt: certificate #{on_time_cert.pk} (nonprofit)"
    assert (taxed.kind, taxed.subtotal, taxed.tax, taxed.total) == (
        "final",
        D("73.55"),
        D("5.33"),
        D("78.88"),
    )
    assert taxed.tax_note == f"certificate #{late_cert.pk} still in review on 20 Jan 2026"


@pytest.mark.parametrize(
    "valid_from, valid_to, approve, tax, note",
    [
        (LEAP_DAY, None, True, D("0.00"), "exempt: certificate #{pk} (nonprofit)"),
        (date(2027, 3, 1), LEAP_DAY, True, D("0.00"), "exempt: certificate #{pk} (nonprofit)"),
        (
            date(2027, 3, 1),
            date(2028, 2, 28),
            True,
            D("104.40"),
            "certificate #{pk} valid 1 Mar 2027 to 28 Feb 2028, not on 29 Feb 2028",
        ),
        (
            date(2027, 3, 1),
            None,
            False,
            D("104.40"),
            "certificate #{pk} still in review on 29 Feb 2028",
        ),
    ],
    ids=["first-day", "last-day", "ended-the-day-before", "only-submitted"],
)
def test_x4_k2_an_annual_invoice_on_29_february_and_a_certificates_edges(
    db, finance, valid_from, valid_to, approve, tax, note
):
    """California, 7.25 %. An annual term from 29 February 2028: its 1,440.00 invoice is dated
    that day (K2). X4: waived when an approved certificate is valid on the issue date, from its
    first day through its last, both included: one from 29 February, or one to 29 February.
    One that ended on 28 February, or one only submitted (not approved by the issue date), is
    taxed: 1,440.00 × 7.25 % = 104.40, total 1,544.40, and the note says why."""
    ws = workspace(as_of=date(2028, 2, 1), card=True, business_region="CA")
    cert = certificate(ws, "CA", on=date(2028, 2, 2), valid_from=valid_from, valid_to=valid_to)
    if approve:
        services.approve_exemption(cert, by=finance, as_of=date(2028, 2, 3))
    services.change_to_team(ws, as_of=LEAP_DAY)  # a trial first (T1) ...
    services.change_to_free(ws, as_of=LEAP_DAY)  # ... cancelled (T5) ...
    services.change_to_team(ws, interval="annual", as_of=LEAP_DAY)  # ... then paid at once
    annual = Invoice.objects.get(workspace=ws, kind="annual")
    assert (annual.issue_date, annual.period_end, annual.subtotal, annual.tax, annual.total) == (
        LEAP_DAY,
        date(2029, 3, 1),
        D("1440.00"),
        tax,
        D("1440.00") + tax,
    )
    assert annual.tax_note == note.format(pk=cert.pk)


@pytest.mark.parametrize(
    "moved_on, february_region, february_tax",
    [(date(2026, 3, 1), "NV", D("0.00")), (date(2026, 3, 2), "CA", D("8.70"))],
    ids=["moved-on-the-1st", "moved-on-the-2nd"],
)
def test_x4_x1_a_certificate_for_another_state_until_the_business_moves_there(
    db, finance, support, moved_on, february_region, february_tax
):
    """A Californian business (7.25 %) paid monthly from 1 January 2026 holds an approved
    certificate for Nevada (X4: certificates for other states are allowed). January's invoice,
    dated 1 February, is taxed in California: 120.00 × 7.25 % = 8.70, total 128.70, the note
    says the certificate covers NV, not CA. The business moves to Nevada (X1). Moved on
    1 March, February's invoice, dated that day, is Nevada's and exempt: 120.00. Moved on
    2 March, February's is still Californian, 128.70; March's (1 April) is exempt: 120.00."""
    ws = paid_monthly(date(2026, 1, 1), business_region="CA")
    cert = certificate(ws, "NV", on=date(2026, 1, 5))
    services.approve_exemption(cert, by=finance, as_of=date(2026, 1, 6))
    services.run_billing(as_of=moved_on - timedelta(days=1))
    services.update_workspace(
        ws,
        by=support,
        reason="Business moved",
        name=ws.name,
        business_country="US",
        business_region="NV",
        billing_email=ws.billing_email,
        as_of=moved_on,
    )
    services.run_billing(as_of=date(2026, 4, 1))
    got = list(
        Invoice.objects.filter(workspace=ws)
        .order_by("issue_date")
        .values_list("issue_date", "tax_region", "tax", "total", "tax_note")
    )
    covers = f"certificate #{cert.pk} covers NV, not CA"
    exempt = f"exempt: certificate #{cert.pk} (nonprofit)"
    assert got == [
        (date(2026, 2, 1), "CA", D("8.70"), D("128.70"), covers),
        (
            date(2026, 3, 1),
            february_region,
            february_tax,
            D("120.00") + february_tax,
            exempt if february_region == "NV" else covers,
        ),
        (date(2026, 4, 1), "NV", D("0.00"), D("120.00"), exempt),
    ]


# --- I2, I6: invoice totals and set-aside workspaces --------------------------------------------


def test_i2_c4_cr2_an_amount_off_larger_than_a_prorated_month_leaves_the_credit(db, support):
    """California, 7.25 %. Paid monthly from 17 January 2026: 15 paid days of 31, 120 × 15/31
    = 58.064… → 58.06. 100.00 off forever (C4: min(100.00, 58.06) = 58.06) and a 40.00 grant,
    both from 17 January. January (1 February): 58.06 − 58.06 = 0.00 left: no credit drawn,
    no tax, total 0.00 (I2), still issued (M1). February (1 March): 120.00 − 100.00 = 20.00,
    credited 20.00, total 0.00. March (1 April): likewise, the grant's last 20.00. April
    (1 May): 20.00, no credit left, tax 20.00 × 7.25 % = 1.45, total 21.45."""
    ws = paid_monthly(date(2026, 1, 17), business_region="CA")
    coupons.redeem_coupon(
        ws,
        coupon(amount_off="100.00", duration="forever").code,
        by=support,
        as_of=date(2026, 1, 17),
    )
    grant = coupons.grant_credits(ws, amount="40.00", as_of=date(2026, 1, 17), year=1, by=support)
    services.run_billing(as_of=date(2026, 5, 1))
    assert [(b[1], b[4], b[5], b[6], b[7], b[8]) for b in bills(ws)] == [
        (date(2026, 2, 1), D("58.06"), D("58.06"), D("0.00"), D("0.00"), D("0.00")),
        (date(2026, 3, 1), D("120.00"), D("100.00"), D("20.00"), D("0.00"), D("0.00")),
        (date(2026, 4, 1), D("120.00"), D("100.00"), D("20.00"), D("0.00"), D("0.00")),
        (date(2026, 5, 1), D("120.00"), D("100.00"), D("0.00"), D("1.45"), D("21.45")),
    ]
    assert ledger(grant) == [
        ("grant", date(2026, 1, 17), D("40.00")),
        ("draw", date(2026, 3, 1), D("-20.00")),
        ("draw", date(2026, 4, 1), D("-20.00")),
    ]
    for invoice in Invoice.objects.filter(workspace=ws):
        assert sum(line.amount for line in invoice.lines.all()) == invoice.total


def test_i6_i1_i4_a_december_invoice_set_aside_is_issued_in_january_after_the_others(db, support):
    """Two workspaces paid monthly from 1 December 2026. `bad` reported a December figure from
    before input was bounded (10,000,000,000,000 MTUs): December's close, on 1 January 2027,
    issues `good`'s 120.00 as INV-2027-000001 and sets `bad` aside (I6). The same day run
    again, and 2 January with the figure still wrong, issue nothing. The figure corrected to
    12,000, the run of 3 January issues `bad`'s December invoice, dated 1 January 2027 (M1):
    120.00 + 20.00 = 140.00, less its 100.00 grant (CR2), 40.00, as INV-2027-000002 (I1); a
    later run issues no second one (I4)."""
    good = paid_monthly(date(2026, 12, 1), slug="good")
    bad = paid_monthly(date(2026, 12, 1), slug="bad")
    coupons.grant_credits(bad, amount="100.00", as_of=date(2026, 12, 15), year=1, by=support)
    Usage.objects.create(workspace=bad, month=date(2026, 12, 1), mtus=10**13)
    services.run_billing(as_of=date(2027, 1, 1))
    assert services.run_billing(as_of=date(2027, 1, 1)) == {}
    services.run_billing(as_of=date(2027, 1, 2))
    assert not Invoice.objects.filter(workspace=bad).exists()
    entry = SetAsideInvoice.objects.get(workspace=bad)
    assert (entry.first_seen_on, entry.resolved_on) == (date(2027, 1, 1), None)

    Usage.objects.filter(workspace=bad).update(mtus=12_000)
    services.run_billing(as_of=date(2027, 1, 3))
    services.run_billing(as_of=date(2027, 1, 4))
    numbered = [
        (i.number, i.workspace.slug, i.issue_date, i.subtotal, i.credits, i.total)
        for i in Invoice.objects.order_by("number")
    ]
    jan1 = date(2027, 1, 1)
    assert numbered == [
        ("INV-2027-000001", "good", jan1, D("120.00"), D("0.00"), D("120.00")),
        ("INV-2027-000002", "bad", jan1, D("140.00"), D("100.00"), D("40.00")),
    ]
    assert Invoice.objects.filter(workspace=good).count() == 1  # only the missing one came
    entry.refresh_from_db()
    assert entry.resolved_on == date(2027, 1, 3)
    assert dict(InvoiceSequence.objects.values_list("year", "last_number")) == {2027: 2}


# --- G2, G3: campaigns --------------------------------------------------------------------------


def test_g2_g3_launched_on_31_january_and_again_on_1_february(
    db, django_capture_on_commit_callbacks, support
):
    """25 % off for 3 months (monthly bills). `first`, paid monthly from 1 January 2026, is
    notified by the launch of 31 January; `newcomer`, paid monthly from 1 February, by the
    launch of 1 February, which does not email `first` again (G2: one email per workspace per
    campaign). `early` received the coupon on 30 January, before any launch: left out as
    already received (C2, G1), and its redemption is not the campaign's. `first` and
    `newcomer` redeem on 1 February, after their emails: attributed (G3). C5: the billing
    months February, March and April, invoices of 1 March, 1 April and 1 May: 30.00 off each,
    for each of the two: 180.00 given by the campaign; `first`'s January (1 February) at 120.00.
    """
    spring = coupon(
        percent_off="25", duration="repeating", duration_months=3, intervals=("monthly",)
    )
    first = paid_monthly(date(2026, 1, 1), name="First")
    early = paid_monthly(date(2026, 1, 1), name="Early")
    coupons.redeem_coupon(early, spring.code, by=support, as_of=date(2026, 1, 30))
    campaign = create_campaign(
        "Winter", spring.code, "25% off", "Three months at 25% off.", {"plan": "team"}, by=support
    )
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2026, 1, 31)) == 1
    newcomer = paid_monthly(date(2026, 2, 1), name="Newcomer")
    assert campaign_audience(campaign, date(2026, 2, 1)) == (
        sorted([first.pk, newcomer.pk]),
        {"already_received": 1},
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert launch_campaign(campaign, by=support, as_of=date(2026, 2, 1)) == 1
    assert sorted(m.to[0] for m in mail.outbox) == sorted(
        [first.billing_email, newcomer.billing_email]
    )
    for ws in (first, newcomer):
        coupons.redeem_coupon(ws, spring.code, by=support, as_of=date(2026, 2, 1))
    assert Redemption.objects.get(workspace=first).campaign == campaign
    assert Redemption.objects.get(workspace=newcomer).campaign == campaign
    assert Redemption.objects.get(workspace=early).campaign is None

    services.run_billing(as_of=date(2026, 6, 1))
    assert [(b[1], b[5], b[8]) for b in bills(first)] == [
        (date(2026, 2, 1), D("0.00"), D("120.00")),
        (date(2026, 3, 1), D("30.00"), D("90.00")),
        (date(2026, 4, 1), D("30.00"), D("90.00")),
        (date(2026, 5, 1), D("30.00"), D("90.00")),
        (date(2026, 6, 1), D("0.00"), D("120.00")),
    ]
    results = campaign_results(campaign)
    assert (results["notified"], results["redeemed"], results["discount"]) == (2, 2, D("180.00"))
    assert [(p["month"], p["redemptions"], p["discount"]) for p in results["series"]] == [
        (date(2026, 2, 1), 2, D("0.00")),
        (date(2026, 3, 1), 0, D("60.00")),
        (date(2026, 4, 1), 0, D("60.00")),
        (date(2026, 5, 1), 0, D("60.00")),
    ]


# --- FC1: forecasts -----------------------------------------------------------------------------


def test_fc1_cr1_a_forecast_from_a_months_last_day_to_a_grants_anniversary(db, support):
    """Paid monthly from 1 December 2025; a 1,000.00 grant from 1 December 2025 up to 1 March
    2026. December's invoice (1 January) drew 120.00: 880.00 left. On 31 January (the clock
    through the 30th), 12,000 MTUs reported for January; forecast 2 months at 12,000 MTUs:
    January, dated 1 February, 120.00 + 20.00 = 140.00, credited 140.00, total 0.00; February,
    dated 1 March, the grant's anniversary (not included, CR1): 140.00, no credit. Nothing
    written: no invoice, number, draw or email (FC1). The clock then issues the same two."""
    ws = paid_monthly(date(2025, 12, 1))
    grant = coupons.grant_credits(
        ws,
        amount="1000.00",
        as_of=date(2025, 12, 1),
        year=1,
        by=support,
        valid_until=date(2026, 3, 1),
    )
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 1, 30))
    before = everything()
    forecast = forecast_invoices(ws, as_of=date(2026, 1, 31), months=2, mtus=12_000)
    assert everything() == before
    grant.refresh_from_db()
    assert grant.remaining == D("880.00")
    assert [(i.kind, i.issue_date, i.subtotal, i.credits, i.total) for i in forecast] == [
        ("monthly", date(2026, 2, 1), D("140.00"), D("140.00"), D("0.00")),
        ("monthly", date(2026, 3, 1), D("140.00"), D("0.00"), D("140.00")),
    ]
    services.record_usage(ws, month=date(2026, 2, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 3, 1))
    issued = Invoice.objects.filter(workspace=ws, issue_date__gte=date(2026, 2, 1))
    assert forecast_figures(forecast) == forecast_figures(issued)
    assert ledger(grant)[-1] == ("lapse", date(2026, 3, 1), D("-740.00"))


def test_fc1_k2_a_forecast_across_a_leap_year_renewal(db):
    """Annual Team from 1 March 2027, term to 1 March 2028 (K2). On 15 February 2028 (the clock
    through the 14th), forecast 2 months at 11,000 MTUs: February's overage-only invoice, dated
    1 March 2028, (11,000 − 10,000) × 0.01 = 10.00; the renewal that day, 1,440.00 for 1 March
    2028 – 1 March 2029; March's overage, dated 1 April, 10.00. Nothing written (FC1); the clock
    then issues the same three."""
    ws = paid_annual(date(2027, 3, 1))
    services.run_billing(as_of=date(2028, 2, 14))
    before = everything()
    forecast = forecast_invoices(ws, as_of=date(2028, 2, 15), months=2, mtus=11_000)
    assert everything() == before
    assert sorted(
        (i.issue_date, i.kind, i.period_start, i.period_end, i.total) for i in forecast
    ) == [
        (date(2028, 3, 1), "annual", date(2028, 3, 1), date(2029, 3, 1), D("1440.00")),
        (date(2028, 3, 1), "monthly", date(2028, 2, 1), date(2028, 3, 1), D("10.00")),
        (date(2028, 4, 1), "monthly", date(2028, 3, 1), date(2028, 4, 1), D("10.00")),
    ]
    for month in (date(2028, 2, 1), date(2028, 3, 1)):
        services.record_usage(ws, month=month, mtus=11_000)
    services.run_billing(as_of=date(2028, 4, 1))
    issued = Invoice.objects.filter(workspace=ws, issue_date__gte=date(2028, 3, 1))
    assert forecast_figures(forecast) == forecast_figures(issued)


# --- D2: a change dated the last processed day ----------------------------------------------------


def _d2_world():
    """A Californian workspace paid monthly from 1 January 2028 with a certificate and a startup
    application submitted on 10 February; the clock through 29 February 2028."""
    ws = paid_monthly(date(2028, 1, 1), business_region="CA", name="Leap")
    cert = certificate(ws, "CA", on=date(2028, 2, 10))
    app = application(workspace=ws, as_of=date(2028, 2, 10), incorporation_date=date(2027, 6, 1))
    services.run_billing(as_of=LEAP_DAY)
    return ws, cert, app


CHANGES = {
    "cancellation": lambda ws, cert, app, by, day: services.change_to_free(ws, as_of=day),
    "coupon": lambda ws, cert, app, by, day: coupons.redeem_coupon(
        ws, coupon().code, by=by, as_of=day
    ),
    "closure": lambda ws, cert, app, by, day: close(ws, by, day),
    "certificate": lambda ws, cert, app, by, day: services.approve_exemption(
        cert, by=by, as_of=day
    ),
    "application": lambda ws, cert, app, by, day: startups.approve_application(
        app, by=by, as_of=day
    ),
    "tax rate": lambda ws, cert, app, by, day: services.set_tax_rate(
        "US", region="CA", rate="7.5", name="CA sales tax", valid_from=day
    ),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_d2_a_change_dated_the_last_processed_day_29_february_is_refused(db, support, change):
    """D2: the clock has processed every day through 29 February 2028. A change dated that
    day is refused, naming it; the same change dated 1 March 2028, the day after, is accepted
    (1 March is also the close of February, which the clock has not run: dating a change that
    day is allowed, D1)."""
    ws, cert, app = _d2_world()
    with pytest.raises(
        DayAlreadyProcessed,
        match="processed every day through 29 Feb 2028. Date it 1 Mar 2028 or later",
    ):
        CHANGES[change](ws, cert, app, support, LEAP_DAY)
    assert last_processed_day() == LEAP_DAY
    CHANGES[change](ws, cert, app, support, date(2028, 3, 1))
