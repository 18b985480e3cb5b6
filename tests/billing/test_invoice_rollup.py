"""R3, I3: the finance reports read the invoices' roll-up (`InvoiceRollup`), which triggers on
the invoice table keep (migration 0047). Each test writes invoices one way — the month close
(COPY on PostgreSQL), an annual invoice, a final invoice, a void, and the writes no code makes
but the database allows (an UPDATE of amounts, a DELETE, an ORM bulk insert) — and checks the
roll-up against the invoices themselves, summed here in Python, before and after a fold."""

import threading
from collections import Counter
from datetime import date
from decimal import Decimal as D

import pytest
from django.db import connection, connections, transaction
from django.db.models import F

from billing import reports, services
from billing.models import Invoice, InvoiceLine, InvoiceRollup, MonthCloseChunk
from billing.tax import EXEMPT_NOTE_PREFIX
from tests.services import require_postgres

from . import factories
from .factories import certificate

pytestmark = pytest.mark.django_db


def from_invoices() -> dict:
    """(invoices, net, tax) per roll-up group, summed from the counted invoices (I3)."""
    sums = {}
    for invoice in Invoice.objects.exclude(status=Invoice.Status.VOID):
        key = (
            invoice.issue_date.replace(day=1),
            invoice.tax_country,
            invoice.tax_region,
            invoice.plan_code,
            invoice.interval,
            (invoice.tax_rate or 0) > 0,
            invoice.tax_note.startswith(EXEMPT_NOTE_PREFIX),
        )
        count, net, tax = sums.get(key, (0, D("0.00"), D("0.00")))
        sums[key] = (
            count + 1,
            net + invoice.subtotal - invoice.discount - invoice.credits,
            tax + invoice.tax,
        )
    return sums


def from_rollup() -> dict:
    sums = {}
    for row in InvoiceRollup.objects.all():
        key = tuple(getattr(row, name) for name in reports.GROUP)
        count, net, tax = sums.get(key, (0, D("0.00"), D("0.00")))
        sums[key] = (count + row.invoices, net + row.net, tax + row.tax)
    return {key: value for key, value in sums.items() if value != (0, 0, 0)}


def assert_rollup_sums_the_invoices():
    assert from_rollup() == from_invoices()
    reports.fold_rollup()
    assert from_rollup() == from_invoices()
    # One row a group once folded, and none for a group whose invoices were all voided.
    assert InvoiceRollup.objects.count() == len(from_invoices())


def paid_monthly(as_of, country="US", region="CA", **kwargs):
    return factories.paid_monthly(as_of, business_country=country, business_region=region, **kwargs)


@pytest.fixture
def invoiced(finance):
    """January to March 2026: taxed (two in CA), exempt (TX), untaxed (DE), annual, a final
    invoice (Oregon to Free on 11 February) and a void one; each written by its service."""
    ca = paid_monthly(date(2026, 1, 1))
    paid_monthly(date(2026, 1, 1))
    tx = paid_monthly(date(2026, 1, 1), region="TX")
    services.approve_exemption(
        certificate(tx, "TX", on=date(2026, 1, 2)), by=finance, as_of=date(2026, 1, 3)
    )
    de = paid_monthly(date(2026, 1, 1), country="DE", region="")
    oregon = paid_monthly(date(2026, 1, 1), region="OR")
    factories.paid_annual(date(2026, 1, 1), business_region="WA")
    services.record_usage(ca, month=date(2026, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 2, 1))
    services.change_to_free(oregon, as_of=date(2026, 2, 11))
    services.run_billing(as_of=date(2026, 3, 1))
    void = Invoice.objects.get(workspace=de, issue_date=date(2026, 3, 1))
    services.void_invoice(void, by=finance, reason="Duplicate", as_of=date(2026, 3, 2))
    return {"ca": ca, "tx": tx, "de": de, "void": void}


def test_r3_the_rollup_sums_what_every_service_issued_and_voided(invoiced):
    kinds = Counter(Invoice.objects.values_list("kind", "status"))
    assert kinds[("final", "issued")] == 1 and kinds[("annual", "issued")] == 1
    assert kinds[("monthly", "void")] == 1
    groups = from_invoices()
    # Taxed and exempt both appear: CA's tax, TX's certificate.
    assert any(key[5] for key in groups) and any(key[6] for key in groups)
    assert_rollup_sums_the_invoices()


def test_r3_the_tax_report_reads_the_rollup_not_the_invoices(invoiced, django_assert_num_queries):
    with django_assert_num_queries(1) as captured:
        rows = reports.tax_report(first=date(2026, 1, 1), last=date(2026, 3, 1))
    assert "billing_invoicerollup" in captured.captured_queries[0]["sql"]
    assert '"billing_invoice"' not in captured.captured_queries[0]["sql"]
    february = {row["jurisdiction"]: row for row in rows if row["month"] == date(2026, 2, 1)}
    # CA: 120.00 base + 2,000 MTUs over at 0.01 = 140.00, and 120.00, taxed (X1); TX exempt
    # 120.00 (X4).
    assert february["US-CA"]["taxable"] == D("260.00")
    assert february["US-TX"]["exempt"] == D("120.00")
    assert february["US-TX"]["taxable"] == D("0.00")


