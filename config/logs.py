"""Logs a machine can read: one line per request and per Celery task, as JSON or as text.

`LOG_FORMAT=json` (production) writes every record as one JSON object per line with `time`,
`level`, `logger`, `message` and, where known, `request_id`, `user_id`, `task_id` and
`duration_ms`; `LOG_FORMAT=text` (the default, for a laptop) writes plain lines. JSON comes from
python-json-logger (a maintained formatter that already handles `extra=` fields, exceptions and
values JSON cannot encode); this module adds only what is ours: the ids of the request or task a
record belongs to, the request line and the task line.

What goes in: ids, method, path without its query string (filters and searches carry emails and
names), status, task name and state, durations. Never arguments, bodies, headers, addresses.

Nothing here imports Django models: settings import `logging_config` while they load.
"""

import logging
import re
import time
import uuid
from contextvars import ContextVar

from pythonjsonlogger.core import RESERVED_ATTRS

from config.request_user import user_read_already

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
task_id_var: ContextVar[str | None] = ContextVar("task_id", default=None)

request_logger = logging.getLogger("backoffice.request")
task_logger = logging.getLogger("backoffice.task")

LOG_FORMATS = ("text", "json")
JSON_FORMATTER = {
    "()": "pythonjsonlogger.json.JsonFormatter",
    "fmt": "{levelname}{name}{message}",
    "style": "{",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": "time",
    # Left out: Django's `request` (its text holds the query string) and Celery's `data` (a
    # task's arguments and return value).
    "reserved_attrs": [*RESERVED_ATTRS, "request", "server_time", "data"],
}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class ContextFilter(logging.Filter):
    """Stamps each record with the id of the request or task it was logged in."""

    def filter(self, record):
        for name, var in (("request_id", request_id_var), ("task_id", task_id_var)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def logging_config(*, log_format: str, level: str) -> dict:
    """The LOGGING setting: one handler on stderr for every logger, in `log_format`."""
    # Django's own handlers would print its records a second time with DEBUG: they go to root,
    # and runserver's line per request gives way to ours.
    loggers = {"django": {"level": "INFO"}, "django.server": {"level": "WARNING"}}
    if log_format == "json":
        # The task line below replaces Celery's own "succeeded in" line, which also prints
        # the task's return value.
        loggers["celery.app.trace"] = {"level": "WARNING"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": ContextFilter}},
        "formatters": {"json": JSON_FORMATTER, "text": {"format": TEXT_FORMAT}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": loggers,
    }


# A request id from a proxy or load balancer is kept if it looks like one; anything else
# (too long, odd characters that could forge log lines) is replaced by our own.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")


class RequestLogMiddleware:
    """One log line per request: method, path, status, duration, request id and user id.

    The request id comes from `X-Request-ID` (set by a proxy) or is generated, is attached to
    every record logged while the request runs (until request_finished), and is sent back in
    `X-Request-ID`. First in MIDDLEWARE, so the duration covers the whole stack and redirects
    and static files count. For a streaming response (the CSV export) the duration is until
    its first byte.
    """

    def __init__(self, get_response):
        from django.core.signals import request_finished

        self.get_response = get_response
        request_finished.connect(clear_request_id, dispatch_uid="backoffice-clear-request-id")

    def __call__(self, request):
        incoming = request.headers.get("X-Request-ID", "")
        request_id = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        # Cleared on request_finished, not here: Django logs its own line for an error
        # response (django.request) after the middleware returns, and it should carry the id.
        request_id_var.set(request_id)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            response["X-Request-ID"] = request_id
            return response
        finally:
            request_logger.log(
                logging.ERROR if status >= 500 else logging.INFO,
                "%s %s %s",
                request.method,
                # Escaped as Django escapes its own request lines: a line break in the path
                # would otherwise write a record of the attacker's making in the text log.
                request.path.encode("unicode_escape").decode("ascii"),
                status,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "duration_ms": _milliseconds_since(started),
                    "user_id": _user_id(request),
                    "request_id": request_id,
                },
            )


def clear_request_id(**kwargs):
    request_id_var.set(None)


def _user_id(request):
    """The id of the user the request read (None: anonymous, or nothing read it). Never read
    here: with the database down the line would wait for it again (config/request_user.py)."""
    user = user_read_already(request)
    return None if user is None else user.pk


def _milliseconds_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


# --- Celery: one line per task, the task id on every record logged while it runs ----------

_running_tasks: dict[str, tuple[float, object]] = {}


def task_started(task_id=None, **kwargs):
    _running_tasks[task_id] = (time.perf_counter(), task_id_var.set(task_id))


def task_finished(task_id=None, task=None, state=None, **kwargs):
    started, token = _running_tasks.pop(task_id, (None, None))
    task_logger.log(
        logging.INFO if state in ("SUCCESS", "RETRY") else logging.ERROR,
        "task %s %s",
        getattr(task, "name", "?"),
        state,
        extra={
            "task": getattr(task, "name", None),
            "state": state,
            "duration_ms": _milliseconds_since(started) if started is not None else None,
        },
    )
    if token is not None:
        try:
            task_id_var.reset(token)
        except ValueError:  # set in another context (a thread pool): nothing of ours to undo
            task_id_var.set(None)


def connect_task_logging():
    """Called by config/celery.py: log every task, in a worker and when run eagerly."""
    from celery.signals import task_postrun, task_prerun

    task_prerun.connect(task_started, weak=False, dispatch_uid="backoffice-task-started")
    task_postrun.connect(task_finished, weak=False, dispatch_uid="backoffice-task-finished")
