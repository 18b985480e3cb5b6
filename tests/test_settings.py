"""config/settings.py read from the environment: each case loads it in a fresh interpreter."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import PRODUCTION_CACHE_URL, clean_env

REPO = Path(__file__).resolve().parent.parent
MARKER = "SETTINGS-RESULT "


def load_settings(report: str = "{}", *, before: str = "", setup: str = "", **variables: str):
    """Run django.setup() on config.settings in a new interpreter with only `variables` set.

    `setup` is code run first (it sees `os`); `before` is code run after setup; `report` an
    expression printed back as JSON. Both see `settings` and `celery_app`.
    """
    script = (
        "import json\n"
        "import os\n"
        f"{setup}\n"
        "import django\n"
        "django.setup()\n"
        "from django.conf import settings\n"
        "from config import celery_app\n"
        f"{before}\n"
        f"print({MARKER!r} + json.dumps({report}, default=str))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=REPO,
        env=clean_env(DJANGO_SETTINGS_MODULE="config.settings", **variables),
        capture_output=True,
        text=True,
        timeout=120,
    )


def reported(result) -> dict:
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith(MARKER)]
    assert lines, result.stdout + result.stderr
    return json.loads(lines[-1].removeprefix(MARKER))


@pytest.mark.parametrize(
    "variables",
    [
        pytest.param({"DEBUG": "false"}, id="debug-false"),
        pytest.param({}, id="debug-unset"),
        pytest.param({"DEBUG": "false", "SECRET_KEY": ""}, id="secret-key-empty"),
    ],
)
def test_production_settings_refuse_to_start_without_secret_key(variables):
    result = load_settings(**variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def example_secret_key() -> str:
    example = (REPO / "deploy" / "backoffice.env.example").read_text()
    return re.search(r"^SECRET_KEY=(.*)$", example, re.MULTILINE).group(1)


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        pytest.param(None, "published in this repository", id="example-placeholder"),
        pytest.param(
            "insecure-local-development-key-only-used-when-DEBUG-is-true",
            "published in this repository",
            id="laptop-key",
        ),
        pytest.param("x7Gq2-" * 8, "48 characters, 6 different", id="48-characters"),
        pytest.param("k" * 60, "60 characters, 1 different", id="one-character"),
        pytest.param("django-insecure-" + "x7Gq2-" * 8, "insecure", id="django-insecure"),
    ],
)
def test_production_settings_refuse_a_published_or_weak_secret_key(key, problem):
    """deploy/backoffice.env.example, which the systemd units read once copied, holds
    SECRET_KEY=change-me-to-a-long-random-string (34 characters). Settings refused an empty key
    with DEBUG off but started with this one, published in the repository (sessions and
    password-reset links can be forged with it), and neither `make serve`, the units nor
    compose run `check --deploy`, the only thing that would say so. They refuse it now, the
    laptop key, and what `check --deploy` calls weak (security.W009: under 50 characters or
    5 different ones, or django-insecure-)."""
    result = load_settings(DEBUG="false", SECRET_KEY=key or example_secret_key())

    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not fit for production" in result.stderr
    assert problem in result.stderr


def test_debug_settings_load_with_the_example_secret_key():
    # A laptop's .env copied from the example still runs (DEBUG=true signs nothing that matters).
    settings = reported(
        load_settings('{"key": settings.SECRET_KEY}', DEBUG="true", SECRET_KEY=example_secret_key())
    )

    assert settings["key"] == "change-me-to-a-long-random-string"


def test_debug_settings_load_without_secret_key():
    settings = reported(
        load_settings('{"debug": settings.DEBUG, "key": settings.SECRET_KEY}', DEBUG="true")
    )

    assert settings["debug"] is True
    assert settings["key"]


PRODUCTION_KEY = "k" * 10 + "a-long-random-production-secret-key-for-this-test"


def test_production_settings_load_with_a_secret_key():
    settings = reported(
        load_settings(
            '{"debug": settings.DEBUG, "key": settings.SECRET_KEY}',
            DEBUG="false",
            SECRET_KEY=PRODUCTION_KEY,
            CACHE_URL=PRODUCTION_CACHE_URL,
        )
    )

    assert settings["debug"] is False
    assert settings["key"].startswith("kkkkkkkkkka-long")


@pytest.mark.parametrize(
    "cache_url",
    [
        pytest.param(None, id="unset"),
        pytest.param("", id="set-empty"),
        pytest.param("locmemcache://", id="locmem"),
        pytest.param("dummycache://", id="dummy"),
        pytest.param("filecache:///var/tmp/backoffice-cache", id="file"),
        pytest.param("dbcache://cache_table", id="database"),
    ],
)
def test_production_settings_refuse_a_cache_of_one_process(cache_url):
    """R7: the public forms' limits count in the cache across every server process. Without
    CACHE_URL, production settings fell back to a cache in each process's memory: under
    `make serve`'s gunicorn (several workers, each restarted after 1,000 requests) an attacker's
    walk had 13 applications of 16 accepted against a limit of 5, 5 more after 3,600 cheap GETs
    restarted the workers, and 37 slug guesses of 100 answered against a limit of 20. A
    process's own cache is refused now, naming CACHE_URL, as a weak SECRET_KEY is; so are a file
    and a database cache, which count by read-then-write (8 processes counting 200 times left
    25, and 28 calls read 5 or less: the second attacker's walk 8)."""
    variables = {"CACHE_URL": cache_url} if cache_url is not None else {}
    result = load_settings(DEBUG="false", SECRET_KEY=PRODUCTION_KEY, **variables)

    assert result.returncode != 0
    assert "ImproperlyConfigured: CACHE_URL" in result.stderr
    assert "redis://" in result.stderr


@pytest.mark.parametrize(
    "cache_url",
    [PRODUCTION_CACHE_URL, "pymemcache://127.0.0.1:11211"],
)
def test_production_settings_take_a_cache_every_process_shares(cache_url):
    settings = reported(
        load_settings(
            'settings.CACHES["default"]["BACKEND"]',
            DEBUG="false",
            SECRET_KEY=PRODUCTION_KEY,
            CACHE_URL=cache_url,
        )
    )

    assert "locmem" not in settings and "dummy" not in settings


def test_hsts_for_subdomains_and_preload_are_on_in_production_unless_turned_off():
    """On by default, as `check --deploy` asks; they were fixed on, and only
    SECURE_HSTS_SECONDS=0 turned HSTS off where the domain is shared with plain-HTTP services."""
    report = "[settings.SECURE_HSTS_INCLUDE_SUBDOMAINS, settings.SECURE_HSTS_PRELOAD]"
    production = {
        "DEBUG": "false",
        "SECRET_KEY": PRODUCTION_KEY,
        "CACHE_URL": PRODUCTION_CACHE_URL,
    }

    assert reported(load_settings(report, **production)) == [True, True]
    turned_off = {"SECURE_HSTS_INCLUDE_SUBDOMAINS": "false", "SECURE_HSTS_PRELOAD": "false"}
    assert reported(load_settings(report, **production, **turned_off)) == [False, False]


def test_a_staff_sign_in_lasts_a_working_day_unless_set():
    """The security audit: the session cookie lasted Django's two weeks (Max-Age=1209600)."""
    report = "settings.SESSION_COOKIE_AGE"

    assert reported(load_settings(report, DEBUG="true")) == 12 * 60 * 60
    assert reported(load_settings(report, DEBUG="true", SESSION_COOKIE_AGE="3600")) == 3600


def test_a_cache_url_set_empty_is_the_laptops_cache_as_unset():
    """`CACHE_URL=` left empty in a .env stopped start-up with "Invalid cache schema", naming
    nothing; it reads as unset now (a laptop's cache in the process's memory)."""
    backend = reported(
        load_settings('settings.CACHES["default"]["BACKEND"]', DEBUG="true", CACHE_URL="")
    )

    assert backend == "django.core.cache.backends.locmem.LocMemCache"


def test_no_process_starts_its_log_with_axes_banner():
    """django-axes logged "AXES: BEGIN version …, blocking by …" at INFO from every process
    and command (check_billing's cron mail, every worker), saying nothing the settings do not."""
    result = load_settings(DEBUG="true", LOG_LEVEL="INFO")

    assert result.returncode == 0, result.stderr
    assert "AXES: BEGIN" not in result.stderr + result.stdout


DATABASE_REPORT = (
    '{key: settings.DATABASES["default"].get(key) for key in '
    '("ENGINE", "NAME", "HOST", "PORT", "USER", "CONN_MAX_AGE", "CONN_HEALTH_CHECKS")}'
)


def test_without_database_url_the_default_is_a_local_sqlite_file():
    db = reported(load_settings(DATABASE_REPORT, DEBUG="true"))

    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(db["NAME"]) == REPO / "db.sqlite3"


def test_database_url_selects_postgresql():
    db = reported(
        load_settings(
            DATABASE_REPORT,
            DEBUG="true",
            DATABASE_URL="postgres://billing:pw@db.internal:6543/backoffice",
        )
    )

    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["NAME"], db["HOST"], db["PORT"], db["USER"]) == (
        "backoffice",
        "db.internal",
        6543,
        "billing",
    )
    # Persistent connections, checked before reuse, on PostgreSQL only.
    assert db["CONN_MAX_AGE"] == 60
    assert db["CONN_HEALTH_CHECKS"] is True


