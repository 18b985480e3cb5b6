"""`/healthz` for the load balancer: 200 when the database and the broker answer, 503 naming
the one that does not, within a second, with no login and no data."""

import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import OperationalError

from billing import health
from tests.services import clean_env, requires_redis

REPO = Path(__file__).resolve().parent.parent.parent

DEADLINE = 1.0  # seconds, the promise to the load balancer


@pytest.fixture
def broker_in_use(settings):
    """Tasks go to the broker (the test settings run them in process, which needs none)."""
    settings.CELERY_TASK_ALWAYS_EAGER = False
    return settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket is closed


def get_healthz(client):
    started = time.monotonic()
    response = client.get("/healthz")
    return response, time.monotonic() - started


@requires_redis
def test_healthz_is_200_without_login_when_database_and_broker_answer(client, db, broker_in_use):
    response, elapsed = get_healthz(client)

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok", "broker": "ok"}}
    assert elapsed < DEADLINE
    assert "no-store" in response["Cache-Control"]
    assert not response.cookies  # no session, no CSRF cookie: nothing about anyone


def test_healthz_is_503_naming_the_broker_when_it_does_not_answer(client, db, broker_in_use):
    broker_in_use.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response, elapsed = get_healthz(client)

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "broker": "failing"},
        "failing": ["broker"],
    }
    assert elapsed < DEADLINE


def test_healthz_is_503_naming_the_database_when_its_check_fails(client, db, monkeypatch):
    def database_down():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health, "check_database", database_down)

    response, elapsed = get_healthz(client)

    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert response.json()["checks"]["database"] == "failing"
    assert b"connection refused" not in response.content  # the reason goes to the log only
    assert elapsed < DEADLINE


def test_healthz_answers_within_a_second_when_a_check_hangs(client, db, monkeypatch):
    monkeypatch.setattr(health, "check_database", lambda: time.sleep(3))

    response, elapsed = get_healthz(client)

    assert response.status_code == 503
    assert response.json()["failing"] == ["database"]
    assert elapsed < DEADLINE


def test_healthz_skips_the_broker_when_tasks_run_in_process(client, db, settings):
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/0"

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_healthz_answers_plain_http_where_every_other_page_redirects(client, db, settings):
    # A load balancer probes the backend over plain HTTP, without X-Forwarded-Proto.
    settings.SECURE_SSL_REDIRECT = True

    assert client.get("/admin/login/").status_code == 301
    assert client.get("/healthz").status_code == 200


def test_healthz_answers_head_with_its_status_and_no_body(db, settings):
    """A HEAD probe got the JSON body too, which gunicorn logged a warning about on every probe
    (and dropped: RFC 9110 allows none)."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.test import RequestFactory

    settings.CELERY_TASK_ALWAYS_EAGER = True  # the broker is not checked
    # Through the WSGI handler gunicorn calls: the test client drops a HEAD's body itself.
    answered = []
    environ = RequestFactory().head("/healthz").environ
    body = b"".join(WSGIHandler()(environ, lambda status, headers: answered.append(status)))
    assert (answered, body) == (["200 OK"], b"")


def test_healthz_only_reads(client, db):
    assert client.post("/healthz").status_code == 405


HUNG_DATABASE = """
import os, socket, threading, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(64)  # the kernel completes the handshake; nothing ever answers
os.environ["DATABASE_URL"] = f"postgres://backoffice@127.0.0.1:{server.getsockname()[1]}/x"
import django
django.setup()
from billing import health
for _ in range(5):
    print("checks", health.run_checks(), flush=True)
time.sleep(health.DATABASE_TIMEOUT_SECONDS + 1.5)
alive = [t for t in threading.enumerate() if t.name == "healthz-database"]
print("HUNG-THREADS", len(alive), flush=True)
os._exit(0)
"""


def test_healthz_leaves_no_thread_behind_when_the_database_hangs():
    """/healthz answers within 0.8 s by leaving a check that hangs to its own timeout. The
    database had none: DATABASES set no connect_timeout, so against a database that accepts the
    connection and never answers (a failover, a stuck server) 5 probes left 5 threads and
    sockets waiting for ever, one more each time the load balancer asks. The check connects
    with a 2 s connect_timeout of its own (and a 2 s statement_timeout): 3.5 s after the last
    probe none is left."""
    result = subprocess.run(
        [sys.executable, "-c", HUNG_DATABASE],
        cwd=REPO,
        env=clean_env(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="true",
            CELERY_TASK_ALWAYS_EAGER="true",
        ),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("'database': False") == 5, result.stdout
    hung = int(re.search(r"HUNG-THREADS (\d+)", result.stdout).group(1))
    assert hung == 0, f"{hung} health-check threads still waiting on the database"


def test_the_database_check_keeps_to_its_timeout_when_the_database_answers(db, settings):
    # On PostgreSQL the check sets its timeouts on a copy of the settings of its own thread.
    options = dict(settings.DATABASES["default"].get("OPTIONS", {}))

    assert health.run_checks() == {"database": True}
    assert settings.DATABASES["default"].get("OPTIONS", {}) == options
