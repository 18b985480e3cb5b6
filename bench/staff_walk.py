"""Benchmark: every staff page, as each role reaches it, at 100,000 Team and 50,000 Free
workspaces on PostgreSQL (the scale walk).

The other page benches time the pages someone thought of; this one times the pages a role can
reach. Signed in as Support, Startup reviewers and Finance (users in the real role groups),
it walks from the admin index: every link there; from each list its first row, one choice of
each filter, its first sorted columns, its last page and a search; from each first object's
page its object tools; and the finance pages, the review queue, the header search, and the
searches, filters and sorts staff use most on the big lists. Each page is fetched once (the
warm-up, which also finds its links) and then timed three times; it prints the median, the
time in the database and the query count, and for each page over 300 ms its slowest query
with the summary of its EXPLAIN ANALYZE plan. As its floor it prints, in the same run, each
role's admin index, a page with no data (the password form), `SELECT 1`, and
`SELECT count(*)` of the biggest table.

The data, built once and kept (`--rebuild` builds it again, ≈ 10-15 minutes on two cores):
100,000 Team (monthly since January 2025) and 50,000 Free workspaces with twelve months of
usage (1,800,000 rows); twelve monthly invoices per Team workspace for 2025 written straight
in SQL (1,200,000, no lines), then the real month close of every month of 2026 up to November
(1,100,000 invoices with their lines, discounts, credit draws, strikes, locks and lock
emails); a 20 % coupon on one workspace in five and a credit grant on one in twenty; 300 tax
exemption certificates and 300 credit notes through the services; 50,000 startup
applications (bench/review_queue.py's).

    BENCH_DATABASE_URL=postgres://postgres@127.0.0.1:5432/bench_scale \\
        .venv/bin/python bench/staff_walk.py [--rebuild] [--roles Support,Finance] \\
        [--team 100000] [--free 50000] [--sorts 2] [--slow 300] [--explain-all]
"""

import argparse
import contextlib
import logging
import re
import statistics
import sys
import time
import warnings
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dataset import (
    add_discounts_and_credits,
    add_monthly_invoices,
    as_in_production,
    fresh_workspaces,
    setup_django,
    staff_client,
    timed,
)

USAGE_MONTHS = [date(2025, 12, 1)] + [date(2026, m, 1) for m in range(1, 12)]
CLOSED_MONTHS = [date(2026, m, 1) for m in range(1, 12)]  # by the real close
SQL_INVOICE_MONTHS = 12  # periods January-December 2025 (add_monthly_invoices)
AFTER_CLOCK = date(2026, 12, 2)  # the clock has processed 1 December 2026
EXEMPTIONS = CREDIT_NOTES = 300
APPLICATIONS = 50_000
PDF = b"%PDF-1.4\n%%EOF\n"


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def build(team: int, free: int, threads: int):
    from django.db import connection

    from billing import services
    from billing.models import BillingClock, InvoiceSequence, MonthClose
    from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT

    fresh_workspaces(
        team=team,
        free=free,
        months=[m.isoformat() for m in USAGE_MONTHS],
        month_of_team="2025-01-01",
    )
    timed(
        f"build {SQL_INVOICE_MONTHS} invoices per Team workspace for 2025 (SQL)",
        add_monthly_invoices,
        SQL_INVOICE_MONTHS,
    )
    # What the closes of 2025 would have left: their records and the years' last numbers.
    with connection.cursor() as cursor:
        cursor.execute(
            "select extract(year from issue_date)::int, count(*) from billing_invoice group by 1"
        )
        for year, count in cursor.fetchall():
            InvoiceSequence.objects.update_or_create(year=year, defaults={"last_number": count})
    MonthClose.objects.bulk_create(
        MonthClose(
            month=date(2025, m, 1),
            closed_on=next_month(date(2025, m, 1)),
            locks_done=True,
            chunks_planned=True,
            finished=True,
            invoices=team,
        )
        for m in range(1, 13)
    )
    timed(
        "a 20 % coupon on 20 % of them, credits on 5 %",
        add_discounts_and_credits,
        since="2026-01-15",
    )
    for month in CLOSED_MONTHS:
        timed(
            f"close {month:%B %Y}",
            services.close_month,
            month,
            as_of=next_month(month),
            threads=threads,
        )
    BillingClock.objects.update_or_create(
        pk=1, defaults={"last_processed_day": AFTER_CLOCK.replace(day=1)}
    )
    _, finance = staff_client("scale-finance", FINANCE)
    _, support = staff_client("scale-support", SUPPORT)
    _, reviewer = staff_client("scale-reviewer", STARTUP_REVIEWERS)
    timed(f"{EXEMPTIONS} exemption certificates", build_exemptions, finance)
    timed(f"{CREDIT_NOTES} credit notes", build_credit_notes, support, finance)
    from review_queue import build_applications

    timed(f"build {APPLICATIONS:,} startup applications", build_applications, reviewer.pk)
    with connection.cursor() as cursor:  # outside a transaction: VACUUM needs it
        # What autovacuum does after a bulk load: statistics and the visibility map.
        timed("vacuum analyze", cursor.execute, "vacuum analyze")


