"""Benchmark: close one month on PostgreSQL against its floor in the same run (issue 12).

For N Team workspaces (February usage; a 20 % coupon on 20 %, credits on 5 %, tax on 30 %) and
N/2 Free ones (≈ 9 % over the limit: strikes, locks and lock emails), prints

- the close in one process: time, invoices per second, rows written, peak memory (the RSS
  high-water mark during the close, and the process's size before it);
- the floor: INSERT … SELECT of exactly the rows the close wrote, into empty tables with the
  same indexes and check constraints, timed in the same run; and the ratio;
- SQL queries for one chunk at two chunk sizes (they do not depend on the chunk's size);
- with --repeat N: each close N times, and the spread of its ratio (this machine's speed varies);
- with --workers: the close on 1 and 2 Celery workers, end to end (needs Redis);
- with --scale 10000,100000,1000000: the close and its floor at each size of N and how time and
  memory grow from size to size (the exponent: 1.0 is linear).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/month_close.py [--team 100000] [--repeat 5] [--workers] \\
        [--scale 10000,100000]
"""

import argparse
import os
import subprocess
import sys
import time
from contextlib import suppress
from datetime import date
from pathlib import Path
from statistics import median

from kombu.exceptions import OperationalError

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_BROKER_URL"] = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/2")
# Tasks enqueued by the close (lock emails) go to a queue of their own, emptied at the end.
QUEUE = f"bench-month-close-{os.getpid()}"
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE

from dataset import (  # noqa: E402 (after the Celery settings above)
    ROOT,
    add_discounts_and_credits,
    fresh_workspaces,
    peak_memory,
    print_scaling,
    setup_django,
    timed,
)

JANUARY, FEBRUARY, MARCH = date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)

# What a close of February writes: each table and which of its rows (after `fresh_month`).
WRITTEN = [
    ("billing_invoice", ""),
    ("billing_invoicerollup", ""),  # by the invoice table's triggers, folded at the end
    ("billing_invoiceline", ""),
    ("coupons_discountapplication", ""),
    ("coupons_creditledgerentry", "where kind = 'draw'"),
    ("billing_strike", "where month = '2026-02-01'"),
    ("billing_lockevent", "where month = '2026-02-01'"),
    ("billing_outboundemail", ""),
    ("billing_historicalworkspace", ""),
    ("billing_monthclosechunk", ""),
]


def build(team: int, free: int):
    fresh_workspaces(team=team, free=free, months=["2026-02-01"], month_of_team="2026-01-01")
    timed(
        "a 20 % coupon on 20 % of them, credits on 5 %",
        add_discounts_and_credits,
        since="2026-01-15",
    )


def fresh_month():
    """Forget February's close and all it wrote; keep the workspaces, usage, coupons, grants."""
    from django.db import connection

    from billing.models import MonthClose

    with connection.cursor() as cursor:
        cursor.execute(
            "truncate billing_invoiceline, billing_invoice, billing_invoicesequence, "
            "billing_monthclosechunk, billing_monthclose, billing_strike, billing_lockevent, "
            "billing_outboundemail, billing_historicalworkspace, billing_setasideinvoice "
            "restart identity cascade"
        )
        # The credit draws went with the invoices (cascade): give the grants their balance back.
        cursor.execute("update coupons_creditgrant set remaining = amount")
        cursor.execute(
            "update billing_workspace set lock = 'unlocked', data_flow = true, "
            "lock_changed_on = null, lock_cause = '' where lock <> 'unlocked'"
        )
        cursor.execute("vacuum analyze")
    MonthClose.objects.create(
        month=JANUARY, closed_on=FEBRUARY, locks_done=True, chunks_planned=True, finished=True
    )


def rows_written() -> dict[str, int]:
    from django.db import connection

    counts = {}
    with connection.cursor() as cursor:
        for table, where in WRITTEN:
            cursor.execute(f"select count(*) from {table} {where}")
            counts[table] = cursor.fetchone()[0]
    return counts


