"""Benchmark: import a usage file on PostgreSQL against its floor in the same run (issue 12).

Builds W workspaces (two thirds on Team) with February's usage, writes a CSV of seven months of
figures for every workspace (W × 7 lines: six months new, February's replaced), and prints

- `import_usage` of the file, in this process, by a staff user (as the admin's worker imports an
  upload): time, lines per second, peak memory (the RSS high-water mark during the import, and
  the process's size before it);
- the floor: `psql \\copy` of the same file into a table of three text columns, timed in the
  same run; and the ratio. Also, for reference, INSERT … SELECT of the same figures into an
  empty copy of billing_usage (same indexes), without and with its foreign key: what writing
  the result alone costs here;
- with --scale 10000,100000,1000000: a file of one new month for N workspaces at each size,
  and how time and memory grow (the exponent: 1.0 is linear, 0 is flat).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/usage_import.py [--workspaces 150000] [--scale 10000,100000]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import fresh_workspaces, peak_memory, print_scaling, setup_django

MONTHS = ["2025-08", "2025-09", "2025-10", "2025-11", "2025-12", "2026-01", "2026-02"]


def build(workspaces: int):
    team = workspaces * 2 // 3
    # Signed up 40 days before their Team month, on 22 August 2025: the file's first month is
    # their sign-up month (U2 refuses usage for a month before it).
    fresh_workspaces(
        team=team, free=workspaces - team, months=["2026-02-01"], month_of_team="2025-10-01"
    )


def write_file(path: Path, workspaces: int, months: list[str]) -> int:
    """W × months lines, workspace by workspace; figures differ from the ones on file."""
    lines = 0
    with path.open("w") as out:
        out.write("workspace,month,mtus\n")
        for month in months:
            out.writelines(
                f"ws-{i},{month},{(i * 7919 + 13) % 20000}\n" for i in range(1, workspaces + 1)
            )
            lines += workspaces
    return lines


def copy_floor(path: Path) -> float:
    """`psql \\copy` of the file into a plain table (the issue's floor), as psql times it."""
    script = (
        "drop table if exists bench_floor_usage_file;\n"
        "create table bench_floor_usage_file (workspace text, month text, mtus text);\n"
        "\\timing on\n"
        f"\\copy bench_floor_usage_file from '{path}' csv header\n"
        "\\timing off\n"
        "drop table bench_floor_usage_file;\n"
    )
    output = subprocess.run(
        ["psql", os.environ["DATABASE_URL"], "-q", "-v", "ON_ERROR_STOP=1"],
        input=script,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PGOPTIONS": "-c client_min_messages=warning"},
    ).stdout
    milliseconds = next(line.split()[1] for line in output.splitlines() if line.startswith("Time:"))
    return float(milliseconds) / 1000


def write_floor(months: list[str], with_key: bool = False, with_history: bool = False) -> float:
    """INSERT … SELECT of the imported months' figures, in key order, into an empty copy of
    billing_usage with its indexes and check constraints: what writing the result alone costs
    on this machine. `with_key`: the copy also has the table's foreign key to the workspace,
    checked at commit for each row as the import's is. `with_history`: and each row's history
    row (R4) goes into an empty copy of billing_historicalusage, as the import writes them."""
    from django.db import connection, transaction

    firsts = [date.fromisoformat(f"{m}-01") for m in months]
    with connection.cursor() as cursor:
        cursor.execute("drop table if exists bench_floor_usage, bench_floor_history")
        cursor.execute("create table bench_floor_usage (like billing_usage including all)")
        cursor.execute(
            "create table bench_floor_history (like billing_historicalusage including all)"
        )
        if with_key:
            cursor.execute(
                "alter table bench_floor_usage add foreign key (workspace_id) "
                "references billing_workspace (id) deferrable initially deferred"
            )
        cursor.execute("checkpoint")
    start = time.perf_counter()
    history = (
        "insert into bench_floor_history (id, month, mtus, updated_at, reported_at, "
        "workspace_id, history_date, history_change_reason, history_type, history_user_id) "
        "select id, month, mtus, updated_at, reported_at, workspace_id, now(), "
        "'Usage import', '+', null from written"
    )
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "with written as (insert into bench_floor_usage (workspace_id, month, mtus, "
            "updated_at, reported_at) select workspace_id, month, mtus, updated_at, updated_at "
            "from billing_usage "
            "where month = any(%s) order by workspace_id, month returning *) "
            + (history if with_history else "select count(*) from written"),
            [firsts],
        )
    elapsed = time.perf_counter() - start
    with connection.cursor() as cursor:
        cursor.execute("drop table bench_floor_usage, bench_floor_history")
    return elapsed


def measure(path: Path, lines: int, months: list[str]) -> dict:
    from django.contrib.auth.models import User
    from django.db import connection

    from billing.services import import_usage

    with connection.cursor() as cursor:
        cursor.execute("checkpoint")
    # As the admin's worker imports an upload: in the name of the staff user who uploaded it.
    uploader, _ = User.objects.get_or_create(username="bench-uploader", is_staff=True)
    result, elapsed, peak, before = peak_memory(import_usage, path, by=uploader)
    floor = copy_floor(path)
    written = write_floor(months)
    keyed = write_floor(months, with_key=True)
    recorded = write_floor(months, with_key=True, with_history=True)
    size = path.stat().st_size / 1024**2
    print(
        f"import_usage of {lines:,} lines ({size:.0f} MB): {elapsed:.2f} s "
        f"({lines / elapsed:,.0f} lines/s), {result['created']:,} created, "
        f"{result['replaced']:,} replaced, {result['unchanged']:,} unchanged"
    )
    print(f"  floor (psql \\copy of the same file): {floor:.2f} s; ratio {elapsed / floor:.1f}×")
    print(
        f"  for reference, INSERT … SELECT of the same figures into an empty billing_usage copy "
        f"(same indexes): {written:.2f} s; ratio {elapsed / written:.1f}×"
    )
    print(
        f"  the same with the table's foreign key too (checked at commit, as the import's): "
        f"{keyed:.2f} s; ratio {elapsed / keyed:.1f}×"
    )
    print(
        f"  the same with each row's history row too (R4, as the import writes them): "
        f"{recorded:.2f} s; ratio {elapsed / recorded:.1f}×"
    )
    print(
        f"  peak memory: {peak:.0f} MB RSS during the import "
        f"({peak - before:+.0f} MB over the {before:.0f} MB before it)"
    )
    return {"time": elapsed, "floor": floor, "peak": peak, "growth": max(peak - before, 1)}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--workspaces", type=int, default=150_000)
    parser.add_argument("--scale", default="", help="sizes for the scaling run, e.g. 10000,100000")
    args = parser.parse_args()
    setup_django()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "usage.csv"
        build(args.workspaces)
        lines = write_file(path, args.workspaces, MONTHS)
        measure(path, lines, MONTHS)
        sizes = [int(size) for size in args.scale.split(",") if size]
        if sizes:
            results = []
            for size in sizes:
                print(f"\n--- scaling: {size:,} workspaces, one new month (2026-03) each")
                build(size)
                lines = write_file(path, size, ["2026-03"])
                results.append(measure(path, lines, ["2026-03"]))
            print_scaling("lines = workspaces", sizes, results, "import")


if __name__ == "__main__":
    main()