def build_exemptions(finance):
    """Certificates from Californian Team workspaces: a quarter waiting, a quarter in review,
    a quarter approved, a quarter rejected."""
    from django.core.files.base import ContentFile

    from billing import services
    from billing.errors import BillingError
    from billing.exemptions import start_exemption_review
    from billing.models import TaxExemption, Workspace

    refused = []
    workspaces = Workspace.objects.filter(business_region="CA").order_by("pk")[:EXEMPTIONS]
    for i, workspace in enumerate(workspaces):
        try:
            certificate = services.submit_exemption(
                workspace,
                region="CA",
                reason=TaxExemption.Reason.values[i % 4],
                document=ContentFile(PDF, name="certificate.pdf"),
                valid_from=date(2026, 1, 1),
                as_of=AFTER_CLOCK,
            )
            if i % 4:
                start_exemption_review(certificate, by=finance, as_of=AFTER_CLOCK)
            if i % 4 == 2:
                services.approve_exemption(certificate, by=finance, as_of=AFTER_CLOCK)
            elif i % 4 == 3:
                services.reject_exemption(
                    certificate, by=finance, reason="Unsigned", as_of=AFTER_CLOCK
                )
        except BillingError as exc:
            refused.append(str(exc))
    if refused:
        print(f"  {len(refused)} refused, the first: {refused[0]}")


def build_credit_notes(support, finance):
    """Refunds asked on November's invoices: half approved, a quarter rejected."""
    from billing.credit_notes import decide_credit_note, request_credit_note
    from billing.errors import BillingError
    from billing.models import Invoice

    refused = []
    invoices = Invoice.objects.filter(
        period_start=CLOSED_MONTHS[-1], total__gt=20, status="issued"
    ).order_by("pk")[:CREDIT_NOTES]
    for i, invoice in enumerate(invoices):
        try:
            note = request_credit_note(
                invoice, by=support, amount="10.00", reason="Outage credit", as_of=AFTER_CLOCK
            )
            if i % 4 < 3:
                decide_credit_note(note, by=finance, approve=i % 4 < 2, as_of=AFTER_CLOCK)
        except BillingError as exc:
            refused.append(str(exc))
    if refused:
        print(f"  {len(refused)} refused, the first: {refused[0]}")


def built() -> bool:
    from billing.models import MonthClose
    from startups.models import StartupApplication

    last = MonthClose.objects.filter(month=CLOSED_MONTHS[-1], finished=True).exists()
    return last and StartupApplication.objects.count() >= APPLICATIONS


