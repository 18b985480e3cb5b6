"""Celery entry points: load ids, call a service, own the retry policy. No rules here."""

import logging
from smtplib import SMTPException

from celery import shared_task
from django.utils import timezone

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
    """The beat's daily cycle at 02:00 UTC: the billing clock's edge, where today is read."""
    from datetime import date

    from billing.services import run_billing

    day = date.fromisoformat(as_of) if as_of else timezone.now().date()
    counts = run_billing(as_of=day)
    logger.info("billing cycle for %s: %s", day, counts)
    return counts


@shared_task
def ping(value):
    """A no-op round trip, used to check that a worker is alive."""
    return value
