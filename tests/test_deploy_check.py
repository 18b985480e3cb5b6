"""The deploy files: `manage.py check --deploy` is clean with production settings (DESIGN.md,
Settings), and the Docker image leaves out what must not ship."""

import re
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest

from tests.services import PRODUCTION_CACHE_URL, clean_env

REPO = Path(__file__).resolve().parent.parent


def production_env(**overrides: str) -> dict[str, str]:
    alphabet = string.ascii_letters + string.digits + "!@#%^&*(-_=+)"
    variables = {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "false",
        "SECRET_KEY": "".join(secrets.choice(alphabet) for _ in range(60)),
        "ALLOWED_HOSTS": "backoffice.example.com",
        "CACHE_URL": PRODUCTION_CACHE_URL,
        "EMAIL_URL": "smtp+tls://billing:mail-password@smtp.example.com:587",
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


def test_deploy_check_passes_behind_a_proxy_that_redirects_to_https_itself():
    """README: set SECURE_SSL_REDIRECT=false behind a proxy that already redirects. The check
    then warned W008 (the ops walk), so README's "clean with production settings" was not."""
    result = deploy_check(production_env(SECURE_SSL_REDIRECT="false"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_deploy_check_is_live_and_catches_debug_in_production():
    # Guards the test above against passing vacuously (e.g. a check that never runs).
    result = deploy_check(production_env(DEBUG="true"))

    assert result.returncode != 0
    assert "security.W018" in result.stderr


@pytest.mark.parametrize(
    ("email_url", "fate"),
    [(None, "printed to the process's output"), ("dummymail://", "dropped")],
    ids=["unset", "dummy"],
)
def test_deploy_check_warns_when_production_sends_no_email(email_url, fate):
    """README's production exports named no EMAIL_URL, so the operations walk ran production on
    its laptop default: the worker printed each customer email and marked it sent, and
    `check --deploy` said nothing. It says so now."""
    env = production_env()
    del env["EMAIL_URL"]
    if email_url:
        env["EMAIL_URL"] = email_url

    result = deploy_check(env)

    assert result.returncode != 0
    assert f"(billing.W001) Emails are {fate}, not sent" in result.stderr
    assert "Set EMAIL_URL to the mail server" in result.stderr


# --- The Docker image's build context ----------------------------------------------------------


def _docker_pattern(pattern: str) -> re.Pattern:
    """A .dockerignore line as Docker reads it (moby's patternmatcher): a path relative to the
    context's root, `*` and `?` within one path element, `**` across any number of them."""
    parts = []
    for token in re.split(r"(\*\*/?|\*|\?)", pattern.strip().strip("/")):
        if token in ("**", "**/"):
            parts.append("(.*/)?" if token == "**/" else ".*")
        elif token == "*":
            parts.append("[^/]*")
        elif token == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(token))
    return re.compile("^" + "".join(parts) + "$")


def docker_ignores(path: str, dockerignore: str) -> bool:
    """Whether `docker build` leaves `path` out of the context: the last pattern that matches
    the path or one of its parent folders decides (moby's MatchesOrParentMatches)."""
    ignored = False
    elements = path.split("/")
    paths = ["/".join(elements[:n]) for n in range(1, len(elements) + 1)]
    for line in dockerignore.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        compiled = _docker_pattern(line.removeprefix("!"))
        if any(compiled.match(each) for each in paths):
            ignored = not negated
    return ignored


def test_the_matcher_reads_dockerignore_patterns_from_the_context_root():
    # Guards the test below: unlike .gitignore, `.env` in .dockerignore is the root's only.
    assert docker_ignores(".env", ".env")
    assert not docker_ignores("deploy/.env", ".env")
    assert docker_ignores("deploy/.env", "**/.env")
    assert docker_ignores("private-media/usage-imports/a.csv", "**/private-media")
    assert not docker_ignores("deploy/backoffice.env.example", "**/*.env")


@pytest.mark.parametrize(
    "path",
    [
        ".env",  # settings read it (README: "a .env file next to manage.py")
        "deploy/.env",  # compose.yaml's SECRET_KEY and POSTGRES_PASSWORD
        "deploy/backoffice.env",  # a copy of the units' environment file
        "db.sqlite3",
        "private-media/certificates/0f3c.pdf",  # uploaded customer documents
        "backoffice-2026-12-01.dump",  # README "Backups", run in the checkout
        "private-media-2026-12-01.tar.gz",
    ],
)
def test_the_docker_image_leaves_out_secrets_and_customer_data(path):
    """deploy/compose.yaml has SECRET_KEY and POSTGRES_PASSWORD written to deploy/.env and
    builds with the repository root as context and `COPY . .`; .dockerignore's `.env` matched
    the root's .env only (Docker anchors a pattern at the context's root), so both secrets were
    copied into a layer of the image, /app/deploy/.env, for anyone the image is pushed or
    saved to. Patterns for files that may sit in any folder start with `**/`."""
    dockerignore = (REPO / ".dockerignore").read_text()
    compose = (REPO / "deploy" / "compose.yaml").read_text()
    assert "> .env" in compose and "context: .." in compose  # the secrets' file, the context

    assert docker_ignores(path, dockerignore), f"{path} goes into the image"


@pytest.mark.parametrize(
    "path",
    ["manage.py", "pyproject.toml", "uv.lock", "billing/models.py", "deploy/gunicorn.conf.py"],
)
def test_the_docker_image_keeps_the_code(path):
    assert not docker_ignores(path, (REPO / ".dockerignore").read_text())
