"""The outbox: one email per (kind, object, recipient), sent after commit, never twice."""

from datetime import date

import pytest
from django.core import mail
from django.db import IntegrityError, transaction

from billing.emails import queue_email, send_queued_email
from billing.models import OutboundEmail
from billing.tasks import send_emails

from .factories import workspace


def _queue(ws):
    return queue_email(
        kind="trial_ended",
        object_key="sub:1",
        to=ws.billing_email,
        template="trial_ended",
        context={"workspace": ws, "subscription": ws.subscriptions.get()},
    )


def test_a_retried_send_task_sends_nothing_twice(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        email = _queue(ws)
    assert len(mail.outbox) == 1
    send_emails.apply(args=[[email.pk]])  # a redelivered task
    assert send_queued_email(email.pk) is False
    assert len(mail.outbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 1)
    assert mail.outbox[0].alternatives[0][1] == "text/html"


def test_the_same_event_queued_twice_is_one_email(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True):
        assert _queue(ws) is not None
        assert _queue(ws) is None
    assert len(mail.outbox) == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        OutboundEmail.objects.create(
            kind="trial_ended", object_key="sub:1", to=ws.billing_email, subject="x", body_text="x"
        )


def test_a_rolled_back_change_sends_nothing(db, django_capture_on_commit_callbacks):
    ws = workspace(as_of=date(2026, 1, 1))
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        try:
            with transaction.atomic():
                _queue(ws)
                raise RuntimeError("the service failed after queueing")
        except RuntimeError:
            pass
    assert callbacks == [] and mail.outbox == []
    assert not OutboundEmail.objects.exists()


def test_a_transport_error_keeps_the_email_pending_for_the_retry(db, settings):
    ws = workspace(as_of=date(2026, 1, 1))
    email = _queue(ws)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 9, 1
    with pytest.raises(OSError):
        send_queued_email(email.pk)
    email.refresh_from_db()
    assert email.status == "pending" and email.attempts == 1 and email.last_error
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    assert send_queued_email(email.pk) is True
    assert len(mail.outbox) == 1
