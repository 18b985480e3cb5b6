import os
import shutil
import sqlite3
import threading
from contextlib import closing
from datetime import date
from pathlib import Path

import pytest
from celery.app import autoretry
from celery.result import allow_join_result
from django.contrib.auth.models import Group, User
from django.core.cache import cache
from django.db import connections, transaction
from hypothesis import settings

from billing import admin_toolkit, hooks
from billing.roles import FINANCE, STARTUP_REVIEWERS, SUPPORT
from config import celery_app

# Hypothesis: the full number of examples in CI (.ci/run sets CI=true), a fifth of it on a
# laptop, where the property test through the billing clock is the suite's slowest test.
# HYPOTHESIS_PROFILE=ci runs the full profile locally.
settings.register_profile("ci", max_examples=100, print_blob=True)
settings.register_profile("dev", max_examples=20)
settings.load_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "dev")
)

# --reuse-db on SQLite (`make test-fast`): Django's SQLite test database lives in memory and dies
# with the run, so keep the migrated database here and start each run from a copy of it (a copy:
# a transactional test's flush would otherwise lose the migrations' data for the next run).
REUSED_SQLITE = Path(__file__).resolve().parents[1] / "test-artifacts" / "reused-test-db.sqlite3"

# The date the admin acts on in tests (billing.admin_toolkit.today, pinned by `today`).
TODAY = date(2026, 2, 10)


@pytest.fixture(scope="session")
def reused_sqlite(request):
    """This run's SQLite test database file when it runs with --reuse-db on SQLite, else None."""
    from django.conf import settings as django_settings

    db = django_settings.DATABASES["default"]
    reuse = request.config.getvalue("reuse_db") and not db["TEST"].get("NAME")
    if not reuse or db["ENGINE"] != "django.db.backends.sqlite3":
        return None
    # Its own file (two runs at once do not share one), from the kept copy unless --create-db.
    path = REUSED_SQLITE.with_name(f"test-db-{os.getpid()}.sqlite3")
    REUSED_SQLITE.parent.mkdir(exist_ok=True)
    if REUSED_SQLITE.exists() and not request.config.getvalue("create_db"):
        shutil.copyfile(REUSED_SQLITE, path)
    db["TEST"]["NAME"] = str(path)
    return path


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, reused_sqlite):
    """pytest-django's hook before the test databases are set up: `reused_sqlite` names one."""


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, reused_sqlite):
    if reused_sqlite is not None:
        # Migrated (Django's keepdb applies any new migration), no test run yet: keep a copy.
        partial = REUSED_SQLITE.with_suffix(f".{os.getpid()}.partial")
        with (
            closing(sqlite3.connect(reused_sqlite)) as db,
            closing(sqlite3.connect(partial)) as copy,
        ):
            db.backup(copy)
        partial.replace(REUSED_SQLITE)
    yield
    if reused_sqlite is not None:
        reused_sqlite.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _joins_allowed():
    """Celery marks "inside a task" in one process-wide flag while it runs a task eagerly, and
    restores what it found; eager tasks run at once in several threads (the concurrency tests)
    can leave it set, and a later test's `result.get()` was then refused as if inside a task."""
    with allow_join_result():
        yield


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with an empty cache: the public forms' rate limit (R7) and the sign-in
    throttle count in it. The Redis rate-limit test uses keys of its own."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(scope="module")
def module_rows(django_db_setup, django_db_blocker):
    """For a module-scoped fixture that writes rows once for all the module's tests:
    `with module_rows(): ...` writes them in a transaction that stays open while the module's
    tests run (each test in a savepoint of it, rolled back after the test) and is rolled back
    after the last one. Only for rows the tests read, in modules without transactional tests."""
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
    try:
        yield django_db_blocker.unblock
    finally:
        with django_db_blocker.unblock():
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


@pytest.fixture
def staff_user(db):
    def make(group_name, username=None):
        user = User.objects.create_user(
            username=username or group_name.lower().replace(" ", "_"),
            password="pass-for-tests",
            is_staff=True,
        )
        user.groups.add(Group.objects.get(name=group_name))
        return user

    return make


@pytest.fixture
def support(staff_user):
    return staff_user(SUPPORT)


@pytest.fixture
def reviewer(staff_user):
    return staff_user(STARTUP_REVIEWERS)


@pytest.fixture
def finance(staff_user):
    return staff_user(FINANCE)


@pytest.fixture
def pin_today(monkeypatch):
    """`pin_today(day)`: the admin's today() answers `day` for the rest of the test."""

    def pin(day):
        monkeypatch.setattr(admin_toolkit, "today", lambda: day)
        return day

    return pin


@pytest.fixture
def today(pin_today):
    """The admin's today(), pinned (TODAY) so that no admin test reads the wall clock; a module
    that needs another day overrides this fixture with `pin_today`."""
    return pin_today(TODAY)


@pytest.fixture
def swap_invoice_adjustments():
    """`swap_invoice_adjustments(implementation)` registers the invoice-adjustments hook of
    billing/hooks.py for one test; whatever was registered before is put back after it."""
    before = hooks.invoice_adjustments()
    yield hooks.register_invoice_adjustments
    hooks.register_invoice_adjustments(before)


@pytest.fixture
def coupon_adjustments(swap_invoice_adjustments):
    """Coupons and credits take part in every invoice of the test (C4, C5, CR2), whatever an
    earlier test registered in their place (a billing test swaps the hook for its own)."""
    from coupons.adjustments import CouponAdjustments

    swap_invoice_adjustments(CouponAdjustments())


@pytest.fixture
def run_together():
    """`run_together(*targets, refusals=())` starts every target at the same moment, each in its
    own thread and database connection, and returns what each returned, in order. An exception
    that is one of `refusals` is returned as the outcome; any other fails the test."""

    def run(*targets, refusals=()):
        barrier = threading.Barrier(len(targets))
        outcomes = [None] * len(targets)

        def worker(index, target):
            try:
                barrier.wait()
                outcomes[index] = target()
            except Exception as exc:  # looked at below
                outcomes[index] = exc
            finally:
                connections.close_all()

        threads = [threading.Thread(target=worker, args=item) for item in enumerate(targets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads), "a target ran over 60 s"
        errors = [o for o in outcomes if isinstance(o, Exception) and not isinstance(o, refusals)]
        assert not errors, errors
        return outcomes

    return run


@pytest.fixture
def retries_run_inline(monkeypatch):
    """Eager tasks run each retry at once (a worker waits the countdown first) and keep a
    failure on the result instead of raising it, so a test sees the whole chain of tries."""
    monkeypatch.setitem(celery_app.conf, "task_eager_propagates", False)


@pytest.fixture
def waits(monkeypatch):
    """The countdown before each retry of a task (Celery's backoff), in seconds."""
    seen = []
    real_backoff = autoretry.get_exponential_backoff_interval

    def recorded(*args, **kwargs):
        seen.append(real_backoff(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(autoretry, "get_exponential_backoff_interval", recorded)
    return seen
