"""Finance reports (R3) over a queryset of invoices: the monthly tax report per jurisdiction
and invoiced revenue by month and plan. Void invoices count in neither (I3)."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncMonth

from billing.models import Interval, Invoice
from billing.months import add_months, month_start
from billing.pricing import round_cents
from billing.tax import EXEMPT_NOTE_PREFIX

ZERO = Decimal("0.00")
# SQLite hands sums back unrounded (e.g. Decimal("1440")): every amount is rounded to the cent.
MONEY = DecimalField(max_digits=14, decimal_places=2)
# X3: what tax is computed on: the amount after discounts and credits.
NET = ExpressionWrapper(F("subtotal") - F("discount") - F("credits"), output_field=MONEY)


def _money_sum(expression, **kwargs):
    return Coalesce(Sum(expression, output_field=MONEY, **kwargs), ZERO, output_field=MONEY)


def _counted(invoices: QuerySet) -> QuerySet:
    return invoices.exclude(status=Invoice.Status.VOID).annotate(month=TruncMonth("issue_date"))


def tax_report(invoices: QuerySet) -> list[dict]:
    """Per issue month and jurisdiction: invoice count, taxable amount (net of invoices a
    positive rate applied to), tax, and exempt amount (net of invoices a certificate
    exempted, X4)."""
    exempt = Q(tax_note__startswith=EXEMPT_NOTE_PREFIX)
    rows = (
        _counted(invoices)
        .values("month", "tax_country", "tax_region")
        .annotate(
            invoices=Count("id"),
            taxable=_money_sum(NET, filter=Q(tax_rate__gt=0)),
            tax_total=_money_sum("tax"),
            exempt=_money_sum(NET, filter=exempt),
        )
        .order_by("month", "tax_country", "tax_region")
    )
    return [
        {
            **row,
            **{key: round_cents(row[key]) for key in ("taxable", "tax_total", "exempt")},
            "jurisdiction": "-".join(p for p in (row["tax_country"], row["tax_region"]) if p)
            or "—",
        }
        for row in rows
    ]


def totals(rows: list[dict], keys) -> dict:
    return {key: sum((row[key] for row in rows), 0) for key in keys}


@dataclass
class RevenueMonth:
    month: date
    amounts: dict = field(default_factory=dict)  # series label → Decimal

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


def _series_label(plan_code: str, interval: str) -> str:
    return f"{plan_code.capitalize()} ({Interval(interval).label.lower()})"


def revenue_by_month(invoices: QuerySet, *, first: date, last: date) -> tuple[list, list]:
    """Invoiced revenue (after discounts and credits, before tax) per issue month from `first`
    to `last` (months, both included, empty ones too) and plan as invoiced. Returns (series
    labels, months)."""
    rows = (
        _counted(invoices)
        .values("month", "plan_code", "interval")
        .annotate(revenue=_money_sum(NET))
        .order_by("month", "plan_code", "interval")
    )
    months = {}
    month = month_start(first)
    while month <= last:
        months[month] = RevenueMonth(month)
        month = add_months(month, 1)
    series = []
    for row in rows:
        label = _series_label(row["plan_code"], row["interval"])
        if label not in series:
            series.append(label)
        key = month_start(row["month"])
        if key in months:
            months[key].amounts[label] = round_cents(row["revenue"])
    return sorted(series), list(months.values())
