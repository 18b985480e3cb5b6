"""D1–D3 and I6: the billing clock processes whole days once they have ended, refuses changes
dated on a day it has processed, reads the past from dated history, and one bad figure cannot
stop a month close."""

import re
from datetime import date, timedelta
from decimal import Decimal as D
from html import unescape
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import OperationalError
from django.utils import timezone
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing import services, tasks
from billing.clock import last_processed_day
from billing.errors import BillingError, DayAlreadyProcessed, UsageImportError
from billing.models import Invoice, MonthClose, Plan, SetAsideInvoice, Subscription, Usage
from billing.months import parse_month
from billing.selectors import workspace_status
from coupons import services as coupons
from tests.billing.factories import invoice_totals, paid_annual, workspace
from tests.coupons.factories import coupon, paid_monthly


def test_d1_run_billing_defaults_to_yesterday_and_refuses_a_day_not_ended(db):
    workspace(as_of=date(2026, 1, 1))
    today = timezone.now().date()
    out = StringIO()
    call_command("run_billing", stdout=out)
    assert f"Billing run through {today - timedelta(days=1)}" in out.getvalue()
    assert last_processed_day() == today - timedelta(days=1)
    with pytest.raises(CommandError, match="has not ended yet"):
        call_command("run_billing", "--as-of", today.isoformat())
    call_command("run_billing", "--as-of", today.isoformat(), "--allow-future", stdout=out)
    assert last_processed_day() == today


def test_i6_run_billing_refuses_a_day_outside_sane_years(db):
    with pytest.raises(CommandError, match="outside the years"):
        call_command("run_billing", "--as-of", "9999-12-31", "--allow-future")
    assert not Invoice.objects.exists()


def test_d1_a_day_already_processed_is_a_no_op(db):
    ws = workspace(as_of=date(2026, 1, 1), plan="team", card=True)
    first = services.run_billing(as_of=date(2026, 2, 1))
    assert first["months_closed"] == 1 and last_processed_day() == date(2026, 2, 1)
    assert services.run_billing(as_of=date(2026, 2, 1)) == {}
    assert services.run_billing(as_of=date(2026, 1, 20)) == {}
    assert Invoice.objects.filter(workspace=ws).count() == 1


def test_d2_changes_dated_on_a_processed_day_are_refused_naming_it(db, support):
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.run_billing(as_of=date(2026, 1, 31))
    message = "has already processed every day through 31 Jan 2026. Date it 1 Feb 2026 or later."
    attempts = [
        lambda: services.change_to_team(ws, as_of=date(2026, 1, 31)),
        lambda: services.add_payment_method(ws, as_of=date(2026, 1, 15), last4="4242"),
        lambda: services.remove_payment_method(ws, as_of=date(2026, 1, 2)),
        lambda: coupons.redeem_coupon(ws, coupon().code, by=support, as_of=date(2026, 1, 31)),
        lambda: services.set_tax_rate(
            "US", region="OR", rate="1", name="OR", valid_from=date(2026, 1, 1)
        ),
        lambda: services.create_workspace(
            "Late",
            slug="late",
            business_country="DE",
            billing_email="late@example.com",
            as_of=date(2026, 1, 10),
        ),
    ]
    for attempt in attempts:
        with pytest.raises(DayAlreadyProcessed, match=message):
            attempt()
    services.change_to_team(ws, as_of=date(2026, 2, 1))  # the next day is open
    assert ws.subscriptions.get(ended_on=None).started_on == date(2026, 2, 1)