def floor(with_keys: bool = False) -> float:
    """INSERT … SELECT of exactly the rows the close wrote into empty copies of their tables
    (same columns, indexes, defaults and check constraints), committed: the database's own
    cost of writing them, without any rule. `with_keys`: the copies also have the tables'
    foreign keys (checked at commit, as the close's are)."""
    from django.db import connection, transaction

    elapsed = 0.0
    written = {table for table, _ in WRITTEN}
    with connection.cursor() as cursor:
        for table, _ in WRITTEN:
            cursor.execute(f"drop table if exists bench_floor_{table} cascade")
            cursor.execute(f"create table bench_floor_{table} (like {table} including all)")
        for table, _ in WRITTEN if with_keys else []:
            cursor.execute(
                "select pg_get_constraintdef(oid) from pg_constraint "
                "where conrelid = %s::regclass and contype = 'f'",
                [table],
            )
            for (definition,) in cursor.fetchall():
                for other in written:  # keys between written tables point at the copies
                    definition = definition.replace(
                        f"REFERENCES {other}(", f"REFERENCES bench_floor_{other}("
                    )
                cursor.execute(f"alter table bench_floor_{table} add {definition}")
        cursor.execute("checkpoint")
    for table, where in WRITTEN:
        start = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"insert into bench_floor_{table} select * from {table} {where}")
        elapsed += time.perf_counter() - start
    with connection.cursor() as cursor:
        for table, _ in WRITTEN:
            cursor.execute(f"drop table bench_floor_{table} cascade")
    return elapsed


def close_in_process(threads: int):
    from django.db import connection

    from billing import services
    from config.celery import app

    # A worker's connection to the broker is open before any close it runs. Here the close
    # would open it when it hands its lock emails over: a one-time half second of importing
    # the Redis client and connecting, whatever the close's size, so it is opened first.
    # Without a broker the close leaves its emails to the sweep, as it would in a worker.
    with suppress(OperationalError), app.producer_or_acquire() as producer:
        producer.connection.ensure_connection(max_retries=1)
    with connection.cursor() as cursor:
        cursor.execute("checkpoint")
    return peak_memory(services.close_month, FEBRUARY, as_of=MARCH, threads=threads)


def measure(team: int, threads: int = 1) -> dict:
    """The close of N Team and N/2 Free workspaces and its floor, as printed lines."""
    from billing.models import Invoice

    fresh_month()
    counts, elapsed, peak, before = close_in_process(threads)
    written = rows_written()
    total_rows = sum(written.values())
    floor_time = floor()
    keyed_floor = floor(with_keys=True)
    invoices = Invoice.objects.count()
    how = "one process" if threads == 1 else f"one process, {threads} threads"
    print(
        f"close of {team:,} Team + {team // 2:,} Free workspaces in {how}: {elapsed:.2f} s, "
        f"{invoices:,} invoices ({invoices / elapsed:,.0f}/s), {counts.get('strikes', 0):,} "
        f"strikes, {sum(v for k, v in counts.items() if k.startswith('locked')):,} locks; "
        f"{total_rows:,} rows written"
    )
    print("  rows: " + ", ".join(f"{table} {count:,}" for table, count in written.items() if count))
    print(
        f"  floor (INSERT … SELECT of the same {total_rows:,} rows into tables with the same "
        f"indexes): {floor_time:.2f} s; ratio {elapsed / floor_time:.1f}×"
    )
    print(
        f"  the same with the tables' foreign keys too (checked at commit, as the close's): "
        f"{keyed_floor:.2f} s; ratio {elapsed / keyed_floor:.1f}×"
    )
    print(
        f"  peak memory: {peak:.0f} MB RSS during the close "
        f"({peak - before:+.0f} MB over the {before:.0f} MB before it)"
    )
    return {
        "time": elapsed,
        "floor": floor_time,
        "keyed_floor": keyed_floor,
        "peak": peak,
        "growth": max(peak - before, 1),
    }


