"""Builds large datasets straight in PostgreSQL with INSERT … SELECT (seconds for 100k
workspaces), into a database of its own so a benchmark never touches real data.

Used by the benchmark scripts beside it; run them with
`BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench .venv/bin/python bench/<script>.py`.
"""

import os
import statistics
import sys
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/bench"


def setup_django():
    """Point Django at the bench database (created if missing) and migrate it."""
    import psycopg

    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
            conn.execute(f'create database "{name}"')
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DEBUG", "true")
    os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
    os.environ["EMAIL_URL"] = "dummymail://"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def timed(label, fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s")
    return result, elapsed


def reset_billing_tables():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "truncate billing_invoiceline, billing_historicalinvoice, billing_invoice, "
            "billing_invoicesequence, billing_monthclosechunk, billing_monthclose, "
            "billing_lockevent, billing_strike, billing_outboundemail, billing_usage, "
            "billing_historicalusage, billing_subscription, billing_historicalsubscription, "
            "billing_historicalworkspace, billing_paymentmethod, billing_setasideinvoice, "
            "billing_billingclock, billing_workspace, billing_taxrate "
            "restart identity cascade"
        )


def build_workspaces(*, team: int, free: int, months: list[str], month_of_team: str):
    """`team` workspaces on paid monthly Team since `month_of_team`, `free` on Free, each with
    usage for every month in `months` (YYYY-MM-01). 30 % of all are in California (taxed).
    Workspaces already in the table are left alone (the new ones are told apart by id)."""
    from django.db import connection

    total = team + free
    with connection.cursor() as cursor:
        cursor.execute("select coalesce(max(id), 0) from billing_workspace")
        (base,) = cursor.fetchone()
        cursor.execute(
            """
            insert into billing_workspace (name, slug, business_country, business_region,
                billing_email, created_on, payment_method_added_on, card_brand, card_last4,
                lock, lock_cause, data_flow, startup_member)
            select 'Workspace ' || i, 'ws-' || i,
                   case when i %% 10 < 3 then 'US' else 'DE' end,
                   case when i %% 10 < 3 then 'CA' else '' end,
                   'billing' || i || '@example.com', %s::date - 40, %s::date - 40, 'Visa', '4242',
                   'unlocked', '', true, false
            from generate_series(1, %s) as i
            """,
            [month_of_team, month_of_team, total],
        )
        # The first `team` of the new ids are on Team (ids need not start after `base`).
        cursor.execute("select min(id) from billing_workspace where id > %s", [base])
        last_team = cursor.fetchone()[0] + team - 1
        cursor.execute(
            """
            insert into billing_paymentmethod (workspace_id, brand, last4, added_on)
            select w.id, w.card_brand, w.card_last4, w.payment_method_added_on
            from billing_workspace w
            where w.payment_method_added_on is not null
              and not exists (select 1 from billing_paymentmethod pm where pm.workspace_id = w.id)
            """
        )
        cursor.execute(
            """
            insert into billing_subscription (workspace_id, plan_id, interval, started_on,
                ended_on, end_reason, trial_end, trial_outcome, paid_from, term_start, term_end,
                cancel_at_term_end, switch_to_monthly_at_term_end, trial_reminder_sent_on,
                interval_before)
            select w.id, p.id, 'monthly', %s::date, null, '', null, '',
                   case when p.code = 'team' then %s::date end, null, null, false, false, null, ''
            from billing_workspace w
            join billing_plan p on p.code = case when w.id <= %s then 'team' else 'free' end
            where w.id > %s
            """,
            [month_of_team, month_of_team, last_team, base],
        )
        for month in months:
            cursor.execute(
                """
                insert into billing_usage (workspace_id, month, mtus, updated_at)
                select w.id, %s::date,
                       case when w.id <= %s then 5000 + (w.id * 7919) %% 15000
                            else (w.id * 7919) %% 1100 end,
                       now()
                from billing_workspace w
                where w.id > %s
                """,
                [month, last_team, base],
            )
        cursor.execute("analyze")
    from datetime import date

    from billing.models import TaxRate
    from billing.services import set_tax_rate

    # The benches' tax: California's rate, set unless a migration or an earlier run set it.
    rate = {"rate": "7.25", "name": "CA sales tax", "valid_from": date(2020, 1, 1)}
    if not TaxRate.objects.filter(country="US", region="CA", **rate).exists():
        set_tax_rate("US", region="CA", **rate)


