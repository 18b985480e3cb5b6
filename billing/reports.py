"""Finance reports (R3): the monthly tax report per jurisdiction (with the tax credit notes gave
back) and invoiced revenue by month and plan. Void invoices count in neither (I3).

The invoices' side is read from their roll-up (`InvoiceRollup`), which the database keeps as
invoices are written: a year of a large customer base is a million invoices, and summing them
on every view took seconds. `fold_rollup` keeps the roll-up small."""

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import (
    Case,
    CharField,
    DecimalField,
    ExpressionWrapper,
    F,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models.functions import Coalesce, TruncMonth

from billing.models import CreditNote, Interval, Invoice, InvoiceRollup
from billing.months import add_months, month_start
from billing.pricing import round_cents
from billing.regions import TAX_REGIONS

ZERO = Decimal("0.00")
# SQLite hands sums back unrounded (e.g. Decimal("1440")): every amount is rounded to the cent.
MONEY = DecimalField(max_digits=14, decimal_places=2)


def _money_sum(expression, **kwargs):
    return Coalesce(Sum(expression, output_field=MONEY, **kwargs), ZERO, output_field=MONEY)


def _jurisdiction_region(prefix: str = ""):
    """X1, X2: an invoice's region as a jurisdiction: where tax depends on it (TAX_REGIONS);
    elsewhere tax is country-wide, and the region is the customer's words ("BAYERN"), no
    jurisdiction of its own."""
    return Case(
        When(**{f"{prefix}tax_country__in": list(TAX_REGIONS)}, then=F(f"{prefix}tax_region")),
        default=Value(""),
        output_field=CharField(),
    )


def _counted(first: date | None, last: date | None) -> QuerySet:
    """The roll-up of the invoices issued from month `first` to month `last` (both included;
    an end left out is open)."""
    rows = InvoiceRollup.objects.all()
    if first is not None:
        rows = rows.filter(month__gte=month_start(first))
    if last is not None:
        rows = rows.filter(month__lte=month_start(last))
    return rows


def counted_invoices(
    *,
    first: date | None = None,
    last: date | None = None,
    tax_country: str | None = None,
    tax_region: str | None = None,
    plan_code: str | None = None,
    interval: str | None = None,
) -> int:
    """How many counted (not void, I3) invoices were issued from month `first` to month
    `last`, of the tax country and region, plan and billing interval given (one left out:
    any): what a figure of the reports counts, read from the roll-up."""
    where = {
        "tax_country": tax_country,
        "tax_region": tax_region,
        "plan_code": plan_code,
        "interval": interval,
    }
    rows = _counted(first, last).filter(**{k: v for k, v in where.items() if v is not None})
    return rows.aggregate(count=Sum("invoices"))["count"] or 0


def tax_report(
    *, first: date | None = None, last: date | None = None, credit_notes: QuerySet | None = None
) -> list[dict]:
    """Per month and jurisdiction (X1: the country, and the region where tax depends on it),
    from month `first` to month `last`: invoices issued that month (count, taxable amount —
    net of invoices a positive rate applied to —, tax, and exempt amount — net of invoices a
    certificate exempted, X4); what `credit_notes` approved that month gave back on taxed
    invoices of the jurisdiction (K3): the taxable amount (each note less its tax) and the tax
    (X3); and what is left: the net taxable amount, and the tax due (charged less given
    back)."""
    rows = {
        (row.pop("month"), row.pop("tax_country"), row.pop("region")): row
        for row in _counted(first, last)
        .annotate(region=_jurisdiction_region())
        .values("month", "tax_country", "region")
        .annotate(
            count=Sum("invoices"),
            taxable=_money_sum("net", filter=Q(taxed=True)),
            tax_total=_money_sum("tax"),
            exempt=_money_sum("net", filter=Q(exempt=True)),
        )
        .filter(count__gt=0)  # not a group whose invoices were all voided
        .order_by()
    }
    given_back = {}
    if credit_notes is not None:
        given_back = {
            (row.pop("month"), row.pop("invoice__tax_country"), row.pop("region")): row
            for row in credit_notes.filter(
                status=CreditNote.Status.APPROVED, invoice__tax_rate__gt=0
            )
            .exclude(invoice__status=Invoice.Status.VOID)  # as the void invoice's tax (I3)
            .annotate(month=TruncMonth("decided_on"), region=_jurisdiction_region("invoice__"))
            .values("month", "invoice__tax_country", "region")
            .annotate(
                taxable=_money_sum(ExpressionWrapper(F("amount") - F("tax"), output_field=MONEY)),
                tax=_money_sum("tax"),
            )
            .order_by()
        }
    nothing = {"count": 0, "taxable": ZERO, "tax_total": ZERO, "exempt": ZERO}
    none_back = {"taxable": ZERO, "tax": ZERO}
    report = []
    for key in sorted(rows.keys() | given_back.keys()):
        month, country, region = key
        row, back = rows.get(key, nothing), given_back.get(key, none_back)
        taxable, taxable_back = round_cents(row["taxable"]), round_cents(back["taxable"])
        charged, tax_back = round_cents(row["tax_total"]), round_cents(back["tax"])
        report.append(
            {
                "month": month,
                "tax_country": country,
                "tax_region": region,
                "jurisdiction": "-".join(p for p in (country, region) if p) or "—",
                "invoices": row["count"],
                "taxable": taxable,
                "tax_total": charged,
                "exempt": round_cents(row["exempt"]),
                "taxable_given_back": taxable_back,
                "tax_given_back": tax_back,
                "net_taxable": taxable - taxable_back,
                "tax_due": charged - tax_back,
            }
        )
    return report


def totals(rows: list[dict], keys) -> dict:
    return {key: sum((row[key] for row in rows), 0) for key in keys}


@dataclass(frozen=True, order=True)
class RevenueSeries:
    """A plan and billing interval as invoiced: one column of the revenue report, shown by its
    label ("Team (monthly)")."""

    plan_code: str
    interval: str

    def __str__(self):
        return f"{self.plan_code.capitalize()} ({Interval(self.interval).label.lower()})"


@dataclass
class RevenueMonth:
    month: date
    amounts: dict = field(default_factory=dict)  # RevenueSeries → Decimal

    @property
    def total(self) -> Decimal:
        return sum(self.amounts.values(), ZERO)


def revenue_by_month(*, first: date, last: date) -> tuple[list, list]:
    """Invoiced revenue (after discounts and credits, before tax) per issue month from `first`
    to `last` (months, both included, empty ones too) and plan as invoiced. Returns (series,
    months)."""
    rows = (
        _counted(first, last)
        .values("month", "plan_code", "interval")
        .annotate(revenue=_money_sum("net"), count=Sum("invoices"))
        .filter(count__gt=0)
        .order_by("month", "plan_code", "interval")
    )
    months = {}
    month = month_start(first)
    while month <= last:
        months[month] = RevenueMonth(month)
        month = add_months(month, 1)
    series = []
    for row in rows:
        plan = RevenueSeries(row["plan_code"], row["interval"])
        if plan not in series:
            series.append(plan)
        months[row["month"]].amounts[plan] = round_cents(row["revenue"])
    return sorted(series), list(months.values())


GROUP = ("month", "tax_country", "tax_region", "plan_code", "interval", "taxed", "exempt")


def fold_rollup() -> int:
    """Fold the roll-up into one row per group (the triggers add one a statement), in the
    months that have more, and drop the groups whose invoices were all voided. The rows this
    deletes are exactly the rows it sums (one DELETE … RETURNING), so rows other transactions
    add meanwhile stay as they are, and two folds at once cannot count a row twice. Returns
    the rows it folded."""
    table = InvoiceRollup._meta.db_table
    columns = ", ".join(connection.ops.quote_name(name) for name in GROUP)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"DELETE FROM {table} WHERE month IN (SELECT month FROM {table} "
            f"GROUP BY {columns} HAVING count(*) > 1) RETURNING {columns}, invoices, net, tax"
        )
        sums, folded = {}, 0
        for *group, invoices, net, tax in cursor.fetchall():
            # SQLite hands back the month as text and the amounts as floats (of whole cents).
            month = group[0] if isinstance(group[0], date) else date.fromisoformat(group[0])
            key = (month, *group[1:5], bool(group[5]), bool(group[6]))
            count, net_sum, tax_sum = sums.get(key, (0, ZERO, ZERO))
            sums[key] = (count + invoices, net_sum + round_cents(net), tax_sum + round_cents(tax))
            folded += 1
        InvoiceRollup.objects.bulk_create(
            InvoiceRollup(**dict(zip(GROUP, key, strict=True)), invoices=count, net=net, tax=tax)
            for key, (count, net, tax) in sums.items()
            if count or net or tax
        )
    return folded
