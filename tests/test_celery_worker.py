"""Celery against a real Redis: a worker process runs a task end to end; the schedule and the
delivery settings the billing cycle relies on are in place."""

import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from celery import Celery
from celery.schedules import crontab
from django.conf import settings

from config import celery_app
from tests.services import clean_env, requires_redis

REPO = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30
RESULT_TIMEOUT = 30


def result_backend_for(broker_url: str) -> str:
    """The same Redis server as the broker, the next database number."""
    parts = urlsplit(broker_url)
    db = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(db + 1) % 16}"))


def celery_command() -> list[str]:
    script = Path(sys.executable).with_name("celery")  # .venv/bin/celery
    return [str(script)] if script.exists() else [sys.executable, "-m", "celery"]


@contextmanager
def running_worker(*, queue: str, broker: str, backend: str, log: Path, **extra_env: str):
    """A real worker consuming only `queue`; stopped (killed if need be) on the way out.

    It runs config.settings, not config.test_settings: the test settings force eager tasks,
    while this worker must take its configuration from the environment as in production.
    """
    env = clean_env(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="false",
        SECRET_KEY=f"worker-test-only-{uuid.uuid4().hex}{uuid.uuid4().hex}",
        CELERY_TASK_ALWAYS_EAGER="false",
        CELERY_BROKER_URL=broker,
        CELERY_RESULT_BACKEND=backend,
    )
    if os.environ.get("DATABASE_URL"):
        env["DATABASE_URL"] = os.environ["DATABASE_URL"]
    env.update(extra_env)
    command = [
        *celery_command(),
        "-A",
        "config",
        "worker",
        "--pool=solo",
        "--concurrency=1",
        "-Q",
        queue,
        "-n",
        f"{queue}@%h",
        "--without-heartbeat",
        "--without-gossip",
        "--without-mingle",
        "--loglevel=INFO",
    ]
    with log.open("w") as out:
        worker = subprocess.Popen(
            command, cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
    try:
        wait_until_ready(worker, log)
        yield worker
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait(timeout=15)


def wait_until_ready(worker: subprocess.Popen, log: Path):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if " ready." in log.read_text():
            return
        if worker.poll() is not None:
            raise AssertionError(f"worker exited with {worker.returncode}:\n{log.read_text()}")
        time.sleep(0.2)
    raise AssertionError(f"worker not ready after {START_TIMEOUT} s:\n{log.read_text()}")


def forget_queue(broker: str, queue: str):
    """Drop what kombu keeps in Redis for the one-off queue (and its like-named exchange)."""
    with redis.Redis.from_url(broker) as server:
        server.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
        server.zrem("_kombu.binding_deadlines", queue)


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
    # Redis redelivers an unacknowledged task after the visibility timeout: it must outlast
    # the longest a task may run, or a slow task would run twice at once.
    assert conf.broker_transport_options["visibility_timeout"] > conf.task_time_limit
