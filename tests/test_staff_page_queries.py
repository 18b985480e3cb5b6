"""Fast on hundreds of thousands of workspaces: a staff page's query count does not grow with
the rows it shows, and no query grows with the product of two tables. Each test compares the
same page for an object with a few related rows and one with many (built through the
services); each page ran a query a row (or joined recipients with redemptions) before."""

import json
import re
from datetime import date
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.contrib import admin
from django.contrib.admin.utils import label_for_field
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.text import capfirst
from django_countries.fields import CountryField

from billing import admin_toolkit as toolkit
from billing import services
from billing.models import Invoice, LockEvent, OutboundEmail, Strike, Workspace
from billing.regions import TAX_REGIONS, region_not_a_code
from coupons import services as coupon_services
from coupons.campaigns import create_campaign, launch_campaign
from coupons.models import CreditGrant, CreditLedgerEntry, DiscountApplication, Redemption
from startups.models import EligibleTerritory
from tests.billing.factories import paid_monthly, workspace
from tests.coupons.factories import coupon
from tests.services import require_postgres, requires_postgres
from tests.startups.factories import application

JAN = date(2026, 1, 1)


def page_queries(client, url):
    client.get(url)  # sessions, permission caches
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return [q["sql"] for q in ctx.captured_queries]


def workspace_with_plan_changes(n):
    """A workspace with 2n + 1 subscriptions: Team and back to Free n times (T1, K1)."""
    ws = workspace(as_of=JAN, card=True)
    for _ in range(n):
        services.change_to_team(ws, as_of=JAN)
        services.change_to_free(ws, as_of=JAN)
    return ws


def test_workspace_page_runs_no_query_per_subscription(client, support, today):
    """R1: the workspace page's subscriptions table (SubscriptionInline) loads each row's
    workspace (its hidden str()) and plan one query at a time."""
    few, many = workspace_with_plan_changes(5), workspace_with_plan_changes(40)
    client.force_login(support)
    q_few = page_queries(client, reverse("admin:billing_workspace_change", args=[few.pk]))
    q_many = page_queries(client, reverse("admin:billing_workspace_change", args=[many.pk]))
    assert many.subscriptions.count() == 81
    assert len(q_many) == len(q_few), (len(q_few), len(q_many))


def workspace_with_redemptions(n, support):
    """A workspace that received n coupons, each removed before the next (C2, C5)."""
    ws = workspace(as_of=JAN)
    for _ in range(n):
        code = coupon(percent_off="5", duration="forever").code
        redemption = coupon_services.redeem_coupon(ws, code, by=support, as_of=JAN)
        coupon_services.remove_discount(
            ws, by=support, reason="Next offer", as_of=JAN, redemption=redemption
        )
    return ws


def test_workspace_page_runs_no_query_per_coupon_received(client, support, today):
    """R1: the "coupons received" table (RedemptionInline) loads each row's coupon, workspace
    and the user who applied it one query at a time."""
    few, many = workspace_with_redemptions(5, support), workspace_with_redemptions(40, support)
    client.force_login(support)
    q_few = page_queries(client, reverse("admin:billing_workspace_change", args=[few.pk]))
    q_many = page_queries(client, reverse("admin:billing_workspace_change", args=[many.pk]))
    assert Redemption.objects.filter(workspace=many).count() == 40
    assert len(q_many) == len(q_few), (len(q_few), len(q_many))


def test_workspace_history_runs_no_query_per_row_or_version(client, support, today):
    """R4: the workspace's history lists its coupons received (a version each when applied and
    when removed) beside its own versions: 5 coupons against 40."""
    few, many = workspace_with_redemptions(5, support), workspace_with_redemptions(40, support)
    client.force_login(support)
    q_few = page_queries(client, reverse("admin:billing_workspace_history", args=[few.pk]))
    q_many = page_queries(client, reverse("admin:billing_workspace_history", args=[many.pk]))
    assert Redemption.history.filter(workspace=many).count() == 80
    assert len(q_many) == len(q_few), (len(q_few), len(q_many))


def workspace_with_card_changes(n):
    """A workspace whose card was replaced n times (D3): n + 1 history rows, by no request."""
    ws = workspace(as_of=JAN)
    for i in range(n):
        services.add_payment_method(ws, as_of=JAN, brand="Visa", last4=f"{i:04d}")
    return ws


def test_workspace_history_page_runs_no_query_per_version(client, support, today):
    """R4: the workspace's history page reads each version's "Changed by" user one query at
    a time (simple_history's `_select_related_history_tracked_objs()` calls select_related()
    with no field on a model without foreign keys, dropping the `history_user` join)."""
    few, many = workspace_with_card_changes(5), workspace_with_card_changes(40)
    # Every version written by a person (support), as on the console.
    type(few).history.filter(id__in=[few.pk, many.pk]).update(history_user=support)
    client.force_login(support)
    q_few = page_queries(client, reverse("admin:billing_workspace_history", args=[few.pk]))
    q_many = page_queries(client, reverse("admin:billing_workspace_history", args=[many.pk]))
    assert many.history.count() > 40
    assert len(q_many) == len(q_few), (len(q_few), len(q_many))


def test_credit_grant_page_runs_no_query_per_ledger_entry(client, finance, today):
    """R3, CR2: a startup grant's page lists its ledger (LedgerInline); each draw's invoice
    is loaded one query at a time. Two months of draws against ten."""
    ws = paid_monthly(JAN)
    coupon_services.redeem_coupon(ws, "STARTUP", by=None, as_of=date(2026, 1, 5))
    grant = CreditGrant.objects.get(workspace=ws)
    url = reverse("admin:coupons_creditgrant_change", args=[grant.pk])
    client.force_login(finance)
    services.run_billing(as_of=date(2026, 3, 2))
    few_entries = grant.entries.count()
    q_few = page_queries(client, url)
    services.run_billing(as_of=date(2026, 12, 2))
    many_entries = grant.entries.count()
    q_many = page_queries(client, url)
    assert many_entries >= few_entries + 8, (few_entries, many_entries)
    assert len(q_many) == len(q_few), (len(q_few), len(q_many))


