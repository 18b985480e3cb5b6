"""Edge days of the billing clock: the leap day (CR1, S4, CR3, K2, T3, T6), a clock that never ran
(D1, D2), a price change and a cancellation on the same day (D4, K1), a void of a credited invoice
(CR2, I3), year two after a closure and a reopening (CR3, W1), a void of a month already
reported for tax (X3, I3) and the year's first invoice numbers (I1, M1).

Every figure is worked by hand from SPEC in the test's docstring."""

import csv
import io
import re
from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import reverse

from billing import reports, services
from billing.clock import last_processed_day
from billing.errors import BillingError, DayAlreadyProcessed
from billing.models import Invoice, InvoiceSequence, MonthClose, Plan, Workspace
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditGrant, CreditLedgerEntry
from coupons.reports import credit_movements
from startups import services as startups
from startups.models import RenewalReview
from tests.billing.factories import paid_annual, paid_monthly, workspace
from tests.scenarios.clock import daily_and_catch_up, run_days
from tests.startups.factories import application, confirm_year_two

LEAP_DAY = date(2028, 2, 29)


# Coupons and credits take part in every invoice here (C4, C5, CR2).
pytestmark = pytest.mark.usefixtures("coupon_adjustments")


def bills(ws):
    """(kind, issue date, period start, period end, subtotal, credits, total), in issue order."""
    return [
        (i.kind, i.issue_date, i.period_start, i.period_end, i.subtotal, i.credits, i.total)
        for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")
    ]


def ledger_adds_up(grant):
    """CR2: the grant's balance is the sum of its ledger entries, never below zero nor above
    the grant."""
    grant.refresh_from_db()
    total = grant.entries.aggregate(total=Sum("amount"))["total"]
    assert D(total).quantize(D("0.01")) == grant.remaining
    assert D("0.00") <= grant.remaining <= grant.amount
    return grant.remaining


# --- 1. The leap day ---------------------------------------------------------------------------


def _member_approved_on_the_leap_day(reviewer):
    """Paid monthly Team from 1 February 2028, 0 MTUs: 120.00 a month. Approved into the
    startup program on 29 February 2028 (incorporated 2027-06-01: E1 passes)."""
    ws = paid_monthly(date(2028, 2, 1))
    app = application(workspace=ws, as_of=date(2028, 2, 20), incorporation_date=date(2027, 6, 1))
    startups.approve_application(app, by=reviewer, as_of=LEAP_DAY)
    return ws, app


def test_cr1_s4_cr3_grant_approved_on_29_february_runs_to_1_march(db, reviewer):
    """CR1: valid up to, not including, "the same date a year later"; 2029 has no 29 February,
    so the grant runs to 1 March 2029 (exclusive): 28 February 2029 is its last day, never
    shorter than a year. CR3: the renewal review opens 30 days before that anniversary, on
    30 January 2029 (not on the 29th), due 1 March 2029. S4: a member through 28 February 2029,
    not on 1 March without year two.

    CR2: invoices issued 1 March 2028 … 1 February 2029 (12 of them, 120.00 each) are credited
    in full: 1,440.00 drawn, 23,560.00 left on 28 February 2029, which lapses on 1 March 2029.
    February 2029's invoice, issued 1 March 2029, is not credited: 120.00."""
    ws, app = _member_approved_on_the_leap_day(reviewer)
    grant = CreditGrant.objects.get(workspace=ws, year=1)
    assert (grant.valid_from, grant.valid_until) == (LEAP_DAY, date(2029, 3, 1))

    services.run_billing(as_of=date(2029, 1, 29))
    assert not RenewalReview.objects.filter(application=app).exists()
    services.run_billing(as_of=date(2029, 1, 30))
    review = RenewalReview.objects.get(application=app)
    assert (review.year, review.due_on) == (2, date(2029, 3, 1))

    services.run_billing(as_of=date(2029, 3, 1))
    last_day = workspace_status(ws, as_of=date(2029, 2, 28))
    assert (last_day["startup_member"], last_day["credit_balance"]) == (True, D("23560.00"))
    after = workspace_status(ws, as_of=date(2029, 3, 1))
    assert (after["startup_member"], after["credit_balance"]) == (False, D("0.00"))
    assert not Workspace.objects.get(pk=ws.pk).startup_member

    credited = [(issued, credits, total) for _, issued, *_, credits, total in bills(ws)]
    assert credited[0] == (date(2028, 3, 1), D("120.00"), D("0.00"))
    assert credited[11] == (date(2029, 2, 1), D("120.00"), D("0.00"))
    assert credited[12:] == [(date(2029, 3, 1), D("0.00"), D("120.00"))]
    assert sum(credits for _, credits, _ in credited) == D("1440.00")
    lapse = grant.entries.get(kind=CreditLedgerEntry.Kind.LAPSE)
    assert (lapse.on, lapse.amount) == (date(2029, 3, 1), D("-23560.00"))
    assert ledger_adds_up(grant) == D("0.00")


