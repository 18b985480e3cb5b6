"""D3, D4: the dated changes to one workspace go in date order (`clock.take_in_date_order`).
Entered ahead of a lagging clock (D2 allows it), a change dated before one already entered for
a later day rewrote what that change decided; now it is refused, naming the day, and the
outcome is what the same changes give in date order. Each `both_orders` test runs the changes
in date order and reversed, in savepoints, a refused change skipped as staff would see it."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import transaction

from billing import services
from billing.errors import BillingError
from billing.models import CreditNote, Invoice
from billing.roles import SUPPORT
from billing.selectors import workspace_status
from coupons import services as coupon_services
from coupons.errors import CouponRefused
from tests.billing.factories import move_business, paid_annual, paid_monthly, workspace
from tests.coupons.factories import coupon


def bills(ws):
    """(issue date, kind, subtotal, discount, tax, total, tax region) of each invoice."""
    return list(
        Invoice.objects.filter(workspace=ws)
        .order_by("issue_date", "id")
        .values_list("issue_date", "kind", "subtotal", "discount", "tax", "total", "tax_region")
    )


def both_orders(build, steps, after):
    """`build()` → ws; the steps (callables taking ws) in the given order, then reversed;
    `after(ws)` → outcome. Each run rolled back. A refused step is skipped, as staff would see
    a refusal and go on."""
    outcomes = []
    for ordered in (steps, list(reversed(steps))):
        sid = transaction.savepoint()
        ws = build()
        for step in ordered:
            try:
                with transaction.atomic():
                    step(ws)
            except BillingError:
                pass
        outcomes.append(after(ws))
        transaction.savepoint_rollback(sid)
    return outcomes


def move(ws, region, on, by):
    move_business(ws, region, by=by, as_of=on)


# --- X1, D4: business location moves ------------------------------------------------------------


def test_x1_d4_location_moves_entered_out_of_date_order_tax_april_where_the_later_move_went(
    db, staff_user
):
    """Paid monthly Team in OR (untaxed). Moves: NY (5%) dated 2026-03-10, CA (10%) dated
    2026-03-20. On 2026-04-01 the business is in CA: March's invoice (120.00) carries 12.00 tax.
    Entered CA first, then NY, the row ends on NY: the invoice is taxed 6.00 in NY."""
    support = staff_user(SUPPORT)
    services.set_tax_rate("US", region="CA", rate="10", name="CA", valid_from=date(2025, 1, 1))
    services.set_tax_rate("US", region="NY", rate="5", name="NY", valid_from=date(2025, 1, 1))

    def build():
        ws = paid_monthly(date(2026, 1, 1))
        services.run_billing(as_of=date(2026, 3, 1))
        return ws

    def after(ws):
        services.run_billing(as_of=date(2026, 4, 1))
        return bills(ws)[-1]

    in_order, out_of_order = both_orders(
        build,
        [
            lambda ws: move(ws, "NY", date(2026, 3, 10), support),
            lambda ws: move(ws, "CA", date(2026, 3, 20), support),
        ],
        after,
    )
    april = (date(2026, 4, 1), "monthly")
    assert in_order[:2] == april and in_order[4:] == (12, 132, "CA")
    assert out_of_order == in_order  # was tax 6.00, total 126.00, region NY


def test_x1_d3_a_cancellation_dated_before_a_move_entered_earlier_is_refused(db, staff_user):
    """Paid monthly Team in OR (untaxed) from 2026-01-01; the clock has processed 2026-03-01.
    Support enters a move to CA (10%) dated 2026-03-20, then a cancellation dated 2026-03-10:
    its final invoice for 1..9 March (120 × 9/31 = 34.84), dated when the business was still
    in OR, was taxed in CA: 3.48, total 38.32. The cancellation is now refused; entered in date
    order, the final invoice is 34.84 untaxed, in OR."""
    support = staff_user(SUPPORT)
    services.set_tax_rate("US", region="CA", rate="10", name="CA", valid_from=date(2025, 1, 1))
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    with transaction.atomic():
        sid = transaction.savepoint()
        move(ws, "CA", date(2026, 3, 20), support)
        with pytest.raises(BillingError, match="a change dated 20 Mar 2026 was entered already"):
            services.change_to_free(ws, as_of=date(2026, 3, 10))
        assert bills(ws)[-1][1] == "monthly"
        transaction.savepoint_rollback(sid)
    services.change_to_free(ws, as_of=date(2026, 3, 10))
    move(ws, "CA", date(2026, 3, 20), support)
    assert bills(ws)[-1] == (date(2026, 3, 10), "final", D("34.84"), 0, 0, D("34.84"), "OR")


# --- K4, T4, D4: the interval a trial continues with ------------------------------------------


def test_k4_d4_trial_interval_changes_entered_out_of_order_keep_the_later_dated_one(db):
    """Trial from 2026-03-02 (end date 2026-03-16), card on file. During it: monthly dated
    2026-03-08, annual dated 2026-03-12. On the end date it continues annual: an annual invoice
    of 1,440.00 dated 2026-03-16. Entered annual first, then monthly, the field keeps the last
    entry: it continues monthly and April's invoice is 120 × 16/31 = 61.94."""

    def build():
        ws = workspace(as_of=date(2026, 1, 1), card=True)
        services.run_billing(as_of=date(2026, 3, 1))
        services.change_to_team(ws, as_of=date(2026, 3, 2))
        return ws

    def after(ws):
        services.run_billing(as_of=date(2026, 4, 1))
        return [(i[0], i[1], i[5]) for i in bills(ws)]

    in_order, out_of_order = both_orders(
        build,
        [
            lambda ws: services.change_interval(ws, interval="monthly", as_of=date(2026, 3, 8)),
            lambda ws: services.change_interval(ws, interval="annual", as_of=date(2026, 3, 12)),
        ],
        after,
    )
    assert in_order == [(date(2026, 3, 16), "annual", 1440)]
    assert out_of_order == in_order  # was [(2026-04-01, monthly, 61.94)]