SLOW_MS = 300
# Pages a role may reach beyond the admin index's links: the finance pages, the review queue,
# the header search, and the searches, filters and sorts staff use most on the big lists.
EXTRA_PAGES = [
    "/finance/",
    "/finance/?issued_from=2026-11&issued_to=2026-11",
    "/finance/?status=issued&plan=team",
    "/finance/?page=last",
    "/finance/invoices.csv?issued_from=2026-11&issued_to=2026-11",
    "/finance/invoices.csv",
    "/finance/tax-report/",
    "/finance/tax-report/?issued_from=2026-01&issued_to=2026-11",
    "/finance/revenue/",
    "/finance/revenue/?issued_from=2025-01&issued_to=2026-11",
    "/finance/credits/",
    "/startups/queue/",
    "/startups/queue/?q=f4242",
    "/startups/queue/?page=last",
    "/admin/search/?q=ws-4242",
    "/admin/search/?q=Workspace+4242",
    "/admin/search/?q=billing777%40example.com",
    "/admin/search/?q=INV-2026-004242",
    "/admin/search/?q=Startup+4242",
    "/admin/billing/workspace/?q=ws-4242",
    "/admin/billing/workspace/?q=space+4242",
    "/admin/billing/workspace/?q=billing4242%40example.com",
    "/admin/billing/workspace/4241/change/",  # Team, California, a credit grant
    "/admin/billing/workspace/140001/change/",  # Free, locked for months
    "/admin/billing/invoice/?issue_date__year=2026&issue_date__month=11",
    "/admin/billing/invoice/?issue_date__gte=2026-11-01&issue_date__lt=2026-12-01",
    "/admin/billing/invoice/?q=INV-2026-004242",
    "/admin/billing/invoice/?q=ws-4242",
    "/admin/billing/invoice/?o=7",
    "/admin/billing/invoice/?o=-5&status__exact=issued",
    "/admin/billing/usage/?q=ws-4242",
    "/admin/billing/outboundemail/?q=billing777",
    "/admin/startups/startupapplication/?q=Startup+4242",
]
SKIP = re.compile(r"^/admin/(logout|r|jsi18n)/|^/static/|^/$")
CHANGELIST = re.compile(r"^/admin/[\w-]+/[\w-]+/$")
CHANGE_PAGE = re.compile(r"^(/admin/[\w-]+/[\w-]+/\d+/)change/$")


