"""CR1, CR2 (and CR3's lapse): startup credit grants, their ledger, and credits on invoices."""

from datetime import date
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, transaction

from billing import selectors
from billing import services as billing
from billing.formatting import day
from coupons import services
from coupons.adjustments import draw_credits
from coupons.errors import CouponError
from coupons.models import AcceleratorPartner, CreditGrant, CreditLedgerEntry

from .factories import bills, coupon, paid_annual, paid_monthly, partner


def ledger(grant):
    return [(e.kind, e.on, e.amount) for e in grant.entries.order_by("on", "id")]


def test_cr1_startup_coupon_grants_25000_for_one_program_year(db, reviewer):
    ws = paid_monthly()
    redemption = services.redeem_coupon(ws, "STARTUP", by=reviewer, as_of=date(2026, 3, 15))
    grant = CreditGrant.objects.get(workspace=ws)
    assert (grant.year, grant.amount, grant.remaining) == (1, D("25000.00"), D("25000.00"))
    assert (grant.valid_from, grant.valid_until) == (date(2026, 3, 15), date(2027, 3, 15))
    assert (grant.redemption, grant.granted_by) == (redemption, reviewer)
    assert ledger(grant) == [("grant", date(2026, 3, 15), D("25000.00"))]
    # Its history says it as the pages do (it read "credit of 25000.00, valid 2026-03-15").
    assert grant.history.earliest().history_change_reason == (
        "Year 1 startup credit of $25,000.00, valid 15 Mar 2026 to 15 Mar 2027"
    )
    status = selectors.workspace_status(ws, as_of=date(2027, 3, 14))
    assert status["credit_balance"] == D("25000.00")
    assert selectors.workspace_status(ws, as_of=date(2027, 3, 15))["credit_balance"] == D("0.00")


def test_cr1_an_active_partners_amount_overrides_the_startup_coupons(db):
    ws, other = paid_monthly(), paid_monthly()
    services.redeem_coupon(
        ws, "STARTUP", by=None, as_of=date(2026, 1, 5), partner=partner(D("50000.00"))
    )
    inactive = partner(D("90000.00"), status=AcceleratorPartner.Status.INACTIVE)
    services.redeem_coupon(other, "STARTUP", by=None, as_of=date(2026, 1, 5), partner=inactive)
    assert CreditGrant.objects.get(workspace=ws).amount == D("50000.00")
    assert CreditGrant.objects.get(workspace=other).amount == D("25000.00")


def test_cr1_a_grant_made_on_29_february_runs_to_1_march(db):
    ws = paid_monthly(as_of=date(2028, 2, 1))
    grant = services.grant_credits(ws, amount="100.00", as_of=date(2028, 2, 29), year=1, by=None)
    assert grant.valid_until == date(2029, 3, 1)


def test_cr1_a_grant_that_would_end_before_it_starts_is_refused_by_name(db):
    ws = paid_monthly()
    for until in (date(2026, 3, 1), date(2026, 2, 1)):
        with pytest.raises(CouponError, match=f"must end after it, not {day(until)}"):
            services.grant_credits(
                ws, amount="100.00", as_of=date(2026, 3, 1), year=1, by=None, valid_until=until
            )
    assert not CreditGrant.objects.filter(workspace=ws).exists()


