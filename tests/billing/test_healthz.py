"""`/healthz` for the load balancer: 200 when the database and the broker answer, 503 naming
the one that does not, within a second, with no login and no data."""

import socket
import time

import pytest
from django.db import OperationalError

from billing import health
from tests.services import requires_redis

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


def test_healthz_only_reads(client, db):
    assert client.post("/healthz").status_code == 405
