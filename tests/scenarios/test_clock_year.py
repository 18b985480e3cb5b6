"""D1–D4 over a year: the clock run every day and the clock run once at the end give the same
invoices (written out below with their figures), strikes, locks, grants, emails and statuses,
with every kind of change, same-day ones included: a card added on a trial's end date, a card
replaced, a once coupon redeemed on the 1st, a certificate approved on the 1st, a tax rate
entered for the day it starts, a cancellation with its final invoice, a startup approval and
its renewal review."""

from datetime import date, timedelta

import pytest
from django.core import mail
from django.core.files.base import ContentFile
from django.db import transaction

from billing import services
from billing.errors import ClockBehind
from billing.models import Invoice, LockEvent, Strike, Workspace
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditGrant, CreditLedgerEntry
from startups import services as startups
from startups.models import RenewalReview
from tests.billing.factories import workspace
from tests.coupons.factories import PDF, coupon
from tests.startups.factories import application

from .clock import daily_and_catch_up, run_days, subscription_rows

START, END = date(2026, 1, 1), date(2027, 2, 1)


# Every invoice of the year: workspace, kind, issue date, subtotal, discount, credits, tax,
# total. Worked by hand from SPEC for the first rows of each workspace:
# - trial-card, late-card, coupon, cert-ca, startup, downgrader, tax-day: trial 1–14 January,
#   paid from the 15th (T3, T4): January 120 × 17/31 = 65.81 (M2), no overage (M3).
# - trial-card 12,000 MTUs: 120.00 + 2,000 × 0.01 = 140.00 from February.
# - coupon: 20 % once, redeemed on 1 February, the day January's invoice is issued (D1, C5):
#   65.81 − 13.16 = 52.65.
# - cert-ca, California 7.25 %: January taxed 4.77 (70.58); the certificate approved on 1 March
#   waives the tax of the invoice issued that day and after (X4).
# - startup: approved 10 February, 25,000.00 of credit from then (CR1, CR2): the invoice of
#   1 February is not credited, those from 1 March are, to 0.00.
# - downgrader, 11,000 MTUs: 130.00 a month; cancelled 20 April: final 120 × 19/30 = 76.00
#   + 1,000 × 0.01 = 86.00 (K1).
# - tax-day: Montana 2.5 % entered on 1 June from 1 June: the invoice issued that day is taxed
#   3.00 (X2, D1).
# - annual: 1,440.00 on 15 January (K2); 5,000 MTUs over each month from February: 50.00.
def _world():
    def make(slug, **kwargs):
        kwargs.setdefault("business_country", "US")
        kwargs.setdefault("business_region", "OR")
        return workspace(
            slug=slug, name=slug, billing_email=f"{slug}@example.com", as_of=START, **kwargs
        )

    ws = {
        "trial-card": make("trial-card", plan="team", card=True),
        "late-card": make("late-card", plan="team"),
        "no-card": make("no-card", plan="team"),
        "free-over": make("free-over", card=True),
        "coupon": make("coupon", plan="team", card=True),
        "cert-ca": make("cert-ca", plan="team", card=True, business_region="CA"),
        "startup": make(
            "startup", plan="team", card=True, business_country="DE", business_region=""
        ),
        "annual": make("annual", plan="team", interval="annual", card=True),
        "tax-day": make("tax-day", plan="team", card=True, business_region="MT"),
        "downgrader": make("downgrader", plan="team", card=True),
    }
    mtus = {"trial-card": 12_000, "annual": 15_000, "downgrader": 11_000}
    for month in range(1, 13):
        for slug, w in ws.items():
            figure = mtus.get(slug, 10_000 if slug != "free-over" else 500)
            if slug == "free-over" and month in (1, 2):
                figure = 3_000
            services.record_usage(w, month=date(2026, month, 1), mtus=figure)
    return ws


def _actions(day, ws, support, reviewer, finance, state):
    """Staff work on given days, identical in both runs: each before that day is processed."""
    if day == date(2026, 1, 5):
        state["certificate"] = services.submit_exemption(
            ws["cert-ca"],
            region="CA",
            reason="resale",
            document=ContentFile(PDF, name="c.pdf"),
            valid_from=date(2026, 1, 1),
            as_of=day,
        )
    if day == date(2026, 1, 15):  # the trials' end date
        services.add_payment_method(ws["late-card"], as_of=day, brand="Visa", last4="4242")
    if day == date(2026, 2, 1):
        code = coupon(code="ONCE20", percent_off="20", duration="once").code
        coupons.redeem_coupon(ws["coupon"], code, by=support, as_of=day, reason="Retention")
    if day == date(2026, 2, 10):
        startups.approve_application(
            application(
                workspace=ws["startup"],
                as_of=date(2026, 2, 9),
                company_name="Rocket Labs",
                contact_email="founder@rocket.example.com",
                website="https://rocket.example.com",
            ),
            by=reviewer,
            as_of=day,
        )
    if day == date(2026, 3, 1):
        services.approve_exemption(state["certificate"], by=finance, as_of=day)
    if day == date(2026, 3, 10):
        services.add_payment_method(ws["trial-card"], as_of=day, brand="Amex", last4="0005")
    if day == date(2026, 4, 20):
        services.change_to_free(ws["downgrader"], as_of=day, by=support, reason="Churned")
    if day == date(2026, 6, 1):
        services.set_tax_rate("US", region="MT", rate="2.5", name="MT test", valid_from=day)
        services.change_to_free(ws["annual"], as_of=day, by=support, reason="Ends at term")