# --- K2, D4: an annual cancellation and a withdrawal dated before it ---------------------------


def test_k2_d4_a_withdrawal_dated_before_the_cancellation_does_not_undo_it(db):
    """Paid annual from 2025-04-01 (term to 2026-04-01). In date order: "move to Team (annual)"
    dated 2026-03-10 is refused (already on Team), the cancellation dated 2026-03-20 stands, and
    on 2026-04-01 the workspace goes to Free with no renewal. Entered cancellation first, then
    the move dated 2026-03-10 withdraws the later-dated cancellation: the term renews with a
    second 1,440.00 invoice dated 2026-04-01."""

    def build():
        ws = paid_annual(date(2025, 4, 1))
        services.run_billing(as_of=date(2026, 3, 1))
        return ws

    def after(ws):
        services.run_billing(as_of=date(2026, 4, 1))
        plan = workspace_status(ws, as_of=date(2026, 4, 1))["plan"]
        return plan, [(i[0], i[5]) for i in bills(ws)]

    in_order, out_of_order = both_orders(
        build,
        [
            lambda ws: services.change_to_team(ws, interval="annual", as_of=date(2026, 3, 10)),
            lambda ws: services.change_to_free(ws, as_of=date(2026, 3, 20)),
        ],
        after,
    )
    assert in_order == ("free", [(date(2025, 4, 1), 1440)])
    assert out_of_order == in_order  # was ("team", [..., (2026-04-01, 1440.00)])


# --- C2, C5, D4: one discount at a time --------------------------------------------------------


def test_c2_d4_a_discount_dated_before_a_later_dated_one_is_refused(db, staff_user):
    """Paid monthly Team. HALF (50%, forever) dated 2026-03-20 is entered, then ONCE ($20 off,
    once) dated 2026-03-10: both were accepted (C2 counted only discounts dated on or before
    ONCE's day), so May was billed at 50% after April took ONCE. ONCE is now refused, with
    its own reason for the campaign's dry run; May is HALF's 60.00, April too."""
    support = staff_user(SUPPORT)
    coupon(code="ONCE", amount_off="20", duration="once")
    coupon(code="HALF", percent_off="50", duration="forever")
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    coupon_services.redeem_coupon(ws, "HALF", by=support, as_of=date(2026, 3, 20))
    with pytest.raises(CouponRefused, match="a change dated 20 Mar 2026") as refused:
        coupon_services.redeem_coupon(ws, "ONCE", by=support, as_of=date(2026, 3, 10))
    assert refused.value.reason == CouponRefused.OUT_OF_DATE_ORDER
    services.run_billing(as_of=date(2026, 5, 1))
    assert [(i[0], i[3], i[5]) for i in bills(ws)[-2:]] == [
        (date(2026, 4, 1), 60, 60),
        (date(2026, 5, 1), 60, 60),
    ]


# --- F4, F5, D3: locks ----------------------------------------------------------------------------


