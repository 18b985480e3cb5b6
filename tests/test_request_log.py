"""Logs a machine can read (config/logs.py): one JSON line per request and per Celery task,
with the request, user and task ids and the duration, and nothing personal beyond ids."""

import json
import logging
import re

import pytest
from django.db import OperationalError
from pythonjsonlogger.json import JsonFormatter

from billing.tasks import ping
from config.logs import JSON_FORMATTER, TEXT_FORMAT, ContextFilter
from tests.test_settings import load_settings, reported


@pytest.fixture
def json_lines(caplog):
    """Every record as the production handler writes it: JSON, stamped with the ids."""
    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(ContextFilter())
    formatter = JsonFormatter(**{k: v for k, v in JSON_FORMATTER.items() if k != "()"})

    def lines(logger=None):
        return [
            formatter.format(record)
            for record in caplog.records
            if logger is None or record.name == logger
        ]

    return lines


def test_one_json_line_per_request_with_request_id_user_id_and_duration(
    client, finance, json_lines
):
    client.force_login(finance)

    response = client.get("/admin/", HTTP_X_REQUEST_ID="lb-7f3a9c")
    client.logout()
    client.get("/healthz")

    lines = json_lines("backoffice.request")
    assert len(lines) == 2
    assert all("\n" not in line for line in lines)
    first = json.loads(lines[0])
    assert {k: first[k] for k in ("level", "logger", "message", "request_id", "user_id")} == {
        "level": "INFO",
        "logger": "backoffice.request",
        "message": "GET /admin/ 200",
        "request_id": "lb-7f3a9c",
        "user_id": finance.pk,
    }
    assert (first["method"], first["path"], first["status"]) == ("GET", "/admin/", 200)
    assert first["duration_ms"] >= 0 and "time" in first
    assert response["X-Request-ID"] == "lb-7f3a9c"
    second = json.loads(lines[1])
    assert second["user_id"] is None
    assert re.fullmatch(r"[0-9a-f]{32}", second["request_id"])  # generated


def test_every_record_logged_during_a_request_carries_its_id(client, db, settings, json_lines):
    # The broker check fails and logs why, inside the request.
    settings.CELERY_TASK_ALWAYS_EAGER = False
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"

    response = client.get("/healthz", HTTP_X_REQUEST_ID="probe-1")

    assert response.status_code == 503
    health = [json.loads(line) for line in json_lines("billing.health")]
    assert health and all(line["request_id"] == "probe-1" for line in health)


def test_a_forged_request_id_is_replaced(client, db, json_lines):
    response = client.get("/healthz", HTTP_X_REQUEST_ID='x" {"admin": true} ' + "y" * 200)

    line = json.loads(json_lines("backoffice.request")[0])
    assert re.fullmatch(r"[0-9a-f]{32}", line["request_id"])
    assert response["X-Request-ID"] == line["request_id"]


def test_the_request_line_leaves_out_the_query_string(client, support, json_lines):
    client.force_login(support)

    client.get("/admin/billing/workspace/?q=alice%40example.com")

    (line,) = json_lines("backoffice.request")
    assert json.loads(line)["path"] == "/admin/billing/workspace/"
    assert "alice" not in line


def test_a_path_cannot_write_a_line_of_its_own_in_the_text_log(client, db, caplog):
    """The text format (the default, DEBUG=false included) printed the request's path as it
    came: `GET /x%0a2026-12-05 09:00:00,000 WARNING axes.handlers.database FORGED` wrote a
    second line that reads as a record of the sign-in throttle (attacker's walk 8). The path is
    escaped in the message, as Django escapes its own `django.request` line."""
    caplog.set_level(logging.INFO)
    forged = "2026-12-05 09:00:00,000 WARNING axes.handlers.database FORGED"

    client.get("/x%0a" + forged.replace(" ", "%20") + "%0d%e2%80%a8")

    (record,) = [r for r in caplog.records if r.name == "backoffice.request"]
    line = logging.Formatter(TEXT_FORMAT).format(record)
    assert len(line.splitlines()) == 1
    assert record.getMessage() == f"GET /x\\n{forged}\\r\\u2028 404"
    assert record.path == "/x\n" + forged + "\r\u2028"  # the JSON field keeps it, escaped by JSON


def test_one_json_line_per_task_with_task_id_and_duration_and_no_arguments(db, json_lines):
    result = ping.delay("a-personal-value")

    (line,) = json_lines("backoffice.task")
    record = json.loads(line)
    assert record["task_id"] == result.id
    assert record["message"] == "task billing.tasks.ping SUCCESS"
    assert (record["level"], record["task"], record["state"]) == (
        "INFO",
        "billing.tasks.ping",
        "SUCCESS",
    )
    assert record["duration_ms"] >= 0
    assert "a-personal-value" not in line


def test_log_format_json_writes_json_through_the_one_handler():
    config = reported(
        load_settings(
            '{"format": settings.LOG_FORMAT,'
            ' "formatter": settings.LOGGING["handlers"]["console"]["formatter"],'
            ' "class": type(__import__("logging").getLogger().handlers[0].formatter).__name__}',
            DEBUG="true",
            LOG_FORMAT="json",
        )
    )

    assert config == {"format": "json", "formatter": "json", "class": "JsonFormatter"}


def test_log_format_defaults_to_text_and_refuses_anything_else():
    assert reported(load_settings('{"f": settings.LOG_FORMAT}', DEBUG="true")) == {"f": "text"}

    refused = load_settings(DEBUG="true", LOG_FORMAT="xml")
    assert refused.returncode != 0
    assert "LOG_FORMAT must be one of text, json" in refused.stderr


def test_a_page_failing_on_the_database_reads_the_user_once_not_three_times(
    db, json_lines, monkeypatch
):
    """Ops walk: with the database hung, a signed-in page failed after 15 s, three connect
    timeouts of 5: the view's read of the user, then the cache-control middleware's and the
    request line's, each trying the database again. The two after the view read only what the
    view read; the page is still kept from caches by its session cookie, and its line goes out."""
    from django.contrib.auth import middleware as auth_middleware
    from django.test import Client

    reads = []

    def database_down(request):
        reads.append(request.path)
        raise OperationalError("connection timed out")  # what a hung database gives, once per try

    client = Client(raise_request_exception=False)
    client.cookies["sessionid"] = "a-session-the-database-would-have-told"
    monkeypatch.setattr(auth_middleware.auth, "get_user", database_down)
    response = client.get("/admin/")

    assert response.status_code == 500
    assert reads == ["/admin/"]  # the view's read alone
    assert "no-store" in response["Cache-Control"] and "private" in response["Cache-Control"]
    line = json.loads(json_lines("backoffice.request")[0])
    assert (line["status"], line["user_id"]) == (500, None)


def test_no_page_sends_the_browser_for_a_favicon(client, finance, db):
    """Every browser visit asked for /favicon.ico: a 404 and a django.request warning in the log
    each time (ops walk). The pages name an empty icon instead."""
    client.force_login(finance)
    for path in ("/admin/", "/finance/", "/startups/apply/"):
        assert '<link rel="icon" href="data:,">' in client.get(path).content.decode(), path
