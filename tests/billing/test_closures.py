"""W1: closing a workspace when its customer asks to delete it, and reopening it. Figures are
worked by hand: Team is $120.00 a month with 10,000 MTUs included and $0.01 per MTU above."""

from datetime import date, timedelta
from decimal import Decimal as D

import pytest
from django.core import mail

from billing import services
from billing.closures import closure_preview
from billing.errors import DayAlreadyProcessed, UsageImportError, WorkspaceClosed
from billing.models import (
    Invoice,
    LockEvent,
    OutboundEmail,
    Strike,
    Subscription,
    Usage,
    WorkspaceClosure,
)
from billing.selectors import workspace_status
from coupons import services as coupons
from coupons.models import CreditLedgerEntry, Redemption
from tests.coupons.factories import coupon, paid_annual, paid_monthly

from .factories import workspace

JAN = date(2026, 1, 1)


def totals(ws):
    return [
        (i.kind, i.issue_date, i.total)
        for i in Invoice.objects.filter(workspace=ws).order_by("issue_date", "id")
    ]


def close(ws, support, on, reason="Customer asked to delete it, ticket 77"):
    return services.close_workspace(ws, by=support, reason=reason, as_of=on)


def test_w1_monthly_team_ends_with_a_final_invoice_and_nothing_more(
    db, support, django_capture_on_commit_callbacks
):
    ws = paid_monthly(as_of=JAN)
    services.record_usage(ws, month=JAN, mtus=12_000)
    with django_capture_on_commit_callbacks(execute=True):
        closure = close(ws, support, date(2026, 1, 21))
    # K1: Jan 1..20 paid: 120 × 20/31 = 77.42; overage (12,000 − 10,000) × 0.01 = 20.00.
    final = closure.final_invoice
    assert (final.kind, final.issue_date, final.subtotal, final.total) == (
        "final",
        date(2026, 1, 21),
        D("97.42"),
        D("97.42"),
    )
    assert [line.amount for line in final.lines.order_by("position")] == [D("77.42"), D("20.00")]
    services.run_billing(as_of=date(2026, 4, 2))
    assert totals(ws) == [("final", date(2026, 1, 21), D("97.42"))]  # no January or later close
    current = ws.subscriptions.get(ended_on=None)
    ended = ws.subscriptions.get(ended_on=date(2026, 1, 21))
    assert (current.plan.code, ended.end_reason) == ("free", Subscription.EndReason.CLOSED)
    # One email confirms it, naming the final invoice.
    closed_mail = [m for m in mail.outbox if m.subject == f"{ws.name} is closed"]
    assert len(closed_mail) == 1 and final.number in closed_mail[0].body
    assert "$97.42" in closed_mail[0].body


def test_w1_data_stops_at_once_and_status_reads_it_from_the_dated_closure(db, support):
    ws = paid_monthly(as_of=JAN)
    close(ws, support, date(2026, 1, 21))
    ws.refresh_from_db()
    assert (ws.data_flow, ws.closed_on) == (False, date(2026, 1, 21))
    before = workspace_status(ws, as_of=date(2026, 1, 20))
    on_the_day = workspace_status(ws, as_of=date(2026, 1, 21))
    assert (before["closed"], before["data_flow"], before["plan"]) == (False, True, "team")
    assert (on_the_day["closed"], on_the_day["data_flow"], on_the_day["plan"]) == (
        True,
        False,
        "free",
    )
    assert on_the_day["closed_on"] == date(2026, 1, 21)


def test_w1_annual_term_is_not_renewed_and_bills_no_further_overage(db, support):
    closed, control = paid_annual(as_of=JAN), paid_annual(as_of=JAN)
    for ws in (closed, control):
        services.record_usage(ws, month=JAN, mtus=15_000)
    close(closed, support, date(2026, 1, 21))
    services.run_billing(as_of=date(2027, 1, 2))
    # K2: the prepaid $1,440.00, no refund; the control pays January's overage of
    # (15,000 − 10,000) × 0.01 = 50.00 and renews; the closed one neither.
    assert totals(closed) == [("annual", JAN, D("1440.00"))]
    assert totals(control) == [
        ("annual", JAN, D("1440.00")),
        ("monthly", date(2026, 2, 1), D("50.00")),
        ("annual", date(2027, 1, 1), D("1440.00")),
    ]
    assert closed.subscriptions.get(ended_on=None).plan.code == "free"