def test_f4_d3_a_move_to_team_dated_before_a_manual_unlock_is_refused(db, staff_user):
    """Two Free strikes (January, February: 2,000 MTUs each) → locked_data_stopped at the
    2026-03-01 close. A manual unlock dated 2026-03-20 is entered, then a move to Team dated
    2026-03-10: the move read the lock as stored now (unlocked), recorded no lock change, and
    on 2026-03-15 the history read a Team trial with its data stopped. The move is now
    refused; in date order the move unlocks at once (F4) and the unlock has nothing to do."""
    support = staff_user(SUPPORT)
    ws = workspace(as_of=date(2026, 1, 1), card=True)
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2000)
    services.record_usage(ws, month=date(2026, 2, 1), mtus=2000)
    services.run_billing(as_of=date(2026, 3, 1))
    services.unlock_workspace(ws, by=support, reason="Asked nicely", as_of=date(2026, 3, 20))
    with pytest.raises(BillingError, match="a change dated 20 Mar 2026 was entered already"):
        services.change_to_team(ws, as_of=date(2026, 3, 10))
    status = workspace_status(ws, as_of=date(2026, 3, 15))
    assert (status["plan"], status["lock"], status["data_flow"]) == (
        "free",
        "locked_data_stopped",
        False,
    )


# --- W1, D4: closures --------------------------------------------------------------------------


def test_w1_d4_a_closure_dated_before_a_later_closure_and_reopening_is_refused(db, staff_user):
    """A Free workspace closed 2026-03-20 and reopened 2026-03-25. A closure dated 2026-03-10 is
    then accepted: the workspace is closed again from 2026-03-10, overlapping the first closure,
    with no reopening: on 2026-03-26 workspace_status says closed, data stopped. In date order
    the closure of 2026-03-20 is refused (already closed) and the reopening of 2026-03-25 holds:
    open, data flowing, on 2026-03-26."""
    support = staff_user(SUPPORT)
    ws = workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    services.close_workspace(ws, by=support, reason="Customer asked", as_of=date(2026, 3, 20))
    services.reopen_workspace(ws, by=support, reason="Customer came back", as_of=date(2026, 3, 25))
    with pytest.raises(BillingError, match="a change dated 25 Mar 2026 was entered already"):
        services.close_workspace(ws, by=support, reason="Asked earlier", as_of=date(2026, 3, 10))
    status = workspace_status(ws, as_of=date(2026, 3, 26))
    assert (status["closed"], status["data_flow"]) == (False, True)


# --- D3: dated changes before the workspace existed ---------------------------------------------


def _card(ws, support, on):
    services.add_payment_method(ws, as_of=on)


def _coupon(ws, support, on):
    if on == date(2026, 2, 28):
        coupon(code="EARLY", percent_off="50", duration="repeating", duration_months=1)
    coupon_services.redeem_coupon(ws, "EARLY", by=support, as_of=on)


def _move(ws, support, on):
    move(ws, "CA", on, support)


def _grant(ws, support, on):
    coupon_services.grant_credits(ws, amount="1000.00", as_of=on, year=1, by=support)


@pytest.mark.parametrize("change", [_card, _coupon, _move, _grant], ids=lambda f: f.__name__)
def test_d3_a_change_dated_before_the_workspace_existed_is_refused(db, staff_user, change):
    """The clock has processed 2026-02-27; a workspace is created on 2026-03-01. A change dated
    2026-02-28, the day before it existed, was accepted silently: a card on file (workspace_status
    of 2026-02-28 said has_payment_method), a one-month 50% coupon spent on February (the
    workspace's March bill got nothing), a business location, a credit grant valid from before
    the workspace. Each is now refused."""
    support = staff_user(SUPPORT)
    workspace(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 2, 27))
    ws = workspace(as_of=date(2026, 3, 1))
    with pytest.raises(BillingError, match="dated 28 Feb 2026: it signed up on 1 Mar 2026"):
        change(ws, support, date(2026, 2, 28))
    change(ws, support, date(2026, 3, 1))  # its first day is fine


def test_d4_workspaces_from_before_the_rule_are_dated_to_their_latest_records(db, staff_user):
    """The rule's column started empty, so a workspace whose changes were entered ahead of the
    clock before it existed (here: a cancellation dated 20 March, a coupon dated 25 March)
    read as dated to its sign-up: a change dated 10 March went in behind them. The migrations
    fill it in from the records (billing 0023, coupons 0008)."""
    import importlib

    from django.apps import apps

    from billing.models import Workspace

    support = staff_user(SUPPORT)
    coupon(code="LATE", percent_off="10", duration="once")
    ws = paid_monthly(date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 20))
    coupon_services.redeem_coupon(ws, "LATE", by=support, as_of=date(2026, 3, 25))
    Workspace.objects.filter(pk=ws.pk).update(changes_dated_to=None)  # as before the rule

    for name in (
        "billing.migrations.0023_changes_dated_to_from_the_records",
        "coupons.migrations.0008_changes_dated_to_from_redemptions_and_grants",
    ):
        migration = importlib.import_module(name)
        (operation,) = migration.Migration.operations
        operation.code(apps, None)

    assert Workspace.objects.get(pk=ws.pk).changes_dated_to == date(2026, 3, 25)
    with pytest.raises(BillingError, match="a change dated 25 Mar 2026 was entered already"):
        services.add_payment_method(ws, as_of=date(2026, 3, 10))


