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
