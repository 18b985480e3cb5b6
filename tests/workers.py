"""A real Celery worker for tests: a process consuming a queue of its own on the broker's Redis,
with production settings (config.settings) rather than the test settings, which force eager
tasks. `running_worker` starts one; `worker_on_the_test_database` also points it at this test's
PostgreSQL database and hands back a client that sends to its queue (tests/test_celery_worker.py,
tests/billing/test_close_on_workers.py, tests/coupons/test_campaign_on_workers.py).

Queues are named with a random suffix, so workers of tests running at the same time (other
pytest-xdist workers, other runs on the same Redis) never take each other's messages.
"""

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
from django.conf import settings
from django.db import connection

from tests.services import PRODUCTION_CACHE_URL, clean_env

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
        CACHE_URL=PRODUCTION_CACHE_URL,
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


def this_tests_database_url() -> str:
    """The running test's PostgreSQL database as a URL, for a process of its own to use it."""
    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@contextmanager
def worker_on_the_test_database(name: str, log: Path):
    """A real worker on a queue of its own (`test-<name>-<random>`) that uses this test's
    database; yields `send(task_name, *args)`, which puts a task on that queue. The queue is
    dropped from Redis on the way out."""
    broker = settings.CELERY_BROKER_URL
    queue = f"test-{name}-{uuid.uuid4().hex}"
    client = Celery(f"{name}-test-client", broker=broker, set_as_current=False)
    client.conf.update(task_always_eager=False, task_serializer="json", accept_content=["json"])

    def send(task_name, *args):
        client.send_task(task_name, args=list(args), queue=queue)

    try:
        with running_worker(
            queue=queue,
            broker=broker,
            backend=result_backend_for(broker),
            log=log,
            DATABASE_URL=this_tests_database_url(),
            CELERY_TASK_DEFAULT_QUEUE=queue,
        ):
            yield send
    finally:
        client.close()
        forget_queue(broker, queue)