STATUS_DAYS = [
    date(2026, 1, 20),
    date(2026, 2, 15),
    date(2026, 3, 5),
    date(2026, 3, 12),
    date(2026, 3, 20),
    date(2026, 12, 31),
    date(2027, 1, 20),
]


def _outcome(ws):
    return {
        "invoices": sorted(
            (
                i.workspace.slug,
                i.kind,
                i.issue_date.isoformat(),
                str(i.subtotal),
                str(i.discount),
                str(i.credits),
                str(i.tax),
                str(i.total),
            )
            for i in Invoice.objects.select_related("workspace")
        ),
        "numbers": sorted(Invoice.objects.values_list("number", flat=True)),
        "locks": sorted(Workspace.objects.values_list("slug", "lock", "data_flow")),
        "lock_events": sorted(
            LockEvent.objects.values_list("workspace__slug", "on", "to_lock", "cause")
        ),
        "strikes": sorted(Strike.objects.values_list("workspace__slug", "month")),
        "subscriptions": subscription_rows(),
        "grants": sorted(
            CreditGrant.objects.values_list("workspace__slug", "year", "valid_from", "remaining")
        ),
        "ledger": sorted(
            CreditLedgerEntry.objects.values_list("grant__workspace__slug", "kind", "on", "amount")
        ),
        "renewals": sorted(RenewalReview.objects.values_list("due_on", "status")),
        "emails": sorted((m.to[0], m.subject) for m in mail.outbox),
        "statuses": {
            (slug, day): tuple(sorted(workspace_status(w, as_of=day).items()))
            for slug, w in ws.items()
            for day in STATUS_DAYS
        },
    }


def _invoices_of(outcome, slug):
    """The workspace's invoices in issue order: kind, issue date, the five amounts."""
    return sorted((row[1:] for row in outcome["invoices"] if row[0] == slug), key=lambda r: r[1])


def test_d4_a_year_day_by_day_equals_one_catch_up(
    db, django_capture_on_commit_callbacks, support, reviewer, finance
):
    def run(daily):
        ws, state = _world(), {}

        def actions(day):
            _actions(day, ws, support, reviewer, finance, state)

        run_days(
            START, END, daily=daily, capture=django_capture_on_commit_callbacks, actions=actions
        )
        return _outcome(ws)

    daily, catch_up = daily_and_catch_up(run)
    for key in daily:
        assert daily[key] == catch_up[key], key

    outcome = daily
    month = [f"2026-{m:02d}-01" for m in range(2, 13)] + ["2027-01-01", "2027-02-01"]
    monthly = "monthly"
    assert _invoices_of(outcome, "trial-card") == [
        (monthly, "2026-02-01", "65.81", "0.00", "0.00", "0.00", "65.81"),
        *[(monthly, d, "140.00", "0.00", "0.00", "0.00", "140.00") for d in month[1:-1]],
        # No usage reported for January 2027: the base alone.
        (monthly, "2027-02-01", "120.00", "0.00", "0.00", "0.00", "120.00"),
    ]
    assert _invoices_of(outcome, "late-card") == [
        (monthly, "2026-02-01", "65.81", "0.00", "0.00", "0.00", "65.81"),
        *[(monthly, d, "120.00", "0.00", "0.00", "0.00", "120.00") for d in month[1:]],
    ]
    assert _invoices_of(outcome, "no-card") == []
    assert _invoices_of(outcome, "coupon")[:2] == [
        (monthly, "2026-02-01", "65.81", "13.16", "0.00", "0.00", "52.65"),
        (monthly, "2026-03-01", "120.00", "0.00", "0.00", "0.00", "120.00"),
    ]
    assert _invoices_of(outcome, "cert-ca")[:3] == [
        (monthly, "2026-02-01", "65.81", "0.00", "0.00", "4.77", "70.58"),
        (monthly, "2026-03-01", "120.00", "0.00", "0.00", "0.00", "120.00"),
        (monthly, "2026-04-01", "120.00", "0.00", "0.00", "0.00", "120.00"),
    ]
    # Germany, VAT 19 % after credits (X3): 65.81 × 0.19 = 12.50; nothing left to tax after.
    assert _invoices_of(outcome, "startup")[:3] == [
        (monthly, "2026-02-01", "65.81", "0.00", "0.00", "12.50", "78.31"),
        (monthly, "2026-03-01", "120.00", "0.00", "120.00", "0.00", "0.00"),
        (monthly, "2026-04-01", "120.00", "0.00", "120.00", "0.00", "0.00"),
    ]
    assert _invoices_of(outcome, "downgrader") == [
        (monthly, "2026-02-01", "65.81", "0.00", "0.00", "0.00", "65.81"),
        (monthly, "2026-03-01", "130.00", "0.00", "0.00", "0.00", "130.00"),
        (monthly, "2026-04-01", "130.00", "0.00", "0.00", "0.00", "130.00"),
        ("final", "2026-04-20", "86.00", "0.00", "0.00", "0.00", "86.00"),
    ]
    tax_day = _invoices_of(outcome, "tax-day")
    assert tax_day[3:6] == [
        (monthly, "2026-05-01", "120.00", "0.00", "0.00", "0.00", "120.00"),
        (monthly, "2026-06-01", "120.00", "0.00", "0.00", "3.00", "123.00"),
        (monthly, "2026-07-01", "120.00", "0.00", "0.00", "3.00", "123.00"),
    ]
    assert _invoices_of(outcome, "annual")[:3] == [
        ("annual", "2026-01-15", "1440.00", "0.00", "0.00", "0.00", "1440.00"),
        (monthly, "2026-03-01", "50.00", "0.00", "0.00", "0.00", "50.00"),
        (monthly, "2026-04-01", "50.00", "0.00", "0.00", "0.00", "50.00"),
    ]

    # F1, F2: two months over the Free limit, then data stopped for good (F3).
    assert ("free-over", "locked_data_stopped", False) in outcome["locks"]
    free_over = [e for e in outcome["lock_events"] if e[0] == "free-over"]
    assert [(e[1], e[2], e[3]) for e in free_over] == [
        (date(2026, 2, 1), "locked", "free_limit"),
        (date(2026, 3, 1), "locked_data_stopped", "free_limit"),
    ]
    statuses = outcome["statuses"]

    def status(slug, day):
        return dict(statuses[(slug, day)])

    assert status("free-over", date(2026, 1, 20))["lock"] == "unlocked"
    assert status("free-over", date(2026, 2, 15))["lock"] == "locked"
    assert status("free-over", date(2026, 3, 5))["data_flow"] is False
    # S4, CR3: a member while the grant is valid; the renewal review opened 30 days ahead.
    assert status("startup", date(2026, 12, 31))["startup_member"] is True
    assert outcome["renewals"] == [(date(2027, 2, 10), "pending")]
    assert status("no-card", date(2026, 2, 15))["plan"] == "free"


