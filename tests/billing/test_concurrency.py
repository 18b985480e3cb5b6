"""I1, I4 on PostgreSQL: concurrent closes and issuing give each invoice once, numbers without
gaps, and an interrupted close resumes. Each worker is a thread with its own connection."""

import threading
from datetime import date
from decimal import Decimal

import pytest
from django.db import connection

from billing import invoicing, services
from billing.models import Invoice, MonthClose, MonthCloseChunk
from tests.services import another_backend_waits_on_a_lock, require_postgres

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


# --- D1, D2: the clock and a dated change take turns ------------------------------------------


def _change_then_clock(change, clock):
    """`change` in a transaction of its own thread; once it is done but not committed, `clock`
    in another thread; the change commits once the clock waits on it (or after 10 s). Returns
    whether the clock was seen waiting; each side's exception is raised."""
    from django.db import connections, transaction

    outcomes, changed = {}, threading.Event()

    def run_change():
        try:
            with transaction.atomic():
                change()
                changed.set()
                outcomes["waited"] = another_backend_waits_on_a_lock()
        except Exception as exc:
            outcomes["change"] = exc
        finally:
            changed.set()
            connections.close_all()

    def run_clock():
        try:
            changed.wait(30)
            clock()
        except Exception as exc:
            outcomes["clock"] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run_change), threading.Thread(target=run_clock)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    for side in ("change", "clock"):
        if side in outcomes:
            raise outcomes[side]
    return outcomes.get("waited")


def test_m1_i4_d1_a_cancellation_committed_during_its_months_close_is_billed_once():
    """M1, K1: a monthly workspace cancelled on 31 January gets a final invoice for 1–30
    January plus the overage, and January's close bills nothing more. The cancellation is
    accepted (the clock has processed through the 30th) while the clock's run through 1
    February starts: the clock waits for it, and sees it, before it processes the 31st.
    Before, the close built its draft from the subscription as it was and billed January a
    second time (136.13 final and 140.00 monthly)."""
    from tests.billing.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 1, 30))

    waited = _change_then_clock(
        lambda: services.change_to_free(ws, as_of=date(2026, 1, 31)),
        lambda: services.run_billing(as_of=date(2026, 2, 1)),
    )
    assert waited  # the race was staged: the clock waited on the uncommitted change
    january = Invoice.objects.filter(workspace=ws).values_list("kind", "total")
    # 120 × 30/31 = 116.13 + 20.00 of overage, once.
    assert list(january) == [("final", Decimal("136.13"))]


def test_f5_f6_d1_an_unlock_committed_while_the_close_unlocks_is_one_change_one_email(support):
    """F3, F5, F6: a locked workspace with no strike in February is unlocked by February's
    close or by support, whichever comes first: one unlock event, one email. Support's unlock
    dated 1 March is accepted (the clock is through 28 February) as the run for 1 March
    starts; the run waits for it and finds the workspace unlocked already."""
    from billing.models import LockEvent, OutboundEmail
    from tests.billing.factories import workspace

    ws = workspace(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=2_000)  # a strike: locked
    services.run_billing(as_of=date(2026, 2, 1))
    services.record_usage(ws, month=date(2026, 2, 1), mtus=10)
    services.run_billing(as_of=date(2026, 2, 28))

    waited = _change_then_clock(
        lambda: services.unlock_workspace(
            ws, by=support, reason="Customer called", as_of=date(2026, 3, 1)
        ),
        lambda: services.run_billing(as_of=date(2026, 3, 1)),
    )
    assert waited
    unlocks = LockEvent.objects.filter(workspace=ws, to_lock="unlocked")
    assert list(unlocks.values_list("cause", flat=True)) == ["manual"]
    assert OutboundEmail.objects.filter(kind="unlocked", to=ws.billing_email).count() == 1


def test_d2_a_change_dated_the_day_the_clock_is_processing_is_refused(db):
    """While the clock processes a day (a close on workers can take minutes), a change dated
    that day is refused, naming it: the day's invoices may already be made."""
    from billing.clock import begin_day
    from billing.errors import DayAlreadyProcessed
    from tests.billing.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    begin_day(date(2026, 2, 1))
    with pytest.raises(DayAlreadyProcessed, match="is processing 1 Feb 2026 now"):
        services.change_to_free(ws, as_of=date(2026, 2, 1))
    services.run_billing(as_of=date(2026, 2, 1))
    services.change_to_free(ws, as_of=date(2026, 2, 2))


def test_d2_m3_usage_committed_as_its_months_close_starts_is_billed():
    """12,000 MTUs for January on file; a report of 15,000 is written, not yet committed, as the
    clock's run through 1 February starts. The clock waits for it and bills it: 120.00 + 50.00
    of overage. Before, the close billed 140.00 and the 15,000 then stood for a closed month."""
    from tests.billing.factories import paid_monthly

    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.record_usage(ws, month=date(2026, 1, 1), mtus=12_000)
    services.run_billing(as_of=date(2026, 1, 31))

    waited = _change_then_clock(
        lambda: services.record_usage(ws, month=date(2026, 1, 1), mtus=15_000),
        lambda: services.run_billing(as_of=date(2026, 2, 1)),
    )
    assert waited
    january = Invoice.objects.get(workspace=ws, kind="monthly")
    assert (january.overage_mtus, january.total) == (5_000, Decimal("170.00"))