def test_campaign_list_and_page_do_not_join_recipients_with_redemptions(
    client, support, today, django_capture_on_commit_callbacks
):
    """G2, G3: the campaign list (and the campaign's page) count reached and redeemed with two
    COUNT(DISTINCT …) over LEFT JOINs of recipients and redemptions in one query: the database
    builds recipients × redemptions rows for each campaign before counting (measured on
    PostgreSQL: 100,000 recipients × 50 attributed redemptions, 2.7 s per query, run twice by
    the page; the list runs it three times, 13.7 s with 20,000 redemptions)."""
    spring = coupon(code="SPRING", percent_off="20", duration="forever")
    for _ in range(6):
        paid_monthly(JAN)
    campaign = create_campaign("Spring", spring.code, "20% off", "Spring!", {"plan": "team"})
    with django_capture_on_commit_callbacks(execute=True):
        launch_campaign(campaign, by=support, as_of=date(2026, 1, 2))
    for recipient in campaign.recipients.select_related("workspace"):
        coupon_services.redeem_coupon(
            recipient.workspace, spring.code, by=support, as_of=date(2026, 1, 3)
        )
    assert campaign.recipients.count() == 6 and campaign.redemptions.count() == 6
    client.force_login(support)
    pages = [
        reverse("admin:coupons_campaign_changelist"),
        reverse("admin:coupons_campaign_change", args=[campaign.pk]),
    ]
    products = [
        sql
        for url in pages
        for sql in page_queries(client, url)
        if 'JOIN "coupons_campaignrecipient"' in sql and 'JOIN "coupons_redemption"' in sql
    ]
    assert products == []


# --- Lists of tables that grow with the business read an index, not the whole table ---------
# Measured on PostgreSQL with 100,000 workspaces, 360,000 invoices and 1,000,000 outbox
# emails (bench/staff_pages.py). A test has a few rows, which a database reads whole anyway:
# these tests ask it how it would read the page's query (PostgreSQL with sequential scans
# priced out), so that an index the query cannot use, or a sort no index serves, shows.


def query_plan(sql, *, sort_as_at_scale=False):
    """How the database would read `sql` (as captured, parameters in place). With
    `sort_as_at_scale`, a sort costs what it would on a large table: a table of a few rows is
    sorted cheaper than any index is read, the more so once earlier tests' rolled-back rows
    have bloated that index, and the question is whether an index gives the order at all."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Statistics of this test's rows (rolled back with it), not whatever an earlier
            # test's committed rows left: autovacuum may have analyzed those, or not, and the
            # plans then differed from one run of the suite to the next.
            cursor.execute("ANALYZE")
            with transaction.atomic():
                cursor.execute("SET LOCAL enable_seqscan = off")
                if sort_as_at_scale:
                    cursor.execute("SET LOCAL enable_sort = off")
                cursor.execute(f"EXPLAIN {sql}")
                return "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
        return "\n".join(str(row[-1]) for row in cursor.fetchall())


def sorts(plan):
    """Whether the plan sorts rows itself rather than reading them in an index's order."""
    return "USE TEMP B-TREE FOR ORDER BY" in plan or re.search(r"\bSort\b", plan) is not None


def list_query(queries, table):
    """The changelist's page query: the rows of `table` in the list's order, one page."""
    found = [
        sql
        for sql in queries
        if sql.startswith(f'SELECT "{table}"."id"') and " ORDER BY " in sql and " LIMIT " in sql
    ]
    assert len(found) == 1, queries
    return found[0]


@pytest.fixture
def a_bit_of_everything(db, today, django_capture_on_commit_callbacks):
    """Rows in each list, two pages at least: workspaces on Free and Team, invoices, usage,
    strikes, lock changes and outbox emails, one of them failed."""
    for _ in range(2):  # over the Free limit: a strike and a lock each
        services.record_usage(workspace(as_of=JAN), month=JAN, mtus=5_000)
    paid_monthly(JAN)
    with django_capture_on_commit_callbacks(execute=True):
        services.run_billing(as_of=date(2026, 3, 2))
    OutboundEmail.objects.filter(pk=OutboundEmail.objects.first().pk).update(
        status=OutboundEmail.Status.FAILED
    )
    assert Strike.objects.exists() and LockEvent.objects.exists() and Invoice.objects.exists()


@pytest.mark.parametrize(
    "model",
    ["workspace", "subscription", "usage", "invoice", "outboundemail", "strike", "lockevent"],
)
def test_a_list_of_a_growing_table_reads_its_default_order_from_an_index(
    client, support, a_bit_of_everything, model, monkeypatch
):
    """R1–R3: each list's first page in its default order is read through an index in that
    order, not sorted from the whole table: the outbox sorted 1,000,000 rows (124–250 ms),
    the subscription list 100,000 (260 ms), strikes and lock changes 60,000 (120–150 ms)."""
    model_admin = admin.site.get_model_admin(apps.get_model("billing", model))
    monkeypatch.setattr(model_admin, "list_per_page", 1)  # pages, as at scale
    client.force_login(support)
    queries = page_queries(client, reverse(f"admin:billing_{model}_changelist"))
    plan = query_plan(list_query(queries, f"billing_{model}"))
    assert not sorts(plan), plan


def redemptions(support, *days):
    """A coupon redeemed by a new workspace on each of `days` (C2)."""
    for day in days:
        coupon_services.redeem_coupon(
            workspace(as_of=day.replace(day=1)), coupon().code, by=support, as_of=day
        )


def test_the_redemption_list_reads_its_default_order_from_an_index(
    client, support, db, today, monkeypatch
):
    """C2, R1: the redemption list's first page, newest redeemed first, sorted every
    redemption joined to its workspace, coupon and user (0.26–0.34 s a page in
    bench/staff_walk.py; 0.27–0.40 s at 200,000 redemptions). An index in that order
    (coupons 0011) is read instead."""
    redemptions(support, date(2026, 1, 5), date(2026, 1, 6), date(2026, 1, 6))
    model_admin = admin.site.get_model_admin(Redemption)
    monkeypatch.setattr(model_admin, "list_per_page", 1)
    client.force_login(support)
    queries = page_queries(client, reverse("admin:coupons_redemption_changelist"))
    plan = query_plan(list_query(queries, "coupons_redemption"))
    assert not sorts(plan), plan


@pytest.mark.parametrize("direction", ["", "-"])
def test_the_invoice_list_sorted_by_number_reads_its_order_from_an_index(
    client, support, a_bit_of_everything, direction, monkeypatch
):
    """I1: sorted by its Number column the invoice list is in number order (issue date, the
    number's length, the number: INV-2026-1000000 after INV-2026-999999), read through the
    list's index either way rather than sorted from every invoice."""
    model_admin = admin.site.get_model_admin(Invoice)
    monkeypatch.setattr(model_admin, "list_per_page", 1)
    client.force_login(support)
    url = reverse("admin:billing_invoice_changelist")
    column = client.get(url).context["cl"].list_display.index("number")
    queries = page_queries(client, f"{url}?o={direction}{column}")
    plan = query_plan(list_query(queries, "billing_invoice"))
    assert not sorts(plan), plan


@pytest.fixture
def credit_and_coupons(db, today):
    """Two paid Team workspaces, each with a startup credit grant (a STARTUP redemption, C2,
    CR1) drawn by two months of invoices (CR2)."""
    for _ in range(2):
        ws = paid_monthly(JAN)
        coupon_services.redeem_coupon(ws, "STARTUP", by=None, as_of=date(2026, 1, 5))
    services.run_billing(as_of=date(2026, 3, 2))
    assert CreditGrant.objects.count() == 2 and Redemption.objects.count() == 2