def test_cr3_s4_year_two_after_a_29_february_approval_follows_without_a_gap(db, reviewer):
    """Year two confirmed on 10 February 2029 (before the anniversary) runs from the
    anniversary, 1 March 2029, to the second anniversary, 1 March 2030 (the same rule a year
    on): membership has no gap and no overlap (28 February on year one, 1 March on year two).
    February 2029's invoice, issued 1 March 2029, draws on year two: 25,000.00 − 120.00 =
    24,880.00 left that day."""
    ws, app = _member_approved_on_the_leap_day(reviewer)
    services.run_billing(as_of=date(2029, 2, 9))
    confirm_year_two(app, by=reviewer, as_of=date(2029, 2, 10))
    year_two = CreditGrant.objects.get(workspace=ws, year=2)
    assert (year_two.valid_from, year_two.valid_until) == (date(2029, 3, 1), date(2030, 3, 1))

    services.run_billing(as_of=date(2029, 3, 1))
    assert workspace_status(ws, as_of=date(2029, 2, 28))["startup_member"]
    on_anniversary = workspace_status(ws, as_of=date(2029, 3, 1))
    assert (on_anniversary["startup_member"], on_anniversary["credit_balance"]) == (
        True,
        D("24880.00"),
    )
    february = Invoice.objects.get(workspace=ws, issue_date=date(2029, 3, 1))
    assert (february.credits, february.total) == (D("120.00"), D("0.00"))
    assert ledger_adds_up(year_two) == D("24880.00")
    assert ledger_adds_up(CreditGrant.objects.get(workspace=ws, year=1)) == D("0.00")


@pytest.mark.parametrize(
    "approved, anniversary, opens",
    [
        (date(2027, 2, 28), date(2028, 2, 28), date(2028, 1, 29)),
        (date(2027, 3, 1), date(2028, 3, 1), date(2028, 1, 31)),  # 29 days in February 2028
        (LEAP_DAY, date(2029, 3, 1), date(2029, 1, 30)),
        (date(2028, 3, 1), date(2029, 3, 1), date(2029, 1, 30)),
    ],
)
def test_cr3_renewal_review_opens_thirty_days_before_an_anniversary_around_february(
    db, reviewer, approved, anniversary, opens
):
    """CR3: the review opens exactly 30 days before the first anniversary (the grant's end,
    CR1), whatever February's length: (anniversary − 30 days) and not a day earlier; due on
    the anniversary, which is the year-one grant's `valid_until`."""
    assert anniversary - timedelta(days=30) == opens
    ws = paid_monthly(approved - timedelta(days=20))
    app = application(
        workspace=ws, as_of=approved - timedelta(days=5), incorporation_date=date(2026, 12, 1)
    )
    startups.approve_application(app, by=reviewer, as_of=approved)
    assert CreditGrant.objects.get(workspace=ws).valid_until == anniversary
    assert startups.open_renewal_reviews(opens - timedelta(days=1)) == {}
    assert startups.open_renewal_reviews(opens) == {"renewal_reviews_opened": 1}
    assert RenewalReview.objects.get(application=app).due_on == anniversary


