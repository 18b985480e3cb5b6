"""Benchmark: the support console and the Free-plan lock evaluation at scale (issue: workspaces).

100,000 workspaces (70 % Free, 30 % Team) with six months of usage (600,000 rows) on
PostgreSQL. Prints the server time (median of 7) and query count of the workspace list page and
of filtered and searched pages, at two page sizes, and the time of one month's lock evaluation.

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \
        .venv/bin/python bench/workspace_admin.py
"""

import sys
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import as_in_production, fresh_workspaces, setup_django, staff_client, time_page

MONTHS = [f"2026-{m:02d}-01" for m in range(1, 7)]


def main():
    setup_django()
    from django.urls import reverse

    from billing import services
    from billing.admin import WorkspaceAdmin
    from billing.roles import SUPPORT

    fresh_workspaces(team=30_000, free=70_000, months=MONTHS, month_of_team="2026-01-01")
    client, _ = staff_client("bench-support", SUPPORT)
    url = reverse("admin:billing_workspace_changelist")
    pages = [
        ("list", {}),
        (
            "filtered: Team, monthly, unlocked, US",
            {"plan": "team", "interval": "monthly", "lock": "unlocked", "business_country": "US"},
        ),
        ("filtered: trialing", {"trialing": "yes"}),
        ("search by slug fragment", {"q": "ws-4242"}),
        ("sorted by plan, page 50", {"o": "3", "p": "50"}),
    ]
    with as_in_production():
        for per_page in (50, 200):
            WorkspaceAdmin.list_per_page = per_page
            for label, params in pages:
                timing = time_page(client, url, params)
                print(
                    f"workspace list, {per_page}/page, {label}: {timing.ms:.0f} ms, "
                    f"{len(timing.queries)} queries"
                )

    from django.db import transaction

    from billing.locks import apply_lock_rules, record_strikes

    for month in (date(2026, 1, 1), date(2026, 2, 1)):
        start = time.perf_counter()
        with transaction.atomic():
            strikes = record_strikes(month)
            changes = apply_lock_rules(month, as_of=date(month.year, month.month + 1, 1))
            evaluated = time.perf_counter() - start
        # The commit hands the queued lock emails to the send task, run here (eager Celery):
        # rendering and sending them is a worker's job, after the close.
        sent = time.perf_counter() - start - evaluated
        print(
            f"lock evaluation for {month:%Y-%m}: {evaluated:.2f} s "
            f"({strikes:,} strikes, lock changes {dict(changes)}); its lock emails, sent "
            f"after the commit in this process: {sent:.2f} s"
        )
    del services


if __name__ == "__main__":
    main()
