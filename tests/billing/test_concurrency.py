"""I1, I4 on PostgreSQL: concurrent closes and issuing give each invoice once, numbers without
gaps, and an interrupted close resumes. Each worker is a thread with its own connection."""

import threading
from datetime import date

import pytest
from django.db import connection

from billing import invoicing, services
from billing.models import Invoice, MonthClose, MonthCloseChunk
from tests.services import require_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(autouse=True)
def _needs_postgres():
    require_postgres()  # SQLite serialises writers: the race these tests stage cannot happen


def assert_gapless(year):
    numbers = sorted(
        Invoice.objects.filter(number__startswith=f"INV-{year}-").values_list("number", flat=True)
    )
    assert numbers == [f"INV-{year}-{n:06d}" for n in range(1, len(numbers) + 1)]


def test_i4_two_workers_closing_the_same_month_issue_each_invoice_once(paid_team, run_together):
    paid_team(30)
    close = lambda: services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1), chunk_size=7)  # noqa: E731
    run_together(close, close)
    assert Invoice.objects.count() == 30
    assert Invoice.objects.values("workspace").distinct().count() == 30
    assert MonthClose.objects.get().finished
    assert_gapless(2026)


def test_i4_two_workers_on_the_same_chunks_issue_nothing_twice(paid_team, run_together):
    paid_team(12)
    services.close_month(
        date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=lambda ids: None, chunk_size=5
    )
    chunk_ids = list(MonthCloseChunk.objects.values_list("pk", flat=True))
    assert len(chunk_ids) == 3

    def all_chunks():
        for chunk_id in chunk_ids:
            services.bill_chunk(chunk_id)

    run_together(
        all_chunks, all_chunks, lambda: [services.bill_chunk(i) for i in reversed(chunk_ids)]
    )
    assert Invoice.objects.count() == 12
    assert sum(MonthCloseChunk.objects.values_list("invoices", flat=True)) == 12
    assert services.finish_close_if_complete(MonthClose.objects.get().pk).invoices == 12
    assert_gapless(2026)


def test_i1_numbers_stay_gapless_when_final_invoices_are_issued_concurrently(
    paid_team, run_together
):
    spaces = paid_team(8)
    cancel = [lambda ws=ws: services.change_to_free(ws, as_of=date(2026, 1, 20)) for ws in spaces]
    run_together(*cancel)
    assert Invoice.objects.filter(kind="final").count() == 8
    assert_gapless(2026)


def test_i4_a_close_interrupted_mid_way_leaves_nothing_half_written_and_resumes(
    monkeypatch, paid_team
):
    paid_team(9)
    real_issue = invoicing.issue
    calls = {"n": 0}

    def dies_on_second_chunk(drafts, *args, **kwargs):
        calls["n"] += 1
        issued = real_issue(drafts, *args, **kwargs)
        if calls["n"] == 2:
            raise SystemExit("worker killed")  # after writing: the transaction must roll back
        return issued

    monkeypatch.setattr(invoicing, "issue", dies_on_second_chunk)
    with pytest.raises(SystemExit):
        services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1), chunk_size=3)
    assert Invoice.objects.count() == 3  # the first chunk only, whole
    assert list(MonthCloseChunk.objects.values_list("done", flat=True)) == [True, False, False]
    assert not MonthClose.objects.get().finished

    monkeypatch.setattr(invoicing, "issue", real_issue)
    services.run_billing(as_of=date(2026, 2, 1))
    assert Invoice.objects.count() == 9
    assert MonthClose.objects.get().finished
    assert_gapless(2026)
    assert connection.vendor == "postgresql"


def test_i1_i4_a_close_on_threads_issues_what_one_thread_issues_gapless(paid_team):
    """`close_month(threads=2)`: chunks priced and written on two connections at once give
    the invoices, numbers and totals of a close on one, each once."""
    paid_team(9)
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1), chunk_size=2, threads=3)
    invoices = Invoice.objects.order_by("number")
    assert invoices.count() == 9
    assert len({i.workspace_id for i in invoices}) == 9
    assert {i.total for i in invoices} == {invoices[0].total}
    assert MonthClose.objects.get().finished and MonthClose.objects.get().invoices == 9
    assert_gapless(2026)
    services.close_month(date(2026, 1, 1), as_of=date(2026, 2, 1), threads=3)  # again: nothing
    assert Invoice.objects.count() == 9


def test_i4_workers_bill_two_chunks_of_a_close_at_the_same_time(
    monkeypatch, paid_team, run_together
):
    """Each worker locks its chunk's row only: a worker pricing one chunk does not keep another
    from starting the next (before, both locked the close's row and worked in single file)."""
    paid_team(4)
    services.close_month(
        date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=lambda ids: None, chunk_size=2
    )
    first, second = MonthCloseChunk.objects.order_by("pk")
    first_inside, second_inside = threading.Event(), threading.Event()
    real_drafts = invoicing.month_close_drafts

    def drafts(month, workspace_ids=None, workspace_range=None):
        if workspace_range[0] == second.first_workspace_id:
            second_inside.set()
        else:  # the first chunk, its transaction open, waits for the second to get this far
            first_inside.set()
            assert second_inside.wait(10), "the second chunk waited for the first to commit"
        return real_drafts(month, workspace_ids, workspace_range)

    def second_worker():
        assert first_inside.wait(10)
        return services.bill_chunk(second.pk)

    monkeypatch.setattr(invoicing, "month_close_drafts", drafts)
    assert run_together(lambda: services.bill_chunk(first.pk), second_worker) == [2, 2]
    assert_gapless(2026)