def queries_per_chunk(chunk_size):
    """One chunk billed alone: its queries, its time, the database's share of it, and how long
    it holds the invoice-number row (from the statement that reserves its numbers to the
    commit): the part of a chunk that workers cannot do at the same time."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from billing import services
    from billing.models import InvoiceSequence, MonthCloseChunk

    fresh_month()
    services.close_month(FEBRUARY, as_of=MARCH, dispatch=lambda ids: None, chunk_size=chunk_size)
    chunk = MonthCloseChunk.objects.order_by("pk").first()
    sequence = f'UPDATE "{InvoiceSequence._meta.db_table}"'
    numbered = []

    def note_numbering(execute, sql, params, many, context):
        if sql.startswith(sequence):
            numbered.append(time.perf_counter())
        return execute(sql, params, many, context)

    with CaptureQueriesContext(connection) as ctx, connection.execute_wrapper(note_numbering):
        start = time.perf_counter()
        services.bill_chunk(chunk.pk)
        end = time.perf_counter()
    database = sum(float(q["time"]) for q in ctx.captured_queries)
    return len(ctx.captured_queries), end - start, database, end - numbered[0]


def start_workers(count, queue):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "CELERY_TASK_DEFAULT_QUEUE": queue,
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
    from billing.emails import hand_sending_to
    from billing.models import MonthClose
    from config.celery import app

    queue = f"{QUEUE}-workers-{count}"
    app.conf.task_default_queue = queue
    # The close's lock emails wait in a queue of their own, emptied at the end. On the one queue
    # they come after the chunks, but a worker sending them would share this machine's two
    # cores with the last chunks (4,494 emails at 100,000 Team workspaces, ≈ 6 ms each), and
    # this measures the close; the emails follow it (F6).
    hand_sending_to(lambda ids: tasks.send_emails.apply_async((ids,), queue=f"{QUEUE}-emails"))
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
        app.conf.task_default_queue = QUEUE
        hand_sending_to(tasks.send_emails.delay)
    return elapsed, baseline, peaks


def empty_queues():
    import redis

    client = redis.Redis.from_url(os.environ["CELERY_BROKER_URL"])
    for key in client.scan_iter(f"{QUEUE}*"):
        client.delete(key)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--team", type=int, default=100_000, help="Team workspaces (and half as many Free)"
    )
    parser.add_argument(
        "--scale", default="", help="sizes of N for the scaling run, e.g. 10000,100000"
    )
    parser.add_argument(
        "--workers", action="store_true", help="also close on 1 and 2 Celery workers"
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="also close on this many threads (1: skip)"
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="close (and measure the floor) this many times each way and print the spread: "
        "on a shared machine one run's ratio can be a third off",
    )
    args = parser.parse_args()
    setup_django()
    from billing.month_close import CLOSE_CHUNK_SIZE

    try:
        build(args.team, args.team // 2)
        for threads in (1, args.threads) if args.threads > 1 else (1,):
            ratios = sorted(
                result["time"] / result["floor"]
                for result in (measure(args.team, threads) for _ in range(args.repeat))
            )
            if args.repeat > 1:
                print(
                    f"ratio over {args.repeat} closes on {threads} thread(s): "
                    f"{ratios[0]:.1f}× to {ratios[-1]:.1f}×, median {median(ratios):.1f}×"
                )
        for size in (500, CLOSE_CHUNK_SIZE):
            queries, elapsed, database, numbering = queries_per_chunk(size)
            print(
                f"one chunk of {size:,} workspaces: {queries} queries, {elapsed * 1000:.0f} ms "
                f"({database * 1000:.0f} ms in the database), {size / elapsed:,.0f} invoices/s; "
                f"holds the invoice-number row {numbering * 1000:.0f} ms "
                f"(workers together: at most {size / numbering:,.0f} invoices/s)"
            )
        if args.workers:
            from billing.models import Invoice

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
                    f"{issued / elapsed:,.0f} invoices/s; peak memory per worker: {growth}"
                )
            print(f"speed-up from one worker to two: {results[1] / results[2]:.2f}×")
        sizes = [int(size) for size in args.scale.split(",") if size]
        if sizes:
            results = []
            for size in sizes:
                print(f"\n--- scaling: N = {size:,}")
                build(size, size // 2)
                results.append(measure(size, threads=args.threads))
            print_scaling(
                f"N Team + N/2 Free workspaces, {args.threads} thread(s)", sizes, results, "close"
            )
    finally:
        empty_queues()


if __name__ == "__main__":
    main()