def test_k2_annual_term_from_29_february_renews_on_1_march(db):
    """K2: annual Team from 29 February 2028: 1,440.00 that day for the term 29 February 2028 –
    1 March 2029 (exclusive, 366 days: no day short). It renews on 1 March 2029 with a new
    1,440.00 for 1 March 2029 – 1 March 2030 (365 days): the terms meet, no day billed twice or
    missed. February 2029, 12,000 MTUs, inside the first term: an overage-only invoice of kind
    `monthly`, 2,000 × 0.01 = 20.00, issued 1 March 2029."""
    ws = paid_annual(LEAP_DAY)
    services.record_usage(ws, month=date(2029, 2, 1), mtus=12_000)
    services.run_billing(as_of=date(2029, 3, 2))
    annual = [b for b in bills(ws) if b[0] == "annual"]
    assert annual == [
        ("annual", LEAP_DAY, LEAP_DAY, date(2029, 3, 1), D("1440.00"), D("0.00"), D("1440.00")),
        (
            "annual",
            date(2029, 3, 1),
            date(2029, 3, 1),
            date(2030, 3, 1),
            D("1440.00"),
            D("0.00"),
            D("1440.00"),
        ),
    ]
    assert annual[0][3] == annual[1][2]  # back to back
    overage = Invoice.objects.get(workspace=ws, kind="monthly", issue_date=date(2029, 3, 1))
    assert (overage.subtotal, overage.total) == (D("20.00"), D("20.00"))
    assert [b[0] for b in bills(ws)].count("monthly") == 1  # no other month had overage
    status = workspace_status(ws, as_of=date(2029, 3, 1))
    assert (status["plan"], status["interval"], status["term_end"]) == (
        "team",
        "annual",
        date(2030, 3, 1),
    )


def test_d3_k2_status_before_a_leap_day_renewal_shows_the_term_then_running(db):
    """D3: on 28 February 2029 the term running was 29 February 2028 – 1 March 2029; after the
    clock renewed it on 1 March, workspace_status for 28 February must still say term_end
    2029-03-01 (as things stood), not the renewed term's 2030-03-01."""
    ws = paid_annual(LEAP_DAY)
    services.run_billing(as_of=date(2029, 3, 2))
    assert workspace_status(ws, as_of=date(2029, 2, 28))["term_end"] == date(2029, 3, 1)


def test_t3_t4_trial_from_16_february_2028_covers_the_leap_day(db):
    """T3: a trial started 16 February 2028 covers 16–29 February (14 days, the leap day
    included); 1 March 2028 is its end date and first paid day. February had no paid day: no
    invoice for it (M1), whatever its 20,000 MTUs. March, 12,000 MTUs, no trial day: 120.00 +
    20.00 = 140.00, issued 1 April 2028."""
    ws = workspace(as_of=date(2028, 2, 16), plan="team", card=True)
    services.record_usage(ws, month=date(2028, 2, 1), mtus=20_000)
    services.record_usage(ws, month=date(2028, 3, 1), mtus=12_000)
    services.run_billing(as_of=date(2028, 4, 1))
    assert ws.subscriptions.get(plan__code="team").trial_end == date(2028, 3, 1)
    on_leap_day = workspace_status(ws, as_of=LEAP_DAY)
    assert (on_leap_day["trialing"], on_leap_day["trial_end"]) == (True, date(2028, 3, 1))
    first_paid = workspace_status(ws, as_of=date(2028, 3, 1))
    assert (first_paid["plan"], first_paid["trialing"]) == ("team", False)
    assert bills(ws) == [
        (
            "monthly",
            date(2028, 4, 1),
            date(2028, 3, 1),
            date(2028, 4, 1),
            D("140.00"),
            D("0.00"),
            D("140.00"),
        )
    ]


def test_t6_t4_cardless_trial_across_the_leap_day_reminds_on_27_february(
    db, django_capture_on_commit_callbacks
):
    """T6: three days before the end date 1 March 2028 is 27 February (the leap day counts), not
    26 February. T4: no card on the end date: Free from 1 March 2028, nothing billed."""
    ws = workspace(as_of=date(2028, 2, 16), plan="team")
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2028, 2, 26))
    assert [m for m in mail.outbox if "ends on" in m.subject] == []
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2028, 4, 1))
    reminders = [m for m in mail.outbox if "ends on" in m.subject]
    assert len(reminders) == 1 and reminders[0].to == [ws.billing_email]
    assert workspace_status(ws, as_of=LEAP_DAY)["plan"] == "team"
    assert workspace_status(ws, as_of=date(2028, 3, 1))["plan"] == "free"
    assert bills(ws) == []