def test_cr1_at_most_two_program_years_each_once_year_two_after_year_one(db):
    ws = paid_monthly()
    with pytest.raises(CouponError, match="has no year-one grant"):
        services.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 1), year=2, by=None)
    services.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 1), year=1, by=None)
    with pytest.raises(CouponError, match="already has its year-1 credit grant"):
        services.grant_credits(ws, amount="100.00", as_of=date(2026, 2, 1), year=1, by=None)
    services.grant_credits(ws, amount="100.00", as_of=date(2027, 1, 1), year=2, by=None)
    with pytest.raises(CouponError, match="two years at most: there is no year 3"):
        services.grant_credits(ws, amount="100.00", as_of=date(2028, 1, 1), year=3, by=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditGrant.objects.create(
            workspace=ws,
            year=1,
            amount=D("1"),
            remaining=D("1"),
            valid_from=date(2026, 1, 1),
            valid_until=date(2027, 1, 1),
        )


def test_cr2_credits_after_discounts_before_tax_and_usage_beyond_them_is_billed(db):
    billing.set_tax_rate("US", region="OR", rate="10", name="Test tax", valid_from=date(2020, 1, 1))
    ws = paid_monthly()
    services.grant_credits(ws, amount="100.00", as_of=date(2026, 1, 1), year=1, by=None)
    services.redeem_coupon(
        ws, coupon(percent_off="20", duration="forever").code, by=None, as_of=date(2026, 1, 1)
    )
    billing.record_usage(ws, month=date(2026, 2, 1), mtus=30_000)
    billing.run_billing(as_of=date(2026, 3, 1))
    assert bills(ws) == [
        # 120 − 24 discount = 96 → all of it from credit (credits larger than the bill): 0 tax.
        (date(2026, 2, 1), D("120.00"), D("24.00"), D("96.00"), D("0.00")),
        # 320 − 64 = 256; the 4.00 left, then 252.00 + 10% tax.
        (date(2026, 3, 1), D("320.00"), D("64.00"), D("4.00"), D("277.20")),
    ]
    feb = ws.invoices.get(issue_date=date(2026, 3, 1))
    assert [(line.kind, line.amount) for line in feb.lines.order_by("position")] == [
        ("base", D("120.00")),
        ("overage", D("200.00")),
        ("discount", D("-64.00")),
        ("credit", D("-4.00")),
        ("tax", D("25.20")),
    ]
    grant = CreditGrant.objects.get(workspace=ws)
    assert ledger(grant) == [
        ("grant", date(2026, 1, 1), D("100.00")),
        ("draw", date(2026, 2, 1), D("-96.00")),
        ("draw", date(2026, 3, 1), D("-4.00")),
    ]
    assert grant.remaining == D("0.00")


def test_cr2_never_on_an_annual_terms_invoices_overage_included(db):
    ws = paid_annual()
    services.redeem_coupon(ws, "STARTUP", by=None, as_of=date(2026, 1, 1))
    billing.record_usage(ws, month=date(2026, 1, 1), mtus=20_000)
    billing.run_billing(as_of=date(2026, 2, 1))
    assert [(i.kind, i.subtotal, i.credits) for i in ws.invoices.order_by("issue_date")] == [
        ("annual", D("1440.00"), D("0.00")),
        ("monthly", D("100.00"), D("0.00")),  # the term's overage invoice
    ]
    assert not CreditLedgerEntry.objects.filter(kind="draw").exists()


def test_cr2_final_invoices_of_a_monthly_subscription_take_credit(db):
    ws = paid_monthly()
    services.redeem_coupon(ws, "STARTUP", by=None, as_of=date(2026, 1, 1))
    billing.change_to_free(ws, as_of=date(2026, 1, 11))
    final = ws.invoices.get(kind="final")
    assert (final.subtotal, final.credits, final.total) == (D("38.71"), D("38.71"), D("0.00"))


def test_cr2_earliest_expiring_grant_first_one_entry_per_draw(db):
    ws = paid_monthly()
    first = services.grant_credits(ws, amount="170.00", as_of=date(2026, 1, 15), year=1, by=None)
    second = services.grant_credits(ws, amount="1000.00", as_of=date(2026, 1, 20), year=2, by=None)
    billing.run_billing(as_of=date(2026, 3, 1))
    assert [c for _, _, _, c, _ in bills(ws)] == [D("120.00"), D("120.00")]
    assert ledger(first)[1:] == [
        ("draw", date(2026, 2, 1), D("-120.00")),
        ("draw", date(2026, 3, 1), D("-50.00")),
    ]
    assert ledger(second)[1:] == [("draw", date(2026, 3, 1), D("-70.00"))]


def test_cr2_credit_grant_expiring_mid_month(db):
    # Signed up on Free before the grant's first day (D3), granted on that day (a grant is
    # never valid before it is made), on paid monthly Team from 1 Dec.
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 1), card=True)
    grant = services.grant_credits(ws, amount="25000.00", as_of=date(2026, 1, 15), year=1, by=None)
    for move in (billing.change_to_team, billing.change_to_free, billing.change_to_team):
        move(ws, as_of=date(2026, 12, 1))
    billing.change_to_free(ws, as_of=date(2027, 1, 10))  # final invoice: the grant is valid
    billing.change_to_team(ws, as_of=date(2027, 1, 20))
    billing.run_billing(as_of=date(2027, 2, 1))
    assert [(i.kind, i.issue_date, i.subtotal, i.credits, i.total) for i in ws.invoices.all()] == [
        ("monthly", date(2027, 2, 1), D("46.45"), D("0.00"), D("46.45")),  # expired 2027-01-15
        ("final", date(2027, 1, 10), D("34.84"), D("34.84"), D("0.00")),
        ("monthly", date(2027, 1, 1), D("120.00"), D("120.00"), D("0.00")),
    ]
    grant.refresh_from_db()
    # CR3: at the year's end the unused balance lapsed, with its own ledger entry.
    assert ledger(grant)[-1] == ("lapse", date(2027, 1, 15), D("-24845.16"))
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2027, 1, 15))
    assert sum(e.amount for e in grant.entries.all()) == grant.remaining


