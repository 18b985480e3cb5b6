"""The formatting of `billing.formatting` as template filters (`{% load money %}`), so a page
writes a figure as the lists, refusals and documents do."""

from django import template

from billing.formatting import (
    EMAIL_KINDS,
    EMPTY,
    count,
    day,
    email_kind,
    last_day,
    money,
    month,
    period,
    period_short,
    period_text,
    rate,
    unit_price,
)
from billing.tax import rate_as_invoiced

register = template.Library()

for _filter in (
    money,
    month,
    day,
    last_day,
    unit_price,
    rate,
    count,
    period,
    period_short,
    email_kind,
):
    register.filter(_filter.__name__, _filter)
register.filter("rate_as_invoiced", rate_as_invoiced)  # an invoice's: "exempt" where waived

# Python code imports these from billing.formatting; the names stay importable from here.
__all__ = [
    "EMAIL_KINDS",
    "EMPTY",
    "count",
    "day",
    "email_kind",
    "last_day",
    "money",
    "month",
    "period",
    "period_short",
    "period_text",
    "rate",
    "unit_price",
]