# --- 2. A clock that never ran -----------------------------------------------------------------


def test_d1_d2_a_clock_that_never_ran_refuses_nothing_then_names_its_last_day(db):
    """A fresh database: no day processed. run_billing with no workspace does nothing and
    records no day (nothing was due); before the first sign-up likewise. A dated change is
    accepted (nothing processed yet), workspace_status answers. Once the clock has processed
    through 1 February 2026, a change dated that day is refused naming 2026-02-01."""
    assert last_processed_day() is None
    assert services.run_billing(as_of=date(2026, 3, 1)) == {}
    assert last_processed_day() is None

    ws = paid_monthly(date(2026, 1, 5))
    assert services.run_billing(as_of=date(2026, 1, 4)) == {}
    assert last_processed_day() is None
    status = workspace_status(ws, as_of=date(2026, 1, 10))
    assert (status["plan"], status["interval"], status["trialing"]) == ("team", "monthly", False)
    assert status["credit_balance"] == D("0.00")
    services.record_usage(ws, month=date(2026, 1, 1), mtus=11_000)

    counts = services.run_billing(as_of=date(2026, 2, 1))
    assert counts["months_closed"] == 1 and counts["invoices"] == 1
    assert last_processed_day() == date(2026, 2, 1)
    # January: 27 paid days (5–31) of 31: 120 × 27/31 = 104.516… → 104.52, + 10.00 overage.
    assert bills(ws) == [
        (
            "monthly",
            date(2026, 2, 1),
            date(2026, 1, 5),
            date(2026, 2, 1),
            D("114.52"),
            D("0.00"),
            D("114.52"),
        )
    ]
    with pytest.raises(DayAlreadyProcessed, match="processed every day through 1 Feb 2026"):
        services.change_to_free(ws, as_of=date(2026, 2, 1))
    with pytest.raises(BillingError, match="closed"):
        services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)


def test_d1_the_run_billing_command_on_a_fresh_database_says_nothing_was_due(db):
    out = io.StringIO()
    call_command("run_billing", "--as-of", "2026-01-31", stdout=out)
    assert "Billing run through 2026-01-31: nothing due" in out.getvalue()
    assert last_processed_day() is None


def test_d1_month_close_page_and_billing_panel_on_a_fresh_database(db, client, finance):
    """The month close page lists nothing, without an error; the admin
    index's billing panel, with a workspace signed up 70 days ago and no day processed, says
    the clock is behind and that it processed no day yet."""
    from django.utils import timezone

    workspace(as_of=timezone.now().date() - timedelta(days=70))
    client.force_login(finance)
    closes = client.get(reverse("admin:billing_monthclose_changelist"))
    assert closes.status_code == 200 and closes.context["cl"].result_count == 0
    assert MonthClose.objects.count() == 0
    index = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", client.get("/admin/").content.decode()))
    assert "Billing run: needs attention" in index
    assert "(last processed day none)" in index
    out = io.StringIO()
    with pytest.raises(CommandError, match="the last day it processed is none yet"):
        call_command("check_billing", stdout=out)
    assert "Billing clock: BEHIND" in out.getvalue()
    assert "last processed day none" in out.getvalue()


def test_d2_i4_a_month_closed_without_the_clock_is_not_billed_again_by_a_cancellation(db):
    """January 2026 closed by `services.close_month` alone (the service the clock calls, a
    contract of billing.services; no day recorded on the clock): its invoice of 120.00 is issued
    dated 1 February. Usage for January is then refused (D2). A cancellation dated 20 January,
    entered afterwards, must be refused likewise: its final invoice (120 × 19/31 = 73.55) would
    bill 1–19 January a second time (K1: "not already billed"; I3: the issued invoice stands)."""
    ws = paid_monthly(date(2026, 1, 1))
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1))
    assert [b[4] for b in bills(ws)] == [D("120.00")]
    assert last_processed_day() is None
    with pytest.raises(BillingError, match="closed"):
        services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    refused = "January 2026 is closed \\(its invoices are issued\\). Date it 1 Feb 2026 or later"
    with pytest.raises(BillingError, match=refused):
        services.change_to_free(ws, as_of=date(2026, 1, 20))
    assert [(b[0], b[4]) for b in bills(ws)] == [("monthly", D("120.00"))]


