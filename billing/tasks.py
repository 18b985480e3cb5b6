"""Celery entry points: load ids, call a service, own the retry policy. No rules here."""

import logging
from smtplib import SMTPException

from celery import shared_task
from django.db import OperationalError
from django.utils import timezone

from billing.models import MonthCloseChunk

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(SMTPException, ConnectionError, TimeoutError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def send_emails(email_ids):
    from billing.emails import send_queued_email

    return sum(send_queued_email(email_id) for email_id in email_ids)


@shared_task
def run_daily_billing(as_of=None):
    """The beat's daily cycle at 02:00 UTC: the billing clock's edge, where today is read.

    A month close fans out into chunk tasks; the last chunk calls this again to go on.
    """
    from datetime import date

    from billing.services import run_billing

    day = date.fromisoformat(as_of) if as_of else timezone.now().date()
    eager = run_daily_billing.app.conf.task_always_eager
    counts = run_billing(as_of=day, dispatch=None if eager else dispatch_close_chunks)
    logger.info("billing cycle for %s: %s", day, counts)
    return counts


def dispatch_close_chunks(chunk_ids):
    for chunk_id in chunk_ids:
        bill_month_chunk.delay(chunk_id)


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def bill_month_chunk(chunk_id):
    """One chunk of a month close; a redelivered or late chunk is a no-op."""
    from billing.services import bill_chunk, finish_close_if_complete

    issued = bill_chunk(chunk_id)
    chunk = MonthCloseChunk.objects.filter(pk=chunk_id).values("close_id").first()
    closed = finish_close_if_complete(chunk["close_id"]) if chunk else None
    if closed is not None:
        run_daily_billing.delay(closed.closed_on.isoformat())
    return issued


@shared_task
def ping(value):
    """A no-op round trip, used to check that a worker is alive."""
    return value