@pytest.mark.parametrize("on", [date(2026, 1, 10), date(2026, 1, 15)], ids=["during", "end-date"])
def test_w1_trial_ends_uncharged(db, support, on):
    ws = workspace(as_of=JAN, plan="team", card=True)  # trial Jan 1 .. 14, end date Jan 15 (T3)
    services.record_usage(ws, month=JAN, mtus=30_000)
    close(ws, support, on)
    services.run_billing(as_of=date(2026, 3, 2))
    trial = ws.subscriptions.get(plan__code="team")
    assert (trial.trial_outcome, trial.ended_on, trial.end_reason) == ("cancelled", on, "closed")
    assert totals(ws) == []


def test_w1_the_active_discount_ends_after_the_final_invoice_used_it(db, support):
    ws = paid_monthly(as_of=JAN)
    twenty = coupon(percent_off="20", duration="forever")
    coupons.redeem_coupon(ws, twenty.code, by=support, as_of=JAN)
    services.record_usage(ws, month=JAN, mtus=12_000)
    closure = close(ws, support, date(2026, 1, 21))
    # 97.42 − 20 % (19.48) = 77.94.
    assert (closure.final_invoice.discount, closure.final_invoice.total) == (
        D("19.48"),
        D("77.94"),
    )
    redemption = Redemption.objects.get(workspace=ws)
    assert (redemption.status, redemption.ended_on) == ("removed", date(2026, 1, 21))


def test_w1_c5_d1_closed_or_removed_on_the_1st_the_month_just_ended_keeps_its_discount(db, support):
    """January's invoice is dated 1 February, after that day's changes (D1). A closure or a
    removal that day ended the discount before January's close priced January, which the
    discount covered whole: 120.00 where a cancellation that day, or a closure the day before,
    kept it. A `once` coupon redeemed in the removed one's place that day still takes the first
    invoice from its day (C5)."""
    feb, mar = date(2026, 2, 1), date(2026, 3, 1)
    forever = coupon(percent_off="20", duration="forever")
    once = coupon(amount_off="50.00", duration="once")
    closed_forever, closed_once, removed, replaced = (paid_monthly(as_of=JAN) for _ in range(4))
    for ws, code in ((closed_forever, forever), (removed, forever), (replaced, forever)):
        coupons.redeem_coupon(ws, code.code, by=support, as_of=date(2026, 1, 5))
    coupons.redeem_coupon(closed_once, once.code, by=support, as_of=date(2026, 1, 5))
    services.run_billing(as_of=date(2026, 1, 31))

    effects = closure_preview(closed_forever, as_of=feb).effects
    assert any("January's invoice, at its month close that day, keeps it." in e for e in effects)
    close(closed_forever, support, feb)
    close(closed_once, support, feb)
    for ws in (removed, replaced):
        coupons.remove_discount(ws, by=support, reason="Ends, ticket 12", as_of=feb)
    coupons.redeem_coupon(replaced, once.code, by=support, as_of=feb)
    services.run_billing(as_of=date(2026, 3, 1))

    # January: 120.00 − 20 % (24.00) = 96.00, or − 50.00 = 70.00; nothing after a closure.
    assert totals(closed_forever) == [("monthly", feb, D("96.00"))]
    assert totals(closed_once) == [("monthly", feb, D("70.00"))]
    # Removed: February is billed whole, 120.00.
    assert totals(removed) == [("monthly", feb, D("96.00")), ("monthly", mar, D("120.00"))]
    # The once coupon redeemed on 1 February goes on January's invoice, not the forever one.
    assert totals(replaced) == [("monthly", feb, D("70.00")), ("monthly", mar, D("120.00"))]


