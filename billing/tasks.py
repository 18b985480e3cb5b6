"""Celery entry points: load ids, call a service, own the retry policy. No rules here."""

import logging
from datetime import timedelta

from celery import shared_task
from celery.exceptions import Retry
from celery.utils.time import get_exponential_backoff_interval
from django.db import OperationalError
from django.utils import timezone

from billing.emails import SEND_TRIES
from billing.models import MonthCloseChunk
from billing.usage_import import JOB_TIME_LIMIT

logger = logging.getLogger(__name__)


# A transport error is retried after 30 s, 1, 2, 4 and 8 minutes, then every 10 minutes: 11
# tries over 65.5 minutes, so a mail server down for an hour delays an email, it does not fail
# it. No jitter, or the sum would be anyone's guess: the worker processes bound how many
# batches retry at once.
@shared_task(
    bind=True,
    max_retries=SEND_TRIES - 1,
    retry_backoff=30,
    retry_backoff_max=600,
    retry_jitter=False,
)
def send_emails(self, email_ids):
    """Send outbox rows. The rows a transport error held back are retried with backoff, and
    the last retry marks what still fails as failed, with its error, for staff to see and
    resend. The batch starts emails for half the task's soft time limit (a hung mail server
    costs each one EMAIL_TIMEOUT, and one under way must finish well within it); the rest go
    to a new task at once, untried."""
    from billing.emails import enqueue_sending, send_queued_emails

    soft_limit = self.soft_time_limit or self.app.conf.task_soft_time_limit
    batch = send_queued_emails(
        email_ids, last_try=self.request.retries >= self.max_retries, seconds=soft_limit / 2
    )
    if batch.untried:
        enqueue_sending(batch.untried)
    if batch.to_retry:
        raise self.retry(
            args=[batch.to_retry], exc=batch.error, countdown=email_retry_wait(self.request.retries)
        )
    return batch.sent


def hand_to_sender(email_ids):
    """The outbox's sender (`emails.hand_sending_to`): the send task, queued. Run in process
    (eager tasks, `make run`), a first try that failed asks for its retry by raising Retry out
    of the commit hook of the change that queued the email, which has committed: the rows stay
    pending after that try, for the sweep or a resend, and the change stands."""
    try:
        send_emails.delay(email_ids)
    except Retry as retry:
        logger.warning("emails %s left pending after a try in process: %s", email_ids, retry.exc)


def email_retry_wait(retries: int) -> int:
    """Seconds before the send's retry number `retries` + 1 (send_emails' backoff)."""
    return get_exponential_backoff_interval(
        factor=send_emails.retry_backoff,
        retries=retries,
        maximum=send_emails.retry_backoff_max,
        full_jitter=send_emails.retry_jitter,
    )


@shared_task
def sweep_stuck_emails():
    """The beat's sweep of the outbox: rows left pending (the broker was down at commit, a
    worker was lost) are claimed and sent again. Now is read here, at the edge."""
    from billing.emails import resend_stuck_emails

    return resend_stuck_emails(now=timezone.now())


# A database error (a restart, a failover) is retried after 30 s, 1, 2, 4 and 8 minutes, then
# every 10 minutes: 11 tries over 65.5 minutes, instead of the clock waiting a day for the next
# beat. Each try goes on from where the last stopped (D1, I4: a day and a chunk are done once).
DATABASE_RETRIES = {
    "autoretry_for": (OperationalError,),
    "retry_backoff": 30,
    "retry_backoff_max": 600,
    "retry_jitter": False,
    "max_retries": 10,
}


@shared_task(**DATABASE_RETRIES)
def run_daily_billing(as_of=None):
    """The beat's daily cycle, shortly after midnight UTC: the billing clock's edge, where
    today is read. It processes through yesterday, the last day that has ended (D1); a day
    that has not ended is refused.

    A month close fans out into chunk tasks; the chunk that finishes it calls this again to
    go on to the same day (and the beat's `resume_billing_day` when that hand-over was lost).
    """
    from functools import partial

    from billing.months import parse_day
    from billing.services import run_billing

    today = timezone.now().date()
    day = parse_day(as_of) if as_of else today - timedelta(days=1)
    if day >= today:
        logger.error("billing cycle for %s refused: the day has not ended (D1)", day)
        return {"refused": 1}
    eager = run_daily_billing.app.conf.task_always_eager
    dispatch = None if eager else partial(dispatch_close_chunks, run_to=day)
    counts = run_billing(as_of=day, dispatch=dispatch)
    logger.info("billing cycle for %s: %s", day, counts)
    return counts