def test_d2_usage_for_a_closed_month_is_refused_naming_the_lines(db):
    ws = workspace(as_of=date(2026, 1, 1), slug="alpha", name="Alpha")
    services.run_billing(as_of=date(2026, 2, 1))
    # One colon: it read "was not recorded: 2026-01 is closed: its invoices are issued".
    closed = (
        r"^Usage for Alpha \(alpha\) was not recorded: January 2026 is closed "
        r"\(its invoices are issued\)\. A figure billed wrong is set right by a credit note on "
        r"its invoice \(K3\)\.$"
    )
    with pytest.raises(BillingError, match=closed):
        services.record_usage(ws, month=date(2026, 1, 1), mtus=5)
    rows = [(2, {"workspace": "alpha", "month": "2026-02", "mtus": "5"})]
    rows.append((3, {"workspace": "alpha", "month": "2026-01", "mtus": "5"}))
    with pytest.raises(UsageImportError) as refused:
        services.import_usage(rows)
    assert refused.value.errors == ["Line 3: 2026-01 is closed (its invoices are issued)."]
    assert not Usage.objects.exists()


@pytest.mark.parametrize("daily", [True, False])
def test_d1_t4_a_card_added_on_the_trial_end_date_converts_daily_and_caught_up(db, daily):
    ws = workspace(as_of=date(2026, 1, 1), plan="team")
    day = date(2026, 1, 1)
    while day <= date(2026, 1, 20):
        if day == date(2026, 1, 15):  # the end date: T3's D+14
            services.add_payment_method(ws, as_of=day, last4="4242")
        if daily:
            services.run_billing(as_of=day)
        day += timedelta(days=1)
    services.run_billing(as_of=date(2026, 1, 20))
    sub = Subscription.objects.get(workspace=ws, plan__code="team")
    assert sub.trial_outcome == "converted"


def test_d3_t4_a_card_replaced_after_the_end_date_still_converts(db):
    ws = workspace(as_of=date(2026, 1, 1), plan="team", card=True)
    services.add_payment_method(ws, as_of=date(2026, 1, 20), brand="Visa", last4="1111")
    services.run_billing(as_of=date(2026, 1, 31))
    sub = Subscription.objects.get(workspace=ws, plan__code="team")
    assert sub.trial_outcome == "converted"
    cards = list(ws.payment_methods.order_by("added_on").values_list("added_on", "removed_on"))
    assert cards == [(date(2026, 1, 1), date(2026, 1, 20)), (date(2026, 1, 20), None)]