def fresh_workspaces(*, team: int, free: int, months: list[str], month_of_team: str):
    """What every bench starts from: the billing tables emptied, then `build_workspaces`, each
    step's time printed."""
    timed("reset", reset_billing_tables)
    usage = f" with {len(months)} month(s) of usage" if months else ""
    timed(
        f"build {team:,} Team and {free:,} Free workspaces{usage}",
        build_workspaces,
        team=team,
        free=free,
        months=months,
        month_of_team=month_of_team,
    )


def add_discounts_and_credits(*, discount_every: int = 5, credit_every: int = 20, since: str):
    """A 20 % coupon (forever) on one workspace in `discount_every` and a $25,000.00 credit
    grant on one in `credit_every` (the coupons issue's mix: 20 % and 5 %), from `since`."""
    from datetime import date

    from django.db import connection

    from coupons.models import Coupon
    from coupons.services import create_coupon

    Coupon.objects.filter(code="BENCH20").delete()  # left by an earlier run (its uses are gone)
    coupon = create_coupon(
        "BENCH20", name="Bench 20 % off", kind="promotion", percent_off=20, duration="forever"
    )
    start = date.fromisoformat(since)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into coupons_redemption (workspace_id, coupon_id, redeemed_on, started_month,
                runs_out_on, status, ended_on, reason, is_follow_up, override_reason, created_at)
            select w.id, %s, %s, date_trunc('month', %s::date), null, 'active', null, 'bench',
                false, '', now()
            from billing_workspace w where w.id %% %s = 0
            """,
            [coupon.pk, start, start, discount_every],
        )
        cursor.execute(
            """
            insert into coupons_creditgrant (workspace_id, year, amount, remaining, valid_from,
                valid_until, created_at)
            select w.id, 1, 25000, 25000, %s, %s::date + interval '1 year', now()
            from billing_workspace w where w.id %% %s = 1
            """,
            [start, start, credit_every],
        )
        cursor.execute(
            """
            insert into coupons_creditledgerentry (grant_id, kind, amount, "on", created_at)
            select g.id, 'grant', g.amount, g.valid_from, now() from coupons_creditgrant g
            """
        )
        cursor.execute("analyze")


def peak_memory(fn, *args, **kwargs):
    """Run `fn` and return (its result, seconds, peak RSS during the call in MB, the process's
    RSS before it in MB). Linux: the high-water mark is reset first (/proc/self/clear_refs)."""
    import gc

    gc.collect()
    before = reset_peak()
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    elapsed = time.perf_counter() - start
    return result, elapsed, peak_mb(), before


def reset_peak() -> float:
    """Reset the process's RSS high-water mark to its RSS now (Linux ≥ 4.0); returns it, MB."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mb("VmRSS")


def peak_mb() -> float:
    """The process's RSS high-water mark in MB (since the last `reset_peak`)."""
    return _status_mb("VmHWM")


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def exponent(sizes: list[int], values: list[float]) -> list[str]:
    """How `values` grow with `sizes`, step by step: log(v2/v1) / log(n2/n1) (1.0 is linear)."""
    import math

    return [
        f"{n1:,}→{n2:,}: {math.log(v2 / v1) / math.log(n2 / n1):.2f}"
        for (n1, v1), (n2, v2) in zip(
            zip(sizes, values, strict=True), zip(sizes[1:], values[1:], strict=True), strict=False
        )
        if v1 > 0 and v2 > 0
    ]


def print_scaling(title: str, sizes: list[int], results: list[dict], work: str):
    """The scaling run's table (`work`'s time against its floor, peak memory and its growth
    for each size) and the exponents of time, floor and memory from size to size."""
    print(f"\nscaling ({title}):")
    for size, result in zip(sizes, results, strict=True):
        time_, floor_ = result["time"], result["floor"]
        print(
            f"  {size:>9,}: {work} {time_:7.2f} s, floor {floor_:6.2f} s, "
            f"ratio {time_ / floor_:4.1f}×, peak {result['peak']:5.0f} MB "
            f"({result['growth']:+.0f} MB)"
        )
    for label, key in (("time", "time"), ("floor", "floor"), ("memory", "growth")):
        values = [result[key] for result in results]
        print(f"  {label + ' exponent:':<17}" + "; ".join(exponent(sizes, values)))


def staff_client(username: str, group: str):
    """A test client signed in as a staff member of one role group (created once)."""
    from django.contrib.auth.models import Group, User
    from django.test import Client

    user, _ = User.objects.get_or_create(username=username, defaults={"is_staff": True})
    user.groups.set([Group.objects.get(name=group)])
    client = Client()
    client.force_login(user)
    return client, user


