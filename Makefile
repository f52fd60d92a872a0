# The two commands of this project: `make dev` (start the platform) and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
POETRY := $(PYTHON) -m poetry
VENV := .venv/bin
USER ?= dev-user
ROLES ?=

.PHONY: install dev test token lint format typecheck check openapi migrate bench chaos

# Poetry itself comes from PyPI; the venv lives in .venv (poetry.toml).
# Eval's code sandbox needs bubblewrap (bwrap): installed from Debian when we are root;
# otherwise Eval refuses to run code (503) until an administrator installs it.
install:
	@$(PYTHON) -m poetry --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "poetry>=2.0,<3"
	@$(POETRY) sync --quiet
	@command -v bwrap >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap) >/dev/null \
	      || echo "warning: could not install bubblewrap: Eval will refuse to run code" >&2; \
	  else \
	    echo "warning: bubblewrap (bwrap) is not installed: Eval will refuse to run code (see README)" >&2; \
	  fi; }

## Start everything: Temporal dev server (UI :8233), migrations, dev services, worker, API (:8000).
dev: install
	@$(VENV)/python -m tools.dev

## Run the whole test suite against real PostgreSQL, Redis and Temporal.
# pytest exits 5 when it collects no test: that is not a failure of the suite.
test: install
	@$(VENV)/pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 0; fi; exit $$rc

## Print a development token (only the token): make token USER=alice [ROLES=admin]
token:
	@test -x $(VENV)/python || $(MAKE) --no-print-directory install >&2
	@$(VENV)/python -m tools.devkeys token --user "$(USER)" --roles "$(ROLES)"

lint: install
	@$(VENV)/ruff check .
	@$(VENV)/black --check .

format: install
	@$(VENV)/ruff check --fix --select I .
	@$(VENV)/black .

typecheck: install
	@$(VENV)/mypy domain workflows activities api worker store devservices tools bench ops

check: lint typecheck

## Regenerate openapi/co.v1.yaml from the app.
openapi: install
	@$(VENV)/python -m tools.openapi write

migrate: install
	@$(VENV)/alembic upgrade head

bench: install
	@$(VENV)/python -m bench

## Load the platform while its processes and dependencies fail; check nothing is lost.
# Its own PostgreSQL, Redis and Temporal on free ports: CHAOS_ARGS="--submissions 40 --learners 5"
chaos: install
	@$(VENV)/python -m tools.chaos $(CHAOS_ARGS)