# --- 3. A price change and a cancellation on the same day --------------------------------------

SAME_DAY = date(2026, 3, 16)


def _same_day_world(daily, capture, finance, *, terms_first):
    """Two paid monthly workspaces from 1 January 2026, 12,000 MTUs in March and April. On
    16 March: Team's terms change from that day (150.00 a month, 5,000 MTUs included, 0.02 an
    MTU above), and `leaver` cancels. With `terms_first` False the cancellation is entered
    first; the terms change dated 16 March is then refused (D4: a change to a workspace dated
    that day was entered ahead of the clock) and entered for 17 March instead."""
    leaver = paid_monthly(date(2026, 1, 1), slug="leaver")
    stayer = paid_monthly(date(2026, 1, 1), slug="stayer")
    team = Plan.objects.get(code="team")
    for ws in (leaver, stayer):
        for month in (3, 4):
            services.record_usage(ws, month=date(2026, month, 1), mtus=12_000)
    refusals = []

    def new_terms(day):
        services.update_plan(
            team,
            by=finance,
            reason="2026 price list",
            effective_on=day,
            monthly_price="150.00",
            included_mtus=5_000,
            overage_rate="0.0200",
        )

    def actions(day):
        if day != SAME_DAY:
            return
        if terms_first:
            new_terms(day)
            services.change_to_free(leaver, as_of=day)
        else:
            services.change_to_free(leaver, as_of=day)
            with pytest.raises(BillingError, match="dated 2026-03-16 was entered already") as e:
                new_terms(day)
            refusals.append(str(e.value))
            new_terms(day + timedelta(days=1))

    run_days(date(2026, 1, 1), date(2026, 5, 1), daily=daily, capture=capture, actions=actions)
    return {
        slug: [
            (i.kind, i.issue_date, i.period_start, i.period_end, i.subtotal, i.total)
            for i in Invoice.objects.filter(workspace__slug=slug).order_by("issue_date", "id")
        ]
        for slug in ("leaver", "stayer")
    }, len(refusals)


@pytest.mark.parametrize("terms_first", [True, False], ids=["terms-then-cancel", "cancel-first"])
def test_d4_k1_terms_changed_and_cancelled_on_the_same_day(
    db, django_capture_on_commit_callbacks, finance, terms_first
):
    """K1: the final invoice dated 16 March bills 1–15 March at the month's terms (those in
    force on its first day): 120 × 15/31 = 58.064… → 58.06, + (12,000 − 10,000) × 0.01 = 20.00:
    78.06. The stayer's March (issued 1 April) is 120.00 + 20.00 = 140.00; April (issued 1 May)
    at the new terms: 150.00 + (12,000 − 5,000) × 0.02 = 140.00: 290.00. The same day by day
    and in one run (D4), and the same whichever change was entered first."""
    daily, catch_up = daily_and_catch_up(
        lambda is_daily: _same_day_world(
            is_daily, django_capture_on_commit_callbacks, finance, terms_first=terms_first
        )
    )
    assert daily == catch_up
    invoices, refused = daily
    assert refused == (0 if terms_first else 1)
    jan, feb = date(2026, 1, 1), date(2026, 2, 1)
    mar, apr, may = date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)
    assert invoices == {
        "leaver": [
            ("monthly", feb, jan, feb, D("120.00"), D("120.00")),
            ("monthly", mar, feb, mar, D("120.00"), D("120.00")),
            ("final", SAME_DAY, mar, SAME_DAY, D("78.06"), D("78.06")),
        ],
        "stayer": [
            ("monthly", feb, jan, feb, D("120.00"), D("120.00")),
            ("monthly", mar, feb, mar, D("120.00"), D("120.00")),
            ("monthly", apr, mar, apr, D("140.00"), D("140.00")),
            ("monthly", may, apr, may, D("290.00"), D("290.00")),
        ],
    }


# --- 4. A void of an invoice paid partly by startup credits ------------------------------------