def as_in_production():
    """Settings for timing pages as production serves them: DEBUG off, with static files under
    their plain names (no collectstatic manifest needed to render a page here)."""
    from django.conf import settings
    from django.test.utils import override_settings

    plain_static = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    storages = {**settings.STORAGES, "staticfiles": plain_static}
    return override_settings(ALLOWED_HOSTS=["testserver"], DEBUG=False, STORAGES=storages)


class PageTiming(NamedTuple):
    ms: float  # the server's time, median of the runs
    database_ms: float  # of which in the database, median
    queries: list[dict]  # the last run's queries, with their times
    response: object  # the last run's response


def time_page(client, url, params=None, *, runs: int = 7) -> PageTiming:
    """GET a page `runs` times through the test client; each answer must be 200."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    times, database = [], []
    for _ in range(runs):
        with CaptureQueriesContext(connection) as ctx:
            start = time.perf_counter()
            response = client.get(url, params or {})
            times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200, (url, params, response.status_code)
        database.append(sum(float(q["time"]) for q in ctx.captured_queries) * 1000)
    return PageTiming(
        statistics.median(times), statistics.median(database), ctx.captured_queries, response
    )


def print_page(label: str, timing: PageTiming, *, slowest: int = 2, explain: bool = False):
    """A page's line (time, database time, queries) and its slowest queries of 5 ms or more,
    each with its plan when `explain`."""
    from django.db import connection

    print(
        f"{label}: {timing.ms:.0f} ms ({timing.database_ms:.0f} ms in the database), "
        f"{len(timing.queries)} queries"
    )
    for query in sorted(timing.queries, key=lambda q: -float(q["time"]))[:slowest]:
        if float(query["time"]) < 0.005:
            break
        print(f"    {float(query['time']) * 1000:.0f} ms: {query['sql'][:200]}")
        if explain:
            with connection.cursor() as cursor:
                cursor.execute(f"explain analyze {query['sql']}")
                for (line,) in cursor.fetchall():
                    print(f"        {line}")


def add_monthly_invoices(months: int) -> int:
    """`months` monthly invoices per Team workspace, issued on the 1st of each month from
    February 2025 and numbered per year in issue order, as month closes write them (six digits,
    then seven from the 1,000,000th on, as `issue` writes them): a base of
    120.00 plus overage, 30 % in California taxed at 7.25 % (one in 50 of those exempt, one in
    50 with a certificate still in review), one subscription in 97 void, the first eight months
    paid. Returns how many invoices there are."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            insert into billing_invoice (number, workspace_id, subscription_id, kind,
                period_start, period_end, issue_date, status, currency, subtotal, discount,
                credits, tax, total, plan_code, interval, tax_country, tax_region, tax_rate,
                tax_note, overage_mtus, void_reason, created_at)
            select 'INV-' || extract(year from m.issue) || '-'
                       || to_char(row_number() over (partition by extract(year from m.issue)
                                                     order by m.issue, s.id), 'FM9999000000'),
                s.workspace_id, s.id, 'monthly', m.start, m.issue, m.issue,
                case when s.id %% 97 = 0 then 'void' when m.k < 8 then 'paid' else 'issued' end,
                'USD', a.subtotal, 0, 0, a.tax, a.subtotal + a.tax, 'team', 'monthly',
                w.business_country, w.business_region, a.rate,
                case when a.exempt then 'exempt: certificate #' || s.id || ' (nonprofit)'
                     when w.business_region = 'CA' and s.id %% 50 = 1
                     then 'certificate #' || s.id || ' still in review on ' || m.issue
                     else '' end,
                (s.workspace_id * 7919) %% 5000, '', now()
            from billing_subscription s
            join billing_plan p on p.id = s.plan_id and p.code = 'team'
            join billing_workspace w on w.id = s.workspace_id
            cross join lateral (
                select k, (date '2025-01-01' + make_interval(months => k))::date as start,
                       (date '2025-02-01' + make_interval(months => k))::date as issue
                from generate_series(0, %s - 1) as k
            ) m
            cross join lateral (
                select 120 + ((s.workspace_id * 7919) %% 5000) * 0.01 as subtotal,
                       w.business_region = 'CA' and s.id %% 50 = 0 as exempt
            ) b
            cross join lateral (
                select b.subtotal,
                       case when w.business_region = 'CA' and not b.exempt
                            then round(b.subtotal * 0.0725, 2) else 0 end as tax,
                       case when w.business_region = 'CA' and not b.exempt then 7.25
                            when b.exempt then 0 end as rate,
                       b.exempt
            ) a
            order by m.issue, s.id
            """,
            [months],
        )
        cursor.execute("analyze billing_invoice")
        cursor.execute("select count(*) from billing_invoice")
        return cursor.fetchone()[0]