# --- K3, I3, C6: a refund, a void or a review dated before what it acts on ------------------


def test_k3_i3_refunds_and_voids_dated_before_their_invoice_or_request_are_refused(
    db, support, finance
):
    """K3, I3: monthly Team from 1 February 2026, the clock through 1 March; a cancellation
    entered ahead for 10 March issues its final invoice (K1: 120 × 9/31 = 34.84, dated
    10 March). It cannot be refunded or voided by a change dated 5 March, before it existed;
    a credit note requested on 12 March cannot be decided on 11 March, before it was asked
    for. Each was accepted: finance's tax report counted a credit note's tax given back in the
    month of its decision, and a void gave credit back to grants as they stood before the
    invoice drew any (I3, CR2). Each is refused, naming both days; dated the invoice's own
    day, or the request's, they go through."""
    ws = paid_monthly(date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 3, 1))
    services.change_to_free(ws, as_of=date(2026, 3, 10))
    invoice = Invoice.objects.get(workspace=ws, kind="final")
    assert (invoice.issue_date, invoice.total) == (date(2026, 3, 10), D("34.84"))
    with pytest.raises(
        BillingError,
        match=rf"A credit note dated 5 Mar 2026 is before {invoice.number} was issued "
        r"\(10 Mar 2026\)\.",
    ):
        services.request_credit_note(
            invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 3, 5)
        )
    with pytest.raises(
        BillingError,
        match=rf"A void dated 5 Mar 2026 is before {invoice.number} was issued \(10 Mar 2026\)\.",
    ):
        services.void_invoice(invoice, by=finance, reason="Wrong", as_of=date(2026, 3, 5))
    note = services.request_credit_note(
        invoice, by=support, amount="10.00", reason="Outage", as_of=date(2026, 3, 12)
    )
    for approve in (True, False):
        with pytest.raises(
            BillingError,
            match=r"A decision dated 11 Mar 2026 is before the credit note was requested "
            r"\(12 Mar 2026\)\.",
        ):
            services.decide_credit_note(note, by=finance, approve=approve, as_of=date(2026, 3, 11))
    note.refresh_from_db()
    assert (note.status, note.decided_on) == ("requested", None)
    services.decide_credit_note(note, by=finance, approve=False, as_of=date(2026, 3, 12))
    assert CreditNote.objects.get(pk=note.pk).decided_on == date(2026, 3, 12)
    services.void_invoice(invoice, by=finance, reason="Billed twice", as_of=date(2026, 3, 10))
    assert Invoice.objects.get(pk=invoice.pk).voided_on == date(2026, 3, 10)


def test_c6_a_proof_reviewed_before_it_was_submitted_is_refused(db, support):
    """C6: a proof submitted on 10 March 2026 cannot be approved or rejected by a review dated
    9 March: approved, it redeemed NONPROFIT from 9 March, a day before support had any proof.
    Refused, naming both days; reviewed on 10 March it is approved."""
    from django.core.files.base import ContentFile

    from coupons.models import NonprofitProof, Redemption
    from coupons.nonprofit_proofs import (
        approve_nonprofit_proof,
        reject_nonprofit_proof,
        submit_nonprofit_proof,
    )

    ws = paid_monthly(date(2026, 3, 1))
    proof = submit_nonprofit_proof(
        ws,
        document=ContentFile(b"%PDF-1.4\n%%EOF\n", name="proof.pdf"),
        by=support,
        as_of=date(2026, 3, 10),
    )
    refusal = r"A review dated 9 Mar 2026 is before the proof was submitted \(10 Mar 2026\)\."
    with pytest.raises(BillingError, match=refusal):
        approve_nonprofit_proof(proof, by=support, as_of=date(2026, 3, 9))
    with pytest.raises(BillingError, match=refusal):
        reject_nonprofit_proof(proof, by=support, reason="Unreadable", as_of=date(2026, 3, 9))
    assert NonprofitProof.objects.get(pk=proof.pk).status == "submitted"
    assert not Redemption.objects.filter(workspace=ws).exists()
    approve_nonprofit_proof(proof, by=support, as_of=date(2026, 3, 10))
    assert Redemption.objects.get(workspace=ws).redeemed_on == date(2026, 3, 10)
