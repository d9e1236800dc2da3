# The project's vocabulary: run, test, bench, lint, fmt. Each target installs what it needs
# (uv in .tools/, the locked environment in .venv/) and, unless DATABASE_URL / REDIS_URL are
# set, runs against embedded PostgreSQL and Redis with data under .data/.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv/bin
DEVENV := $(VENV)/python -m devtools.devenv
NAME ?= all
# pytest's parallel workers (pytest-xdist), each with a test database of its own: `auto` is one
# per core; TEST_WORKERS=0 runs the tests in pytest's own process.
TEST_WORKERS ?= auto

.PHONY: help run test bench lint fmt check-all sync

help:
	@echo "make run     bring the platform up (web :8000, worker, beat, demo tenant)"
	@echo "make test    lint, migration and schema checks, and the whole test suite"
	@echo "make bench   benchmarks (NAME=provisioning|routing|clicks|conversions|stats|payouts), results in tests/bench/results/"
	@echo "make lint    ruff check + format check"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check "uv>=0.5,<1"

sync: $(UV)
	$(UV) sync --frozen --quiet

run: sync
	$(DEVENV) run

test: sync
	$(DEVENV) exec -- $(MAKE) --no-print-directory check-all

# Runs inside `devenv exec`, so the database and Redis are up and in the environment.
check-all: lint
	DJANGO_ENV=test $(VENV)/python manage.py makemigrations --check --dry-run
	DJANGO_ENV=test $(VENV)/python manage.py spectacular --validate --fail-on-warn --urlconf config.urls_public --file /dev/null
	DJANGO_ENV=test $(VENV)/python manage.py spectacular --validate --fail-on-warn --urlconf config.urls_tenant --file /dev/null
	node --test affiliates/tests/js/
	DJANGO_ENV=test $(VENV)/pytest --numprocesses $(TEST_WORKERS) --dist worksteal

bench: sync
	$(DEVENV) exec -- $(VENV)/python -m tests.bench $(NAME)

lint: sync
	$(VENV)/ruff check .
	$(VENV)/ruff format --check .

fmt: sync
	$(VENV)/ruff check --fix .
	$(VENV)/ruff format .
