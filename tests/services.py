"""Markers for tests that need a real service: PostgreSQL, Redis or Chromium.

On a laptop without the service the test skips with a reason that says what to start or set.
In CI (`REQUIRE_SERVICES=true`) the same check fails instead, so a missing service can never
pass as a green run full of skips.

    from tests.services import requires_redis

    @requires_redis
    def test_worker_round_trip(): ...

The checks run when the test body starts (settings are loaded by then), once per process, so
they come after fixture setup: a fixture that itself needs the service calls `require_redis()`
(or `require_postgres()`, `require_chromium()`) first. The decorators also add the `postgres`,
`redis` and `browser` markers, so `-m "not redis"` deselects those tests.
"""

import functools
import inspect
import os
from pathlib import Path

import pytest
import redis
from django.conf import settings
from kombu.utils.url import maybe_sanitize_url

POSTGRES_ENGINE = "django.db.backends.postgresql"
CHROMIUM = Path("/usr/bin/chromium")

# What a subprocess that loads settings may inherit: the settings themselves it gets explicitly.
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


# Production settings refuse a cache of one process (R7); loading them connects to nothing.
PRODUCTION_CACHE_URL = "redis://127.0.0.1:6379/1"


def clean_env(**variables: str) -> dict[str, str]:
    """An environment for a subprocess that loads settings from `variables` and nothing else.

    The test process has DEBUG, SECRET_KEY and maybe DATABASE_URL or CELERY_* set (by the shell
    or by config/test_settings.py); a settings test must not see them by accident.
    """
    env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
    env.update(variables)
    return env


def services_required() -> bool:
    """True in CI, where a missing service is an error rather than a reason to skip."""
    return os.environ.get("REQUIRE_SERVICES", "").strip().lower() in {"1", "true", "yes", "on"}


def skip_or_fail(reason: str):
    if services_required():
        pytest.fail(f"{reason} (REQUIRE_SERVICES=true: a missing service fails the run)")
    pytest.skip(reason)


@functools.cache
def postgres_unavailable_reason() -> str | None:
    """None when the default database is PostgreSQL and answers; else why not."""
    db = settings.DATABASES["default"]
    if db["ENGINE"] != POSTGRES_ENGINE:
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    import psycopg

    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "connect_timeout": 2,
    }
    error = None
    # The configured database may not exist yet; pytest-django then works from "postgres".
    for dbname in dict.fromkeys([db.get("NAME") or "postgres", "postgres"]):
        try:
            psycopg.connect(dbname=dbname, **params).close()
            return None
        except psycopg.Error as exc:
            error = exc
    where = f"{params['host'] or 'localhost'}:{params['port'] or 5432}"
    return f"needs PostgreSQL: cannot connect to {where} ({error})"


def postgres_available() -> bool:
    return postgres_unavailable_reason() is None


@functools.cache
def redis_available(url: str) -> bool:
    """True when a Redis at `url` answers PING within 1 s."""
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def chromium_available() -> bool:
    return os.access(CHROMIUM, os.X_OK)


def require_postgres():
    """Skip (or fail, in CI) unless the default database is a reachable PostgreSQL."""
    reason = postgres_unavailable_reason()
    if reason:
        skip_or_fail(reason)


def require_redis(url: str | None = None):
    """Skip (or fail, in CI) unless Redis at `url` (default: the Celery broker) answers."""
    url = url or settings.CELERY_BROKER_URL
    if not redis_available(url):
        skip_or_fail(f"needs Redis at {maybe_sanitize_url(url)}")


def require_chromium():
    """Skip (or fail, in CI) unless Debian's Chromium is installed for Playwright."""
    if not chromium_available():
        skip_or_fail(f"needs Chromium at {CHROMIUM}: apt-get install -y chromium")


def _requirement(check, mark):
    """A decorator for test functions (or classes) that runs `check` first and adds `mark`."""

    def guard(test):
        @functools.wraps(test)  # keeps the signature, so fixtures still resolve
        def wrapper(*args, **kwargs):
            check()
            return test(*args, **kwargs)

        return wrapper

    def decorate(obj):
        if inspect.isclass(obj):
            for name, member in list(vars(obj).items()):
                if name.startswith("test") and inspect.isfunction(member):
                    setattr(obj, name, guard(member))
            return mark(obj)
        return mark(guard(obj))

    return decorate


requires_postgres = _requirement(require_postgres, pytest.mark.postgres)
requires_redis = _requirement(require_redis, pytest.mark.redis)
requires_chromium = _requirement(require_chromium, pytest.mark.browser)


def another_backend_waits_on_a_lock(timeout=10.0) -> bool:
    """PostgreSQL: whether another connection of this database is seen waiting on a lock
    (polled until `timeout` seconds): a race's other side has reached the lock it must wait on."""
    import time

    from django.db import connections

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connections["default"].cursor() as cursor:
            cursor.execute("select pg_stat_clear_snapshot()")  # a fresh view each time
            cursor.execute(
                "select count(*) from pg_stat_activity where datname = current_database() "
                "and wait_event_type = 'Lock' and pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.05)
    return False
