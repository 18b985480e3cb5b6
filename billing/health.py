"""`/healthz` for the load balancer: does this web process reach the database and the broker?
And the workers' heartbeat (`record_worker_heartbeat`), which `check_billing` reads beside its
own PING of the broker (`check_broker`).

No login, no data: the answer names the checks and says "ok" or "failing", nothing more (the
reason goes to the log). Both checks run at once in threads and the answer is given within
DEADLINE_SECONDS whatever hangs: libpq cannot time a connection out in less than two seconds,
so waiting on the database in the request thread could not keep that promise.

With CELERY_TASK_ALWAYS_EAGER (a laptop) tasks never touch the broker, so it is not checked.
"""

import logging
import threading
from concurrent.futures import Future, wait
from datetime import datetime

import redis
from django.conf import settings
from django.db import connections
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from redis.backoff import NoBackoff
from redis.retry import Retry

from billing.models import WorkerHeartbeat

logger = logging.getLogger(__name__)

DEADLINE_SECONDS = 0.8  # leaves room for the rest of the request within the second
BROKER_TIMEOUT_SECONDS = 0.5
# How long the database check's thread may wait on PostgreSQL, to connect (libpq's shortest
# connect_timeout) and for the answer: a database that hangs costs each probe a thread and a
# socket for this long, not for ever.
DATABASE_TIMEOUT_SECONDS = 2


def check_database():
    """SELECT 1 on a connection of this thread's own, closed again (never kept open), with
    timeouts of its own on PostgreSQL (DATABASE_TIMEOUT_SECONDS)."""
    connection = connections["default"]
    postgres = connection.vendor == "postgresql"
    if postgres:
        # This thread's own connection object: a copy of the settings, the shared ones untouched.
        options = connection.settings_dict.get("OPTIONS", {})
        connection.settings_dict = {
            **connection.settings_dict,
            "OPTIONS": {**options, "connect_timeout": DATABASE_TIMEOUT_SECONDS},
        }
    try:
        with connection.cursor() as cursor:
            if postgres:
                cursor.execute(f"SET statement_timeout = {DATABASE_TIMEOUT_SECONDS * 1000}")
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        connection.close()


def check_broker(timeout: float = BROKER_TIMEOUT_SECONDS):
    """PING the Redis broker, waiting at most `timeout` seconds to connect and to hear back."""
    client = redis.Redis.from_url(
        settings.CELERY_BROKER_URL,
        socket_connect_timeout=timeout,
        socket_timeout=timeout,
        retry=Retry(NoBackoff(), 0),  # one try: the deadline is short
    )
    try:
        client.ping()
    finally:
        client.close()


def record_worker_heartbeat(*, worker: str, now: datetime):
    """The one heartbeat row says a worker (`worker`, its node name) ran the beat's heartbeat
    at `now`. An upsert: a heartbeat run twice, or by two workers at once, leaves one row."""
    WorkerHeartbeat.objects.update_or_create(pk=1, defaults={"ran_at": now, "worker": worker})


def run_checks() -> dict[str, bool]:
    """{check name: answered} for every check, within DEADLINE_SECONDS."""
    checks = {"database": check_database}
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        checks["broker"] = check_broker
    futures = {name: _in_background(check, name) for name, check in checks.items()}
    wait(futures.values(), timeout=DEADLINE_SECONDS)
    results = {}
    for name, future in futures.items():
        if not future.done():
            logger.warning("health check %s: no answer within %s s", name, DEADLINE_SECONDS)
            results[name] = False
        elif future.exception() is not None:
            exc = future.exception()
            logger.warning("health check %s failed: %s: %s", name, type(exc).__name__, exc)
            results[name] = False
        else:
            results[name] = True
    return results


def _in_background(check, name) -> Future:
    """Run `check` in a daemon thread: one that hangs past the deadline is left to its own
    timeout and never holds up the answer or the process's exit."""
    future = Future()

    def run():
        try:
            check()
        except Exception as exc:
            future.set_exception(exc)
        else:
            future.set_result(True)

    threading.Thread(target=run, name=f"healthz-{name}", daemon=True).start()
    return future


@never_cache
@require_safe
def healthz(request):
    """200 when every check answers; 503 naming the ones that did not."""
    results = run_checks()
    failing = [name for name, ok in results.items() if not ok]
    body = {
        "status": "unavailable" if failing else "ok",
        "checks": {name: "ok" if ok else "failing" for name, ok in results.items()},
    }
    if failing:
        body["failing"] = failing
    response = JsonResponse(body, status=503 if failing else 200)
    if request.method == "HEAD":
        # Load balancers probe with HEAD too: gunicorn warned on every such probe of a body
        # sent with it (RFC 9110: none), and dropped it. The status and headers are the answer.
        response.content = b""
    return response
