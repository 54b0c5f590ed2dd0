# The two commands a newcomer needs: `make run` and `make test`.
# Any Python 3.11 or newer on the machine, newest first (or: make run PYTHON=/path/to/python3).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
  command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null \
  && { echo $$p; break; }; done)
# make run's ports (the API and admin; the RunningHub simulator).
WEB_PORT ?= 8000
SIM_PORT ?= 8188
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run lock test lint typecheck audit pytest mutation services browser node wrk bench drills clean

# Runtime and development packages at the versions of requirements.lock (one venv for run and test).
$(STAMP): requirements.txt requirements-dev.txt requirements.lock
	@test -x $(BIN)/python || { \
	  test -n "$(PYTHON)" || { echo "Python 3.11 or newer is needed (python3.13, python3.12 or python3.11 on PATH)." >&2; exit 1; }; \
	  echo "Creating .venv with $$($(PYTHON) --version)"; $(PYTHON) -m venv $(VENV); }
	@echo "Installing the Python packages into .venv (the first time takes a few minutes)"
	$(BIN)/pip install --disable-pip-version-check --progress-bar on -r requirements-dev.txt -c requirements.lock
	@touch $(STAMP)

## Re-pin the transitive versions after changing requirements.txt or requirements-dev.txt.
lock: $(STAMP)
	$(BIN)/uv pip compile requirements-dev.txt -o requirements.lock --universal --python-version 3.11 --quiet

# A product photo for the README's curl walk-through.
docs/sample.jpg: $(STAMP) scripts/sample_photo.py
	$(BIN)/python scripts/sample_photo.py $@

## Start the whole system on the embedded default (SQLite, filesystem broker, local files, simulator).
run: $(STAMP) docs/sample.jpg
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrap_demo
	@echo
	@echo "  API      http://127.0.0.1:$(WEB_PORT)/api/   (docs: http://127.0.0.1:$(WEB_PORT)/api/docs)"
	@echo "  Admin    http://127.0.0.1:$(WEB_PORT)/admin/ (log in as support or admin, above)"
	@echo "  Health   http://127.0.0.1:$(WEB_PORT)/health"
	@echo "  Sample   docs/sample.jpg (README: try it with curl)"
	@echo "  Processes: web, Celery worker (queues cpu and io), celery-beat, RunningHub simulator"
	@echo "  (127.0.0.1:$(SIM_PORT)). Ctrl-C stops all."
	@echo
	WEB_PORT=$(WEB_PORT) SIM_PORT=$(SIM_PORT) PUBLIC_BASE_URL=http://127.0.0.1:$(WEB_PORT) \
	  RUNNINGHUB_BASE_URL=http://127.0.0.1:$(SIM_PORT) $(BIN)/honcho start -f Procfile

services:
	@scripts/ensure_services.sh

# The admin browser check drives Debian's Chromium (with a CJK font for the Chinese admin);
# install them when they are missing.
browser:
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver -a -d /usr/share/fonts/truetype/wqy || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	    chromium chromium-driver fonts-wqy-microhei >/dev/null; }

# The generated-clients test type-checks and runs the TypeScript example (clients/typescript) on
# Node.js; install Debian's when it is missing.
node:
	@command -v node >/dev/null && command -v npm >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Known vulnerabilities in the pinned requirements; an unreachable advisory service is reported,
# not fatal (scripts/audit_dependencies.py).
audit: $(STAMP)
	$(BIN)/python scripts/audit_dependencies.py

typecheck: $(STAMP)
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=config.test_settings $(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

# Random test order (pytest-randomly; the seed is printed first: PYTEST_SEED=N repeats an order, and
# `pytest -p no:randomly` keeps the file order); branch coverage of the product, processes the tests
# start included, which fails the run under the floor in pyproject.toml ([tool.coverage.report]).
pytest: $(STAMP) services browser node
	@seed=$${PYTEST_SEED:-$$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}; \
	  echo "Random test order, seed $$seed (make pytest PYTEST_SEED=$$seed repeats it)"; \
	  $(BIN)/pytest --create-db --randomly-seed=$$seed \
	    --cov --cov-branch --cov-report=term-missing:skip-covered

## Mutation testing (not part of make test; long): score and surviving mutants in docs/mutation.md.
mutation: $(STAMP) services
	rm -rf mutants
	$(BIN)/mutmut run --max-children 2 || true
	$(BIN)/python scripts/mutation_report.py docs/mutation.md

## Lint, type-check and the whole test suite on real PostgreSQL and Redis.
test: $(STAMP) services lint typecheck audit pytest

# The benchmark's load generator is wrk (Debian's); pgbench comes with PostgreSQL.
wrk:
	@command -v wrk >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }

bench: $(STAMP) services wrk
	$(BIN)/python -m bench

## Fault drills (RELIABILITY.md): the whole system under crashes and outages, about 20 minutes;
## each drill starts its own PostgreSQL cluster and redis-server. Not part of make test.
drills: $(STAMP) services
	$(BIN)/python -m drills

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