def test_w1_unused_credit_lapses_after_the_final_invoice_drew_on_it(db, support):
    ws = paid_monthly(as_of=JAN)
    grant = coupons.grant_credits(ws, amount="500.00", as_of=JAN, year=1, by=support)
    services.record_usage(ws, month=JAN, mtus=12_000)
    closure = close(ws, support, date(2026, 1, 21))
    assert (closure.final_invoice.credits, closure.final_invoice.total) == (D("97.42"), D("0.00"))
    entries = [(e.kind, e.amount, e.on) for e in CreditLedgerEntry.objects.filter(grant=grant)]
    assert entries == [
        ("grant", D("500.00"), JAN),
        ("draw", D("-97.42"), date(2026, 1, 21)),
        ("lapse", D("-402.58"), date(2026, 1, 21)),
    ]
    grant.refresh_from_db()
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2026, 1, 21))
    assert workspace_status(ws, as_of=date(2026, 1, 20))["credit_balance"] == D("500.00")
    assert workspace_status(ws, as_of=date(2026, 1, 21))["credit_balance"] == D("0.00")
    assert coupons.lapse_credit_grants(as_of=date(2027, 1, 5)) == 0  # nothing lapses twice
    assert CreditLedgerEntry.objects.filter(grant=grant, kind="lapse").count() == 1


def test_w1_cr2_d4_closed_on_the_1st_the_month_just_ended_draws_its_credit_first(
    db, support, django_capture_on_commit_callbacks
):
    """W1, CR2: closed on 1 February, before January's close (dated that day) has run, the
    closure lapsed the $500.00 credit at once, and January's 120.00 was billed whole: a
    cancellation that day left it 0.00. The credit January draws is now left to its close,
    and the clock lapses the rest after it, dated the closure: the same day by day as with the
    closure entered ahead of the clock (D4)."""
    from django.db import transaction

    feb = date(2026, 2, 1)

    def run(daily):
        mail.outbox.clear()
        sid = transaction.savepoint()
        with django_capture_on_commit_callbacks(execute=True):
            ws = paid_monthly(as_of=JAN, slug="startup", billing_email="s@example.com")
            grant = coupons.grant_credits(ws, amount="500.00", as_of=JAN, year=1, by=support)
            if daily:
                services.run_billing(as_of=date(2026, 1, 31))
            effects = closure_preview(ws, as_of=feb).effects
            close(ws, support, feb)
            services.run_billing(as_of=date(2026, 3, 1))
        grant.refresh_from_db()
        outcome = {
            "invoices": [(i.kind, i.issue_date, i.credits, i.total) for i in ws.invoices.all()],
            "ledger": [
                (e.kind, e.on, e.amount)
                for e in CreditLedgerEntry.objects.filter(grant=grant).order_by("on", "id")
            ],
            "lapsed_on": grant.lapsed_on,
            "balance on 1 Feb": workspace_status(ws, as_of=feb)["credit_balance"],
            "email": [m.body.replace(ws.name, "It") for m in mail.outbox if "closed" in m.subject],
            "preview": effects,
        }
        transaction.savepoint_rollback(sid)
        return outcome

    daily, caught_up = run(daily=True), run(daily=False)
    assert {key: daily[key] for key in daily if key not in ("email", "preview")} == {
        "invoices": [("monthly", feb, D("120.00"), D("0.00"))],
        "ledger": [
            ("grant", JAN, D("500.00")),
            ("draw", feb, D("-120.00")),
            ("lapse", feb, D("-380.00")),  # 500.00 − 120.00
        ],
        "lapsed_on": feb,
        "balance on 1 Feb": D("0.00"),
    }
    assert "what January's invoice (its month close is dated 1 Feb 2026) does not draw" in " ".join(
        daily["email"][0].split()
    )
    assert (
        "Of $500.00 unused startup credit, what January's invoice (its month close is dated "
        "1 Feb 2026) does not draw lapses after it (no refund)."
    ) in daily["preview"]
    assert caught_up == daily


