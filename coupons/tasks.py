"""Celery entry points of the coupons app: load ids, call a service, own the retry policy."""

from celery import shared_task
from django.db import OperationalError


@shared_task(autoretry_for=(OperationalError,), retry_backoff=True, max_retries=5)
def send_campaign_batch(campaign_id, first_id, last_id):
    """G2: one batch of a campaign's emails; a redelivered or retried batch sends nothing
    twice (`coupons.campaigns.notify_batch`)."""
    from coupons.campaigns import notify_batch

    return notify_batch(campaign_id, first_id=first_id, last_id=last_id)
