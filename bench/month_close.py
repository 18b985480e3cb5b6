"""Benchmark: close one month for 100,000 Team workspaces on PostgreSQL (issue: invoices).

Prints invoices per second in process and with one and two Celery workers (end to end, from
dispatch to the close marked finished), the ratio to a raw INSERT … SELECT of the same rows,
SQL queries per chunk at two chunk sizes, and each worker's peak memory.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
    BENCH_BROKER_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/month_close.py [N]
"""

import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/2")

from dataset import (
    ROOT,
    add_discounts_and_credits,
    build_workspaces,
    reset_billing_tables,
    setup_django,
    timed,
)

N = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
JANUARY, FEBRUARY, MARCH = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)


def fresh_month():
    """Forget February's close and invoices, keep the workspaces."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "truncate billing_invoiceline, billing_invoice, billing_invoicesequence, "
            "billing_monthclosechunk, billing_monthclose restart identity cascade"
        )
        # The credit draws went with the invoices (cascade): give the grants their balance back.
        cursor.execute("update coupons_creditgrant set remaining = amount")
    from billing.models import MonthClose

    MonthClose.objects.create(
        month=JANUARY, closed_on=FEBRUARY, locks_done=True, chunks_planned=True, finished=True
    )


def raw_insert_select():
    """The floor: the same number of invoice rows from one INSERT … SELECT."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("create temp table raw_invoice (like billing_invoice including defaults)")
        start = time.perf_counter()
        cursor.execute(
            """
            insert into raw_invoice (id, number, workspace_id, subscription_id, kind,
                period_start, period_end, issue_date, status, currency, subtotal, discount,
                credits, tax, total, plan_code, interval, tax_country, tax_region, tax_note,
                overage_mtus, void_reason, created_at)
            select s.id, 'INV-2026-' || lpad(s.id::text, 6, '0'), s.workspace_id, s.id,
                'monthly', %s, %s, %s, 'issued', 'USD', 120 + u.mtus * 0.01, 0, 0, 0,
                120 + u.mtus * 0.01, 'team', 'monthly', 'DE', '', '', u.mtus, '', now()
            from billing_subscription s join billing_usage u
              on u.workspace_id = s.workspace_id and u.month = %s
            where s.paid_from is not null
            """,
            [FEBRUARY, MARCH, MARCH, FEBRUARY],
        )
        elapsed = time.perf_counter() - start
        cursor.execute("drop table raw_invoice")
    return elapsed


def queries_per_chunk(chunk_size):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import services
    from billing.models import MonthCloseChunk

    fresh_month()
    services.close_month(FEBRUARY, as_of=MARCH, dispatch=lambda ids: None, chunk_size=chunk_size)
    chunk = MonthCloseChunk.objects.order_by("pk").first()
    with CaptureQueriesContext(connection) as ctx:
        services.bill_chunk(chunk.pk)
    return len(ctx.captured_queries)


def start_workers(count, queue):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": os.environ["DATABASE_URL"],
    }
    return [
        subprocess.Popen(
            [
                str(ROOT / ".venv/bin/celery"),
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--loglevel=WARNING",
                "-Q",
                queue,
                "-n",
                f"bench{i}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(count)
    ]


def peak_rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def close_with_workers(count):
    from billing import services, tasks
    from billing.models import MonthClose
    from config.celery import app

    queue = f"bench-close-{os.getpid()}-{count}"
    app.conf.task_default_queue = queue
    fresh_month()
    workers = start_workers(count, queue)
    try:
        time.sleep(4)  # workers up and connected before the clock starts
        baseline = [peak_rss_mb(w.pid) for w in workers]
        start = time.perf_counter()
        services.close_month(FEBRUARY, as_of=MARCH, dispatch=tasks.dispatch_close_chunks)
        while not MonthClose.objects.filter(month=FEBRUARY, finished=True).exists():
            time.sleep(0.05)
        elapsed = time.perf_counter() - start
        peaks = [peak_rss_mb(w.pid) for w in workers]
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(30)
    return elapsed, baseline, peaks


def main():
    setup_django()
    from billing import services
    from billing.models import Invoice

    timed("reset", reset_billing_tables)
    timed(
        f"build {N:,} Team workspaces with February usage",
        build_workspaces,
        team=N,
        free=0,
        months=["2026-02-01"],
        month_of_team="2026-01-01",
    )
    timed(
        "a 20 % coupon on 20 % of them, credits on 5 %",
        add_discounts_and_credits,
        since="2026-01-15",
    )

    raw = raw_insert_select()
    print(f"raw INSERT … SELECT of {N:,} invoice rows: {raw:.2f} s ({N / raw:,.0f} rows/s)")

    fresh_month()
    _, in_process = timed(
        "close in one process (no Celery)", services.close_month, FEBRUARY, as_of=MARCH
    )
    issued = Invoice.objects.count()
    print(
        f"  {issued:,} invoices, {issued / in_process:,.0f} invoices/s; "
        f"{Invoice.objects.filter(discount__gt=0).count():,} discounted, "
        f"{Invoice.objects.filter(credits__gt=0).count():,} with credits, "
        f"{Invoice.objects.filter(tax__gt=0).count():,} taxed"
    )

    for size in (500, 2000):
        print(f"queries for one chunk of {size:,} workspaces: {queries_per_chunk(size)}")

    results = {}
    for count in (1, 2):
        elapsed, baseline, peaks = close_with_workers(count)
        results[count] = elapsed
        issued = Invoice.objects.count()
        growth = ", ".join(
            f"{p:.0f} MB (idle {b:.0f} MB)" for b, p in zip(baseline, peaks, strict=True)
        )
        print(
            f"close with {count} Celery worker(s), end to end: {elapsed:.2f} s, "
            f"{issued:,} invoices, {issued / elapsed:,.0f} invoices/s; "
            f"{elapsed / raw:.1f}× the raw INSERT … SELECT; peak memory per worker: {growth}"
        )
    print(f"speed-up from one worker to two: {results[1] / results[2]:.2f}×")


if __name__ == "__main__":
    main()
