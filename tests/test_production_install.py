"""README's production run installs with `make install-production`: the locked versions without
the dev group (pytest, Playwright, ruff…). `make install` put those on every production machine
too. This proves the runtime needs none of them: in a virtualenv synced as the Makefile syncs
it, every module of the project imports and `check --deploy` passes under production settings."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("config", "billing", "coupons", "startups")

IMPORT_ALL = f"""
import importlib, pkgutil, django
django.setup()
names = []
for package in {PACKAGES!r}:
    root = importlib.import_module(package)
    for module in pkgutil.walk_packages(root.__path__, package + "."):
        importlib.import_module(module.name)
        names.append(module.name)
print(len(names))
"""


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_production_install_holds_no_dev_tool_and_runs_every_module(tmp_path):
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS")}
    synced = subprocess.run(
        ["make", "install-production"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert synced.returncode == 0, synced.stdout + synced.stderr
    venv = tmp_path / ".venv"
    assert (venv / ".installed-production").exists()
    python = venv / "bin" / "python"
    for tool in ("pytest", "playwright", "ruff", "hypothesis"):
        found = subprocess.run([python, "-c", f"import {tool}"], capture_output=True)
        assert found.returncode != 0, f"{tool} is installed in production"

    production = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "DEBUG": "false",
        "SECRET_KEY": "a-production-key-for-this-test-only-" + "x" * 30,
        "ALLOWED_HOSTS": "backoffice.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
        "CACHE_URL": "redis://127.0.0.1:6379/1",
        "EMAIL_URL": "smtp+tls://billing:mail-password@smtp.example.com:587",
        "DJANGO_SETTINGS_MODULE": "config.settings",
    }
    imported = subprocess.run(
        [python, "-c", IMPORT_ALL], cwd=REPO, env=production, capture_output=True, text=True
    )
    assert imported.returncode == 0, imported.stderr
    assert int(imported.stdout) > 100  # every model, service, admin, view, task and command

    checked = subprocess.run(
        [python, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=production,
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