@pytest.mark.parametrize("closed_on", [date(2026, 3, 20), date(2026, 3, 10)])
def test_w1_d4_cr3_a_grant_that_ended_before_the_closure_lapses_on_its_own_end(
    db, support, django_capture_on_commit_callbacks, closed_on
):
    """CR3, D4: a $500.00 grant valid up to 10 March draws 120.00 on 1 February and 120.00 on
    1 March: 260.00 is left, and it lapses at the grant's end, on 10 March. The workspace is
    closed on 20 March. Day by day the clock lapsed it on the 10th, so the closure lapses
    nothing and its email says nothing of credit; a closure entered while the clock still
    stands at 1 March lapses the grant on the 10th too, not on the 20th. Closed on the 10th
    itself, the grant's last day was the 9th: it lapses as its year's end, not the closure's."""
    from django.db import transaction

    def run(daily):
        mail.outbox.clear()
        sid = transaction.savepoint()
        with django_capture_on_commit_callbacks(execute=True):
            ws = paid_monthly(as_of=JAN, slug="startup", billing_email="s@example.com")
            grant = coupons.grant_credits(
                ws, amount="500.00", as_of=JAN, year=1, by=support, valid_until=date(2026, 3, 10)
            )
            services.run_billing(as_of=date(2026, 3, 1))
            if daily:
                services.run_billing(as_of=closed_on - timedelta(days=1))
            close(ws, support, closed_on)
            services.run_billing(as_of=closed_on)
        grant.refresh_from_db()
        outcome = {
            "ledger": [
                (e.kind, e.on, e.amount)
                for e in CreditLedgerEntry.objects.filter(grant=grant).order_by("on", "id")
            ],
            "lapsed_on": grant.lapsed_on,
            "closure_email_tells_of_credit": [
                "startup credit" in m.body for m in mail.outbox if "closed" in m.subject
            ],
            "why": grant.history.first().history_change_reason,
        }
        transaction.savepoint_rollback(sid)
        return outcome

    daily, caught_up = run(daily=True), run(daily=False)
    assert daily == {
        "ledger": [
            ("grant", JAN, D("500.00")),
            ("draw", date(2026, 2, 1), D("-120.00")),
            ("draw", date(2026, 3, 1), D("-120.00")),
            ("lapse", date(2026, 3, 10), D("-260.00")),
        ],
        "lapsed_on": date(2026, 3, 10),
        "closure_email_tells_of_credit": [False],
        "why": "Program year ended: unused credit lapsed",
    }
    assert caught_up == daily


def test_w1_a_closed_workspace_accepts_no_change_but_reopening(db, support):
    ws = paid_monthly(as_of=JAN)
    close(ws, support, date(2026, 1, 21))
    day = date(2026, 1, 22)
    refused = [
        lambda: services.change_to_team(ws, as_of=day),
        lambda: services.change_to_free(ws, as_of=day),
        lambda: services.change_interval(ws, interval="annual", as_of=day),
        lambda: services.add_payment_method(ws, as_of=day, last4="4242"),
        lambda: services.remove_payment_method(ws, as_of=day),
        lambda: services.record_usage(ws, month=date(2026, 2, 1), mtus=5),
        lambda: services.update_workspace(
            ws,
            by=support,
            reason="x",
            name="New",
            business_country="US",
            business_region="OR",
            billing_email="n@example.com",
            as_of=day,
        ),
        lambda: coupons.redeem_coupon(ws, coupon().code, by=support, as_of=day),
        lambda: coupons.grant_credits(ws, amount="10.00", as_of=day, year=1, by=support),
        lambda: close(ws, support, day),
    ]
    for change in refused:
        with pytest.raises(WorkspaceClosed, match="closed"):
            change()
    with pytest.raises(WorkspaceClosed) as refusal:
        services.change_to_team(ws, as_of=day)
    assert str(refusal.value) == (
        f"A plan change is refused: {ws.name} was closed on 21 Jan 2026. A closed workspace "
        "accepts no change; support can reopen it first."
    )


def test_w1_reopening_brings_it_back_on_free_unlocked_without_a_second_trial(db, support):
    ws = workspace(as_of=JAN, card=True)
    for month in (JAN, date(2026, 2, 1)):
        services.record_usage(ws, month=month, mtus=5_000)
    services.run_billing(as_of=date(2026, 3, 1))  # two strikes: locked, data stopped (F2)
    services.change_to_team(ws, as_of=date(2026, 3, 2))  # trial: unlocks (F4)
    close(ws, support, date(2026, 3, 5))
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("unlocked", False)
    with pytest.raises(Exception, match="Say why"):
        services.reopen_workspace(ws, by=support, reason=" ", as_of=date(2026, 3, 9))
    closure = services.reopen_workspace(
        ws, by=support, reason="Customer came back, ticket 90", as_of=date(2026, 3, 9)
    )
    ws.refresh_from_db()
    assert (ws.closed_on, ws.data_flow, ws.lock) == (None, True, "unlocked")
    assert (closure.reopened_on, closure.reopened_by) == (date(2026, 3, 9), support)
    assert workspace_status(ws, as_of=date(2026, 3, 9))["plan"] == "free"
    # T1: it had Team (the trial closing cancelled), so Team is paid at once.
    team = services.change_to_team(ws, as_of=date(2026, 3, 10))
    assert (team.trial_end, team.paid_from) == (None, date(2026, 3, 10))