@pytest.mark.parametrize("daily", [True, False])
def test_d1_c5_a_once_coupon_redeemed_on_the_first_lands_on_that_days_invoice(db, support, daily):
    ws = paid_monthly(as_of=date(2026, 1, 1))
    code = coupon(percent_off="50", duration="once").code
    if daily:
        services.run_billing(as_of=date(2026, 1, 31))
    coupons.redeem_coupon(ws, code, by=support, as_of=date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    assert invoice_totals(ws, date(2026, 2, 1)) == (D("120.00"), D("60.00"), D("60.00"))


def test_d3_k2_the_status_on_a_day_before_an_annual_cancellation_is_not_cancelled(db):
    """K2: annual Team from 1 January 2026 (term to 31 December), cancelled on 10 March: it
    runs to its term's end, then Free. workspace_status on 9 March said "cancelled" too (the
    flag as it stands today); from 10 March it does. Withdrawn on 20 March (back on Team,
    annual), it is not cancelled from then."""
    ws = paid_annual(as_of=date(2026, 1, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 10))
    cancelled = {
        day: workspace_status(ws, as_of=day)["cancel_at_term_end"]
        for day in (date(2026, 3, 9), date(2026, 3, 10), date(2026, 12, 31))
    }
    assert cancelled == {date(2026, 3, 9): False, date(2026, 3, 10): True, date(2026, 12, 31): True}
    services.change_to_team(ws, interval="annual", as_of=date(2026, 3, 20))
    assert not workspace_status(ws, as_of=date(2026, 3, 25))["cancel_at_term_end"]
    assert workspace_status(ws, as_of=date(2026, 3, 19))["cancel_at_term_end"]  # as it stood
    term = Subscription.objects.get(workspace=ws, ended_on=None)
    assert (term.cancelled_on, term.cancel_withdrawn_on) == (date(2026, 3, 10), date(2026, 3, 20))
    # Cancelled again on 1 April: the row keeps only that one; the days of the first are
    # read from its history (they read "not cancelled" before).
    services.change_to_free(ws, as_of=date(2026, 4, 1))
    days = [date(2026, 3, d) for d in (9, 10, 19, 20, 31)] + [date(2026, 4, 1)]
    assert [workspace_status(ws, as_of=d)["cancel_at_term_end"] for d in days] == [
        False,  # 9 March
        True,  # 10 March: the first cancellation
        True,
        False,  # 20 March: withdrawn
        False,
        True,  # 1 April: the second
    ]


def test_d3_status_as_of_past_days_is_read_from_history_not_the_callers_copy(db, support):
    ws = workspace(as_of=date(2026, 1, 1))
    stale = workspace_status(ws, as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=3_000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=3_000)
    services.run_billing(as_of=date(2026, 3, 1))
    services.unlock_workspace(ws, by=support, reason="Goodwill", as_of=date(2026, 3, 5))
    services.add_payment_method(ws, as_of=date(2026, 3, 6), last4="4242")
    # `ws` is the copy loaded before the clock ran: it still says unlocked.
    assert ws.lock == "unlocked" and stale["lock"] == "unlocked"
    expected = {
        date(2026, 1, 31): ("unlocked", True, False),
        date(2026, 2, 1): ("locked", True, False),
        date(2026, 3, 1): ("locked_data_stopped", False, False),
        date(2026, 3, 4): ("locked_data_stopped", False, False),
        date(2026, 3, 5): ("unlocked", True, False),
        date(2026, 3, 6): ("unlocked", True, True),
    }
    for day, (lock, data_flow, card) in expected.items():
        status = workspace_status(ws, as_of=day)
        assert (status["lock"], status["data_flow"], status["has_payment_method"]) == (
            lock,
            data_flow,
            card,
        ), day


def test_d3_workspace_status_takes_the_day_as_designs_contract_writes_it(db):
    """DESIGN's contract and SPEC D3 write `workspace_status(workspace, as_of)`: a tool that
    passes the day second, by position, gets the same answer as one that names it."""
    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=3_000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert workspace_status(ws, date(2026, 2, 1)) == workspace_status(ws, as_of=date(2026, 2, 1))
    assert workspace_status(ws, date(2026, 2, 1))["lock"] == "locked"
    assert workspace_status(ws, date(2026, 1, 31))["lock"] == "unlocked"


def test_i6_usage_above_ten_billion_mtus_is_refused_at_input(db):
    ws = workspace(as_of=date(2026, 1, 1), slug="big")
    with pytest.raises(BillingError, match="more than the 10,000,000,000"):
        services.record_usage(ws, month=date(2026, 1, 1), mtus=10_000_000_001)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=10_000_000_000)
    rows = [(2, {"workspace": "big", "month": "2026-02", "mtus": str(2**64)})]
    with pytest.raises(UsageImportError, match="Line 2: .* more than the 10,000,000,000"):
        services.import_usage(rows)


@pytest.mark.parametrize("text", ["9999-12", "0001-01", "0000-01", "1999-12", "2100-01"])
def test_i6_months_outside_sane_years_are_refused(text):
    with pytest.raises(ValueError, match="outside the months this system bills"):
        parse_month(text)


