"""Celery against a real Redis: a worker process runs a task end to end; the schedule and the
delivery settings the billing cycle relies on are in place."""

import uuid
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab
from django.conf import settings

from billing.selectors import HEARTBEAT_STALE_AFTER
from config import celery_app
from tests.services import requires_redis
from tests.workers import RESULT_TIMEOUT, forget_queue, result_backend_for, running_worker


@requires_redis
def test_a_real_worker_runs_a_task_sent_through_redis(tmp_path):
    broker = settings.CELERY_BROKER_URL
    backend = result_backend_for(broker)
    # A queue of its own, so no other worker on this Redis can take the message.
    queue = f"test-worker-{uuid.uuid4().hex}"
    token = f"pong-{uuid.uuid4().hex}"
    client = Celery("worker-test-client", broker=broker, backend=backend, set_as_current=False)
    client.conf.update(
        task_always_eager=False,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
    )
    log = tmp_path / "worker.log"
    try:
        with running_worker(queue=queue, broker=broker, backend=backend, log=log):
            sent = client.send_task("billing.tasks.ping", args=[token], queue=queue)
            try:
                value = sent.get(timeout=RESULT_TIMEOUT)
            except Exception as exc:
                raise AssertionError(f"no result: {exc!r}\n{log.read_text()}") from exc
            assert value == token
            assert sent.status == "SUCCESS"
            sent.forget()
    finally:
        client.close()
        forget_queue(broker, queue)

    assert f"Task billing.tasks.ping[{sent.id}] succeeded" in log.read_text()


def test_d1_beat_runs_the_daily_billing_cycle_after_midnight_utc():
    entries = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "billing.tasks.run_daily_billing"
    ]

    assert len(entries) == 1
    schedule = entries[0]["schedule"]
    assert isinstance(schedule, crontab)
    assert (schedule.hour, schedule.minute) == ({0}, {15})
    assert schedule.day_of_week == set(range(7))
    assert schedule.day_of_month == set(range(1, 32))
    assert schedule.month_of_year == set(range(1, 13))
    # What beat itself reads, in the zone the crontab is read in.
    assert celery_app.conf.beat_schedule == settings.CELERY_BEAT_SCHEDULE
    assert celery_app.conf.timezone == "UTC"
    celery_app.loader.import_default_modules()
    assert "billing.tasks.run_daily_billing" in celery_app.tasks


def test_the_beat_sends_the_workers_heartbeat_often_enough_to_be_late_in_15_minutes():
    """check_billing calls the heartbeat late after HEARTBEAT_STALE_AFTER: the beat sends it
    every 5 minutes, so three must have gone unrun; one left waiting while no worker was up
    expires before the next is sent."""
    (entry,) = [
        entry
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] == "billing.tasks.record_heartbeat"
    ]
    every = timedelta(minutes=5)
    assert entry["schedule"] == crontab(minute="*/5")
    assert 3 * every == HEARTBEAT_STALE_AFTER
    assert 0 < entry["options"]["expires"] < every.total_seconds()
    celery_app.loader.import_default_modules()
    assert "billing.tasks.record_heartbeat" in celery_app.tasks


def test_celery_delivery_settings_survive_a_lost_worker():
    conf = celery_app.conf

    # Acknowledged after the task ran, requeued if the worker dies mid-task.
    assert conf.task_acks_late is True
    assert conf.task_reject_on_worker_lost is True
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_serializer == "json"
    assert conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert 0 < conf.task_soft_time_limit < conf.task_time_limit


def test_no_task_may_run_or_wait_past_the_redis_visibility_timeout():
    """Redis hands a task not acknowledged (acks_late) within the visibility timeout, 3,600 s,
    to another worker: it must outlast the longest a task may run, or a slow task would run
    twice at once. This checked the default limit (360 s) only, while import_usage_file had a
    limit of its own, 3,660 s (soft 3,600 s), past it. Every registered task's hard limit, and
    the longest countdown before one of its retries (a message held unacknowledged meanwhile),
    is under it: import_usage_file 3,000 s."""
    conf = celery_app.conf
    celery_app.loader.import_default_modules()
    visibility = conf.broker_transport_options["visibility_timeout"]
    ours = {name: task for name, task in celery_app.tasks.items() if not name.startswith("celery.")}
    assert {"billing.tasks.import_usage_file", "coupons.tasks.send_campaign_batch"} <= set(ours)

    longest_run = {name: task.time_limit or conf.task_time_limit for name, task in ours.items()}
    longest_wait = {
        name: getattr(task, "retry_backoff_max", 600)
        if getattr(task, "retry_backoff", False)
        else task.default_retry_delay
        for name, task in ours.items()
    }

    assert visibility == 3600
    assert longest_run["billing.tasks.import_usage_file"] == 3000
    assert {name: s for name, s in longest_run.items() if s >= visibility} == {}
    assert {name: s for name, s in longest_wait.items() if s >= visibility} == {}