def test_w1_reopening_unlocks_a_locked_workspace_with_its_email(db, support):
    ws = workspace(as_of=JAN)
    for month in (JAN, date(2026, 2, 1)):
        services.record_usage(ws, month=month, mtus=5_000)
    services.run_billing(as_of=date(2026, 3, 1))
    close(ws, support, date(2026, 3, 2))
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("locked_data_stopped", False)
    services.reopen_workspace(ws, by=support, reason="Ticket 91", as_of=date(2026, 3, 3))
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("unlocked", True)
    event = LockEvent.objects.filter(workspace=ws).order_by("-id").first()
    assert (event.cause, event.reason, event.by) == ("reopened", "Ticket 91", support)
    assert OutboundEmail.objects.filter(kind="unlocked", object_key=f"lock:{event.pk}").exists()


def test_w1_closed_workspaces_get_no_strike_and_no_lock_change_at_a_close(db, support):
    ws = workspace(as_of=JAN)
    services.record_usage(ws, month=JAN, mtus=5_000)
    services.run_billing(as_of=date(2026, 2, 1))  # one strike: locked (F2)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=7_000)  # before the closure
    close(ws, support, date(2026, 2, 10))
    # Its data stopped: the pipeline's file may not carry it any more.
    with pytest.raises(UsageImportError, match="closed on 10 Feb 2026"):
        services.import_usage([(2, {"workspace": ws.slug, "month": "2026-02", "mtus": "8000"})])
    services.run_billing(as_of=date(2026, 4, 2))
    # February was over the Free limit, but the workspace was closed at its end: no strike, no
    # second lock level, and F3 does not unlock it either while it is closed.
    assert list(Strike.objects.filter(workspace=ws).values_list("month", flat=True)) == [JAN]
    assert LockEvent.objects.filter(workspace=ws).count() == 1
    assert Usage.objects.get(workspace=ws, month=date(2026, 2, 1)).mtus == 7_000


def test_w1_d2_a_closure_on_a_processed_day_is_refused(db, support):
    ws = paid_monthly(as_of=JAN)
    services.run_billing(as_of=date(2026, 1, 31))
    with pytest.raises(DayAlreadyProcessed, match="through 31 Jan 2026"):
        close(ws, support, date(2026, 1, 31))
    with pytest.raises(Exception, match="Say why the workspace is closed"):
        close(ws, support, date(2026, 2, 1), reason="")
    assert not WorkspaceClosure.objects.exists()
    with pytest.raises(Exception, match="is not closed"):
        services.reopen_workspace(ws, by=support, reason="x", as_of=date(2026, 2, 1))


def test_w1_closing_then_reopening_keeps_invoices_and_history(db, support):
    ws = paid_monthly(as_of=JAN)
    services.run_billing(as_of=date(2026, 2, 1))
    close(ws, support, date(2026, 2, 11))
    services.reopen_workspace(ws, by=support, reason="Back", as_of=date(2026, 2, 12))
    # January's invoice stays; the final for Feb 1..10: 120 × 10/28 = 42.86.
    assert totals(ws) == [
        ("monthly", date(2026, 2, 1), D("120.00")),
        ("final", date(2026, 2, 11), D("42.86")),
    ]
    reasons = list(ws.history.values_list("history_change_reason", flat=True)[:2])
    assert reasons == ["Reopened: Back", "Closed: Customer asked to delete it, ticket 77"]


# --- Decisions made on W1 (README "Closing a workspace"; the confirmation page says them) ----


