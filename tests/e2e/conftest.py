"""Playwright against Django's live server, in Debian's Chromium (see /work/shared/RECIPES.md).

`playwright install` cannot download a browser here, so the tests drive /usr/bin/chromium. When
it is missing they are skipped, unless REQUIRE_SERVICES=true, where a missing browser fails.
"""

import asyncio
import os
import threading
from pathlib import Path

import pytest

from tests.services import CHROMIUM, require_chromium

# Playwright's sync API runs an event loop in the test thread; Django refuses ORM calls from a
# thread with a running loop unless told this is fine (it is: the calls are not async code).
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"

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
REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


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
def screenshot_path():
    """`screenshot_path("support-admin-index")` -> test-artifacts/screenshots/<name>.png."""

    def path(name):
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS / f"{name}.png"

    return path