def test_i3_a_void_takes_its_invoice_out_of_the_report_after_a_fold_too(invoiced, finance):
    reports.fold_rollup()
    before = {(r["month"], r["jurisdiction"]): r for r in reports.tax_report()}
    ca_march = Invoice.objects.get(workspace=invoiced["ca"], issue_date=date(2026, 3, 1))
    services.void_invoice(ca_march, by=finance, reason="Duplicate", as_of=date(2026, 3, 3))
    after = {(r["month"], r["jurisdiction"]): r for r in reports.tax_report()}
    march_ca = (date(2026, 3, 1), "US-CA")
    assert after[march_ca]["invoices"] == before[march_ca]["invoices"] - 1
    assert after[march_ca]["tax_total"] == before[march_ca]["tax_total"] - ca_march.tax
    # DE's only March invoice was voided: its group is gone, not a row of zeros.
    assert (date(2026, 3, 1), "DE") not in after
    assert_rollup_sums_the_invoices()


def test_r3_writes_around_the_services_still_keep_the_rollup(invoiced):
    """The database keeps the roll-up whoever writes: an UPDATE of amounts or of where and
    what an invoice was, a void set and unset, a DELETE, and a bulk insert."""
    invoices = Invoice.objects.filter(workspace=invoiced["ca"])
    invoices.update(subtotal=F("subtotal") + 1, total=F("total") + 1)
    assert_rollup_sums_the_invoices()
    invoices.filter(issue_date=date(2026, 2, 1)).update(tax_country="US", tax_region="NY")
    Invoice.objects.filter(workspace=invoiced["tx"]).update(plan_code="enterprise")
    assert_rollup_sums_the_invoices()
    Invoice.objects.filter(pk=invoiced["void"].pk).update(status=Invoice.Status.ISSUED)
    assert_rollup_sums_the_invoices()
    gone = Invoice.objects.filter(workspace=invoiced["tx"], issue_date=date(2026, 3, 1))
    InvoiceLine.objects.filter(invoice__in=gone).delete()
    gone.delete()
    assert_rollup_sums_the_invoices()
    copies = list(Invoice.objects.filter(workspace=invoiced["ca"]))
    for n, invoice in enumerate(copies):
        invoice.pk, invoice.number, invoice.kind = None, f"INV-2030-{n:06d}", "final"
    Invoice.objects.bulk_create(copies)
    assert_rollup_sums_the_invoices()


def test_r3_an_update_of_no_summed_column_adds_no_row(invoiced):
    reports.fold_rollup()
    rows = InvoiceRollup.objects.count()
    Invoice.objects.update(void_reason="a note", overage_mtus=F("overage_mtus") + 1)
    assert InvoiceRollup.objects.count() == rows


def test_r3_the_reports_do_not_depend_on_when_the_rollup_was_folded(invoiced):
    unfolded = (
        reports.tax_report(),
        reports.revenue_by_month(first=date(2026, 1, 1), last=date(2026, 3, 1)),
    )
    assert reports.fold_rollup() > 0
    assert reports.fold_rollup() == 0  # nothing left to fold
    folded = (
        reports.tax_report(),
        reports.revenue_by_month(first=date(2026, 1, 1), last=date(2026, 3, 1)),
    )
    assert folded == unfolded


def test_r3_a_finished_month_close_leaves_one_rollup_row_a_group(paid_team):
    paid_team(12)
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1), chunk_size=5)
    assert Invoice.objects.count() == 12
    assert from_rollup() == from_invoices()
    assert InvoiceRollup.objects.count() == len(from_invoices()) == 1


def test_r3_postgres_adds_one_row_a_statement_not_one_an_invoice(paid_team):
    """The close's COPY of a chunk fires one statement trigger: a row a group a chunk."""
    require_postgres()
    paid_team(12)
    services.close_month(
        date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=lambda ids: None, chunk_size=5
    )
    for chunk in MonthCloseChunk.objects.order_by("pk"):
        services.bill_chunk(chunk.pk)
    assert Invoice.objects.count() == 12
    assert InvoiceRollup.objects.count() == 3  # three chunks of one group, not yet folded
    assert from_rollup() == from_invoices()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_r3_a_fold_keeps_the_rows_a_transaction_adds_while_it_folds(paid_team, run_together):
    """A chunk's invoices, still uncommitted while the fold runs, are neither folded nor lost;
    two folds at once count no row twice."""
    require_postgres()
    paid_team(6)
    services.close_month(
        date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=lambda ids: None, chunk_size=3
    )
    first, second = MonthCloseChunk.objects.order_by("pk").values_list("pk", flat=True)
    services.bill_chunk(first)
    written, go_on = threading.Event(), threading.Event()

    def chunk_held_open():
        try:
            with transaction.atomic():
                services.bill_chunk(second)
                written.set()
                go_on.wait(10)
        finally:
            connections.close_all()

    worker = threading.Thread(target=chunk_held_open)
    worker.start()
    assert written.wait(10)
    assert reports.fold_rollup() == 0  # one committed row a group: nothing to fold
    go_on.set()
    worker.join()
    assert from_rollup() == from_invoices()

    # Two folds started at the same moment, each on its own connection.
    assert sorted(run_together(reports.fold_rollup, reports.fold_rollup)) == [0, 2]
    assert from_rollup() == from_invoices()
    assert InvoiceRollup.objects.count() == 1


def test_r3_emptying_the_invoices_empties_their_rollup(invoiced):
    """PostgreSQL's TRUNCATE fires no row or statement trigger of its own kind: a trigger of
    its own empties the roll-up too (a benchmark's reset)."""
    require_postgres()
    with connection.cursor() as cursor:
        cursor.execute("set constraints all immediate")  # the test's writes are checked first
        cursor.execute("truncate billing_invoice cascade")
    assert not InvoiceRollup.objects.exists()
