"""FC1 on PostgreSQL: a forecast never holds a row a month close needs and never queues behind
one. Each side is a thread with its own connection."""

import threading
import time
from datetime import date

import pytest
from django.db import connections, transaction

from billing import services
from billing.errors import BillingError
from billing.forecast import forecast_invoices
from billing.models import Invoice, InvoiceSequence, MonthClose, Workspace
from tests.services import require_postgres

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

JAN = date(2026, 1, 1)


@pytest.fixture(autouse=True)
def _needs_postgres():
    require_postgres()  # SQLite serialises writers: there is no lock to hold or wait for


def in_thread(target, results, key):
    def run():
        try:
            results[key] = target()
        except Exception as exc:  # reported by the test
            results[key] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def forecast_held_open(workspace, *, as_of, months, results):
    """A forecast proposing a move to annual, in a thread, held open inside its change until
    the returned `release` is set; returns (thread, release) once it is inside."""
    inside, release = threading.Event(), threading.Event()

    def to_annual_and_wait(ws, as_of):
        services.change_interval(ws, interval="annual", as_of=as_of)
        inside.set()
        assert release.wait(30)

    forecasting = in_thread(
        lambda: forecast_invoices(
            workspace, as_of=as_of, months=months, changes=[to_annual_and_wait]
        ),
        results,
        "forecast",
    )
    assert inside.wait(30)
    return forecasting, release


def test_fc1_a_close_runs_to_the_end_while_a_forecast_is_open(paid_team):
    """The forecast below has issued invoices (a final and an annual one) and is still open when
    the close of January runs for every other workspace: the close numbers its invoices from the
    sequence the forecast never touched, so it does not wait for the forecast to end."""
    forecast_ws, *others = paid_team(6)
    results = {}
    forecasting, release = forecast_held_open(
        forecast_ws, as_of=date(2026, 1, 20), months=2, results=results
    )
    started = time.monotonic()
    closing = in_thread(
        lambda: services.close_month(JAN, as_of=date(2026, 2, 1), chunk_size=2), results, "close"
    )
    closing.join(20)
    finished_while_forecast_open = not closing.is_alive() and not release.is_set()
    release.set()
    forecasting.join(30)
    assert finished_while_forecast_open, "the close waited for the forecast"
    assert time.monotonic() - started < 20
    assert not isinstance(results["close"], Exception), results["close"]
    assert not isinstance(results["forecast"], Exception), results["forecast"]
    assert [i.kind for i in results["forecast"]][:2] == ["final", "annual"]
    # Every workspace's January invoice once (the forecast one's too: the close ran it as it
    # was, monthly), numbered without a gap; nothing of the forecast survived.
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"INV-2026-{n:06d}" for n in range(1, 7)]
    assert InvoiceSequence.objects.get(year=2026).last_number == 6
    assert MonthClose.objects.get(month=JAN).finished
    assert forecast_ws.subscriptions.get(ended_on=None).interval == "monthly"
    assert len(others) == 5


def test_fc1_a_forecast_gives_up_instead_of_queueing_behind_the_clock(paid_team):
    """The clock holds the workspace's row (as it does while it ends a trial or a term); a
    forecast that needs it waits a moment, then says so, rather than wait its turn."""
    (ws,) = paid_team(1)
    holding, release = threading.Event(), threading.Event()

    def hold_row():
        with transaction.atomic():
            Workspace.objects.select_for_update().get(pk=ws.pk)
            holding.set()
            assert release.wait(30)

    results = {}
    holder = in_thread(hold_row, results, "holder")
    assert holding.wait(30)
    started = time.monotonic()
    try:
        with pytest.raises(BillingError, match="try the forecast again"):
            forecast_invoices(
                ws,
                as_of=date(2026, 1, 20),
                changes=[lambda w, day: services.change_to_free(w, as_of=day)],
            )
        waited = time.monotonic() - started
    finally:
        release.set()
        holder.join(30)
    assert waited < 2
    assert forecast_invoices(ws, as_of=date(2026, 1, 20), months=1)  # the row is free again


def test_fc1_the_clock_processes_its_days_while_a_forecast_with_a_change_is_open(paid_team):
    """A proposed change calls its service, which reads the clock's row (D2). Held shared to
    the forecast's end, that row kept the clock from starting its day, and so its month close,
    until the forecast was over; a forecast commits nothing and takes no turn with the clock."""
    forecast_ws, *others = paid_team(3)
    services.run_billing(as_of=date(2026, 1, 31))
    results = {}
    forecasting, release = forecast_held_open(
        forecast_ws, as_of=date(2026, 2, 1), months=1, results=results
    )
    clock = in_thread(lambda: services.run_billing(as_of=date(2026, 2, 1)), results, "clock")
    clock.join(20)
    finished_while_forecast_open = not clock.is_alive() and not release.is_set()
    release.set()
    forecasting.join(30)
    clock.join(30)
    assert finished_while_forecast_open, "the clock's day waited for the forecast"
    assert not isinstance(results["clock"], Exception), results["clock"]
    assert not isinstance(results["forecast"], Exception), results["forecast"]
    assert MonthClose.objects.get(month=JAN).finished
    assert Invoice.objects.filter(issue_date=date(2026, 2, 1)).count() == 3
    assert forecast_ws.subscriptions.get(ended_on=None).interval == "monthly"
