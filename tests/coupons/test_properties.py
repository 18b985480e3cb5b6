"""I2 with C4 and CR2, property-tested through the real services and the billing clock:
whatever the coupon, credit and usage, no invoice goes below zero, and every grant's balance
equals what was granted minus what was drawn (and lapsed)."""

from datetime import date
from decimal import Decimal as D

from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import services as billing
from billing.models import Invoice
from coupons import services
from coupons.models import CreditGrant, CreditLedgerEntry

from .factories import coupon, paid_monthly

money = st.decimals(min_value=D("0.01"), max_value=D("2000"), places=2)
coupons = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "percent_off": st.decimals(min_value=D("0.01"), max_value=D("100"), places=2),
            "duration": st.sampled_from(["once", "forever"]),
        }
    ),
    st.fixed_dictionaries({"amount_off": money, "duration": st.sampled_from(["once", "forever"])}),
    st.fixed_dictionaries(
        {
            "amount_off": money,
            "duration": st.just("repeating"),
            "duration_months": st.integers(1, 4),
        }
    ),
)
grants = st.lists(money, min_size=0, max_size=2)
usage = st.lists(st.integers(0, 60_000), min_size=5, max_size=5)
# Each example runs a year of the billing clock, whose cost is mostly per day, not per workspace:
# an example holds up to three workspaces, each with its own coupon, credit, usage and change.
accounts = st.lists(
    st.fixed_dictionaries(
        {
            "coupon_fields": coupons,
            "grant_amounts": grants,
            "mtus": usage,
            "cancel_day": st.integers(0, 28),
        }
    ),
    min_size=1,
    max_size=3,
)


def _account(coupon_fields, grant_amounts, mtus, cancel_day):
    ws = paid_monthly(as_of=date(2026, 1, 1))
    if coupon_fields:
        promo = coupon(**coupon_fields)
        services.redeem_coupon(ws, promo.code, by=None, as_of=date(2026, 1, 1))
    for year, amount in enumerate(grant_amounts, 1):
        services.grant_credits(
            ws, amount=amount, as_of=date(2026, 1, 1 + 10 * (year - 1)), year=year, by=None
        )
    for month, figure in enumerate(mtus, 1):
        billing.record_usage(ws, month=date(2026, month, 1), mtus=figure)
    if cancel_day:
        billing.change_to_free(ws, as_of=date(2026, 3, cancel_day))
        billing.change_to_team(ws, as_of=date(2026, 3, 28))
    return ws


# A quarter of the profile's examples (25 in CI, 5 on a laptop; the profiles are in
# tests/conftest.py).
@settings(
    max_examples=settings.default.max_examples // 4,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(accounts=accounts)
def test_i2_cr2_discount_and_credits_never_push_an_invoice_below_zero(db, accounts):
    with transaction.atomic():
        spaces = [_account(**account) for account in accounts]
        billing.run_billing(as_of=date(2027, 2, 1))

        for ws in spaces:
            for invoice in Invoice.objects.filter(workspace=ws):
                assert invoice.total >= 0
                assert 0 <= invoice.discount <= invoice.subtotal
                assert 0 <= invoice.credits <= invoice.subtotal - invoice.discount
                assert invoice.total == invoice.subtotal - invoice.discount - invoice.credits
            drawn = CreditLedgerEntry.objects.filter(grant__workspace=ws, kind="draw")
            invoiced = Invoice.objects.filter(workspace=ws).aggregate(s=Sum("credits"))["s"] or 0
            assert -(drawn.aggregate(s=Sum("amount"))["s"] or 0) == invoiced
            for grant in CreditGrant.objects.filter(workspace=ws):
                entries = list(grant.entries.all())
                assert grant.remaining == sum(e.amount for e in entries)
                assert grant.remaining == grant.amount + sum(
                    e.amount for e in entries if e.kind != "grant"
                )
                assert grant.remaining >= 0
                assert grant.remaining == 0  # a year later: used or lapsed
        transaction.set_rollback(True)
