"""Benchmark: export 1,000,000 invoices as CSV on PostgreSQL (issue: tax and finance).

Builds 100,000 Team workspaces with ten monthly invoices each (INSERT … SELECT, 30 % in
California and taxed, a few exempt or with a note), then measures, in one run:

- the finance page's *Export CSV* through Django's test client, consuming the streamed
  response: time to the response, to the first byte and to the first invoice row, rows/s, and
  the growth of this process's peak memory (VmHWM, reset first through /proc/self/clear_refs);
- the raw `COPY (SELECT …) TO STDOUT` of the same SELECT, read block by block: the ratio;
- the Python path the SQLite default takes (a row loop over `.iterator()`), on the same rows;
- django-import-export's export of the same queryset, when it is installed (not a project
  dependency: `uv pip install --python .venv/bin/python django-import-export` for this run).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/export_invoices.py [N_WORKSPACES] [--skip-import-export]
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import (
    add_monthly_invoices,
    as_in_production,
    fresh_workspaces,
    peak_mb,
    reset_peak,
    setup_django,
    staff_client,
    timed,
)

WORKSPACES = int(next((a for a in sys.argv[1:] if a.isdigit()), 100_000))
MONTHS = 10
SKIP_IMPORT_EXPORT = "--skip-import-export" in sys.argv


def through_the_page(client, url):
    """The finance page's export as a browser gets it: (seconds to the response, to the first
    byte, to the first invoice row, in total, rows, bytes, peak memory growth in MB)."""
    import gc

    gc.collect()
    baseline = reset_peak()
    start = time.perf_counter()
    response = client.get(url)
    responded = time.perf_counter() - start
    assert response.status_code == 200, response.status_code
    first_byte = first_row = None
    rows = size = 0
    for chunk in response.streaming_content:
        now = time.perf_counter() - start
        if first_byte is None:
            first_byte = now
        lines = chunk.count(b"\n")
        if first_row is None and (rows + lines > 1):
            first_row = now
        rows += lines
        size += len(chunk)
    total = time.perf_counter() - start
    response.close()
    return responded, first_byte, first_row, total, rows - 1, size, peak_mb() - baseline


def raw_copy(queryset):
    """The floor: COPY of the very SELECT the export sends, read block by block and dropped."""
    from django.db import connection

    from billing.csv_export import copy_statement

    start = time.perf_counter()
    rows = 0
    with connection.cursor() as cursor, cursor.copy(copy_statement(queryset)) as copy:
        for _ in copy:
            rows += 1
    return rows, time.perf_counter() - start


def python_path(queryset):
    """What the SQLite default does (a row loop over .iterator()), here on the same rows."""
    from billing.csv_export import InvoiceCsv

    export = InvoiceCsv(queryset)
    start = time.perf_counter()
    size = sum(len(chunk) for chunk in export._python_chunks())
    return export.rows, size, time.perf_counter() - start


def import_export(queryset):
    """django-import-export's export of the same queryset, to CSV text; None if not installed."""
    try:
        from import_export import fields, resources
    except ImportError:
        return None

    from billing.csv_export import COLUMNS
    from billing.models import Invoice

    class InvoiceResource(resources.ModelResource):
        workspace = fields.Field(attribute="workspace__slug", column_name="workspace")

        class Meta:
            model = Invoice
            fields = COLUMNS  # the contract's columns, in its order
            export_order = fields

    import gc

    gc.collect()
    baseline = reset_peak()
    start = time.perf_counter()
    dataset = InvoiceResource().export(queryset.select_related("workspace"))
    text = dataset.csv
    elapsed = time.perf_counter() - start
    return len(dataset), len(text), elapsed, peak_mb() - baseline


def main():
    setup_django()
    from django.urls import reverse

    from billing.csv_export import export_order
    from billing.models import Invoice
    from billing.roles import FINANCE

    fresh_workspaces(team=WORKSPACES, free=0, months=[], month_of_team="2025-01-01")
    count, _ = timed(
        f"build {WORKSPACES * MONTHS:,} invoices (INSERT … SELECT)", add_monthly_invoices, MONTHS
    )
    client, _ = staff_client("bench-finance", FINANCE)
    queryset = Invoice.objects.all()

    rows, raw = raw_copy(export_order(queryset))
    print(
        f"raw COPY (SELECT …) TO STDOUT of the export's SELECT: {rows:,} rows in {raw:.2f} s, "
        f"{rows / raw:,.0f} rows/s"
    )

    with as_in_production():
        url = reverse("finance:invoices-export")
        responded, first_byte, first_row, total, rows, size, growth = through_the_page(client, url)
    assert rows == count, (rows, count)
    print(
        f"finance page Export CSV through the test client: {rows:,} rows, {size / 1e6:,.0f} MB "
        f"in {total:.2f} s = {rows / total:,.0f} rows/s; response after {responded * 1000:.0f} "
        f"ms, first byte {first_byte * 1000:.0f} ms, first invoice row {first_row * 1000:.0f} "
        f"ms; peak memory growth {growth:.1f} MB"
    )
    print(f"  ratio to the raw COPY: {raw / total:.2f} (page time {total / raw:.2f}× COPY's)")

    filtered_url = f"{url}?issued_from=2025-06&issued_to=2025-07&country=US&region=CA"
    with as_in_production():
        _, fb, fr, t, r, s, g = through_the_page(client, filtered_url)
    print(
        f"filtered export (2 months, US-CA): {r:,} rows in {t:.2f} s = {r / t:,.0f} rows/s, "
        f"first row {fr * 1000:.0f} ms, peak memory growth {g:.1f} MB"
    )

    py_rows, _, py_time = python_path(export_order(queryset))
    print(
        f"Python row loop (the SQLite default's path) on PostgreSQL: {py_rows:,} rows in "
        f"{py_time:.2f} s = {py_rows / py_time:,.0f} rows/s; COPY path is "
        f"{py_time / total:.1f}× faster"
    )

    if SKIP_IMPORT_EXPORT:
        print("django-import-export: skipped (--skip-import-export)")
        return
    result = import_export(export_order(queryset))
    if result is None:
        print("django-import-export: not installed (uv pip install django-import-export)")
        return
    ie_rows, ie_size, ie_time, ie_growth = result
    print(
        f"django-import-export ModelResource.export → CSV: {ie_rows:,} rows in {ie_time:.2f} s "
        f"= {ie_rows / ie_time:,.0f} rows/s, peak memory growth {ie_growth:,.0f} MB; "
        f"the page's export is {ie_time / total:.1f}× faster"
    )


if __name__ == "__main__":
    main()