def test_cr2_a_balance_never_goes_below_zero(db):
    ws = paid_monthly()
    grant = services.grant_credits(ws, amount="10.00", as_of=date(2026, 1, 1), year=1, by=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        CreditGrant.objects.filter(pk=grant.pk).update(remaining=D("-0.01"))
    billing.run_billing(as_of=date(2026, 2, 1))
    invoice = ws.invoices.get()
    assert (invoice.credits, invoice.total) == (D("10.00"), D("110.00"))
    # An invoice that would take more than is left is refused (its issue rolls back).
    invoice.credits = D("0.01")
    with pytest.raises(CouponError, match="only 0.00 is left"):
        draw_credits([invoice])


def test_cr2_cr3_i6_a_set_aside_invoice_issued_after_the_grants_end_still_draws_on_it(db):
    """A $2,000.00 grant valid 2025-02-05 .. 2026-02-05 pays 11 monthly invoices (1 March 2025
    .. 1 January 2026: 1,320.00). January 2026's invoice, dated 1 February (140.00 with
    12,000 MTUs), is set aside by its close and issued once its figure is fixed, after the
    grant's end: the 680.00 left on its issue date pays it, and 540.00 lapses, dated the
    grant's end. Before, all 680.00 lapsed on the 5th and the invoice took no credit."""
    from billing.models import Invoice, SetAsideInvoice, Usage

    ws = paid_monthly(as_of=date(2025, 1, 1))
    grant = services.grant_credits(ws, amount="2000.00", as_of=date(2025, 2, 5), year=1, by=None)
    # A figure from before input was bounded: the close sets the workspace aside (I6).
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    billing.run_billing(as_of=date(2026, 2, 6))
    assert SetAsideInvoice.objects.filter(workspace=ws, resolved_on=None).exists()
    grant.refresh_from_db()
    # February 2025 .. December 2025 drew 11 × 120.00 = 1,320.00: 680.00 left, not lapsed.
    assert (grant.remaining, grant.lapsed_on) == (D("680.00"), None)
    Usage.objects.filter(workspace=ws, month=date(2026, 1, 1)).update(mtus=12_000)
    billing.run_billing(as_of=date(2026, 2, 8))  # issued at the end of this run
    billing.run_billing(as_of=date(2026, 2, 9))  # the lapse waited for it
    january = Invoice.objects.get(workspace=ws, issue_date=date(2026, 2, 1))
    assert (january.subtotal, january.credits, january.total) == (
        D("140.00"),
        D("140.00"),
        D("0.00"),
    )
    grant.refresh_from_db()
    assert (grant.remaining, grant.lapsed_on) == (D("0.00"), date(2026, 2, 5))
    lapse = CreditLedgerEntry.objects.get(grant=grant, kind="lapse")
    assert (lapse.on, lapse.amount) == (date(2026, 2, 5), D("-540.00"))


def test_i6_cr2_a_later_close_waits_for_the_invoice_an_earlier_one_set_aside(db):
    """A 200.00 grant from 1 January. January's invoice (140.00 once fixed, dated 1 February)
    is set aside; February's close issued February's (120.00) first, which drew 120.00 and
    left January 80.00. In issue-date order January draws 140.00 and February 60.00."""
    from billing.models import Invoice, Usage

    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.grant_credits(ws, amount="200.00", as_of=date(2026, 1, 1), year=1, by=None)
    Usage.objects.create(workspace=ws, month=date(2026, 1, 1), mtus=10**13)
    billing.run_billing(as_of=date(2026, 3, 1))
    Usage.objects.filter(workspace=ws, month=date(2026, 1, 1)).update(mtus=12_000)
    billing.run_billing(as_of=date(2026, 3, 2))
    issued = Invoice.objects.filter(workspace=ws).order_by("number")
    assert [(i.issue_date, i.credits, i.total) for i in issued] == [
        (date(2026, 2, 1), D("140.00"), D("0.00")),
        (date(2026, 3, 1), D("60.00"), D("60.00")),
    ]