class Links(HTMLParser):
    """Each <a href> of a page with what encloses it: tag names, #ids and .classes."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}

    def __init__(self):
        super().__init__()
        self.stack, self.links = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        marks = {tag, *(f".{c}" for c in (attrs.get("class") or "").split())}
        if attrs.get("id"):
            marks.add(f"#{attrs['id']}")
        if tag == "a" and attrs.get("href"):
            self.links.append((attrs["href"], set().union(*self.stack, marks)))
        if tag not in self.VOID:
            self.stack.append(marks)

    def handle_endtag(self, tag):
        for depth in range(len(self.stack) - 1, -1, -1):
            if tag in self.stack[depth]:
                del self.stack[depth:]
                return


def links_of(html: str) -> list[tuple[str, set]]:
    parser = Links()
    parser.feed(html)
    return parser.links


def shape(url: str) -> str:
    """A URL with its numbers and query values left out: one invoice's document stands for
    all of them."""
    parts = urlsplit(url)
    keys = sorted({key for key, _ in parse_qsl(parts.query, keep_blank_values=True)})
    return re.sub(r"\d+", "N", parts.path) + ("?" + "&".join(keys) if keys else "")


def follow(page_url: str, html: str, depth: int, sorts: int) -> list[tuple[str, str]]:
    """The links of a page worth a visit, each with why: from the index all of them; from a
    list its first row, one choice of each filter, its sorted columns, its last page, a search
    and its buttons; from an object's page its tools and its own sub-pages; from any other
    page the links of its content, one of each shape."""
    path = urlsplit(page_url).path
    found = []
    for href, marks in links_of(html):
        url = urljoin(page_url, href)
        parts = urlsplit(url)
        if parts.netloc not in ("", "testserver") or parts.scheme not in ("", "http"):
            continue
        url = parts.path + (f"?{parts.query}" if parts.query else "")
        if not SKIP.search(parts.path):
            found.append((url, marks))
    picked = []
    if depth == 0:
        return [(url, "index") for url, _ in found]
    if CHANGELIST.match(path) and "?" not in page_url:
        rows = [u for u, m in found if "#result_list" in m and "tbody" in m]
        picked += [(u, "first row") for u in rows[:1]]
        choices = {}  # each filter's links, by the parameters they set
        for url, marks in found:
            keys = frozenset(k for k, _ in parse_qsl(urlsplit(url).query))
            if "#changelist-filter" in marks and ".selected" not in marks and keys:
                choices.setdefault(keys, []).append(url)
        for keys, urls in choices.items():
            # A date filter's widest choice (this year), any other filter's first.
            ranged = any(k.endswith("__gte") for k in keys)
            picked.append((urls[-1] if ranged else urls[0], "filter"))
        columns = [u for u, m in found if "thead" in m and ".sortable" in m and ".text" in m]
        picked += [(u, "sorted") for u in columns[:sorts]]
        numbers = [
            (int(p), u)
            for u, m in found
            if ".paginator" in m
            for k, p in parse_qsl(urlsplit(u).query)
            if k == "p" and p.isdigit()
        ]
        if numbers:
            picked.append((max(numbers)[1], "last page"))
        dates = [u for u, m in found if ".xfull" in m or ".toplinks" in m]
        picked += [(u, "date drill-down") for u in dates[:1]]
        if 'name="q"' in html:
            picked.append((f"{path}?{urlencode({'q': '4242'})}", "searched '4242'"))
        picked += [(u, "list tool") for u, m in found if ".object-tools" in m]
        return picked
    change = CHANGE_PAGE.match(path)
    if change:
        own = [u for u, m in found if u.startswith(change[1]) and u != path]
        tools = [u for u, m in found if ".object-tools" in m]
        return [(u, "object tool") for u in dict.fromkeys(tools + own)]
    if depth <= 1:
        shapes, content = set(), []
        for url, marks in found:
            if "#content" in marks and shape(url) not in shapes:
                shapes.add(shape(url))
                content.append((url, f"linked from {path}"))
        return content[:10]
    return []


class Result:
    def __init__(self, role, url, why):
        self.role, self.url, self.why = role, url, why
        self.status, self.ms, self.db_ms, self.queries, self.runs, self.note = 0, 0, 0, [], 0, ""


def fetch(client, url):
    """GET `url` (a streamed answer read to its end): (response, seconds, queries) or the
    exception a view raised."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    # The log keeps 9,000 queries: once full (the build fills it), a capture sees none.
    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as ctx:
        start = time.perf_counter()
        response = client.get(url)
        size = 0
        if getattr(response, "streaming", False):
            for chunk in response.streaming_content:
                size += len(chunk)
        elapsed = time.perf_counter() - start
    response.streamed_bytes = size
    return response, elapsed, ctx.captured_queries


def visit(client, result, runs, long_s):
    try:
        response, first, queries = fetch(client, result.url)  # the warm-up
    except Exception as exc:  # a view's error: reported, the walk goes on
        result.status, result.note = 500, f"{type(exc).__name__}: {str(exc)[:150]}"
        return None
    result.status = response.status_code
    if response.status_code != 200:
        location = response.get("Location", "")
        result.note = f"→ {location}" if location else ""
        return None
    times, database = [], []
    for _ in range(1 if first > long_s else runs):
        response, elapsed, queries = fetch(client, result.url)
        times.append(elapsed * 1000)
        database.append(sum(float(q["time"]) for q in queries) * 1000)
    result.ms, result.db_ms = statistics.median(times), statistics.median(database)
    result.queries, result.runs = queries, len(times)
    if response.streamed_bytes:
        result.note = f"{response.streamed_bytes / 1e6:.1f} MB streamed"
    if getattr(response, "streaming", False):
        return None
    return response.content.decode(errors="replace")


def walk(role, client, args) -> list:
    """Every page `role` reaches from its admin index and the extra pages, each timed once."""
    queue = [("/admin/", 0, "index")] + [(u, 1, "named page") for u in EXTRA_PAGES]
    seen, shapes, results = set(), {}, []
    while queue:
        url, depth, why = queue.pop(0)
        if url in seen:
            continue
        seen.add(url)
        # A page of a shape already seen three times (another change page, another row's
        # document) adds nothing but time.
        key = shape(url) if why != "named page" and "?" not in url else url
        shapes[key] = shapes.get(key, 0) + 1
        if shapes[key] > 2:
            continue
        result = Result(role, url, why)
        html = visit(client, result, args.runs, args.long)
        results.append(result)
        print_row(result, args.slow)
        # A named list with a query is a page of its own, not a start for more.
        leaf = why == "named page" and "?" in url
        if html is not None and depth < 3 and not leaf:
            queue += [(u, depth + 1, w) for u, w in follow(url, html, depth, args.sorts)]
    return results


