# Gambit: `make run` installs and runs everything (web + workers + beat, with demo data);
# `make test` installs and runs the whole test suite (what CI runs).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/gambit
export REDIS_URL ?= redis://127.0.0.1:6379/0
PORT ?= 8000

.PHONY: install system-deps services db run test lint typecheck unit reliability bench messages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install -q -e ".[dev]"

# Debian packages the tests need: the browser the e2e tests drive, gettext for catalogs.
system-deps:
	@command -v chromium >/dev/null && command -v msgfmt >/dev/null || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium gettext >/dev/null; }

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

typecheck: install
	$(BIN)/mypy

test: install system-deps db lint typecheck
	$(BIN)/python manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=$$(openssl rand -hex 32) \
	  DJANGO_ALLOWED_HOSTS=gambit.example.com $(BIN)/python manage.py check --deploy --fail-level WARNING
	@# pip-audit reads advisories per installed version from PyPI's JSON API; where that API does
	@# not answer it audits nothing, so say so rather than print "No known vulnerabilities found".
	@if $(BIN)/python -c "import urllib.request as u; u.urlopen('https://pypi.org/pypi/pip/25.0/json', timeout=10)" 2>/dev/null; \
	  then $(BIN)/pip-audit --strict --skip-editable --progress-spinner off; \
	  else echo "pip-audit NOT RUN: PyPI's vulnerability API is unreachable (docs/decisions/reliability-pip-audit.md)"; fi
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
