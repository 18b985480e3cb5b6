"""Playwright against Django's live server, in Debian's Chromium (see /work/shared/RECIPES.md).

`playwright install` cannot download a browser here, so the tests drive /usr/bin/chromium. When
it is missing they are skipped, unless REQUIRE_SERVICES=true, where a missing browser fails.

Every test here is marked `browser` and runs as a transactional test with `serialized_rollback`
(the live server's threads see committed rows only; the role groups come back after each flush).
pytest-django runs transactional tests after the others, so under `make test` each xdist worker
runs its share of these last: a flush at their teardown leaves no later test without the
migrations' data. (They are not kept to one worker: an xdist group is handed out first, by size,
and its flushes would empty the database under the worker's other tests.)
"""

import asyncio
import os
import threading
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import expect

from billing import admin_toolkit, services
from tests.billing.factories import paid_monthly
from tests.services import CHROMIUM, require_chromium

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told this is fine (it is: the calls are not async code).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

# An `expect` waits up to 15 s (Playwright's default: 5 s) for the page to show what it should:
# under `make test` the browser shares two cores with another pytest worker, and drawing a PDF
# preview or a long list can take longer than 5 s there. What is expected is unchanged.
expect.set_options(timeout=15_000)

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
E2E = Path(__file__).resolve().parent
REPO_ROOT = E2E.parents[1]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


@pytest.hookimpl(tryfirst=True)  # before pytest-django orders the tests by their django_db mark
def pytest_collection_modifyitems(items):
    for item in items:
        if E2E in item.path.parents:
            item.add_marker(pytest.mark.browser)
            item.add_marker(pytest.mark.django_db(transaction=True, serialized_rollback=True))


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # Skips with the reason when /usr/bin/chromium is missing; fails under REQUIRE_SERVICES=true.
    require_chromium()
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, playwright):
    """Keep `serialized_rollback` working once Playwright has started.

    Playwright's sync API marks its event loop as running in the main thread for the rest of
    the session. Django keeps database connections in an asgiref Local that, while a loop is
    running, switches to separate (context-var) storage: the test code then gets a fresh
    DatabaseWrapper without the `_test_serialized_contents` that the test database setup left
    on the original. Without it a transactional test neither restores the migrations' data (the
    role groups) nor skips post_migrate on flush. Requesting `playwright` here makes sure the
    loop is running, so `connections[alias]` below is the wrapper the tests will use."""
    from django.db import connections

    for alias in connections:
        original = _connection_outside_the_loop(alias)
        contents = getattr(original, "_test_serialized_contents", None)
        if contents is not None and connections[alias] is not original:
            connections[alias]._test_serialized_contents = contents


def _connection_outside_the_loop(alias):
    from django.db import connections

    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        return connections[alias]
    finally:
        asyncio._set_running_loop(loop)


@pytest.fixture(scope="session")
def live_server(live_server):
    yield live_server
    # The server answers each browser connection in a daemon thread that waits on keep-alive
    # and that stopping the server does not join. On SQLite in memory those threads share the
    # test connection, and pytest-django withdraws the sharing when it stops the server: a
    # thread still finishing then raises "DatabaseWrapper objects created in a thread can only
    # be used in that same thread". The browser is closed by now (see `browser`), so wait for
    # the threads to end first.
    for thread in threading.enumerate():
        if "process_request_thread" in thread.name:
            thread.join(timeout=5)


@pytest.fixture(scope="session")
def browser(live_server, browser):
    """The browser, set up after (so closed before) the live server it talks to."""
    return browser


@pytest.fixture
def acme_on_team(monkeypatch):
    """Acme, on paid monthly Team since 1 January 2026 with 12,000 MTUs reported for January,
    seen on 21 January: the admin's today is pinned like in the other tests (the live server
    runs in this process)."""
    monkeypatch.setattr(admin_toolkit, "today", lambda: date(2026, 1, 21))
    workspace = paid_monthly(as_of=date(2026, 1, 1), name="Acme")
    services.record_usage(workspace, month=date(2026, 1, 1), mtus=12_000)
    return workspace


@pytest.fixture
def screenshot_path():
    """`screenshot_path("support-admin-index")` -> test-artifacts/screenshots/<name>.png."""

    def path(name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / f"{name}.png"

    return path
