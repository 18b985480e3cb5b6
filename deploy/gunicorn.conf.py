"""gunicorn for the back office: `gunicorn -c deploy/gunicorn.conf.py config.wsgi`.

Everything here can be overridden from the environment (GUNICORN_* variables below, or any
gunicorn flag through GUNICORN_CMD_ARGS). Graceful restarts: `kill -HUP <master>` (systemd:
`systemctl reload backoffice-web`) starts new workers on the new code and lets the old ones
finish their requests (up to graceful_timeout) before they stop; TERM does the same and exits.
"""

import os
from pathlib import Path

import environ

from config.logs import JSON_FORMATTER

# The `.env` next to manage.py, as config/settings.py reads it (the environment wins): Django
# reads it only once gunicorn has bound, too late for the settings below.
environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env", overwrite=False)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the cores this process may use (containers)
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# 127.0.0.1 by default: a proxy or load balancer on the same host; compose binds 0.0.0.0.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000").split(",")

# Sync workers: pages are database-bound and short, and each worker holds one persistent
# database connection (CONN_MAX_AGE). Two per core plus one is gunicorn's own advice.
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * _cores() + 1))
worker_class = "sync"

# The slowest page is the finance CSV export of a whole year (1M invoices streamed by COPY take
# seconds; a sync worker does not check in while it streams): 120 s leaves a wide margin while
# still killing a worker that is truly stuck.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", 120))
# On HUP, TERM or a deploy, requests in flight get this long to finish.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", 30))
# Workers are replaced now and then (at random, not all at once) so a slow leak cannot grow.
max_requests = 1000
max_requests_jitter = 100
# The heartbeat file on tmpfs: on a container's overlay disk it can stall workers.
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# No access log: the app writes one line per request itself (config/logs.py), with the request
# id and user id and without the client address or the query string.
accesslog = None
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info").lower()
if os.environ.get("LOG_FORMAT", "text").lower() == "json":
    # gunicorn's own lines (start, worker boots and timeouts) as JSON too, on stderr.
    logconfig_dict = {
        "formatters": {"json": JSON_FORMATTER},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": loglevel.upper(), "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": loglevel.upper(), "handlers": [], "propagate": True},
            # With a logging config gunicorn turns its access log on: keep it silent.
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }

proc_name = "backoffice-web"
# Managed by signals (systemd, compose): no control socket, which would sit at one path in
# $HOME shared by every gunicorn of the user.
control_socket_disable = True