CONNECT_TIMEOUT = 'settings.DATABASES["default"]["OPTIONS"].get("connect_timeout")'


@pytest.mark.parametrize(
    ("variables", "timeout"),
    [
        pytest.param({}, 5, id="default"),
        pytest.param({"DATABASE_CONNECT_TIMEOUT": "3"}, 3, id="variable"),
        pytest.param(
            {"DATABASE_URL": "postgres://b@db.internal/b?connect_timeout=10"}, 10, id="url"
        ),
    ],
)
def test_postgresql_connections_give_up_on_a_database_that_never_answers(variables, timeout):
    """DATABASES set no connect_timeout: against a database that accepts the connection and
    never answers (a failover, a stuck server) every page's first query waited until gunicorn
    killed the worker at 120 s, every task until its time limit. PostgreSQL connections give up
    after 5 s (DATABASE_CONNECT_TIMEOUT; a connect_timeout in DATABASE_URL wins)."""
    variables = {"DATABASE_URL": "postgres://billing@db.internal/backoffice"} | variables

    assert reported(load_settings(CONNECT_TIMEOUT, DEBUG="true", **variables)) == timeout


HUNG_CONNECT = """
import socket, time
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)  # the kernel completes the handshake; nothing ever answers
os.environ["DATABASE_URL"] = f"postgres://backoffice@127.0.0.1:{server.getsockname()[1]}/x"
"""


