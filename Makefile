# The two commands a newcomer needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck audit pytest services browser node bench clean

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

## Start the whole system on the embedded default (SQLite, filesystem broker, local files, simulator).
run: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py bootstrap_demo
	@echo
	@echo "  API      http://127.0.0.1:8000/api/   (docs: http://127.0.0.1:8000/api/docs)"
	@echo "  Admin    http://127.0.0.1:8000/admin/ (log in as support or admin, above)"
	@echo "  Health   http://127.0.0.1:8000/health"
	@echo "  Processes: web, Celery worker, celery-beat, RunningHub simulator (127.0.0.1:8188). Ctrl-C stops all."
	@echo
	$(BIN)/honcho start -f Procfile

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

pytest: $(STAMP) services browser node
	$(BIN)/pytest --create-db

## Lint, type-check and the whole test suite on real PostgreSQL and Redis.
test: $(STAMP) services lint typecheck audit pytest

bench: $(STAMP) services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