def test_cr2_i3_a_voided_credited_invoice_gives_its_draw_back(db, support, finance):
    """A 100.00 grant from 10 January 2026 (CR1). January: 120.00 + 3,000 × 0.01 = 150.00,
    credited 100.00 (all that is left), total 50.00, issued 1 February (CR2). Finance voids it on
    10 February (I3): the invoice no longer stands, so its draw comes back to the grant, still
    valid (a `return` entry dated 10 February; the ledger +100.00 − 100.00 + 100.00 adds up,
    never below zero or above the grant). workspace_status says 0.00 on 9 February and 100.00
    from the 10th; February's invoice (1 March) draws it: 120.00 − 100.00 = 20.00. The credit
    report counts 100.00 drawn and 100.00 given back in February, 100.00 drawn in March."""
    ws = paid_monthly(date(2026, 1, 1))
    grant = coupons.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 10), year=1, by=support)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=13_000)
    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    assert (january.subtotal, january.credits, january.total) == (
        D("150.00"),
        D("100.00"),
        D("50.00"),
    )
    assert ledger_adds_up(grant) == D("0.00")

    services.void_invoice(january, by=finance, reason="Billed in error", as_of=date(2026, 2, 10))
    assert ledger_adds_up(grant) == D("100.00")
    assert list(grant.entries.order_by("id").values_list("kind", "amount")) == [
        (CreditLedgerEntry.Kind.GRANT, D("100.00")),
        (CreditLedgerEntry.Kind.DRAW, D("-100.00")),
        (CreditLedgerEntry.Kind.RETURN, D("100.00")),
    ]
    assert workspace_status(ws, as_of=date(2026, 2, 9))["credit_balance"] == D("0.00")
    assert workspace_status(ws, as_of=date(2026, 2, 10))["credit_balance"] == D("100.00")

    services.run_billing(as_of=date(2026, 3, 1))
    february = Invoice.objects.get(workspace=ws, issue_date=date(2026, 3, 1))
    assert (february.credits, february.total) == (D("100.00"), D("20.00"))
    assert ledger_adds_up(grant) == D("0.00")
    assert workspace_status(ws, as_of=date(2026, 3, 1))["credit_balance"] == D("0.00")
    movements = credit_movements(start=date(2026, 1, 1), end=date(2026, 4, 1))
    assert [(m["month"].month, m["granted"], m["drawn"], m["returned"]) for m in movements] == [
        (1, D("100.00"), D("0.00"), D("0.00")),
        (2, D("0.00"), D("100.00"), D("100.00")),
        (3, D("0.00"), D("100.00"), D("0.00")),
    ]


# --- 5. Year two after a closure and a reopening -----------------------------------------------


def test_cr3_w1_a_member_closed_and_reopened_before_the_anniversary_gets_no_year_two(
    db, reviewer, support
):
    """Paid monthly from 1 January 2026, approved 21 January (year one to 21 January 2027).
    Credited: the invoices of 1 February … 1 June (5 × 120.00) and the final invoice of the
    closure on 10 June (W1, K1: 1–9 June, 120 × 9/30 = 36.00): 636.00 drawn, 24,364.00 unused
    lapses on 10 June. Reopened on 11 June: Free, not a member, no credit. The closure ended
    its program: no renewal review opens on 22 December 2026, 30 days before the anniversary
    (CR3), reopened or not."""
    ws = paid_monthly(date(2026, 1, 1))
    app = startups.approve_application(
        application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21)
    )
    services.run_billing(as_of=date(2026, 6, 9))
    services.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 6, 10))
    final = Invoice.objects.get(workspace=ws, kind="final")
    assert (final.subtotal, final.credits, final.total) == (D("36.00"), D("36.00"), D("0.00"))
    year_one = CreditGrant.objects.get(workspace=ws, year=1)
    lapse = year_one.entries.get(kind=CreditLedgerEntry.Kind.LAPSE)
    assert (lapse.on, lapse.amount) == (date(2026, 6, 10), D("-24364.00"))
    assert (ledger_adds_up(year_one), year_one.lapsed_on) == (D("0.00"), date(2026, 6, 10))
    services.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 6, 11))
    status = workspace_status(ws, as_of=date(2026, 6, 11))
    assert (status["plan"], status["startup_member"], status["credit_balance"]) == (
        "free",
        False,
        D("0.00"),
    )

    services.run_billing(as_of=date(2027, 1, 21))
    assert not RenewalReview.objects.filter(application=app).exists()
    assert not CreditGrant.objects.filter(workspace=ws, year=2).exists()


