# Relais: `make run` serves the demo, `make test` runs the whole suite. Both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test test-sqlite test-postgres lint format typecheck browser-deps messages bench clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --require-virtualenv -r requirements.lock
	$(BIN)/pip install --quiet --require-virtualenv --no-deps -e .
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: install
	$(BIN)/relais run

# Browser tests drive Debian's Chromium; install it when missing (needs root, as in CI).
browser-deps:
	@command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "Chromium is missing: run 'sudo apt-get install chromium' (browser tests will be skipped)"; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy relais config benchmarks

test: install browser-deps lint typecheck test-sqlite test-postgres

test-sqlite:
	$(BIN)/pytest -n 2 --dist loadgroup -q

# The same suite again on PostgreSQL (and the scale-out test on Redis) when the servers answer.
# Browser and Bluesky tests start their own servers (a `relais run`, the PDS) whatever the
# database: the SQLite pass runs them once.
test-postgres:
	@if $(BIN)/python -c "import psycopg; psycopg.connect('$(PG_URL)', connect_timeout=3).close()" 2>/dev/null; then \
	  DATABASE_URL=$(PG_URL) RELAIS_TEST_REDIS_URL=$(REDIS_URL) \
	    $(BIN)/pytest -n 2 --dist loadgroup -q -m "not browser and not bluesky"; \
	else echo "PostgreSQL not reachable at $(PG_URL): PostgreSQL run skipped"; \
	  if [ "$${CI:-}" = true ]; then exit 1; fi; fi

messages: install
	cd relais && ../$(BIN)/relais makemessages -l fr --no-location && ../$(BIN)/relais compilemessages

# Peers measured beside Relais in the benchmarks (not needed to run Relais).
bench: install
	$(BIN)/pip install --quiet --require-virtualenv -r requirements-bench.txt
	$(BIN)/python benchmarks/pipeline.py --quick

clean:
	rm -rf $(VENV) node_modules var
