"""Money, months, rates and periods as people read them (issue 13): one set of functions in
billing/formatting.py, the template filters of billing/templatetags/money.py, used by the admin
lists, the finance pages and the invoice documents. The expected texts are written out: a rule
change must show here."""

from datetime import date
from decimal import Decimal

import pytest
from django.template import Context, Template

from billing.formatting import (
    count,
    email_kind,
    money,
    month,
    period_text,
    rate,
    unit_price,
)


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("1800000.00"), "$1,800,000.00"),
        (Decimal("1800000"), "$1,800,000.00"),
        (Decimal("0.00"), "$0.00"),
        (Decimal("120.5"), "$120.50"),
        (Decimal("-24.00"), "-$24.00"),
        ("30.97", "$30.97"),
        (None, "—"),
        ("", "—"),
        ("not money", "—"),
    ],
)
def test_money_reads_with_a_dollar_sign_thousands_and_two_places(value, text):
    assert money(value) == text


def test_money_in_another_currency_names_it_after_the_amount():
    assert money(Decimal("1000"), "EUR") == "1,000.00 EUR"
    assert money(Decimal("1000"), "USD") == "$1,000.00"


@pytest.mark.parametrize(
    "value, text",
    [
        (date(2026, 12, 1), "December 2026"),
        (date(2026, 12, 17), "December 2026"),
        (date(2027, 1, 1), "January 2027"),
        (None, "—"),
    ],
)
def test_months_read_as_month_and_year(value, text):
    assert month(value) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("7.250"), "7.25 %"),
        (Decimal("8.875"), "8.875 %"),
        (Decimal("19.000"), "19 %"),
        (Decimal("0.500"), "0.5 %"),
        (None, "—"),
    ],
)
def test_rates_read_as_percent(value, text):
    assert rate(value) == text


@pytest.mark.parametrize(
    "start, end, text",
    [
        (date(2026, 12, 1), date(2027, 1, 1), "1 – 31 December 2026"),
        (date(2026, 1, 24), date(2026, 3, 1), "24 January – 28 February 2026"),
        (date(2026, 12, 1), date(2027, 12, 1), "1 December 2026 – 30 November 2027"),
        (date(2026, 3, 5), date(2026, 3, 6), "5 March 2026"),
    ],
)
def test_a_period_names_its_first_and_last_day_not_the_exclusive_end(start, end, text):
    assert period_text(start, end) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (Decimal("0.0100"), "$0.01"),
        (Decimal("0.0125"), "$0.0125"),
        (Decimal("0.0001"), "$0.0001"),
        (Decimal("1.5000"), "$1.50"),
        (Decimal("1200.0000"), "$1,200.00"),
        (Decimal("0.0000"), "$0.00"),
        (None, "—"),
    ],
)
def test_p2_a_price_per_mtu_reads_to_the_cent_or_further_when_it_counts(value, text):
    """P2: the plan page wrote "$0.01" and the invoice line "$0.0100" for one rate; a rate of
    $0.0125 must not read as "$0.01" anywhere."""
    assert unit_price(value) == text


def test_counts_and_email_kinds():
    assert count(12_500) == "12,500"
    assert count(None) == "—"
    assert email_kind("trial_reminder") == "Trial ends soon (reminder)"
    assert email_kind("some_new_kind") == "Some new kind"


def test_the_filters_in_a_template():
    rendered = Template(
        "{% load money %}{{ total|money }} · {{ day|month }} · {{ tax|rate }} · {{ mtus|count }}"
    ).render(
        Context(
            {
                "total": Decimal("1800000.00"),
                "day": date(2026, 12, 1),
                "tax": Decimal("7.250"),
                "mtus": 180_010_000,
            }
        )
    )
    assert rendered == "$1,800,000.00 · December 2026 · 7.25 % · 180,010,000"