def test_i6_a_close_sets_aside_what_it_cannot_bill_and_bills_it_once_fixed(db):
    good = paid_monthly(as_of=date(2026, 1, 1), slug="good")
    bad = paid_monthly(as_of=date(2026, 1, 1), slug="bad")
    # A figure from before input was bounded: its overage is beyond what an invoice holds.
    Usage.objects.create(workspace=bad, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    close = MonthClose.objects.get(month=date(2026, 1, 1))
    assert close.finished
    assert Invoice.objects.get(workspace=good).total == D("120.00")
    assert not Invoice.objects.filter(workspace=bad).exists()
    entry = SetAsideInvoice.objects.get(close=close, workspace=bad)
    assert "beyond what an invoice can hold" in entry.error and entry.resolved_on is None
    services.run_billing(as_of=date(2026, 2, 2))  # still wrong: still set aside
    assert SetAsideInvoice.objects.get(pk=entry.pk).resolved_on is None

    Usage.objects.filter(workspace=bad).update(mtus=12_000)  # the figure corrected
    services.run_billing(as_of=date(2026, 2, 3))
    entry.refresh_from_db()
    assert entry.resolved_on == date(2026, 2, 3)
    invoice = Invoice.objects.get(workspace=bad)
    assert (invoice.issue_date, invoice.total) == (date(2026, 2, 1), D("140.00"))
    services.run_billing(as_of=date(2026, 2, 4))
    assert Invoice.objects.filter(workspace=bad).count() == 1  # I4


def test_i6_a_set_aside_invoice_is_warned_of_once_and_again_only_for_a_new_error(db, caplog):
    """The close sets the workspace aside and the retry right after it fails alike: one
    warning; the next day's retry fails alike: none; a new error: a warning again."""
    bad = paid_monthly(as_of=date(2026, 1, 1), slug="bad")
    Usage.objects.create(workspace=bad, month=date(2026, 1, 1), mtus=10**13)

    def warnings():
        found = [
            r.getMessage()
            for r in caplog.records
            if r.levelname == "WARNING" and "set aside" in r.getMessage()
        ]
        caplog.clear()
        return found

    with caplog.at_level("INFO", logger="billing"):
        services.run_billing(as_of=date(2026, 2, 1))
        assert len(warnings()) == 1
        services.run_billing(as_of=date(2026, 2, 2))
        assert warnings() == []
        entry = SetAsideInvoice.objects.get(workspace=bad)
        SetAsideInvoice.objects.filter(pk=entry.pk).update(error="an error of before")
        services.run_billing(as_of=date(2026, 2, 3))
        (warning,) = warnings()
        assert f"workspace {bad.pk} set aside: " in warning


@pytest.mark.parametrize("how", ["record_usage", "import_usage"])
def test_i6_d2_support_corrects_the_figure_that_set_an_invoice_aside(db, how):
    """An overage rate of $2.00 and a figure of 10,000,000,000 MTUs (both accepted at input)
    bill (10^10 − 10,000) × 2.00 + 120.00 = $19,999,980,120.00, beyond what an invoice holds
    ($9,999,999,999.99): the close sets the invoice aside (I6). The figure could not be
    corrected: usage for a closed month is refused (D2), "set right by a credit note on its
    invoice", and there is no invoice, so the workspace was never billed again (the operator's
    walk 8). D2 refuses a closed month's usage because it is billed; a set-aside workspace's is
    not: its figure for that month is taken, by hand and by import, and the next run bills it
    (12,000 MTUs: 2,000 × 2.00 + 120.00 = 4,120.00). Another workspace's figure for the month
    is still refused, and so is this one's once its invoice is issued."""
    services.update_plan(
        Plan.objects.get(code="team"),
        by=None,
        reason="Overage at $2.00",
        effective_on=date(2026, 1, 1),
        overage_rate=D("2.0000"),
    )
    good = paid_monthly(as_of=date(2026, 1, 1), slug="good")
    bad = paid_monthly(as_of=date(2026, 1, 1), slug="bad")
    services.record_usage(bad, month=date(2026, 1, 1), mtus=10_000_000_000)
    services.run_billing(as_of=date(2026, 2, 1))
    assert SetAsideInvoice.objects.get(workspace=bad).resolved_on is None

    def correct(ws, mtus):
        if how == "record_usage":
            services.record_usage(ws, month=date(2026, 1, 1), mtus=mtus, as_of=date(2026, 2, 2))
        else:
            row = {"workspace": ws.slug, "month": "2026-01", "mtus": str(mtus)}
            services.import_usage([(2, row)], as_of=date(2026, 2, 2))

    with pytest.raises(BillingError, match="closed"):
        correct(good, 11_000)
    correct(bad, 12_000)
    assert Usage.objects.get(workspace=bad).mtus == 12_000

    services.run_billing(as_of=date(2026, 2, 2))
    invoice = Invoice.objects.get(workspace=bad)
    assert (invoice.issue_date, invoice.subtotal) == (date(2026, 2, 1), D("4120.00"))
    assert SetAsideInvoice.objects.get(workspace=bad).resolved_on == date(2026, 2, 2)
    with pytest.raises(BillingError, match="closed"):
        correct(bad, 13_000)
    assert Usage.objects.get(workspace=bad).mtus == 12_000


@pytest.mark.parametrize("how", ["record_usage", "import_usage"])
def test_i6_d2_a_figure_checked_before_its_set_aside_invoice_was_billed_is_refused(
    db, how, monkeypatch
):
    """The second attacker's walk 8, on PostgreSQL: support's figure for a set-aside month was
    checked (the invoice still set aside), the clock's retry then billed the invoice from the
    old figure (120.00, no overage), and the figure (500,000 MTUs) was written after it: the
    month's usage no longer matched its invoice, and no later write could correct it. Here the
    retry runs between the check and the write, as it did there; the figure is checked again
    once the workspace's row is held (the retry holds it while it bills), and refused."""
    from billing import month_close, usage, usage_import

    bad = paid_monthly(as_of=date(2026, 1, 1), slug="bad")
    Usage.objects.create(workspace=bad, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    services.record_usage(bad, month=date(2026, 1, 1), mtus=12_000, as_of=date(2026, 2, 2))

    def then_the_retry(check):
        def checked(*args, **kwargs):
            found = check(*args, **kwargs)
            month_close.retry_set_aside(as_of=date(2026, 2, 2))  # bills it from 12,000
            return found

        return checked

    if how == "record_usage":
        monkeypatch.setattr(usage, "_check_usage", then_the_retry(usage._check_usage))
        with pytest.raises(BillingError, match="January 2026 is closed"):
            services.record_usage(bad, month=date(2026, 1, 1), mtus=500_000, as_of=date(2026, 2, 2))
    else:
        monkeypatch.setattr(
            usage_import, "_refuse_bad_lines", then_the_retry(usage_import._refuse_bad_lines)
        )
        row = {"workspace": "bad", "month": "2026-01", "mtus": "500000"}
        with pytest.raises(UsageImportError, match="Line 2: 2026-01 is closed"):
            services.import_usage([(2, row)], as_of=date(2026, 2, 2))

    # (The retry ran inside the refused change here, so it was rolled back with it; the
    # clock's own run bills the figure as it stands.)
    assert Usage.objects.get(workspace=bad).mtus == 12_000
    services.run_billing(as_of=date(2026, 2, 2))
    assert Invoice.objects.get(workspace=bad).subtotal == D("140.00")


def test_d1_i6_a_run_for_a_day_already_processed_bills_no_set_aside_invoice(db):
    """An operator reran 20 January (a typo) with the clock at 1 February, after a set-aside
    figure was corrected: the run issued the invoice and recorded it billed on 20 January,
    before the close that set it aside. A processed day is a no-op; the next run bills it."""
    bad = paid_monthly(as_of=date(2026, 1, 1), slug="bad")
    Usage.objects.create(workspace=bad, month=date(2026, 1, 1), mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    Usage.objects.filter(workspace=bad).update(mtus=12_000)
    assert services.run_billing(as_of=date(2026, 1, 20)) == {}
    assert not Invoice.objects.filter(workspace=bad).exists()
    services.run_billing(as_of=date(2026, 2, 1))  # the day the clock stands at: retried
    assert SetAsideInvoice.objects.get(workspace=bad).resolved_on == date(2026, 2, 1)
    assert Invoice.objects.get(workspace=bad).total == D("140.00")


def test_i6_r3_finance_reads_the_set_aside_workspaces_on_the_close_page(client, finance, db):
    """I6: what a close could not bill is listed on its page, for finance who reads the
    close, in a number of queries that does not grow with the rows."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    close = MonthClose.objects.create(month=date(2026, 1, 1), closed_on=date(2026, 2, 1))
    url = reverse("admin:billing_monthclose_change", args=[close.pk])

    def set_aside(count):
        for n in range(SetAsideInvoice.objects.count(), SetAsideInvoice.objects.count() + count):
            ws = paid_monthly(as_of=date(2026, 2, 1), name=f"Set aside {n}", slug=f"aside-{n}")
            SetAsideInvoice.objects.create(
                close=close, workspace=ws, error=f"Error {n}", first_seen_on=date(2026, 2, 1)
            )

    def queries():
        with CaptureQueriesContext(connection) as captured:
            response = client.get(url)
        assert response.status_code == 200
        return len(captured), response.content.decode()

    client.force_login(finance)
    set_aside(3)
    queries()  # the session and the content types, once
    with_3, body = queries()
    assert "Set aside 2" in body and "Error 2" in body
    set_aside(20)
    with_23, body = queries()
    assert "Set aside 22" in body and with_23 == with_3
    # The close is named as people name the month (it read "2026-01").
    assert "<h2>January 2026</h2>" in body


@pytest.mark.postgres
def test_i6_one_unbillable_workspace_among_thousands_on_postgresql(db):
    """The PostgreSQL close (COPY writes) with one figure no invoice can hold: the other 1,999
    invoices are issued, the one is set aside, and billed once corrected."""
    from bench.dataset import build_workspaces
    from tests.services import require_postgres

    require_postgres()
    build_workspaces(team=2_000, free=0, months=["2026-01-01"], month_of_team="2026-01-01")
    bad = Usage.objects.filter(month=date(2026, 1, 1)).order_by("workspace_id")[1_000]
    Usage.objects.filter(pk=bad.pk).update(mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 1))
    january = Invoice.objects.filter(issue_date=date(2026, 2, 1))
    assert january.count() == 1_999
    entry = SetAsideInvoice.objects.get()
    assert entry.workspace_id == bad.workspace_id and "beyond what an invoice" in entry.error
    Usage.objects.filter(pk=bad.pk).update(mtus=12_000)
    services.run_billing(as_of=date(2026, 2, 2))
    assert january.count() == 2_000
    assert len(set(january.values_list("number", flat=True))) == 2_000


def test_i1_d4_an_annual_invoice_a_change_brings_forward_waits_for_one_the_clock_takes_first(
    db, support
):
    """Two annual trials with a card from 1 January end on the 15th; a daily clock bills them
    workspace by workspace: "first" INV-2026-000001, "second" INV-2026-000002. With the clock
    at the 5th, a change to "second" dated the 20th brought its trial's end forward and took
    000001. It now waits for the clock, which then numbers them as a daily clock does."""
    from billing.errors import ClockBehind
    from billing.models import Invoice
    from tests.billing.factories import workspace

    annual_trial = {"as_of": date(2026, 1, 1), "plan": "team", "interval": "annual", "card": True}
    first = workspace(slug="first", **annual_trial)
    second = workspace(slug="second", **annual_trial)
    assert first.pk < second.pk
    services.run_billing(as_of=date(2026, 1, 5))

    def change():
        services.change_interval(
            second, interval="monthly", as_of=date(2026, 1, 20), by=support, reason="Asked"
        )

    with pytest.raises(ClockBehind, match="yet to bill .*annual Team due on 15 Jan 2026"):
        change()
    assert not Invoice.objects.exists()
    services.run_billing(as_of=date(2026, 1, 19))
    change()
    assert sorted(Invoice.objects.values_list("workspace__slug", "issue_date", "number")) == [
        ("first", date(2026, 1, 15), "INV-2026-000001"),
        ("second", date(2026, 1, 15), "INV-2026-000002"),
    ]


def test_k1_t5_a_change_dated_before_the_current_subscription_starts_is_refused(db, support):
    """With the clock at 5 January, a move to Team dated the 20th and then a cancellation dated
    the 10th (D2 allows both) wrote a subscription ending before it started: the database's
    check refused it (an IntegrityError, a 500). Now refused, saying why: changes to a
    workspace go in date order (D4)."""
    from billing.errors import BillingError
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 1), card=True, slug="early")
    services.run_billing(as_of=date(2026, 1, 5))
    services.change_to_team(ws, as_of=date(2026, 1, 20), by=support, reason="Upgrade")
    with pytest.raises(
        BillingError, match="cannot be dated 10 Jan 2026: a change dated 20 Jan 2026"
    ):
        services.change_to_free(ws, as_of=date(2026, 1, 10), by=support, reason="Cancel")
    with pytest.raises(BillingError, match="a change dated 20 Jan 2026 was entered already"):
        services.change_interval(
            ws, interval="annual", as_of=date(2026, 1, 12), by=support, reason="Asked"
        )


@pytest.mark.parametrize("as_of", ["20260101", "2026-W01-1", "2026-1-1", "2026-01-01T00:00"])
def test_d1_run_billing_takes_a_day_only_as_yyyy_mm_dd(db, as_of):
    """`--as-of 2026-W01-1` ran the clock through 2025-12-29 and `20260101` through New Year's
    Day: any ISO form was read. Only YYYY-MM-DD is, as the option says."""
    with pytest.raises(CommandError, match="--as-of must be a date as YYYY-MM-DD"):
        call_command("run_billing", "--as-of", as_of, "--allow-future")
    assert last_processed_day() is None


# --- The clock on Celery: a close's hand-over and database errors -----------------------------


def broker_down(*args, **kwargs):
    raise BrokerUnavailable("Error 111 connecting to 127.0.0.1:6379. Connection refused.")


@pytest.fixture
def close_finished_while_the_broker_was_down(db, monkeypatch):
    """1 February's run waits for January's close on the workers; its one chunk bills the
    invoice and finishes the close, then cannot hand the day back to the run: the broker is
    down that moment, and the task fails."""
    paid_monthly(date(2026, 1, 1))
    dispatched = []
    counts = services.run_billing(as_of=date(2026, 2, 1), dispatch=dispatched.extend)
    assert counts["waiting_for_close"] == 1 and len(dispatched) == 1
    with monkeypatch.context() as outage:
        outage.setattr(tasks.run_daily_billing, "delay", broker_down)
        with pytest.raises(BrokerUnavailable):
            tasks.bill_month_chunk.run(dispatched[0], "2026-02-01")
    assert MonthClose.objects.get(month=date(2026, 1, 1)).finished
    assert Invoice.objects.count() == 1 and last_processed_day() == date(2026, 1, 31)
    return dispatched[0]


def test_d1_a_chunk_run_again_after_its_close_finished_hands_the_day_over_again(
    close_finished_while_the_broker_was_down, monkeypatch
):
    """D1: the chunk that finishes a close commits it, then queues run_daily_billing to go on
    with the day. When that failed (the broker down, the worker killed between the two) and the
    chunk ran again (redelivered, retried), the close was finished already, so nothing started
    the run: 1 February's trial ends, renewals and expiries waited for the next beat, a day
    later. The chunk run again hands the day over again; once the day is done, it does not."""
    handed_over = []
    monkeypatch.setattr(tasks.run_daily_billing, "delay", lambda *args: handed_over.append(args))

    tasks.bill_month_chunk.run(close_finished_while_the_broker_was_down, "2026-02-01")

    assert handed_over == [("2026-02-01",)]
    tasks.run_daily_billing("2026-02-01")
    assert last_processed_day() == date(2026, 2, 1) and Invoice.objects.count() == 1
    tasks.bill_month_chunk.run(close_finished_while_the_broker_was_down, "2026-02-01")
    assert handed_over == [("2026-02-01",)]


def test_d1_the_beat_goes_on_with_a_day_whose_close_finished_while_the_broker_was_down(
    close_finished_while_the_broker_was_down, monkeypatch, settings
):
    """The chunk whose hand-over failed is not run again (a failed task is acknowledged): the
    clock stayed on 1 February, and changes dated that day refused, until the next day's beat.
    Every 5 minutes the beat's sweep hands such a day to the run, once its close finished over
    10 minutes ago (the hand-over takes a moment) and no other close is under way. The run
    goes on through yesterday, as the beat's would: handed the close's own day, a catch-up to
    4 December that lost its hand-over at 1 December's close stopped there (operator's walk 8)."""
    [entry] = [
        e
        for e in settings.CELERY_BEAT_SCHEDULE.values()
        if e["task"] == "billing.tasks.resume_billing_day"
    ]
    assert entry["schedule"].minute == set(range(0, 60, 5))
    handed_over = []
    monkeypatch.setattr(tasks.run_daily_billing, "delay", lambda *args: handed_over.append(args))

    assert tasks.resume_billing_day() is None  # finished a moment ago: its hand-over may come
    MonthClose.objects.update(updated_at=timezone.now() - timedelta(minutes=11))
    assert tasks.resume_billing_day() == "2026-02-01"

    assert handed_over == [()]  # run_daily_billing's own day: yesterday
    tasks.run_daily_billing("2026-02-01")
    assert last_processed_day() == date(2026, 2, 1)
    assert tasks.resume_billing_day() is None


def test_d1_the_daily_run_retries_a_database_error(db, monkeypatch, retries_run_inline, waits):
    """The beat sends run_daily_billing once a day (00:15 UTC). A database restarting or
    failing over then (OperationalError: the connection is refused) failed the task for good:
    the clock, and the month close on a 1st, waited 24 hours for the next beat. It is retried
    after 30 s, 1, 2, 4 and 8 minutes, then every 10 minutes: 11 tries over 3,930 s. Each
    goes on from where the last stopped (a processed day is a no-op)."""
    calls = []

    def database_down_for(tries):
        def run_billing(**kwargs):
            calls.append(kwargs)
            if len(calls) <= tries:
                raise OperationalError("connection refused: the database system is starting up")
            return {}

        return run_billing

    monkeypatch.setattr(services, "run_billing", database_down_for(3))
    result = tasks.run_daily_billing.apply()
    assert (result.state, len(calls), waits) == ("SUCCESS", 4, [30, 60, 120])

    calls.clear()
    waits.clear()
    monkeypatch.setattr(services, "run_billing", database_down_for(100))
    result = tasks.run_daily_billing.apply(kwargs={"as_of": "2026-02-01"})  # down for good
    assert (result.state, len(calls)) == ("FAILURE", 11)
    assert waits[:10] == [30, 60, 120, 240, 480, 600, 600, 600, 600, 600]  # 3,930 s
    assert isinstance(result.result, OperationalError)


def test_d1_the_close_page_says_its_steps_in_words_and_every_role_reads_the_clock(
    client, db, finance, support, reviewer
):
    """The close's page showed "Locks done" and "Chunks planned" as bare flags; it says what
    each step did. D2's refusals name the clock's last day: each role may read the clock."""
    from django.urls import reverse

    paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    close = MonthClose.objects.get(month=date(2026, 1, 1))
    client.force_login(finance)
    page = client.get(reverse("admin:billing_monthclose_change", args=[close.pk])).content
    page = page.decode()
    assert "Strikes and locks (F1–F3)" in page and "1 of 1 chunks billed" in page
    assert "Locks done" not in page and "Chunks planned" not in page
    # M1: the count links to the month's invoices, dated 1 Feb 2026: the one issued.
    listed = client.get(reverse("admin:billing_monthclose_changelist")).content.decode()
    link = re.search(r'<a href="(/admin/billing/invoice/\?[^"]+)">1</a>', listed)
    invoices = client.get(unescape(link.group(1)))
    assert list(invoices.context["cl"].result_list) == list(Invoice.objects.all())
    assert "2026-02-01" in link.group(1) and "kind__exact=monthly" in link.group(1)
    for user in (finance, support, reviewer):
        client.force_login(user)
        clock = client.get(reverse("admin:billing_billingclock_changelist"))
        assert clock.status_code == 200
        assert "1 Feb 2026" in clock.content.decode()
