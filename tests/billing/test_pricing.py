"""The pure pricing core, property-tested with Hypothesis (M2, M3, C4, CR2, X3, I1, I2)."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.pricing import (
    Charge,
    Discount,
    overage_amount,
    price_invoice,
    prorated_base,
    round_cents,
)

money = st.decimals(min_value=D("0"), max_value=D("100000"), places=2)
percent = st.decimals(min_value=D("0.01"), max_value=D("100"), places=2)
discounts = st.one_of(
    st.none(),
    st.builds(lambda p: Discount("percent", percent=p), percent),
    st.builds(lambda a: Discount("amount", amount=a), money.filter(lambda a: a > 0)),
)
tax_rates = st.one_of(st.none(), st.decimals(min_value=D("0"), max_value=D("30"), places=3))
charges = st.lists(
    st.builds(lambda a, k: Charge(k, k, a), money, st.sampled_from(["base", "overage"])),
    min_size=1,
    max_size=3,
)


@given(charges, discounts, money, tax_rates)
def test_i2_lines_add_up_to_the_total_which_is_never_below_zero(charges, discount, credit, rate):
    priced = price_invoice(charges, discount=discount, credit_available=credit, tax_rate=rate)
    assert sum(line.amount for line in priced.lines) == priced.total
    assert priced.total == priced.subtotal - priced.discount - priced.credits + priced.tax
    assert priced.total >= 0
    assert 0 <= priced.credits <= credit
    assert priced.discount <= priced.subtotal
    assert all(line.amount == line.amount.quantize(D("0.01")) for line in priced.lines)


@given(st.integers(min_value=28, max_value=31), money)
def test_m2_a_full_month_is_exactly_the_list_price(days, price):
    assert prorated_base(price, days, days) == price


@pytest.mark.parametrize(
    "price, paid_days, days_in_month, amount",
    [
        ("120.00", 1, 31, "3.87"),  # 3.870…
        ("120.00", 8, 31, "30.97"),  # 30.967… (M4)
        ("120.00", 13, 31, "50.32"),  # 50.322… rounds down
        ("120.00", 17, 31, "65.81"),  # 65.806…
        ("120.00", 30, 31, "116.13"),  # 116.129…
        ("120.00", 14, 28, "60.00"),  # exactly half the month
        ("120.00", 26, 28, "111.43"),  # 111.428…
        ("120.00", 15, 29, "62.07"),  # 62.068…
        ("120.00", 10, 30, "40.00"),
        ("3.50", 1, 28, "0.13"),  # exactly 0.125: half up, where banker's rounding gives 0.12
        ("0.70", 1, 28, "0.03"),  # exactly 0.025: half up, not 0.02
        ("120.00", 31, 31, "120.00"),  # a full month is the list price
    ],
)
def test_m2_proration_rounds_half_up_per_line(price, paid_days, days_in_month, amount):
    assert prorated_base(D(price), paid_days, days_in_month) == D(amount)


def test_rounding_is_half_up_not_bankers():
    assert round_cents(D("0.125")) == D("0.13")
    assert round_cents(D("2.675")) == D("2.68")
    assert round_cents(D("-0.125")) == D("-0.13")


def test_m3_overage_amount():
    assert overage_amount(2_500, D("0.01")) == D("25.00")
    assert overage_amount(-5, D("0.01")) == D("0.00")


def test_c4_percent_follows_the_bill_and_amount_is_capped_at_the_subtotal():
    assert price_invoice(
        [Charge("base", "b", D("145.00"))], discount=Discount("p", percent=D(20))
    ).discount == D("29.00")
    assert price_invoice(
        [Charge("base", "b", D("120.00"))], discount=Discount("p", percent=D(20))
    ).discount == D("24.00")
    big = price_invoice(
        [Charge("base", "b", D("30.97"))], discount=Discount("a", amount=D("120.00"))
    )
    assert (big.discount, big.total) == (D("30.97"), D("0.00"))


def test_x3_tax_on_the_amount_after_discount_and_credit_rounded_per_invoice():
    priced = price_invoice(
        [Charge("base", "b", D("120.00")), Charge("overage", "o", D("25.00"))],
        discount=Discount("p", percent=D(10)),
        credit_available=D("30.00"),
        tax_rate=D("7.25"),
    )
    # 145.00 − 14.50 − 30.00 = 100.50; 7.25 % of it = 7.28625 → 7.29
    assert (priced.discount, priced.credits, priced.tax, priced.total) == (
        D("14.50"),
        D("30.00"),
        D("7.29"),
        D("107.79"),
    )
