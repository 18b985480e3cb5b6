"""D1, D2, I4 on PostgreSQL: two billing runs at once (the beat's daily run and an operator's
catch-up, or the run a close's last chunk starts) take turns, and the clock never goes back."""

import threading
import time
from datetime import date

import pytest
from django.db import connections

from billing import daily_run, services
from billing.clock import last_processed_day
from billing.errors import DayAlreadyProcessed
from tests.billing.factories import paid_monthly
from tests.services import require_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_d1_d2_a_run_started_during_another_waits_and_goes_on_from_where_it_stopped(
    monkeypatch,
):
    """Run B (through 3 February) is processing when run A (through 10 February) starts. A
    processed every day through the 10th beside it and B then recorded the 3rd as the last
    processed day: the clock went back a week, and a card dated 5 February, a processed day,
    was accepted. Now A waits for B, then processes the 4th to the 10th."""
    require_postgres()
    ws = paid_monthly(as_of=date(2026, 1, 1))
    services.run_billing(as_of=date(2026, 1, 31))
    real_process_day = daily_run._process_day
    processed, b_busy = [], threading.Event()

    def process_day(day, *args, **kwargs):
        processed.append((threading.current_thread().name, day))
        if threading.current_thread().name == "B" and day == date(2026, 2, 1):
            b_busy.set()
            time.sleep(1)  # A starts meanwhile
        return real_process_day(day, *args, **kwargs)

    monkeypatch.setattr(daily_run, "_process_day", process_day)
    errors = []

    def run_b():
        try:
            services.run_billing(as_of=date(2026, 2, 3))
        except Exception as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    b = threading.Thread(target=run_b, name="B")
    b.start()
    assert b_busy.wait(30)
    services.run_billing(as_of=date(2026, 2, 10))
    b.join(60)

    assert errors == []
    days = [(who, day.day) for who, day in processed]
    assert days == [("B", 1), ("B", 2), ("B", 3)] + [("MainThread", d) for d in range(4, 11)]
    assert ws.invoices.count() == 1  # I4
    assert last_processed_day() == date(2026, 2, 10)
    with pytest.raises(DayAlreadyProcessed):
        services.add_payment_method(ws, as_of=date(2026, 2, 5), last4="4242")