def test_cr3_w1_a_renewal_opened_before_a_closure_cannot_be_confirmed_after_reopening(
    db, reviewer, support
):
    """Approved 21 January 2026; the renewal review opens on 22 December 2026, due 21 January
    2027. The workspace is closed on 28 December and reopened on 29 December: confirming year
    two on 5 January 2027 is refused, naming the closure; the reviewer declines it."""
    ws = paid_monthly(date(2026, 1, 1), name="Acme")
    app = startups.approve_application(
        application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21)
    )
    services.run_billing(as_of=date(2026, 12, 22))
    review = RenewalReview.objects.get(application=app)
    services.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 12, 28))
    services.reopen_workspace(ws, by=support, reason="Came back", as_of=date(2026, 12, 29))
    services.run_billing(as_of=date(2027, 1, 4))
    refused = r"Year two is refused: Acme \(.*\) was closed on 28 Dec 2026, which ended its program"
    with pytest.raises(startups.ApplicationError, match=refused):
        confirm_year_two(app, by=reviewer, as_of=date(2027, 1, 5))
    review.refresh_from_db()
    assert review.status == RenewalReview.Status.PENDING
    assert not CreditGrant.objects.filter(workspace=ws, year=2).exists()
    startups.decline_renewal(review, by=reviewer, note="Closed in December", as_of=date(2027, 1, 5))


def test_w1_cr2_closed_on_the_1st_the_months_invoice_that_day_gets_no_credit(db, reviewer, support):
    """An edge day of W1 against CR2: a member closed on 1 June 2026. May's invoice is issued
    that day by May's close (M1), after the closure dated 1 June (D1: the day's changes come
    first). The closure lapsed the credit at once, so May was not credited, 120.00 to pay,
    while closing on 31 May (final invoice for 1–30 May, credited) or 2 June (May credited)
    left nothing to pay for May. Since the twenty-fourth session the closure leaves May's close
    the credit valid that day (CR2) and the clock lapses the rest after it, dated 1 June."""
    ws = paid_monthly(date(2026, 1, 1))
    startups.approve_application(application(workspace=ws), by=reviewer, as_of=date(2026, 1, 21))
    services.run_billing(as_of=date(2026, 5, 31))
    services.close_workspace(ws, by=support, reason="Asked to delete", as_of=date(2026, 6, 1))
    services.run_billing(as_of=date(2026, 6, 1))
    may = Invoice.objects.get(workspace=ws, issue_date=date(2026, 6, 1))
    assert (may.kind, may.period_start, may.subtotal, may.credits, may.total) == (
        "monthly",
        date(2026, 5, 1),
        D("120.00"),
        D("120.00"),
        D("0.00"),
    )
    assert not Invoice.objects.filter(workspace=ws, kind="final").exists()
    lapse = CreditGrant.objects.get(workspace=ws).entries.get(kind=CreditLedgerEntry.Kind.LAPSE)
    # 25,000.00 less the 5 invoices of 1 February … 1 June.
    assert (lapse.on, lapse.amount) == (date(2026, 6, 1), D("-24400.00"))


# --- 6. A void of an invoice in a month already reported ---------------------------------------


def _csv_rows(**months):
    out = io.StringIO()
    args = [f"--{k}={v}" for k, v in months.items()]
    call_command("export_invoices", *args, stdout=out)
    return list(csv.DictReader(io.StringIO(out.getvalue())))


def _tax_rows():
    return {
        (row["month"], row["jurisdiction"]): (row["invoices"], row["taxable"], row["tax_total"])
        for row in reports.tax_report()
    }