def test_w1_a_closed_workspace_sits_on_free_and_keeps_its_lock(db, support):
    ws = workspace(as_of=JAN)
    services.record_usage(ws, month=JAN, mtus=5_000)
    services.run_billing(as_of=date(2026, 2, 1))  # one strike: locked (F2)
    close(ws, support, date(2026, 2, 10))
    services.run_billing(as_of=date(2026, 5, 2))  # February–April: no strike, but no F3 either
    status = workspace_status(ws, as_of=date(2026, 5, 2))
    assert (status["plan"], status["lock"], status["data_flow"]) == ("free", "locked", False)
    assert LockEvent.objects.filter(workspace=ws).count() == 1
    # Only reopening lifts it (support, with a reason).
    services.reopen_workspace(ws, by=support, reason="Ticket 92", as_of=date(2026, 5, 3))
    assert workspace_status(ws, as_of=date(2026, 5, 3))["lock"] == "unlocked"


def test_w1_closing_during_a_trial_skips_f7(db, support):
    """F7 restores the lock a trial lifted when the trial ends unpaid; a closure is no such end:
    the customer left, the data stops anyway, and a lock would only stand in the way of a
    reopening, which unlocks."""
    ws = workspace(as_of=JAN, card=True)
    for month in (JAN, date(2026, 2, 1)):
        services.record_usage(ws, month=month, mtus=5_000)
    services.run_billing(as_of=date(2026, 3, 1))  # two strikes: locked, data stopped (F2)
    services.change_to_team(ws, as_of=date(2026, 3, 2))  # the trial lifts the lock (F4)
    close(ws, support, date(2026, 3, 5))
    services.run_billing(as_of=date(2026, 4, 2))  # past the trial's end date (2026-03-16)
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("unlocked", False)
    causes = list(LockEvent.objects.filter(workspace=ws).order_by("id").values_list("cause"))
    assert causes == [("free_limit",), ("free_limit",), ("moved_to_team",)]
    assert totals(ws) == []  # and the trial ended uncharged (T5)


def test_w1_voids_and_credit_notes_stay_allowed_while_closed(db, support, finance):
    ws = paid_monthly(as_of=JAN)
    services.run_billing(as_of=date(2026, 2, 1))
    closure = close(ws, support, date(2026, 2, 11))
    january = Invoice.objects.get(workspace=ws, kind="monthly")
    day = date(2026, 2, 12)
    # Money already billed can still be put right: the closure refuses changes to the account.
    note = services.request_credit_note(
        closure.final_invoice, by=support, amount=D("10.00"), reason="Goodwill", as_of=day
    )
    services.decide_credit_note(note, by=finance, approve=True, as_of=day)
    services.void_invoice(january, by=finance, reason="Billed in error", as_of=day)
    note.refresh_from_db()
    january.refresh_from_db()
    assert (note.status, january.status) == ("approved", "void")


def test_w1_i6_a_closure_waits_for_the_invoice_a_close_set_aside(db, support):
    """January's invoice (dated 1 February: 120.00 base, 20.00 overage, 50 % once coupon →
    70.00) is set aside by the close (a figure from before input was bounded). A closure on
    10 February would end the discount and issue its final invoice first: the final invoice
    took the coupon and number 1, and January's, issued after the fix, came second at full
    price. The closure now waits, naming the invoice; once the clock has issued it the
    closure goes through."""
    from billing.errors import BillingError
    from billing.models import SetAsideInvoice

    ws = paid_monthly(as_of=JAN)
    once = coupon(percent_off="50", duration="once")
    coupons.redeem_coupon(ws, once.code, by=support, as_of=date(2026, 1, 15), reason="Sorry")
    Usage.objects.create(workspace=ws, month=JAN, mtus=10**13)
    services.run_billing(as_of=date(2026, 2, 9))
    assert SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None).exists()

    with pytest.raises(BillingError, match="invoice for January 2026 was set aside"):
        close(ws, support, date(2026, 2, 10))
    assert (totals(ws), WorkspaceClosure.objects.filter(workspace=ws).exists()) == ([], False)

    Usage.objects.filter(workspace=ws).update(mtus=12_000)  # the cause fixed
    services.run_billing(as_of=date(2026, 2, 9))
    closure = close(ws, support, date(2026, 2, 10))
    issued = Invoice.objects.filter(workspace=ws).order_by("number")
    assert [(i.issue_date, i.kind, i.discount, i.total) for i in issued] == [
        (date(2026, 2, 1), "monthly", D("70.00"), D("70.00")),
        (date(2026, 2, 10), "final", D("0.00"), D("38.57")),  # 120 × 9/28 = 38.571
    ]
    assert closure.final_invoice == issued[1]