def column_named(client, url, header):
    """The list's column headed `header`: its name and its `o=` (its place in the list)."""
    cl = client.get(url).context["cl"]
    names = [
        name
        for name in cl.list_display
        if capfirst(label_for_field(name, cl.model, cl.model_admin)) == header
    ]
    assert len(names) == 1, (header, cl.list_display)
    return names[0], cl.list_display.index(names[0])


def assert_not_sortable(client, user, model, header, monkeypatch):
    """The list of `model` offers no sort by its column headed `header`, and a bookmark sorted
    by it (`?o=N`) plans no Sort (a page of one row: the database may not sort them all)."""
    model_admin = admin.site.get_model_admin(apps.get_model(model))
    monkeypatch.setattr(model_admin, "list_per_page", 1)
    client.force_login(user)
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    name, column = column_named(client, url, header)
    assert f"sortable column-{name}" not in client.get(url).content.decode()
    queries = page_queries(client, f"{url}?o={column}")
    table = apps.get_model(model)._meta.db_table
    plan = query_plan(list_query(queries, table), sort_as_at_scale=True)
    assert not sorts(plan), plan


def assert_sorted_through(client, user, model, header, direction, index, monkeypatch):
    """The list of `model` sorted by its column headed `header` (`direction` "-": descending)
    reads `index` and plans no Sort (a page of one row)."""
    monkeypatch.setattr(admin.site.get_model_admin(apps.get_model(model)), "list_per_page", 1)
    client.force_login(user)
    url = reverse(f"admin:{model.replace('.', '_')}_changelist")
    _, column = column_named(client, url, header)
    queries = page_queries(client, f"{url}?o={direction}{column}")
    table = apps.get_model(model)._meta.db_table
    plan = query_plan(list_query(queries, table), sort_as_at_scale=True)
    assert index in plan and not sorts(plan), plan


@pytest.mark.parametrize(
    "model, header",
    [
        ("billing.subscription", "Plan"),
        ("coupons.creditledgerentry", "Invoice"),
        ("coupons.creditgrant", "Partner"),
        ("coupons.redemption", "Coupon"),
    ],
)
def test_a_list_does_not_sort_by_a_joined_column_no_index_orders(
    client, finance, credit_and_coupons, model, header, monkeypatch
):
    """R1–R3: sorted by these columns, a list joined every row to the table the column shows
    and sorted them all for one page (75,000 subscriptions by plan: 0.20–0.37 s; 168,750
    ledger entries by invoice: 0.7–1.1 s; 18,750 grants by partner and 15,000 redemptions by
    coupon: 0.10–0.20 s; bench_sorts). No index gives that order: a few plans and coupons
    each hold thousands of rows, grant and lapse entries have no invoice, most grants no
    partner. They are not sortable (plans and coupons are filters, an invoice's entries are
    searched by its number); a bookmark sorted by one reads the list by id."""
    assert_not_sortable(client, finance, model, header, monkeypatch)


def sorts_more_than_a_group(plan):
    """Whether the plan sorts its rows whole, not only each group of rows that tie on the
    order an index gave (an Incremental Sort, whose first groups fill a page)."""
    return re.search(r"(?<!Incremental )\bSort  \(cost", plan) is not None  # a node, not a key


@requires_postgres
@pytest.mark.parametrize(
    "model, header, direction",
    [
        ("creditgrant", None, ""),
        ("creditledgerentry", None, ""),
        ("creditledgerentry", "Grant", ""),
        ("creditledgerentry", "Grant", "-"),
    ],
)
def test_the_grant_and_ledger_lists_read_the_grants_in_order_from_an_index(
    client, finance, credit_and_coupons, model, header, direction, monkeypatch
):
    """CR1, CR2, R3: the grant list (newest valid first) and the ledger list (its entries grant
    by grant in that order, by default or sorted by Grant) sorted every grant joined to its
    workspace for each page (35–85 ms of it at 18,750 grants; bench_sorts). An index in the
    grants' order (coupons 0012) is read instead, and a grant's few entries sorted."""
    model_admin = admin.site.get_model_admin(apps.get_model("coupons", model))
    monkeypatch.setattr(model_admin, "list_per_page", 1)
    client.force_login(finance)
    url = reverse(f"admin:coupons_{model}_changelist")
    if header:
        _, column = column_named(client, url, header)
        url = f"{url}?o={direction}{column}"
    plan = query_plan(list_query(page_queries(client, url), f"coupons_{model}"))
    assert "coupons_cre_valid_f" in plan and not sorts_more_than_a_group(plan), plan


@pytest.fixture
def rows_in_each_list(db, today, support):
    """Two rows at least in each list below (a list on one page reads its rows unpaged): two
    paid Team workspaces with usage, one with a 10 % coupon for ever (C4), the other with a
    STARTUP credit grant (CR1), both billed for two months (two discounts applied, two draws:
    CR2), and two startup applications (S1)."""
    discounted, credited = paid_monthly(JAN), paid_monthly(JAN)
    for ws in (discounted, credited):
        services.record_usage(ws, month=JAN, mtus=12_000)
    forever = coupon(duration="forever").code
    coupon_services.redeem_coupon(discounted, forever, by=support, as_of=date(2026, 1, 5))
    coupon_services.redeem_coupon(credited, "STARTUP", by=None, as_of=date(2026, 1, 5))
    services.run_billing(as_of=date(2026, 3, 2))
    application(), application()
    assert DiscountApplication.objects.count() == 2 and CreditLedgerEntry.objects.count() == 3


@pytest.mark.parametrize(
    "model, header",
    [
        ("billing.invoice", "Kind"),
        ("billing.invoice", "Period"),
        ("billing.invoice", "Status"),
        ("billing.invoice", "Total"),
        ("billing.usage", "MTUs"),
        ("billing.usage", "Updated at"),
        ("billing.subscription", "Ended on"),
        ("coupons.creditledgerentry", "On"),
        ("coupons.creditledgerentry", "Kind"),
        ("coupons.creditledgerentry", "Amount"),
        ("coupons.discountapplication", "Discount"),
        ("coupons.discountapplication", "Created at"),
        ("startups.startupapplication", "Workspace"),
    ],
)
def test_a_list_does_not_sort_by_a_column_of_its_own_no_index_orders(
    client, finance, reviewer, rows_in_each_list, model, header, monkeypatch
):
    """R1–R3, I1, U1, CR2, C4, S1: sorted by these columns, a list sorted every row for one
    page (bench_sorts, median of 5, page / database): 600,000 invoices by kind, period,
    status or total 0.49–0.78 s / 0.45–0.73 s; 450,000 usage figures by MTUs or updated
    0.27–0.45 s / 0.22–0.39 s; 83,000 subscriptions by end 0.13–0.17 s / 87–117 ms; 168,750
    ledger entries by day, kind or amount 0.15–0.23 s / 93–168 ms; 120,000 discount
    applications by amount or created 0.23–0.30 s / 0.19–0.22 s; 50,000 applications by
    workspace (an optional link) 0.28–0.30 s / 124–136 ms. Invoices, usage, draws and discounts
    are written in bulk by the month close and the usage import, which an index for each would
    slow; the lists' filters (kind, status, issue date, month, end, day) and searches answer
    what the sorts would, and finance finds the largest invoices through the finance invoice
    list's filters and its export. They are not sortable; a bookmark sorted by one lists in the
    default order or by id (47–89 ms / 3–9 ms; applications 106–172 ms / 10–22 ms)."""
    user = reviewer if model.startswith("startups.") else finance
    assert_not_sortable(client, user, model, header, monkeypatch)


