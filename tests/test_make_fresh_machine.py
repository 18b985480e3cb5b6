"""README "Quick start": `make run` / `make test` "on a fresh machine with Python >= 3.11 and
make". A fresh Debian 12 (or Ubuntu 23.04+) has neither uv nor a pip that may install into
the system Python (PEP 668): the Makefile's bootstrap `python3 -m pip install --quiet uv`
stopped there, before anything was installed. It now installs uv into the user's site then,
and runs it as `python3 -m uv`."""

import glob
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SYSTEM_PATH = "/usr/bin:/bin"


@pytest.mark.skipif(
    not glob.glob("/usr/lib/python3*/EXTERNALLY-MANAGED")
    or shutil.which("uv", path=SYSTEM_PATH) is not None
    or shutil.which("make", path=SYSTEM_PATH) is None,
    reason="needs a Debian-like system Python (PEP 668) without uv",
)
def test_make_install_bootstraps_uv_on_a_fresh_debian_machine(tmp_path):
    for name in ("Makefile", "pyproject.toml", "uv.lock"):
        shutil.copy(REPO / name, tmp_path / name)
    # The fresh machine: the system's python3 and make, no uv; no index reached (PIP_NO_INDEX),
    # so nothing is downloaded whatever the bootstrap does.
    env = {"PATH": SYSTEM_PATH, "HOME": str(tmp_path), "PIP_NO_INDEX": "1", "LANG": "C.UTF-8"}
    result = subprocess.run(
        ["make", "install"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert "externally-managed-environment" not in output, output


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_run_seeds_its_own_sqlite_file_whatever_a_dotenv_says():
    """The operations walk: a `.env` next to manage.py with production's DATABASE_URL lent it to
    `make run`, whose DEBUG=true lifts seed_demo's guard: `make run` on a production checkout
    would have migrated and seeded the production database (reset staff passwords, made-up
    invoices that cannot be deleted). Every command `make run` runs names its own SQLite file
    and documents folder, which the environment and a .env cannot override."""
    planned = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert planned.returncode == 0, planned.stderr
    commands = planned.stdout.replace("\\\n", " ").splitlines()
    manage = [command for command in commands if "manage.py" in command]
    assert [command.split("manage.py ")[1].split()[0] for command in manage] == [
        "migrate",
        "seed_demo",
        "runserver",
    ]
    for command in manage:
        assert f"DATABASE_URL=sqlite:///{REPO}/db.sqlite3 " in command
        assert f"PRIVATE_MEDIA_ROOT={REPO}/private-media " in command
