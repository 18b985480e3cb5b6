"""deploy/gunicorn.conf.py takes its settings from the environment or, as Django's settings do,
from the `.env` file next to manage.py (README "Production run")."""

import shutil
import subprocess
import sys
from pathlib import Path

from tests.services import clean_env

REPO = Path(__file__).resolve().parent.parent


def printed_config(root: Path, **variables) -> dict[str, str]:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(root / "deploy" / "gunicorn.conf.py"),
            "--print-config",
            "config.wsgi",
        ],
        cwd=root,
        env=clean_env(PYTHONPATH=str(REPO), DEBUG="true", **variables),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return {
        key.strip(): value.strip()
        for key, _, value in (line.partition("=") for line in result.stdout.splitlines())
        if key.strip()
    }


def test_gunicorn_reads_the_env_file_next_to_manage_py(tmp_path):
    """README: "the same variables may sit in a `.env` file next to `manage.py` instead". With
    GUNICORN_BIND, WEB_CONCURRENCY and LOG_FORMAT there, gunicorn still bound 127.0.0.1:8000
    with 5 workers and plain logs (operator's walk 8): its config read only the process's
    environment, while `.env` is read by Django's settings, after gunicorn has bound. The
    environment still wins over the file, as in the settings."""
    (tmp_path / "deploy").mkdir()
    shutil.copy(REPO / "deploy" / "gunicorn.conf.py", tmp_path / "deploy")
    (tmp_path / ".env").write_text(
        "GUNICORN_BIND=127.0.0.1:8109\nWEB_CONCURRENCY=2\nLOG_FORMAT=json\nGUNICORN_TIMEOUT=90\n"
    )

    from_file = printed_config(tmp_path)
    overridden = printed_config(tmp_path, WEB_CONCURRENCY="3")

    assert from_file["bind"] == "['127.0.0.1:8109']"
    assert (from_file["workers"], from_file["timeout"]) == ("2", "90")
    assert "json" in from_file["logconfig_dict"]
    assert overridden["workers"] == "3"
