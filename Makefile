# Two commands on a fresh machine: `make run` (portal on SQLite with demo data) and `make test`.
VENV := .venv
PY := $(VENV)/bin/python
UV := $(shell command -v uv 2>/dev/null)
PORT ?= 8000

.PHONY: install install-production run serve test test-fast lint migrate seed worker beat bench clean

# Without uv, pip brings it; a Debian python3 refuses plain pip installs (PEP 668), so then it
# goes to the user's site, and runs as `python3 -m uv` wherever pip put it.
define uv_sync
@if [ -z "$(UV)" ]; then \
	python3 -m pip install --quiet uv 2>/dev/null || \
	python3 -m pip install --quiet --user --break-system-packages uv; fi
$(if $(UV),uv,python3 -m uv) sync --frozen --python python3 $(1)
endef

$(VENV)/.installed: pyproject.toml uv.lock
	$(call uv_sync)
	@rm -f $(VENV)/.installed-production
	@touch $@

install: $(VENV)/.installed

# Production: the same locked versions without the dev group (pytest, Playwright, ruff…), which
# no page, task or command imports. serve, worker and beat run on whichever install is there.
$(VENV)/.installed-production: pyproject.toml uv.lock
	$(call uv_sync,--no-dev)
	@rm -f $(VENV)/.installed
	@touch $@

install-production: $(VENV)/.installed-production
RUNTIME := $(if $(wildcard $(VENV)/.installed-production),install-production,install)

# The laptop's demo, whatever a .env next to manage.py says: its own SQLite file and documents
# folder. A production checkout's .env would otherwise lend its DATABASE_URL to a run whose
# DEBUG=true lifts seed_demo's guard: demo invoices and reset passwords in production.
DEMO := DEBUG=true CELERY_TASK_ALWAYS_EAGER=true DATABASE_URL=sqlite:///$(CURDIR)/db.sqlite3 \
	PRIVATE_MEDIA_ROOT=$(CURDIR)/private-media

run: install
	$(DEMO) $(PY) manage.py migrate --no-input
	$(DEMO) EMAIL_URL=dummymail:// LOG_LEVEL=WARNING \
		$(PY) manage.py seed_demo --url http://127.0.0.1:$(PORT)/admin/
	$(DEMO) $(PY) manage.py runserver 127.0.0.1:$(PORT)

# Production settings (DEBUG=false: SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL from the
# environment or .env; run `manage.py migrate` first). gunicorn on GUNICORN_BIND (default
# 127.0.0.1:8000), configured by deploy/gunicorn.conf.py; static files served by WhiteNoise.
serve: $(RUNTIME)
	DEBUG=false $(PY) manage.py collectstatic --no-input --verbosity 0
	DEBUG=false exec $(VENV)/bin/gunicorn --config deploy/gunicorn.conf.py config.wsgi

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=true $(PY) manage.py makemigrations --check --dry-run

# pytest-xdist: one worker a core (TEST_WORKERS=0 runs in this process), tests shared out one by
# one; each worker runs its transactional tests (the browser tests among them) last.
TEST_WORKERS ?= auto
XDIST = $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS))

test: lint
	$(VENV)/bin/pytest $(XDIST) $(PYTEST_ARGS)

# The local loop: no lint, and the migrated test database kept between runs (--reuse-db; on
# SQLite in test-artifacts/, see tests/conftest.py). PYTEST_ARGS=--create-db rebuilds it.
test-fast: install
	$(VENV)/bin/pytest --reuse-db $(PYTEST_ARGS)

worker: $(RUNTIME)
	$(VENV)/bin/celery -A config worker --loglevel=INFO

beat: $(RUNTIME)
	$(VENV)/bin/celery -A config beat --loglevel=INFO

clean:
	rm -rf $(VENV) db.sqlite3 test-artifacts