@requires_postgres
@pytest.mark.parametrize("direction", ["", "-"])
@pytest.mark.parametrize(
    "header, index", [("Trial", "billing_sub_trial_e_"), ("Term end", "billing_sub_term_en_")]
)
def test_the_subscription_list_sorted_by_trial_or_term_end_reads_an_index(
    client, support, credit_and_coupons, header, index, direction, monkeypatch
):
    """R1, T3, T6, K2: the trials and annual terms that end soonest (sorted by Trial or Term
    end, with the Trial outcome or Interval filter) are a question no filter answers, and
    subscriptions are written one at a time, not by the close or the import. Sorted so, the
    list sorted every subscription for one page (83,000: 0.15–0.16 s, 89–103 ms of it in the
    database; bench_sorts); an index of each (billing 0048) is read either way instead
    (51–85 ms, 3–7 ms)."""
    assert_sorted_through(
        client, support, "billing.subscription", header, direction, index, monkeypatch
    )


@requires_postgres
@pytest.mark.parametrize("direction", ["", "-"])
@pytest.mark.parametrize(
    "header, index",
    [("Company", "startup_company_order_idx"), ("Funding", "startup_funding_order_idx")],
)
def test_the_application_list_sorted_by_company_or_funding_reads_an_index(
    client, reviewer, db, header, index, direction, monkeypatch
):
    """R1, S1: the reviewers' list sorted by its first columns, company or funding (the
    largest raises first), sorted every application for one page (50,000: 0.21–0.22 s a page,
    0.10–0.11 s of it in the database; bench/staff_walk.py). Applications are written one at a
    time; an index of each (startups 0012, ties by id) is read either way instead."""
    application(), application()
    assert_sorted_through(
        client, reviewer, "startups.startupapplication", header, direction, index, monkeypatch
    )


@requires_postgres
@pytest.mark.parametrize(
    "model, header", [("usage", "Month"), ("invoice", "Issued"), ("subscription", "Started on")]
)
def test_a_list_sorted_ascending_by_an_indexed_column_reads_its_index_in_order(
    client, finance, a_bit_of_everything, model, header, monkeypatch
):
    """R1, R3, U1, I1: sorted ascending by a column an index leads, a list broke the column's
    ties descending whichever way the column went (Django's "-pk"; the usage list's own order,
    by workspace descending), which no index gives after an ascending column: the database
    sorted each month's usage or each day's invoices whole, a group as big as the page's
    table's month (bench_sorts, median of 5, page / database: 450,000 figures by month 99 ms /
    33 ms; 600,000 invoices by issue date 155 ms / 106 ms). Ties are now broken as the list's
    default order breaks them, turned the column's way (the usage's workspace, the invoices'
    number, the subscriptions' id), and the index is read in order, nothing sorted (51–69 ms /
    3–7 ms)."""
    monkeypatch.setattr(
        admin.site.get_model_admin(apps.get_model("billing", model)), "list_per_page", 1
    )
    client.force_login(finance)
    url = reverse(f"admin:billing_{model}_changelist")
    _, column = column_named(client, url, header)
    plan = query_plan(list_query(page_queries(client, f"{url}?o={column}"), f"billing_{model}"))
    assert not sorts(plan), plan


def test_the_outbox_offers_every_kind_and_counts_once_without_reading_the_kinds(
    client, support, a_bit_of_everything
):
    """R1: the outbox's kind filter read its choices with a SELECT DISTINCT over the outbox
    (108–224 ms at 1,000,000 emails), and the list counted the whole outbox twice (the
    paginator and "N total", 50–128 ms each). It offers every kind an email can be (each
    email template's name), read from no row, and counts once."""
    client.force_login(support)
    url = reverse("admin:billing_outboundemail_changelist")
    queries = page_queries(client, url)
    outbox = [sql for sql in queries if '"billing_outboundemail"' in sql]
    assert [sql for sql in outbox if "DISTINCT" in sql] == []
    assert len([sql for sql in outbox if sql.startswith("SELECT COUNT(*)")]) == 1
    templates = Path(settings.BASE_DIR, "templates", "emails").glob("*_subject.txt")
    kinds = {path.name.removesuffix("_subject.txt") for path in templates}
    body = client.get(url).content.decode()
    offered = set(re.findall(r'href="\?kind=([a-z_]+)"', body))
    assert offered == kinds and len(kinds) == 12, offered ^ kinds


def test_the_finance_panel_counts_failed_emails_through_an_index(
    client, finance, a_bit_of_everything
):
    """The admin index's billing panel counted failed emails over the whole outbox (137 ms at
    1,000,000 emails, on every visit to the index): a partial index holds the failed ones.
    Its "Waiting for you" counts them too, through the same index."""
    client.force_login(finance)
    queries = page_queries(client, reverse("admin:index"))
    counts = [sql for sql in queries if "COUNT(*)" in sql and "'failed'" in sql]
    assert len(counts) == 2
    assert all("email_failed_idx" in query_plan(count) for count in counts)


@requires_postgres
def test_the_workspaces_whose_region_is_no_code_are_read_through_their_own_index(
    client, finance, a_bit_of_everything
):
    """X1: the billing panel counts the workspaces whose region tax depends on is no code, on
    every visit to the admin index, and links to their list: each read every workspace (60 ms
    and 0.34–0.99 s at 150,000; bench/staff_walk.py). A partial index holds the few there are,
    in the list's order."""
    client.force_login(finance)
    queries = page_queries(client, reverse("admin:index"))
    (count,) = [sql for sql in queries if "COUNT(*)" in sql and '"business_region"' in sql]
    assert "workspace_region_not_a_code" in query_plan(count)
    url = reverse("admin:billing_workspace_changelist") + "?region_not_a_code=yes"
    listed = list_query(page_queries(client, url), "billing_workspace")
    plan = query_plan(listed)
    assert "workspace_region_not_a_code" in plan and not sorts(plan), plan