def test_x3_i3_voiding_last_months_invoice_changes_that_months_report_and_csv_alike(db, finance):
    """Two Californian workspaces (7.25 %), paid monthly from 1 January 2026: each invoice is
    120.00 + 8.70 = 128.70. Issued 1 February: 2 invoices, 240.00 taxable, 17.40 tax; likewise
    1 March. The code has no filed or closed tax month: voiding one of February's invoices on
    10 March takes it out of February's report (1 invoice, 120.00, 8.70); March's stays. The CSV
    for February still lists both, the voided one with status `void` and its figures as issued;
    its non-void rows add up to the report."""
    first = paid_monthly(date(2026, 1, 1), business_region="CA", slug="ca-one")
    paid_monthly(date(2026, 1, 1), business_region="CA", slug="ca-two")
    services.run_billing(as_of=date(2026, 3, 1))
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    both = (2, D("240.00"), D("17.40"))
    assert _tax_rows() == {(feb, "US-CA"): both, (mar, "US-CA"): both}

    voided = Invoice.objects.get(workspace=first, issue_date=feb)
    services.void_invoice(voided, by=finance, reason="Duplicate", as_of=date(2026, 3, 10))
    assert _tax_rows() == {(feb, "US-CA"): (1, D("120.00"), D("8.70")), (mar, "US-CA"): both}

    rows = _csv_rows(**{"from": "2026-02", "to": "2026-02"})
    assert [(r["number"], r["status"], r["tax"], r["total"]) for r in rows] == [
        (voided.number, "void", "8.70", "128.70"),
        (rows[1]["number"], "issued", "8.70", "128.70"),
    ]
    standing = [r for r in rows if r["status"] != "void"]
    assert sum(D(r["tax"]) for r in standing) == D("8.70")
    assert sum(D(r["subtotal"]) - D(r["discount"]) - D(r["credits"]) for r in standing) == D(
        "120.00"
    )


# --- 7. Invoice numbers across the new year ----------------------------------------------------


@pytest.mark.parametrize("how", ["daily", "catch-up", "close-late"])
def test_i1_m1_december_closed_in_january_numbers_from_inv_2027_000001(db, how):
    """Three paid monthly workspaces from 1 November 2026. November's close (1 December)
    issues INV-2026-000001 … 000003. `leaver` cancels on 31 December: its final invoice dated
    31 December bills 1–30 December, 120 × 30/31 = 116.129… → 116.13: INV-2026-000004.
    December's close, whether the clock runs daily, catches up on 5 January or the close itself
    runs on 5 January, issues the other two invoices dated 1 January 2027 (M1) as
    INV-2027-000001 and 000002 (I1: the issue date's year, gapless, restarted); `leaver` gets
    no December invoice (K1)."""
    workspaces = [paid_monthly(date(2026, 11, 1), slug=s) for s in ("one", "two", "leaver")]
    leaver = workspaces[2]
    if how == "daily":
        day = date(2026, 11, 1)
        while day <= date(2026, 12, 30):
            services.run_billing(as_of=day)
            day += timedelta(days=1)
    else:
        services.run_billing(as_of=date(2026, 12, 1))
    services.change_to_free(leaver, as_of=date(2026, 12, 31))
    if how == "daily":
        day = date(2026, 12, 31)
        while day <= date(2027, 1, 5):
            services.run_billing(as_of=day)
            day += timedelta(days=1)
    elif how == "catch-up":
        services.run_billing(as_of=date(2027, 1, 5))
    else:
        services.run_billing(as_of=date(2026, 12, 31))
        services.close_month(date(2026, 12, 1), as_of=date(2027, 1, 5))
        services.run_billing(as_of=date(2027, 1, 5))
    numbered = [
        (i.number, i.workspace.slug, i.kind, i.issue_date, i.total)
        for i in Invoice.objects.order_by("issue_date", "id")
    ]
    dec1, dec31, jan1 = date(2026, 12, 1), date(2026, 12, 31), date(2027, 1, 1)
    assert numbered == [
        ("INV-2026-000001", "one", "monthly", dec1, D("120.00")),
        ("INV-2026-000002", "two", "monthly", dec1, D("120.00")),
        ("INV-2026-000003", "leaver", "monthly", dec1, D("120.00")),
        ("INV-2026-000004", "leaver", "final", dec31, D("116.13")),
        ("INV-2027-000001", "one", "monthly", jan1, D("120.00")),
        ("INV-2027-000002", "two", "monthly", jan1, D("120.00")),
    ]
    assert dict(InvoiceSequence.objects.values_list("year", "last_number")) == {2026: 4, 2027: 2}
