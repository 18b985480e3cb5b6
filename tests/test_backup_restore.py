"""Backups (README "Backups"): a pg_dump of a seeded database and an archive of
PRIVATE_MEDIA_ROOT, restored into a fresh database and folder, make a portal that works.

Everything runs as the README says an operator would: `manage.py` in subprocesses with
production settings (tasks run in process, emails go nowhere) and the machine's pg_dump,
pg_restore, createdb and dropdb. The databases are named after the configured one (e.g.
`helper_ops_backup_source`) and dropped after.
"""

import json
import secrets
import shutil
import subprocess
import sys
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from tests.services import PRODUCTION_CACHE_URL, clean_env, requires_postgres, skip_or_fail

REPO = Path(__file__).resolve().parent.parent
PG_TOOLS = ("pg_dump", "pg_restore", "createdb", "dropdb")

# Prints, as JSON, the row count of every table that matters for money and the files that
# every FileField row names but storage lacks.
SNAPSHOT = """
import json
from django.apps import apps
from django.core.files.storage import default_storage
from django.db.models import FileField
counts = {}
missing = []
for model in apps.get_models():
    if model._meta.app_label in ("billing", "coupons", "startups", "auth"):
        counts[model._meta.label] = model._default_manager.count()
    for field in model._meta.get_fields():
        if isinstance(field, FileField):
            for name in model._default_manager.exclude(**{field.name: ""}).values_list(
                field.name, flat=True
            ):
                if not default_storage.exists(name):
                    missing.append(name)
print("SNAPSHOT " + json.dumps({"counts": counts, "missing": missing}))
"""


def _database():
    db = settings.DATABASES["default"]
    # The configured name (pytest-django put "test_" in front of it), e.g. helper_ops.
    base = db["NAME"].removeprefix("test_")
    pg_env = {
        "PGHOST": str(db.get("HOST") or "127.0.0.1"),
        "PGPORT": str(db.get("PORT") or 5432),
        "PGUSER": str(db.get("USER") or "postgres"),
    }
    if db.get("PASSWORD"):
        pg_env["PGPASSWORD"] = str(db["PASSWORD"])
    return base, pg_env


def _url(pg_env, name):
    password = f":{pg_env['PGPASSWORD']}" if "PGPASSWORD" in pg_env else ""
    return f"postgres://{pg_env['PGUSER']}{password}@{pg_env['PGHOST']}:{pg_env['PGPORT']}/{name}"


def _run(command, env, timeout=300):
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    # The end of the output says what went wrong; seeding logs a line per email before it.
    output = f"{result.stdout}\n{result.stderr}"[-4000:]
    assert result.returncode == 0, f"{' '.join(command)}:\n{output}"
    return result.stdout


def _manage(*args, env):
    return _run([sys.executable, "manage.py", *args], env)


def _snapshot(env):
    out = _manage("shell", "-c", SNAPSHOT, env=env)
    line = next(line for line in out.splitlines() if line.startswith("SNAPSHOT "))
    return json.loads(line.removeprefix("SNAPSHOT "))


@pytest.fixture
def pg_tools():
    missing = [tool for tool in PG_TOOLS if shutil.which(tool) is None]
    if missing:
        skip_or_fail(f"needs the PostgreSQL client tools: {', '.join(missing)} not found")


@requires_postgres
def test_a_restored_backup_of_a_seeded_database_runs_the_billing_clock(pg_tools, tmp_path):
    base, pg_env = _database()
    source, restored = f"{base}_backup_source", f"{base}_backup_restored"
    tools_env = clean_env(**pg_env)
    source_media, restored_media = tmp_path / "media", tmp_path / "restored-media"
    secret_key = secrets.token_urlsafe(50)

    def portal_env(database, media):
        return clean_env(
            DJANGO_SETTINGS_MODULE="config.settings",
            DEBUG="false",
            SECRET_KEY=secret_key,
            CACHE_URL=PRODUCTION_CACHE_URL,
            CELERY_TASK_ALWAYS_EAGER="true",
            EMAIL_URL="dummymail://",
            DATABASE_URL=_url(pg_env, database),
            PRIVATE_MEDIA_ROOT=str(media),
        )

    for name in (source, restored):
        _run(["dropdb", "--if-exists", name], tools_env)
    try:
        # A production database: migrated, with every kind of row and uploaded documents.
        _run(["createdb", source], tools_env)
        seeded = portal_env(source, source_media)
        _manage("migrate", "--no-input", env=seeded)
        _manage("seed_demo", "--allow-production", env=seeded)
        before = _snapshot(seeded)
        assert before["counts"]["billing.Invoice"] > 0
        assert before["counts"]["billing.TaxExemption"] > 0 and not before["missing"]

        # The backup, as README says: pg_dump's custom format and an archive of the documents.
        dump = tmp_path / "backoffice.dump"
        _run(["pg_dump", "--format=custom", f"--file={dump}", source], tools_env)
        archive = tmp_path / "private-media.tar.gz"
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(source_media, arcname=".")

        # The restore: a fresh database and folder.
        # Owned by the portal's role, as README says (here the role the tests connect as).
        app_role = pg_env["PGUSER"]
        _run(["createdb", f"--owner={app_role}", restored], tools_env)
        _run(
            ["pg_restore", "--no-owner", f"--role={app_role}", "--exit-on-error"]
            + [f"--dbname={restored}", str(dump)],
            tools_env,
        )
        restored_media.mkdir()
        with tarfile.open(archive) as tar:
            tar.extractall(restored_media, filter="data")
        copy = portal_env(restored, restored_media)

        # Nothing is missing: the same rows, every document readable, no migration pending.
        assert _snapshot(copy) == before
        _manage("migrate", "--check", env=copy)

        # The billing clock goes on from the copy: a month close issues new invoices (ids and
        # invoice numbers continue where the backup stopped).
        next_month_end = timezone.now().date() + timedelta(days=40)
        out = _manage("run_billing", f"--as-of={next_month_end}", "--allow-future", env=copy)
        assert f"Billing run through {next_month_end}" in out
        after = _snapshot(copy)
        assert after["counts"]["billing.Invoice"] > before["counts"]["billing.Invoice"]
    finally:
        for name in (source, restored):
            subprocess.run(
                ["dropdb", "--if-exists", "--force", name],
                env=tools_env,
                capture_output=True,
                timeout=60,
            )
