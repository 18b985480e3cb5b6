"""`manage.py check --deploy` is clean with production settings (DESIGN.md, Settings)."""

import secrets
import string
import subprocess
import sys
from pathlib import Path

from tests.services import clean_env

REPO = Path(__file__).resolve().parent.parent


def production_env(**overrides: str) -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    variables = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "ALLOWED_HOSTS": "backoffice.example.com",
    }
    return clean_env(**(variables | overrides))


def deploy_check(env: dict[str, str]):
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_deploy_check_passes_with_production_settings():
    result = deploy_check(production_env())
    output = result.stdout + result.stderr

    assert result.returncode == 0, output
    assert "System check identified no issues" in output
    assert "WARNINGS:" not in output


def test_deploy_check_is_live_and_catches_debug_in_production():
    # Guards the test above against passing vacuously (e.g. a check that never runs).
    result = deploy_check(production_env(DEBUG="true"))

    assert result.returncode != 0
    assert "security.W018" in result.stderr
