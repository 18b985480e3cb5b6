"""Celery entry points of the coupons app: load ids, call a service, own the retry policy.

This is the edge: it imports the services, never the other way round. `CouponsConfig.ready`
registers `dispatch_campaign_batches` as the way `launch_campaign` hands batches to workers."""

import logging

from celery import shared_task
from kombu.exceptions import OperationalError as BrokerUnavailable

from billing.tasks import DATABASE_RETRIES
from coupons.campaigns import notify_batch

logger = logging.getLogger(__name__)


@shared_task(**DATABASE_RETRIES)
def send_campaign_batch(campaign_id, first_id, last_id):
    """G2: one batch of a campaign's emails; a redelivered or retried batch sends nothing
    twice (`coupons.campaigns.notify_batch`). A database restart or failover is retried for
    an hour, as the clock's tasks retry it: the batch is not left unsent until staff launch
    the campaign again."""
    return notify_batch(campaign_id, first_id=first_id, last_id=last_id)


def dispatch_campaign_batches(campaign_id: int, ranges):
    """G2: hand each batch of a committed launch to a worker. A broker that is down leaves the
    batches unsent, shown on the campaign page, and launching again hands them on."""
    for first_id, last_id in ranges:
        try:
            send_campaign_batch.delay(campaign_id, first_id, last_id)
        except BrokerUnavailable as exc:
            logger.warning(
                "campaign %s batch %s-%s not sent: %s", campaign_id, first_id, last_id, exc
            )
            return