def print_row(result, slow):
    if result.status != 200:
        print(
            f"{result.role:<17} {result.status:>4} {'':>8} {'':>8} {'':>5}  {result.url}"
            f"  {result.note}",
            flush=True,
        )
        return
    mark = "  SLOW >1s" if result.ms > 1000 else "  SLOW" if result.ms > slow else ""
    runs = "" if result.runs > 1 else " (1 run)"
    print(
        f"{result.role:<17} {result.status:>4} {result.ms:>8.0f} {result.db_ms:>8.0f} "
        f"{len(result.queries):>5}  {result.url}  [{result.why}]{runs}"
        f"{'  ' + result.note if result.note else ''}{mark}",
        flush=True,
    )


def plan_summary(sql: str) -> list[str]:
    """EXPLAIN ANALYZE of a SELECT, cut to its nodes, their filters and sorts, and its times."""
    from django.db import connection

    if not re.match(r"\s*(select|with)\b", sql, re.I):
        return ["(not a SELECT: no plan)"]
    keep = re.compile(
        r"->|Sort Method|Rows Removed|Filter:|Index Cond|Hash Cond|Join Filter|Execution Time"
        r"|Planning Time|Heap Fetches|Workers"
    )
    with connection.cursor() as cursor:
        cursor.execute(f"explain analyze {sql}")
        lines = [line for (line,) in cursor.fetchall()]
    picked = lines[:1] + [line for line in lines[1:] if keep.search(line)]
    return [line[:170] for line in picked[:32]]


def floors(clients) -> None:
    """The same run's floor: a page with no data, `SELECT 1`, and count(*) of the biggest
    table (what reading it whole costs)."""
    from django.db import connection

    def median_of(fn, runs=3):
        fn()
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            fn()
            times.append((time.perf_counter() - start) * 1000)
        return statistics.median(times)

    client = next(iter(clients.values()))
    with connection.cursor() as cursor:
        cursor.execute(
            "select relname, reltuples::bigint from pg_class c join pg_namespace n "
            "on n.oid = c.relnamespace where n.nspname = 'public' and relkind = 'r' "
            "order by reltuples desc limit 1"
        )
        table, rows = cursor.fetchone()
        one = median_of(lambda: cursor.execute("select 1"))
        count = median_of(lambda: cursor.execute(f"select count(*) from {table}"))
    password = median_of(lambda: client.get("/admin/password_change/"))
    print("\nfloor (same run, median of 3 after a warm-up):")
    print(f"  SELECT 1: {one:.2f} ms")
    print(f"  SELECT count(*) FROM {table} (≈ {rows:,} rows, the biggest table): {count:.0f} ms")
    print(f"  /admin/password_change/ (a form, no data): {password:.0f} ms")