@requires_postgres
def test_the_planner_expects_the_few_workspaces_whose_region_is_no_code(db):
    """X1: the planner took "region not a code" for the share of US (or Canadian) workspaces
    times the share of regions that are no state over every country, and expected 31,000 of
    150,000 workspaces where there were none: filtered by a plan too, the workspace list then
    joined every current subscription (0.45–0.50 s a page; bench/staff_walk.py). Statistics of
    country and region together (billing 0049) tell it the pairs there are. Here: 1,000 US
    workspaces in their states, 500 Canadian in their provinces and 1,500 elsewhere with no
    region, none of them "no code"; without those statistics the planner expected about 1,000."""
    states, provinces = sorted(TAX_REGIONS["US"].names), sorted(TAX_REGIONS["CA"].names)
    located = (
        [("US", states[i % len(states)]) for i in range(1_000)]
        + [("CA", provinces[i % len(provinces)]) for i in range(500)]
        + [(("DE", "GB", "FR")[i % 3], "") for i in range(1_500)]
    )
    Workspace.objects.bulk_create(
        Workspace(
            name=f"Located {i}",
            slug=f"located-{i}",
            business_country=country,
            business_region=region,
            billing_email=f"billing{i}@example.com",
            created_on=JAN,
        )
        for i, (country, region) in enumerate(located)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_workspace")
    no_code = Workspace.objects.filter(region_not_a_code())
    assert not no_code.exists()
    (explained,) = json.loads(no_code.explain(format="json"))
    expected = explained["Plan"]["Plan Rows"]
    assert expected <= 5, f"the planner expected {expected} workspaces"


def test_the_workspace_list_sorts_by_no_column_read_for_each_row(client, support, db, today):
    """R1: sorted by plan (or trial end), the workspace list ran a subquery of the current
    subscription for each of 100,000 workspaces to sort them (1.2–1.4 s a page, 0.75–1.08 s
    in the audit). Those columns are not sortable (the filters narrow by plan and trial);
    no column the list sorts by is read with a subquery."""
    for _ in range(2):
        paid_monthly(JAN)
    client.force_login(support)
    url = reverse("admin:billing_workspace_changelist")
    body = client.get(url).content.decode()
    sortable = {  # column: the o= that sorts by it (its header's link: "3.0", "-0")
        column: link.split(".")[0].lstrip("-")
        for column, link in re.findall(
            r'<th scope="col" class="sortable column-(\w+)[^"]*">.*?<div class="text">'
            r'<a href="\?o=([^"]*)"',
            body,
            re.S,
        )
    }
    assert "name_and_slug" in sortable
    assert "plan_display" not in sortable and "trial_end_display" not in sortable
    for column, order in sortable.items():
        queries = page_queries(client, f"{url}?o={order}")
        (rows,) = [sql for sql in queries if sql.startswith('SELECT "billing_workspace"."id"')]
        assert "(SELECT" not in rows.split(" ORDER BY ")[-1], (column, rows)


def like_over_a_join(sql):
    """Whether `sql` looks for words inside a joined workspace's column (Django names a
    subquery's tables U0, U1…; a joined one keeps its name). The search box ranks the rows
    it found by a prefix of the slug ('acme%'), which reads the joined row of those only."""
    joined = r'"billing_workspace"\."\w+"(?:::text\))? LIKE (?:UPPER\()?\'%'
    return re.search(joined, sql) is not None


@pytest.mark.parametrize("words", ["INV-2026", "acme", "Acme Analytics"])
def test_an_invoice_search_finds_by_number_or_workspace_without_joining_to_compare(
    client, support, db, today, words
):
    """R1, R3: the invoice list searched (number, workspace slug or name) and the header's
    search box (number, workspace slug) ORed their words over a join of invoices and
    workspaces, which no index serves: the database read both tables whole (1.7–3.5 s for the
    list, 0.5–0.7 s for the search box, at 360,000 invoices). The workspaces are searched
    apart and their invoices read by workspace; the same invoices are found."""
    acme = paid_monthly(JAN, name="Acme Analytics", slug="acme")
    other = paid_monthly(JAN, name="Zeta", slug="zeta")
    services.run_billing(as_of=date(2026, 3, 2))
    expected = set(Invoice.objects.filter(workspace=acme).values_list("number", flat=True))
    if words.startswith("INV"):
        expected |= set(Invoice.objects.filter(workspace=other).values_list("number", flat=True))
    client.force_login(support)
    url = reverse("admin:billing_invoice_changelist")
    page = client.get(url, {"q": words})
    assert {invoice.number for invoice in page.context["cl"].result_list} == expected
    with CaptureQueriesContext(connection) as ctx:
        client.get(url, {"q": words})
        client.get(reverse("site-search"), {"q": words})
    searches = [
        q["sql"]
        for q in ctx.captured_queries
        if 'FROM "billing_invoice"' in q["sql"] and " LIKE " in q["sql"]
    ]
    assert len(searches) >= 3 and [sql for sql in searches if like_over_a_join(sql)] == []


@requires_postgres
def test_searches_read_trigram_indexes_on_postgresql(client, support, db, today):
    """R1, R3: on PostgreSQL the words are found through trigram indexes (migration 0029) of
    workspace names, slugs, billing emails and invoice numbers, with no table read whole: the
    workspace list searched read 100,000 workspaces twice (270–480 ms), the search box each
    of its kinds' tables."""
    paid_monthly(JAN, name="Acme Analytics", slug="acme")
    services.run_billing(as_of=date(2026, 2, 2))
    client.force_login(support)
    with CaptureQueriesContext(connection) as ctx:
        for name in ("workspace", "invoice"):
            client.get(reverse(f"admin:billing_{name}_changelist"), {"q": "acme"})
        client.get(reverse("site-search"), {"q": "acme"})
    searches = [
        q["sql"]
        for q in ctx.captured_queries
        if " LIKE " in q["sql"] and '"billing_' in q["sql"].split(" WHERE ")[0]
    ]
    plans = [query_plan(sql) for sql in searches]
    assert len(plans) >= 5 and all("Seq Scan" not in plan for plan in plans), plans
    used = set(re.findall(r"\w+_search\b", "\n".join(plans)))
    assert used == {
        "workspace_name_search",
        "workspace_slug_search",
        "workspace_email_search",
        "invoice_number_search",
    }


@requires_postgres
def test_the_invoice_list_searched_for_a_whole_number_reads_the_numbers_btree(
    client, support, db, today
):
    """R3: searched for a whole invoice number, the invoice list read the trigram index of
    numbers, where the number's trigrams (INV, -20, 000…) are in most of them (0.27–0.34 s a
    page at 2.3 million invoices, bench/staff_walk.py). It finds the numbers that begin with
    it in the number's btree: its count, its rows and its drill-down's dates."""
    for _ in range(2):
        paid_monthly(JAN)
    services.run_billing(as_of=date(2026, 3, 2))
    number = Invoice.objects.order_by("number")[1].number  # INV-2026-000002
    url = reverse("admin:billing_invoice_changelist")
    client.force_login(support)
    client.get(url)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url, {"q": number.lower()})
    assert [invoice.number for invoice in page.context["cl"].result_list] == [number]
    searched = [
        q["sql"]
        for q in ctx.captured_queries
        if '"billing_invoice"' in q["sql"] and number in q["sql"].upper()
    ]
    plans = [query_plan(sql) for sql in searched]
    assert len(plans) >= 3, searched  # the count, the rows, the first and last dates
    for plan in plans:
        assert "billing_invoice_number_" in plan and "invoice_number_search" not in plan, plan