def test_d4_f4_f7_a_change_waits_for_a_close_the_lagging_clock_has_not_run(
    db, django_capture_on_commit_callbacks, support
):
    """D4: a change dated past a month close the clock has not yet run is refused (it would
    act before that close: an upgrade on 10 March with February's close still to come lifts
    no lock, so F7 has nothing to restore); once the clock has run through the day before,
    the same change gives the lock events of the daily run."""
    results = []
    for daily in (True, False):
        sid = transaction.savepoint()
        ws = workspace(slug="lagging", as_of=START, card=True)
        for month in (1, 2):
            services.record_usage(ws, month=date(2026, month, 1), mtus=3_000)
        services.run_billing(as_of=START)  # the clock runs from the first day
        day = START
        while day <= date(2026, 3, 31):
            if day == date(2026, 3, 10):
                if not daily:
                    with pytest.raises(ClockBehind) as refused:
                        services.change_to_team(ws, as_of=day, by=support, reason="Upgrade")
                    assert str(refused.value) == (
                        "A plan change dated 10 Mar 2026 must wait: the billing clock has "
                        "processed every day through 1 Jan 2026 and has not yet run the month "
                        "close due on 1 Feb 2026. Run the clock through 9 Mar 2026 first, or "
                        "date it 1 Feb 2026 at the latest."
                    )
                    services.run_billing(as_of=day - timedelta(days=1))
                services.change_to_team(ws, as_of=day, by=support, reason="Upgrade")
            if day == date(2026, 3, 15):
                services.change_to_free(ws, as_of=day, by=support, reason="Changed mind")
            if daily:
                services.run_billing(as_of=day)
            day += timedelta(days=1)
        services.run_billing(as_of=date(2026, 3, 31))
        results.append(sorted(LockEvent.objects.values_list("on", "to_lock", "cause")))
        transaction.savepoint_rollback(sid)
    assert results[0] == results[1]
    # 3,000 MTUs on Free in January and February: locked on 1 February, data stopped on
    # 1 March (F1–F3); the upgrade on 10 March lifts it (F4); back to Free on 15 March, inside
    # the trial, restores the data stop the upgrade lifted (F7).
    assert results[0] == [
        (date(2026, 2, 1), "locked", "free_limit"),
        (date(2026, 3, 1), "locked_data_stopped", "free_limit"),
        (date(2026, 3, 10), "unlocked", "moved_to_team"),
        (date(2026, 3, 15), "locked_data_stopped", "trial_not_paid"),
    ]