def test_a_page_against_a_database_that_never_answers_fails_after_the_connect_timeout():
    result = load_settings(
        '{"error": error, "seconds": seconds}',
        before=(
            "import time\n"
            "from django.db import connection, OperationalError\n"
            "started = time.monotonic()\n"
            "try:\n"
            "    connection.ensure_connection()\n"
            "except OperationalError as exc:\n"
            "    error = type(exc).__name__\n"
            "seconds = time.monotonic() - started\n"
        ),
        setup=HUNG_CONNECT,
        DEBUG="true",
        DATABASE_CONNECT_TIMEOUT="2",
    )

    outcome = reported(result)
    assert outcome["error"] == "OperationalError"
    assert 1.5 < outcome["seconds"] < 4  # DATABASE_CONNECT_TIMEOUT=2


def test_database_url_selects_another_sqlite_file(tmp_path):
    path = tmp_path / "other.sqlite3"
    db = reported(load_settings(DATABASE_REPORT, DEBUG="true", DATABASE_URL=f"sqlite:///{path}"))

    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert Path(db["NAME"]) == path


def test_celery_task_always_eager_runs_tasks_in_process_without_a_broker():
    # Nothing listens on port 1: a task sent to the broker would fail to connect.
    result = load_settings(
        '{"eager": celery_app.conf.task_always_eager, "type": type(sent).__name__,'
        ' "value": sent.get(timeout=5)}',
        before='from billing.tasks import ping\nsent = ping.delay("hello")',
        DEBUG="true",
        CELERY_TASK_ALWAYS_EAGER="true",
        CELERY_BROKER_URL="redis://127.0.0.1:1/0",
    )

    assert reported(result) == {"eager": True, "type": "EagerResult", "value": "hello"}


def test_celery_tasks_go_to_the_broker_by_default():
    conf = reported(
        load_settings(
            '{"eager": celery_app.conf.task_always_eager, "broker": celery_app.conf.broker_url}',
            DEBUG="true",
        )
    )

    assert conf == {"eager": False, "broker": "redis://127.0.0.1:6379/0"}


def test_the_sqlite_default_serialises_writers_instead_of_failing(tmp_path):
    """Two requests that each read, then write, in a transaction, at the same moment: SQLite's
    default (deferred) transactions failed one with "database is locked" (a 500 on the demo
    when a form was posted twice at once); the default's transactions wait their turn."""
    path = tmp_path / "shared.sqlite3"
    racing = (
        "import threading, time\n"
        "from django.db import connection, connections, transaction\n"
        "with connection.cursor() as c:\n"
        "    c.execute('create table t (n integer)')\n"
        "errors = []\n"
        "def write():\n"
        "    try:\n"
        "        with transaction.atomic():\n"
        "            with connection.cursor() as c:\n"
        "                c.execute('select count(*) from t')\n"
        "                time.sleep(0.5)\n"
        "                c.execute('insert into t values (1)')\n"
        "    except Exception as exc:\n"
        "        errors.append(str(exc))\n"
        "    finally:\n"
        "        connections.close_all()\n"
        "threads = [threading.Thread(target=write) for _ in range(2)]\n"
        "[t.start() for t in threads]\n"
        "[t.join() for t in threads]\n"
        "with connection.cursor() as c:\n"
        "    c.execute('select count(*) from t')\n"
        "    rows = c.fetchone()[0]\n"
    )
    result = reported(
        load_settings(
            '{"errors": errors, "rows": rows}',
            before=racing,
            DEBUG="true",
            DATABASE_URL=f"sqlite:///{path}",
        )
    )
    assert result == {"errors": [], "rows": 2}
