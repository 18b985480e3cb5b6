"""Benchmark: the finance reports (R3) on PostgreSQL, read from the invoices' roll-up, against
what they cost when they summed the invoices, and what keeping the roll-up costs the writes.

For N Team workspaces with twelve monthly invoices each (`dataset.add_monthly_invoices`: 30 %
taxed in California, some exempt, one subscription in 97 void), prints

- the write: the invoices' INSERT … SELECT with the roll-up's triggers off (the floor: the
  same rows into the same table and indexes), then on; the ratio; and the fold after it;
- each report over its default twelve months: the roll-up's query (median of 7), the old sum
  over the invoices it replaced (median of 3), and their figures compared to the cent;
- each report page as finance opens it, against a page with no data (the floor of a page);
- the invoice list a report's total opens, and the whole list's last page, against the list
  of a month with no invoice, and the exact count the list ran before it counted from the
  roll-up.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/finance_reports.py [--team 100000]
"""

import argparse
import statistics
import time
from datetime import date

from dataset import (
    add_monthly_invoices,
    as_in_production,
    fresh_workspaces,
    print_page,
    setup_django,
    staff_client,
    time_page,
    timed,
)

FIRST, LAST = date(2025, 2, 1), date(2026, 1, 1)  # the twelve issue months the data has
TRIGGERS = ["insert", "update", "delete", "truncate"]

# The revenue report before the roll-up: the sum over the invoices themselves.
REVENUE_FROM_INVOICES = """
    select date_trunc('month', issue_date) as month, plan_code, interval,
           sum(subtotal - discount - credits)
    from billing_invoice
    where status <> 'void' and issue_date >= %s and issue_date < %s
    group by 1, 2, 3 order by 1, 2, 3
"""
# The tax report's invoice side before the roll-up.
TAX_FROM_INVOICES = """
    select date_trunc('month', issue_date) as month, tax_country,
           case when tax_country in ('US', 'CA') then tax_region else '' end, count(*),
           sum(subtotal - discount - credits) filter (where tax_rate > 0), sum(tax),
           sum(subtotal - discount - credits) filter (where tax_note like 'exempt: %%')
    from billing_invoice
    where status <> 'void' and issue_date >= %s and issue_date < %s
    group by 1, 2, 3 order by 1, 2, 3
"""


def set_triggers(on: bool):
    from django.db import connection

    with connection.cursor() as cursor:
        for event in TRIGGERS:
            cursor.execute(
                f"alter table billing_invoice {'enable' if on else 'disable'} trigger "
                f"billing_invoice_rollup_{event}"
            )


def empty_invoices():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("truncate billing_invoice, billing_invoicerollup cascade")
        cursor.execute("vacuum analyze billing_invoice")


def write(months: int):
    """The invoices written with the triggers off, then on (the kept ones)."""
    empty_invoices()
    set_triggers(False)
    try:
        _, floor = timed(
            "  invoices, roll-up triggers off (the floor)", add_monthly_invoices, months
        )
    finally:
        set_triggers(True)
    empty_invoices()
    invoices, written = timed("  invoices, roll-up triggers on", add_monthly_invoices, months)
    print(f"  ratio {written / floor:.2f}× the floor, {invoices:,} invoices")
    from billing.models import InvoiceRollup
    from billing.reports import fold_rollup

    rows = InvoiceRollup.objects.count()
    folded, _ = timed("  fold", fold_rollup)
    print(
        f"  roll-up rows: {rows:,} before the fold ({folded:,} folded), "
        f"{InvoiceRollup.objects.count():,} after"
    )


def median_ms(fn, runs: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def compare_reports():
    from django.db import connection

    from billing import reports
    from billing.months import next_month

    def from_invoices(sql):
        with connection.cursor() as cursor:
            cursor.execute(sql, [FIRST, next_month(LAST)])
            return cursor.fetchall()

    revenue_ms, (series, months) = median_ms(
        lambda: reports.revenue_by_month(first=FIRST, last=LAST), 7
    )
    old_revenue_ms, old_revenue = median_ms(lambda: from_invoices(REVENUE_FROM_INVOICES), 3)
    old_total = sum(row[3] for row in old_revenue)
    new_total = sum(month.total for month in months)
    print(
        f"  revenue: {revenue_ms:.1f} ms from the roll-up; {old_revenue_ms:.0f} ms summing the "
        f"invoices ({old_revenue_ms / revenue_ms:.0f}×); totals {new_total} and {old_total}: "
        f"{'equal' if new_total == old_total else 'DIFFERENT'}"
    )
    tax_ms, rows = median_ms(lambda: reports.tax_report(first=FIRST, last=LAST), 7)
    old_tax_ms, old_rows = median_ms(lambda: from_invoices(TAX_FROM_INVOICES), 3)
    new_tax = (sum(r["invoices"] for r in rows), sum(r["tax_total"] for r in rows))
    old_tax = (sum(r[3] for r in old_rows), sum(r[5] for r in old_rows))
    print(
        f"  tax report: {tax_ms:.1f} ms from the roll-up; {old_tax_ms:.0f} ms summing the "
        f"invoices ({old_tax_ms / tax_ms:.0f}×); invoices and tax {new_tax} and {old_tax}: "
        f"{'equal' if new_tax == old_tax else 'DIFFERENT'}"
    )


def pages():
    from billing.roles import FINANCE

    client, _ = staff_client("bench-finance", FINANCE)
    query = {"issued_from": f"{FIRST:%Y-%m}", "issued_to": f"{LAST:%Y-%m}"}
    with as_in_production():
        print_page(
            "  floor: the revenue page of a month with no invoice",
            time_page(
                client, "/finance/revenue/", {"issued_from": "2030-01", "issued_to": "2030-01"}
            ),
        )
        print_page(
            "  /finance/revenue/ (twelve months)", time_page(client, "/finance/revenue/", query)
        )
        print_page(
            "  /finance/tax-report/ (twelve months)",
            time_page(client, "/finance/tax-report/", query),
        )
        print_page(
            "  floor: the invoice list of a month with no invoice",
            time_page(client, "/finance/", {"issued_from": "2030-01", "issued_to": "2030-01"}),
        )
        counted = {**query, "status": "counted"}
        print_page(
            "  /finance/ as the revenue total opens it (counted from the roll-up)",
            time_page(client, "/finance/", counted),
        )
        print_page(
            "  /finance/, every invoice, its last page (a capped count)",
            time_page(client, "/finance/", {"page": 10_000}),
        )
    from billing.models import Invoice

    exact_ms, invoices = median_ms(
        lambda: (
            Invoice.objects.exclude(status="void")
            .filter(issue_date__gte=FIRST, issue_date__lt=date(2026, 2, 1))
            .count()
        ),
        3,
    )
    print(f"  the exact count that list ran before: {exact_ms:.0f} ms ({invoices:,} invoices)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--team", type=int, default=100_000, help="Team workspaces (default 100,000)"
    )
    args = parser.parse_args()
    setup_django()
    fresh_workspaces(team=args.team, free=0, months=[], month_of_team="2025-01-01")
    print("Writing twelve months of invoices:")
    write(12)
    print("The reports, over twelve months:")
    compare_reports()
    pages()


if __name__ == "__main__":
    main()
