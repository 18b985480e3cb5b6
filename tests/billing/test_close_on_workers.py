"""I4 on real infrastructure: a month close fans out to a Celery worker over Redis, each chunk
in its own transaction on PostgreSQL; a redelivered chunk issues nothing; the last chunk
finishes the close and starts the billing cycle again."""

import re
import time
from datetime import date

import pytest

from billing import services
from billing.clock import last_processed_day
from billing.models import Invoice, MonthClose, MonthCloseChunk
from tests.services import require_postgres, require_redis
from tests.workers import worker_on_the_test_database

from .factories import paid_monthly

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_i4_month_close_chunks_run_on_a_real_worker_once_each(tmp_path):
    require_postgres()
    require_redis()
    for _ in range(5):
        paid_monthly(date(2026, 1, 1))

    log = tmp_path / "worker.log"
    with worker_on_the_test_database("close", log) as send:

        def dispatch(chunk_ids):
            for chunk_id in [*chunk_ids, chunk_ids[0]]:  # the first one delivered twice
                send("billing.tasks.bill_month_chunk", chunk_id)

        counts = services.close_month(
            date(2026, 1, 1), as_of=date(2026, 2, 1), dispatch=dispatch, chunk_size=2
        )
        assert counts["chunks_dispatched"] == 3
        deadline = time.monotonic() + 60
        while not MonthClose.objects.filter(month=date(2026, 1, 1), finished=True).exists():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # The last chunk started the billing cycle again; wait for it to finish too.
        cycle_done = re.compile(r"Task billing\.tasks\.run_daily_billing\[[^]]+\] succeeded")
        while not cycle_done.search(log.read_text()):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 6)]
    assert list(MonthCloseChunk.objects.order_by("pk").values_list("invoices", flat=True)) == [
        2,
        2,
        1,
    ]
    assert MonthClose.objects.get(month=date(2026, 1, 1)).invoices == 5


def test_d1_a_catch_up_on_workers_passes_every_close_on_its_way_to_the_day_asked(tmp_path):
    """The clock two and a half months behind (last processed 2024-01-01, asked 2024-03-15):
    the closes of January and February each fan out to the worker, and the chunk that
    finishes each one takes the cycle on to 2024-03-15, not only to the close's own day."""
    require_postgres()
    require_redis()
    paid_monthly(date(2024, 1, 1))
    services.run_billing(as_of=date(2024, 1, 1))

    log = tmp_path / "worker.log"
    with worker_on_the_test_database("catch-up", log) as send:
        send("billing.tasks.run_daily_billing", "2024-03-15")
        deadline = time.monotonic() + 60
        while last_processed_day() != date(2024, 3, 15):
            assert time.monotonic() < deadline, (last_processed_day(), log.read_text())
            time.sleep(0.2)

    closes = MonthClose.objects.order_by("month").values_list("month", "finished", "invoices")
    assert list(closes) == [(date(2024, 1, 1), True, 1), (date(2024, 2, 1), True, 1)]
    assert log.read_text().count("Task billing.tasks.bill_month_chunk[") >= 4  # received, done
