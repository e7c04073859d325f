# rim: `make run` serves on the embedded defaults; `make test` passes every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
# A run-specific Redis prefix: test runs sharing one Redis never hear each other.
SERVICES_ENV := DATABASE_URL=postgres://127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/0 \
	RIM_LAYER_PREFIX=rimtest$$$$

.PHONY: setup run test test-embedded test-services lint format bench

setup: $(STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $@

run: setup
	$(BIN)/python manage.py migrate --verbosity 0
	$(BIN)/python manage.py serve

# Both stacks: SQLite + in-memory layer, then PostgreSQL + Redis (when reachable;
# in CI, CI=true, an unreachable service fails the run). The second pass leaves out
# the browser and SQLite end-to-end tests: their servers run on their own SQLite file.
test: setup lint browser-deps test-embedded test-services

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

browser-deps:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

# Test processes per pass (pytest-xdist), one per core: each has its own databases and
# Redis prefix; more would oversubscribe the cores and stretch the timing-bound tests.
TEST_PROCESSES ?= 2

test-embedded: setup
	$(BIN)/pytest -n $(TEST_PROCESSES) -m "not services"

test-services: setup
	@if $(BIN)/python -m tests.services; then \
	  $(SERVICES_ENV) $(BIN)/pytest -n $(TEST_PROCESSES) -m "services or not (e2e or browser)"; \
	elif [ "$$CI" = "true" ]; then \
	  echo "FAILED: PostgreSQL and Redis are required in CI (see above)"; exit 1; \
	else \
	  echo "!!!!!!!! SKIPPED the PostgreSQL + Redis stack: services unreachable (see above) !!!!!!!!"; \
	fi

bench: setup
	$(BIN)/python benchmarks/run.py