@pytest.fixture
def an_outbox_of_10_000(db):
    """10,000 emails as bench/staff_pages.py has a million (one address in a thousand, the
    subject and key of one workspace each), with the statistics the planner reads at scale and
    the trigram indexes' pending rows merged, as autovacuum leaves them: until then a search
    reads the pending rows one by one, and 10,000 of them cost as much as the table."""
    require_postgres()
    OutboundEmail.objects.bulk_create(
        OutboundEmail(
            kind="locked",
            object_key=f"bench:{i}",
            to=f"billing{i % 1000}@example.com",
            subject=f"About your workspace {i}",
            body_text="Hello.",
        )
        for i in range(1, 10_001)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE billing_outboundemail")
        cursor.execute(
            "SELECT gin_clean_pending_list(x.indexrelid) FROM pg_index x "
            "JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_am a ON a.oid = i.relam "
            "WHERE x.indrelid = 'billing_outboundemail'::regclass AND a.amname = 'gin'"
        )


@requires_postgres
@pytest.mark.parametrize(
    "words, found",
    [
        ("BILLING777@", {f"bench:{i}" for i in range(777, 10_001, 1000)}),
        ("workspace 4242", {"bench:4242"}),
        ("Bench:4242", {"bench:4242"}),
    ],
)
def test_the_outbox_searched_reads_trigram_indexes_on_postgresql(
    client, support, an_outbox_of_10_000, words, found
):
    """R1: support searches the outbox by recipient, subject words or object key: each word
    was compared with every row's three columns (0.7–1.1 s to count the matches, as long to
    list them, at 1,000,000 emails). Trigram indexes of the three (migration 0032) answer both
    queries, as the planner chooses them from the table's statistics, and find the same rows."""
    client.force_login(support)
    url = reverse("admin:billing_outboundemail_changelist")
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url, {"q": words})
    assert {email.object_key for email in page.context["cl"].result_list} == found
    searches = [q["sql"] for q in ctx.captured_queries if " LIKE " in q["sql"]]
    assert len(searches) == 2  # the count, the rows
    with connection.cursor() as cursor:
        for sql in searches:
            cursor.execute(f"EXPLAIN {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            used = set(re.findall(r"\w+_search\b", plan))
            assert "Seq Scan" not in plan, plan
            indexes = {"email_to_search", "email_subject_search", "email_object_key_search"}
            assert used == indexes, plan


@requires_postgres
def test_a_searched_list_finds_its_first_and_last_dates_among_its_rows(client, finance, db, today):
    """R3: finance searching the invoice list for a number: the drill-down's first and last
    issue dates (Django's MIN and MAX over the rows found) were read by walking the issue
    date's index from each end until a row matched (bench/staff_pages.py, 360,000 invoices:
    202 ms of the page's 279 ms, the count and the rows 13 ms each). They are taken from the
    rows the search found, as its count is, and are the same dates."""
    paid_monthly(date(2025, 11, 1))
    ws = paid_monthly(date(2025, 11, 1))
    services.run_billing(as_of=date(2026, 3, 2))
    wanted = Invoice.objects.filter(workspace=ws).order_by("issue_date")
    first, last = wanted[0], wanted.reverse()[0]
    url = reverse("admin:billing_invoice_changelist")
    client.force_login(finance)
    with CaptureQueriesContext(connection) as ctx:
        page = client.get(url, {"q": ws.slug}).content.decode()
    assert "2025" in page and "2026" in page  # the years of its invoices, Dec 2025 to Mar 2026
    (bounds,) = [q["sql"] for q in ctx.captured_queries if "MIN(" in q["sql"]]
    with connection.cursor() as cursor:
        cursor.execute(bounds)
        assert cursor.fetchone() == (first.issue_date, last.issue_date)
    plan = query_plan(bounds)
    assert "billing_inv_issue_d" not in plan and "Limit" not in plan, plan


@requires_postgres
def test_application_searches_read_trigram_indexes_on_postgresql(client, reviewer, db, today):
    """R2: the reviewer queue's search (company or email), the application list's (website and
    workspace too) and the search box's find applications through trigram indexes of those
    columns (startups 0010), with no table read whole: at 50,000 applications the queue
    searched for an email fragment compared every row (183 ms, 154 ms of it in the database,
    bench/review_queue.py)."""
    application(company_name="Acme Robotics", contact_email="ada@acme.example.com")
    application(company_name="Nimbus Labs", website="https://acme-partner.example.com")
    client.force_login(reviewer)
    with CaptureQueriesContext(connection) as ctx:
        queue = client.get(reverse("startups:queue"), {"q": "acme"})
        listed = client.get(reverse("admin:startups_startupapplication_changelist"), {"q": "acme"})
        client.get(reverse("site-search"), {"q": "acme"})
    assert [a.company_name for a in queue.context["page"]] == ["Acme Robotics"]
    assert {a.company_name for a in listed.context["cl"].result_list} == {
        "Acme Robotics",
        "Nimbus Labs",
    }
    searches = [
        q["sql"]
        for q in ctx.captured_queries
        if " LIKE " in q["sql"] and '"startups_startupapplication"' in q["sql"].split(" WHERE ")[0]
    ]
    plans = [query_plan(sql) for sql in searches]
    assert len(plans) >= 5 and all("Seq Scan" not in plan for plan in plans), plans
    used = set(re.findall(r"\w+_search\b", "\n".join(plans)))
    assert {"application_company_search", "application_email_search"} <= used
    assert "application_website_search" in used


def drilldown(client, url, **query):
    """The years, months or days the list's date drill-down offers, and the page's queries."""
    with CaptureQueriesContext(connection) as ctx:
        body = client.get(url, query).content.decode()
    block = body[body.index('<nav class="toplinks">') :].split("</nav>")[0]
    links = re.findall(r'<a href="[^"]*"(?: class="date-back")?>(?:&lsaquo; )?([^<]+)</a>', block)
    return links, [q["sql"] for q in ctx.captured_queries]


def test_a_list_drills_down_by_date_without_reading_every_row(client, finance, db, today):
    """R3: the date drill-down of the invoice list (and of usage, redemptions, applications)
    found its years, months and days with a DISTINCT over every row (110–180 ms at 360,000
    invoices, 107–220 ms at 600,000 usage figures, on each visit). It offers the same ones,
    each found through the date's index; a searched list keeps the DISTINCT over its rows."""
    paid_monthly(date(2025, 11, 1))
    ws = paid_monthly(date(2025, 11, 1))
    services.run_billing(as_of=date(2026, 3, 2))
    services.change_to_free(ws, as_of=date(2026, 3, 10))  # a final invoice on the 10th (K1)
    services.run_billing(as_of=date(2026, 3, 11))
    url = reverse("admin:billing_invoice_changelist")
    client.force_login(finance)
    client.get(url)

    def distinct(queries):
        return [sql for sql in queries if "DISTINCT" in sql and '"billing_invoice"' in sql]

    years, queries = drilldown(client, url)
    assert years == ["2025", "2026"] and distinct(queries) == []
    months, queries = drilldown(client, url, issue_date__year="2026")
    assert months == ["All dates", "January 2026", "February 2026", "March 2026"]
    assert distinct(queries) == []
    days, queries = drilldown(client, url, issue_date__year="2026", issue_date__month="3")
    assert days == ["2026", "1 March", "10 March"] and distinct(queries) == []
    searched, queries = drilldown(client, url, issue_date__year="2026", q=ws.slug)
    assert searched == ["All dates", "January 2026", "February 2026", "March 2026"]
    assert len(distinct(queries)) == 1


def test_a_list_filtered_to_more_rows_than_it_counts_drills_down_through_the_index(
    client, finance, db, today, monkeypatch
):
    """R3: filtered to the issued invoices (nearly all of 2.3 million), the invoice list found
    its years with a DISTINCT and its first and last dates with a MIN and MAX over the rows
    found: 0.9–1.3 s a page (bench/staff_walk.py). Filtered to more rows than the list counts
    (LIST_COUNT_CAP, here 1), it asks the date's index, as the unfiltered list does; filtered
    to fewer, it keeps the DISTINCT over them."""
    paid_monthly(date(2025, 11, 1))
    services.run_billing(as_of=date(2026, 2, 2))
    url = reverse("admin:billing_invoice_changelist")
    client.force_login(finance)
    client.get(url)

    def distinct(queries):
        return [sql for sql in queries if "DISTINCT" in sql and '"billing_invoice"' in sql]

    years, queries = drilldown(client, url, status__exact="issued")
    assert years == ["2025", "2026"] and len(distinct(queries)) == 1
    monkeypatch.setattr(toolkit, "LIST_COUNT_CAP", 1)
    years, queries = drilldown(client, url, status__exact="issued")
    assert years == ["2025", "2026"] and distinct(queries) == []


def test_the_redemption_list_drills_down_by_date_through_its_index(client, support, db, today):
    """C2, R3: the redemption list's drill-down found its years, months and days with a
    DISTINCT over every redemption (62–88 ms at 200,000 redemptions). Its order's index
    (coupons 0011) leads with the redemption date: it offers the same ones, each found there."""
    redemptions(support, date(2025, 12, 20), date(2026, 1, 5), date(2026, 1, 5))
    client.force_login(support)
    url = reverse("admin:coupons_redemption_changelist")
    client.get(url)

    def read(queries):
        dates = [sql for sql in queries if re.match(r"SELECT (MIN|DISTINCT)\b.*redeemed_on", sql)]
        assert dates and [sql for sql in dates if "DISTINCT" in sql] == []
        for sql in dates:
            plan = query_plan(sql)
            assert "coupons_red_redeeme" in plan and not sorts(plan), plan

    years, queries = drilldown(client, url)
    assert years == ["2025", "2026"]
    read(queries)
    days, queries = drilldown(client, url, redeemed_on__year="2026", redeemed_on__month="1")
    assert days == ["2026", "5 January"]
    read(queries)


def test_a_list_whose_date_no_index_leads_keeps_the_distinct(
    client, support, db, today, monkeypatch
):
    """The drill-down asks a question a choice only where an index answers it: on the
    workspace list drilled by signup day (no index leads with created_on) each question would
    read the table, and one DISTINCT over it is kept."""
    for _ in range(2):
        workspace(as_of=date(2026, 1, 5))
    model_admin = admin.site.get_model_admin(Workspace)
    monkeypatch.setattr(model_admin, "date_hierarchy", "created_on")
    client.force_login(support)
    url = reverse("admin:billing_workspace_changelist")
    client.get(url)
    days, queries = drilldown(client, url)
    assert days == ["2026", "5 January"]
    assert len([sql for sql in queries if "DISTINCT" in sql and "created_on" in sql]) == 1


@pytest.mark.parametrize("model", ["billing.usage", "billing.workspace", "billing.invoice"])
def test_a_list_offers_no_counts_by_filter_choice(client, finance, a_bit_of_everything, model):
    """R1–R3: Django's "Show counts" (`?_facets=True`) counts the rows behind every choice of
    every filter, a scan each: 1–6.5 s a page on the usage, workspace and invoice lists at
    150,000 workspaces (bench/staff_walk.py). No list offers it, and asking for it adds no
    query."""
    app_label, model_name = model.split(".")
    url = reverse(f"admin:{app_label}_{model_name}_changelist")
    client.force_login(finance)
    assert "_facets" not in client.get(url).content.decode()
    assert len(page_queries(client, f"{url}?_facets=True")) == len(page_queries(client, url))


def test_a_long_list_counts_up_to_its_cap_and_says_more_than(
    client, support, a_bit_of_everything, monkeypatch
):
    """R1–R3: the invoice list counted every invoice on each page (160–350 ms at 2.3 million)
    and its last page's OFFSET sorted them all (15–22 s; bench/staff_walk.py). A list counts
    up to LIST_COUNT_CAP + 1 rows in a LIMITed subquery and says "more than" past the cap,
    with pages up to it; a shorter list says its count as before. Here, the outbox with the
    cap at 2 and a row a page."""
    monkeypatch.setattr(toolkit, "LIST_COUNT_CAP", 2)
    monkeypatch.setattr(admin.site.get_model_admin(OutboundEmail), "list_per_page", 1)
    assert OutboundEmail.objects.count() > 3
    url = reverse("admin:billing_outboundemail_changelist")
    client.force_login(support)
    counts = [sql for sql in page_queries(client, url) if "COUNT(" in sql.upper()]
    assert len(counts) == 1 and "LIMIT 3" in counts[0], counts
    page = client.get(url).content.decode()
    assert "more than 2 outbound emails" in page  # the paginator's line
    assert "Select all more than 2 outbound emails" in page  # its resend action
    assert client.get(f"{url}?p=2").status_code == 200
    assert client.get(f"{url}?p=3").status_code == 302  # past the cap: Django's "?e=1"
    assert "more than 2 results" in client.get(f"{url}?q=example").content.decode()

    one = OutboundEmail.objects.order_by("pk").first()
    short = client.get(f"{url}?q={one.object_key}").content.decode()
    assert "1 result" in short and "more than" not in short


@pytest.mark.parametrize(
    "rows",
    [
        lambda: Redemption.objects.select_related("workspace", "coupon", "by"),
        lambda: Invoice.objects.select_related("workspace").order_by("-number"),
        lambda: Workspace.objects.order_by("business_country", "-id"),
    ],
    ids=["redemptions", "invoices by number", "workspaces by country"],
)
def test_a_page_after_the_first_reads_its_ids_through_the_offset_then_its_rows(
    support, a_bit_of_everything, rows
):
    """R1–R3: a later page's OFFSET joined every row it skipped, or sorted the whole table to
    skip them (bench/staff_walk.py, page / database): the last page of 30,000 redemptions
    250–294 ms / 167–199 ms, of 150,000 workspaces 202–213 ms / 119–135 ms. It reads the
    skipped rows' ids alone (the list's order index has them), then its own rows with their
    joins: 144 ms / 22 ms and 123 ms / 37 ms. Each page holds the rows the plain slice held,
    in order."""
    for day in (3, 4, 4):  # after the fixture's clock run (through 2 March)
        ws = workspace(as_of=date(2026, 3, 3))
        coupon_services.redeem_coupon(ws, coupon().code, by=support, as_of=date(2026, 3, day))
    listed = list(rows())
    assert len(listed) >= 2
    paginator = toolkit.CappedPaginator(rows(), 1)
    pages = [paginator.page(number) for number in paginator.page_range]
    assert [row for page in pages for row in page.object_list] == listed
    with CaptureQueriesContext(connection) as ctx:
        second = list(paginator.page(2).object_list)
    ids, fetched = (query["sql"] for query in ctx.captured_queries)
    assert " OFFSET 1" in ids and "JOIN" not in ids and " IN (" not in ids, ids
    assert " OFFSET" not in fetched and " IN (" in fetched, fetched
    assert second == listed[1:2]


def test_a_country_column_does_not_flatten_the_worlds_choices_for_each_row(
    client, reviewer, db, monkeypatch
):
    """E3, X2: the territory list (243 rows at the bench) showed each country through Django's
    display of a CountryField, which flattens the world's 250 choices again for every row:
    50,000 calls, 0.25–0.31 s a page (bench/staff_walk.py). Its column reads the name; so
    does the tax rates'."""
    flattened = []
    choices = CountryField.flatchoices
    monkeypatch.setattr(
        CountryField, "flatchoices", property(lambda f: flattened.append(f) or choices.fget(f))
    )
    client.force_login(reviewer)
    assert EligibleTerritory.objects.count() >= 20
    page = client.get(reverse("admin:startups_eligibleterritory_changelist"))
    assert "Argentina" in page.content.decode()
    assert len(flattened) <= 1, len(flattened)  # not one a row


def workspaces_with_little_and_much_history(support, finance):
    """FC1: two paid monthly Team workspaces in the same state on 1 February 2026 (a coupon
    taking 10 % off for good, credit left for every month forecast), `few` with 3 months of
    history and `much` with 24: a month's usage each, a 5 % coupon for two months twice a year,
    last year's credit grant, a year on annual Team (K2, K4) and the plan's terms changed
    twice."""
    from billing.models import Plan
    from billing.months import add_months

    def lasting_credit(ws, *, year, day):
        """Enough credit for every month forecast, valid through them (CR1)."""
        coupon_services.grant_credits(
            ws, amount="5000.00", as_of=day, year=year, by=support, valid_until=date(2027, 6, 1)
        )

    first = date(2024, 2, 1)
    much = paid_monthly(first)
    few = None
    for i in range(24):
        month = add_months(first, i)
        day = month.replace(day=2)  # the clock has processed the 1st
        if i in (8, 18):  # first: a change dated the same day may read the terms
            services.update_plan(
                Plan.objects.get(code=Plan.Code.TEAM),
                by=finance,
                reason="Price list",
                effective_on=day,
                overage_rate=f"0.01{i}",
            )
        if i == 21:
            few = paid_monthly(day)
            lasting_credit(few, year=1, day=day)
            code = coupon(percent_off="10", duration="forever").code
            coupon_services.redeem_coupon(few, code, by=support, as_of=day)
        if i == 0:
            coupon_services.grant_credits(much, amount="100.00", as_of=day, year=1, by=support)
        if i == 18:
            lasting_credit(much, year=2, day=day)
        if i in (0, 6, 12, 18):
            code = coupon(percent_off="5", duration="repeating", duration_months=2).code
            coupon_services.redeem_coupon(much, code, by=support, as_of=day)
        if i == 22:
            code = coupon(percent_off="10", duration="forever").code
            coupon_services.redeem_coupon(much, code, by=support, as_of=day)
        if i == 3:
            services.change_interval(much, interval="annual", as_of=day)
        if i == 6:  # monthly again at the term's end, 2 May 2025
            services.change_interval(much, interval="monthly", as_of=day)
        for ws in (much, few):
            if ws is not None:
                services.record_usage(ws, month=month, mtus=11_000 + 250 * i)
        services.run_billing(as_of=add_months(month, 1))
    return few, much


def test_the_forecast_page_runs_as_many_queries_whatever_the_history(
    client, support, finance, today
):
    """FC1: the forecast page (12 months, its default) ran 437 queries here (450 on
    PostgreSQL; bench/staff_walk.py: 278–404, 0.3–0.6 s), 34 more for each month shown: its
    assumed usage was recorded one figure at a time (10 queries a month), the tax rates and
    the next trial or term end read again each month, the MTU assumption read twice. The usage
    is written at once and the rest read once: 273 (275), 20 a month. Those 20 are the month
    close's own work (its drafts, the coupon and credit hook, the invoices and credit draws
    written); none of it grows with the workspace's history: 3 months or 24, coupons, credits,
    a year on annual, the plan's terms changed."""
    few, much = workspaces_with_little_and_much_history(support, finance)
    assert much.usage.count() == 24 and few.usage.count() == 3
    assert Redemption.objects.filter(workspace=much).count() == 5
    assert much.subscriptions.filter(interval="annual").exists()
    client.force_login(support)
    q_few = page_queries(client, reverse("admin:billing_workspace_forecast", args=[few.pk]))
    q_much = page_queries(client, reverse("admin:billing_workspace_forecast", args=[much.pk]))
    assert len(q_much) == len(q_few) <= 290, (len(q_few), len(q_much))
