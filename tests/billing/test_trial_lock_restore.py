"""F7: an upgrade that lifted a lock and ends in its trial without paying puts the lock back."""

from datetime import date

from django.core import mail

from billing import services
from billing.models import LockEvent
from tests.billing.factories import workspace


def _data_stopped(**kwargs):
    ws = workspace(as_of=date(2026, 1, 1), **kwargs)
    for month in (1, 2):
        services.record_usage(ws, month=date(2026, month, 1), mtus=3_000)
    services.run_billing(as_of=date(2026, 3, 1))
    ws.refresh_from_db()
    assert ws.lock == "locked_data_stopped"
    return ws


def test_f7_team_then_free_the_same_day_keeps_the_data_stop(db, django_capture_on_commit_callbacks):
    ws = _data_stopped(card=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.change_to_team(ws, as_of=date(2026, 3, 10))
        ws.refresh_from_db()
        assert (ws.lock, ws.data_flow) == ("unlocked", True)  # F4: at once
        services.change_to_free(ws, as_of=date(2026, 3, 10))
    ws.refresh_from_db()
    assert (ws.lock, ws.data_flow) == ("locked_data_stopped", False)
    restored = ws.lock_events.latest("id")
    assert (restored.cause, restored.from_lock, restored.to_lock) == (
        LockEvent.Cause.TRIAL_NOT_PAID,
        "unlocked",
        "locked_data_stopped",
    )
    assert restored.get_cause_display() == "Trial ended before paying"
    assert any(m.to == [ws.billing_email] and "locked" in m.subject.lower() for m in mail.outbox)


def test_f7_a_trial_that_reverts_without_a_card_restores_the_lock(db):
    ws = _data_stopped(card=True)
    services.change_to_team(ws, as_of=date(2026, 3, 10))
    services.remove_payment_method(ws, as_of=date(2026, 3, 20))
    services.run_billing(as_of=date(2026, 3, 24))  # the end date: no card, back to Free
    ws.refresh_from_db()
    assert ws.lock == "locked_data_stopped"


def test_f7_a_trial_that_turns_paid_keeps_the_unlock(db):
    ws = _data_stopped(card=True)
    services.change_to_team(ws, as_of=date(2026, 3, 10))
    services.run_billing(as_of=date(2026, 3, 31))
    ws.refresh_from_db()
    assert ws.lock == "unlocked"
    assert not ws.lock_events.filter(cause=LockEvent.Cause.TRIAL_NOT_PAID).exists()
