"""Benchmark: the staff pages that read whole tables, at 100,000 workspaces on PostgreSQL.

30,000 Team and 70,000 Free workspaces with six months of usage (600,000 rows), twelve
monthly invoices per Team workspace (360,000), 1,000,000 outbox emails (0.1 % failed, the
last 100 pending), and a strike and a lock change a month for one Free workspace in seven.
Prints each page's server time (median of 7), its time in the database and its query count,
with its slowest queries: the outbox, the admin index's billing panel (finance), the
workspace list sorted by plan, the header search, the invoice list searched, and the other
lists at their default order.

The data is built once and kept (`--rebuild` builds it again), so a run after a change reads
the same rows; each run migrates first (a new index is built then).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python bench/staff_pages.py [--rebuild] [--explain]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

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

USAGE_MONTHS = [f"2026-{m:02d}-01" for m in range(1, 7)]
INVOICE_MONTHS = 12
EMAILS = 1_000_000
REBUILD = "--rebuild" in sys.argv
EXPLAIN = "--explain" in sys.argv


def build_emails():
    """1,000,000 outbox rows over a year, one every 30 seconds: 1 in 1,000 failed, the last 100
    pending, the rest sent; the kinds of a real outbox, most of them lock and campaign emails."""
    from django.db import connection

    kinds = [
        "locked",
        "unlocked",
        "campaign",
        "campaign",
        "campaign",
        "trial_reminder",
        "trial_converted",
        "trial_ended",
        "workspace_closed",
        "locked",
    ]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into billing_outboundemail (kind, object_key, "to", subject, body_text,
                body_html, status, attempts, last_error, created_at, sent_at, claimed_at)
            select k.kind, 'bench:' || i, 'billing' || (i %% 100000) || '@example.com',
                'About your workspace ' || i, 'Hello.', '',
                s.status, 1, case when s.status = 'failed' then 'SMTPException: refused' else ''
                end, t.at, case when s.status = 'sent' then t.at end, t.at
            from generate_series(1, %s) as i
            cross join lateral (select (%s::text[])[1 + i %% 10] as kind) k
            cross join lateral (
                select case when i > %s - 100 then 'pending'
                            when i %% 1000 = 0 then 'failed' else 'sent' end as status) s
            cross join lateral (
                select timestamptz '2025-03-01 00:00+00' + i * interval '30 seconds' as at) t
            """,
            [EMAILS, kinds, EMAILS],
        )


def build_strikes_and_lock_events():
    """One Free workspace in seven over its limit every month: a strike and a lock change."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into billing_strike (workspace_id, month, mtus)
            select u.workspace_id, u.month, 1500 from billing_usage u
            where u.workspace_id % 7 = 0 and u.workspace_id > 30000
            """
        )
        cursor.execute(
            """
            insert into billing_lockevent (workspace_id, "on", month, from_lock, to_lock, cause,
                reason, by_id, created_at)
            select s.workspace_id, (s.month + interval '1 month')::date, s.month, 'unlocked',
                'locked', 'free_limit', '', null, now()
            from billing_strike s
            """
        )


def build():
    from django.db import connection

    fresh_workspaces(team=30_000, free=70_000, months=USAGE_MONTHS, month_of_team="2025-01-01")
    timed(
        f"build {INVOICE_MONTHS} invoices per Team workspace", add_monthly_invoices, INVOICE_MONTHS
    )
    timed(f"build {EMAILS:,} outbox emails", build_emails)
    timed("build strikes and lock events", build_strikes_and_lock_events)
    with connection.cursor() as cursor:  # outside a transaction: VACUUM needs it
        # What autovacuum does after a bulk load: statistics and the visibility map (counts
        # read an index alone).
        cursor.execute("vacuum analyze")


def built() -> bool:
    from billing.models import LockEvent, OutboundEmail

    emails = OutboundEmail.objects.filter(object_key=f"bench:{EMAILS}")
    return emails.exists() and LockEvent.objects.exists()  # the last rows built


def measure(client, label, url, params=None):
    print_page(label, time_page(client, url, params), slowest=3, explain=EXPLAIN)


def list_column(model, name, user):
    """The `o=` that sorts `model`'s list by its column `name`, as a bookmark has it: the
    column's place in the list (the checkbox column first where there are actions). A column
    that is not sortable leaves the list in its default order."""
    from django.contrib import admin
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = user
    model_admin = admin.site.get_model_admin(model)
    columns = list(model_admin.get_list_display(request))
    if model_admin.get_actions(request):
        columns.insert(0, "action_checkbox")
    return str(columns.index(name))


def main():
    setup_django()
    from django.urls import reverse

    from billing.models import Workspace
    from billing.roles import FINANCE, SUPPORT

    if REBUILD or not built():
        build()
    support, support_user = staff_client("bench-support", SUPPORT)
    finance, _ = staff_client("bench-finance", FINANCE)

    def changelist(model):
        return reverse(f"admin:billing_{model}_changelist")

    with as_in_production():
        emails = changelist("outboundemail")
        measure(support, "outbox", emails)
        measure(support, "outbox, kind 'trial_ended'", emails, {"kind": "trial_ended"})
        measure(support, "outbox, failed", emails, {"delivery": "failed"})
        # By part of an address, by words of a subject, by an object key (111 rows: pages).
        for words in ("billing777@", "workspace 424242", "bench:4242"):
            measure(support, f"outbox searched '{words}'", emails, {"q": words})
        measure(finance, "admin index with the billing panel (finance)", reverse("admin:index"))

        workspaces = changelist("workspace")
        measure(support, "workspaces", workspaces)
        by_plan = list_column(Workspace, "plan_display", support_user)
        measure(support, "workspaces sorted by plan", workspaces, {"o": by_plan})
        measure(support, "workspaces sorted by plan, page 50", workspaces, {"o": by_plan, "p": 50})
        measure(support, "workspaces searched 'ws-4242'", workspaces, {"q": "ws-4242"})

        search = reverse("site-search")
        for words in ("ws-4242", "Workspace 99999", "billing777@example.com", "INV-2025-004242"):
            measure(support, f"header search '{words}'", search, {"q": words})

        invoices = changelist("invoice")
        measure(support, "invoices", invoices)
        for words in ("INV-2025-004242", "ws-4242", "Workspace 4242"):
            measure(support, f"invoices searched '{words}'", invoices, {"q": words})

        for model in ("subscription", "usage", "strike", "lockevent"):
            measure(support, f"{model} list", changelist(model))


if __name__ == "__main__":
    main()