def profile(client, url) -> list[str]:
    """Where a page's time outside the database goes: one GET under cProfile, its costliest
    functions by own time and the project's by time inside them."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.runcall(fetch, client, url)
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = max(row[3] for row in stats.stats.values())
    lines = []
    for title, order, only_ours in (("own time", "tottime", False), ("inside", "cumtime", True)):
        rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2 if order == "tottime" else 3])
        # The project's own functions below the middleware (which hold the whole request).
        picked = [
            (func, row)
            for func, row in rows
            if not only_ours
            or (
                "/work/main/" in func[0]
                and not re.search("/.venv/|/bench/|/config/", func[0])
                and row[3] < 0.9 * total
            )
        ]
        for (file, line, name), (_, calls, own, inside, _) in picked[:6]:
            where = re.sub(r".*/(site-packages|work/main)/", "", file)
            lines.append(
                f"{title}: {(own if order == 'tottime' else inside) * 1000:6.0f} ms  "
                f"{calls:>7} calls  {where}:{line} {name}"
            )
    return lines


def report(results, slow, explain_all, clients):
    timed_ = [r for r in results if r.status == 200]
    print("\nsummary:")
    for role in dict.fromkeys(r.role for r in results):
        mine = [r for r in timed_ if r.role == role]
        index = next((r for r in mine if r.url == "/admin/"), None)
        print(
            f"  {role}: {len(mine)} pages timed, {sum(r.ms > slow for r in mine)} over "
            f"{slow} ms, {sum(r.ms > 1000 for r in mine)} over 1 s; its admin index "
            f"{index.ms:.0f} ms"
            if index
            else ""
        )
    failed = [r for r in results if r.status >= 500]
    if failed:
        print("\nfailed pages:")
        for r in failed:
            print(f"  {r.role}: {r.url}: {r.status} {r.note}")
    print(f"\npages over {slow} ms, slowest first, with their slowest query:")
    plans = {}
    for r in sorted((r for r in timed_ if r.ms > slow or explain_all), key=lambda r: -r.ms):
        print(
            f"\n{r.ms:.0f} ms ({r.db_ms:.0f} ms in the database, {len(r.queries)} queries): "
            f"{r.role} {r.url}"
        )
        if r.db_ms < r.ms / 2:
            print("  most of its time is outside the database; one GET under cProfile:")
            with contextlib.suppress(Exception):  # the timing stands without its profile
                for line in profile(clients[r.role], r.url):
                    print(f"    {line}")
        if not r.queries:
            continue
        query = max(r.queries, key=lambda q: float(q["time"]))
        sql = query["sql"]
        print(f"  slowest query, {float(query['time']) * 1000:.0f} ms: {sql[:600]}")
        key = re.sub(r"\d+", "N", sql)
        if key in plans:
            print(f"  (the same query as on {plans[key]})")
            continue
        plans[key] = f"{r.role} {r.url}"
        try:
            for line in plan_summary(sql):
                print(f"    {line}")
        except Exception as exc:  # a query that cannot be explained alone
            print(f"    (no plan: {type(exc).__name__}: {exc})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="build the data again")
    parser.add_argument("--build-only", action="store_true", help="build, then stop")
    parser.add_argument("--team", type=int, default=100_000, help="Team workspaces")
    parser.add_argument("--free", type=int, default=50_000, help="Free workspaces")
    parser.add_argument("--threads", type=int, default=2, help="threads for each month close")
    parser.add_argument("--roles", default="", help="comma-separated role groups (all)")
    parser.add_argument("--runs", type=int, default=3, help="timed GETs after the warm-up")
    parser.add_argument("--sorts", type=int, default=2, help="sorted columns per list")
    parser.add_argument(
        "--long", type=float, default=5.0, help="seconds: a slower warm-up is timed once more"
    )
    parser.add_argument("--slow", type=int, default=SLOW_MS, help="ms: a page slower is marked")
    parser.add_argument(
        "--explain-all", action="store_true", help="a plan for every page, not just slow ones"
    )
    args = parser.parse_args()
    warnings.filterwarnings("ignore", message="No directory at")  # static files not built
    setup_django()
    # A refused page is a row of the table, not a traceback (after setup: it sets logging up).
    logging.getLogger("django.request").setLevel(logging.CRITICAL)
    logging.getLogger("axes").setLevel(logging.WARNING)
    logging.getLogger("backoffice").setLevel(logging.WARNING)
    if args.rebuild or not built():
        build(args.team, args.free, args.threads)
    if args.build_only:
        return
    from billing.roles import ROLES

    roles = [r for r in args.roles.split(",") if r] or list(ROLES)
    clients = {role: staff_client(f"scale-{role.split()[0].lower()}", role)[0] for role in roles}
    for client in clients.values():
        client.raise_request_exception = True
    print(f"\n{'role':<17} {'code':>4} {'ms':>8} {'db ms':>8} {'qs':>5}  path  [how reached]")
    results = []
    with as_in_production():
        for role, client in clients.items():
            results += walk(role, client, args)
        floors(clients)
        report(results, args.slow, args.explain_all, clients)


if __name__ == "__main__":
    main()
