# CampusIQ. `make help` lists the targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
MANAGE := $(BIN)/python manage.py
PORT ?= 8000
# Like manage.py, the development settings unless told otherwise (campusiq/celery.py defaults to prod).
CELERY := DJANGO_SETTINGS_MODULE=$${DJANGO_SETTINGS_MODULE:-campusiq.settings.dev} $(BIN)/celery -A campusiq
.DEFAULT_GOAL := help

.PHONY: help venv run test lint format lock e2e bench uci migrate seed clean services services-stop \
	worker beat backup restore security

help: ## List the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-14s %s\n", $$1, $$2}'

# The venv's own pip is replaced first by the pinned, hash-checked one in requirements/pip.txt: the
# lock file then installs the same way whichever pip the machine's Python bundles.
PIP_INSTALL := --quiet --quiet --disable-pip-version-check --no-input --require-hashes --only-binary pip
$(VENV)/.installed: requirements/pip.txt requirements/dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install $(PIP_INSTALL) -r requirements/pip.txt
	$(BIN)/python -m pip install $(PIP_INSTALL) -r requirements/dev.txt
	touch $@

venv: $(VENV)/.installed ## Create the virtualenv and install the locked dependencies

# One process for the whole set-up (portal/management/commands/dev_setup.py): each manage.py call
# pays Django's start-up again. It prints each step's time.
migrate: venv ## Apply migrations (and the rate-limit cache table) to the local database
	$(MANAGE) dev_setup --schema-only

seed: venv ## Migrate, load the demo campus (small), train a model unless one is active, score
	$(MANAGE) dev_setup

run: seed ## Set up and serve the portal on http://127.0.0.1:8000 (another port: make run PORT=8123)
	$(MANAGE) runserver 127.0.0.1:$(PORT)

test: venv ## Start PostgreSQL and Redis, lint, check migrations, run the whole suite with coverage
	bash scripts/test.sh

e2e: venv ## Only the browser (Chromium) tests
	bash scripts/test.sh -m browser --no-cov

bench: venv ## Benchmarks (start-up: manage.py check and make run to the first page; under production settings: check-in load, scoring 100,000 students, taking attendance for 500, importing 100,000 grades and 500,000 marks, mixed load with Redis and PostgreSQL faults, API fuzzing, every page at 20,000 students); prints figures
	status=0; for b in startup checkin scoring marking imports reliability api_fuzz scale; do $(BIN)/python bench/$$b.py || status=1; done; exit $$status

uci: venv ## The at-risk pipeline on the real UCI Student Performance data (paper's protocol; docs/PREDICTIONS.md)
	$(MANAGE) evaluate_uci
	$(MANAGE) evaluate_uci --threshold-objective f1

security: venv ## Security checks: bandit on the code; pip-audit on the locked dependencies (PIP_AUDIT_ARGS=--require-audit: fail if offline)
	$(BIN)/bandit -q -r campusiq accounts students attendance predictions portal scripts deploy -x '*/migrations/*'
	$(BIN)/python scripts/pip_audit.py $(PIP_AUDIT_ARGS)

lint: venv ## Lint (ruff) and the layers (import-linter, pyproject.toml) without changing anything
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: venv ## Format and fix what ruff can
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lock: ## Recompile requirements/*.txt (with hashes) from the .in files
	$(BIN)/pip install --quiet uv
	cd requirements && for f in base prod dev; do $(CURDIR)/$(BIN)/uv pip compile --python-version 3.11 --generate-hashes -q $$f.in -o $$f.txt; done

worker: venv ## Run a Celery worker (with REDIS_URL set; without it, tasks run in-process)
	$(CELERY) worker -l info

beat: venv ## Run Celery beat, the periodic tasks' clock (exactly one per deployment)
	@mkdir -p var
	$(CELERY) beat -l info --schedule var/celerybeat-schedule

backup: venv ## Back up the database and model artifacts to BACKUP_ROOT
	$(MANAGE) backup

restore: venv ## Restore a backup: make restore FILE=path/to/backup [ARGS=--force]
	@if [ -z "$(FILE)" ]; then echo "usage: make restore FILE=path/to/backup [ARGS=--force]" >&2; exit 2; fi
	$(MANAGE) restore "$(FILE)" $(ARGS)

services: ## Start the test PostgreSQL and Redis
	bash scripts/services.sh start

services-stop: ## Stop them
	bash scripts/services.sh stop

clean: ## Remove the virtualenv, caches and local data
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage htmlcov staticfiles .services db.sqlite3
