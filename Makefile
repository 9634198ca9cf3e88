# Gambit: `make run` installs and runs everything (web + workers + beat, with demo data);
# `make test` installs and runs the whole test suite (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gambit
export REDIS_URL ?= redis://127.0.0.1:6379/0
PORT ?= 8000

# manage.py, WSGI, ASGI and Celery default to the production settings, which refuse to start
# without a real secret key; each target here names the settings it means. Everything `make run`
# starts (honcho and the Procfile's processes) inherits the development choice.
run messages: export DJANGO_SETTINGS_MODULE = config.settings.development
test unit reliability: export DJANGO_SETTINGS_MODULE = config.settings.test

.PHONY: install system-deps services db run test lint typecheck unit reliability bench messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"

# Debian packages the tests need: the browser the e2e tests drive, gettext for catalogs.
system-deps:
	@command -v chromium >/dev/null && command -v msgfmt >/dev/null && fc-list :lang=zh | grep -q . || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gettext fonts-noto-cjk >/dev/null; }

# PostgreSQL and Redis: installed from Debian packages when missing, started when stopped.
services:
	@bash .ci/services

db: services
	@psql -h 127.0.0.1 -U postgres -tc "SELECT 1 FROM pg_database WHERE datname = 'gambit'" | grep -q 1 || \
	  createdb -h 127.0.0.1 -U postgres gambit

run: install db
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py setup_roles
	$(BIN)/python manage.py seed_demo --base-url http://127.0.0.1:$(PORT)
	PORT=$(PORT) $(BIN)/honcho start

lint: install
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: install
	$(BIN)/mypy

test: install system-deps db lint typecheck
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=$$(openssl rand -hex 32) \
	  DJANGO_ALLOWED_HOSTS=gambit.example.com GAMBIT_METRICS_TOKEN=$$(openssl rand -hex 16) \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python .ci/audit_dependencies.py
	$(BIN)/pytest tests
	$(MAKE) reliability

unit: install
	$(BIN)/pytest tests -m "not integration and not e2e and not reliability"

reliability: install services
	$(BIN)/pytest tests/reliability -m reliability --override-ini addopts="-ra"

bench: install services
	@for script in tests/benchmarks/bench_*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

messages: install
	$(BIN)/python manage.py makemessages -l zh_Hans --ignore=.venv --ignore=tests
	$(BIN)/python manage.py compilemessages --ignore=.venv

clean:
	rm -rf $(VENV) staticfiles test-artifacts .pytest_cache .mypy_cache .ruff_cache
