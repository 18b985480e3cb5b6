"""I4 on real infrastructure: a month close fans out to a Celery worker over Redis, each chunk
in its own transaction on PostgreSQL; a redelivered chunk issues nothing; the last chunk
finishes the close and starts the billing cycle again."""

import re
import time
import uuid
from datetime import date

import pytest
from celery import Celery
from django.conf import settings
from django.db import connection

from billing import services
from billing.models import Invoice, MonthClose, MonthCloseChunk
from tests.services import require_postgres, require_redis
from tests.test_celery_worker import forget_queue, result_backend_for, running_worker

from .factories import workspace

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _test_database_url():
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def test_i4_month_close_chunks_run_on_a_real_worker_once_each(tmp_path):
    require_postgres()
    require_redis()
    for _ in range(5):
        ws = workspace(as_of=date(2026, 1, 1), card=True)
        services.change_to_team(ws, as_of=date(2026, 1, 1))
        services.change_to_free(ws, as_of=date(2026, 1, 1))
        services.change_to_team(ws, as_of=date(2026, 1, 1))

    broker = settings.CELERY_BROKER_URL
    queue = f"test-close-{uuid.uuid4().hex}"
    client = Celery("close-test-client", broker=broker, set_as_current=False)
    client.conf.update(task_always_eager=False, task_serializer="json", accept_content=["json"])
    log = tmp_path / "worker.log"
    try:
        with running_worker(
            queue=queue,
            broker=broker,
            backend=result_backend_for(broker),
            log=log,
            DATABASE_URL=_test_database_url(),
            CELERY_TASK_DEFAULT_QUEUE=queue,
        ):

            def dispatch(chunk_ids):
                for chunk_id in [*chunk_ids, chunk_ids[0]]:  # the first one delivered twice
                    client.send_task("billing.tasks.bill_month_chunk", args=[chunk_id], queue=queue)

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
    finally:
        client.close()
        forget_queue(broker, queue)

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 6)]
    assert list(MonthCloseChunk.objects.order_by("pk").values_list("invoices", flat=True)) == [
        2,
        2,
        1,
    ]
    assert MonthClose.objects.get(month=date(2026, 1, 1)).invoices == 5