def dispatch_close_chunks(chunk_ids, *, run_to=None):
    """Queue a close's chunks; `run_to`: the day the billing cycle that dispatched them was
    asked to reach, where the chunk that finishes the close takes it on to."""
    for chunk_id in chunk_ids:
        bill_month_chunk.delay(chunk_id, run_to.isoformat() if run_to else None)


@shared_task(**DATABASE_RETRIES)
def bill_month_chunk(chunk_id, run_to=None):
    """One chunk of a month close; a redelivered or late chunk issues nothing. The chunk that
    finishes the close runs the billing cycle on through `run_to` (D1: a catch-up passes
    every close on its way), or through the close's own day when it was queued without one;
    so does a chunk run again while the close's day is not done (that hand-over was lost)."""
    from billing.services import bill_chunk, day_to_go_on_with

    issued = bill_chunk(chunk_id)
    chunk = MonthCloseChunk.objects.filter(pk=chunk_id).values("close_id").first()
    day = day_to_go_on_with(chunk["close_id"]) if chunk else None
    if day is not None:
        run_daily_billing.delay(run_to or day.isoformat())
    return issued


# A close's last chunk hands its day to the run at once (the run may queue behind the close's
# lock emails); after this long the hand-over was lost. A run too many is a no-op anyway.
CLOSE_HAND_OVER_LOST_AFTER = timedelta(minutes=10)


@shared_task
def resume_billing_day():
    """The beat's sweep of the billing clock (D1): a day whose month close finished
    CLOSE_HAND_OVER_LOST_AFTER ago, with no run going on with it (the broker was down when the
    close's last chunk handed it over), is handed to the daily run again, instead of waiting
    for the next day's beat. The run goes on through yesterday, as the beat's would: the day
    a lost hand-over was to reach is lost with it (a catch-up to 4 December stopped at 1
    December's close). Now is read here, at the edge."""
    from billing.services import day_left_after_its_close

    day = day_left_after_its_close(finished_before=timezone.now() - CLOSE_HAND_OVER_LOST_AFTER)
    if day is None:
        return None
    logger.warning("billing day %s resumed: its month close finished, no run went on", day)
    run_daily_billing.delay()
    return day.isoformat()


@shared_task(
    acks_late=True,
    soft_time_limit=JOB_TIME_LIMIT.total_seconds() - 60,
    time_limit=JOB_TIME_LIMIT.total_seconds(),
)
def import_usage_file(job_id):
    """U2 for a large upload: import the stored file of a usage import job; the admin page
    follows the job. A job already finished (a redelivered task) is left alone."""
    from billing.usage_import import run_import_job

    job = run_import_job(job_id)
    return job.status if job else None


@shared_task
def sweep_stuck_import_jobs():
    """The beat's sweep of usage import jobs whose hand-over to a worker was lost (the broker
    was down at upload): each is handed over again. Now is read here, at the edge."""
    from billing.usage_import import hand_over_stuck_jobs

    return hand_over_stuck_jobs(now=timezone.now(), run_later=import_usage_file.delay)


@shared_task
def sweep_orphan_documents():
    """The beat's daily sweep of uploaded documents whose row was never committed. Now is read
    here, at the edge."""
    from billing.documents import delete_orphan_documents

    deleted = delete_orphan_documents(now=timezone.now())
    if deleted:
        logger.info("deleted %s document(s) no row names: %s", len(deleted), ", ".join(deleted))
    return len(deleted)


@shared_task(bind=True, ignore_result=True)
def record_heartbeat(self):
    """The beat's heartbeat, every 5 minutes (CELERY_BEAT_SCHEDULE): the worker that runs it
    records when and who, for `check_billing` to read. Now is read here, at the edge."""
    from billing.health import record_worker_heartbeat

    record_worker_heartbeat(worker=self.request.hostname or "", now=timezone.now())


@shared_task
def ping(value):
    """A no-op round trip, used to check that a worker is alive."""
    return value
