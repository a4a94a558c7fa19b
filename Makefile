# DPP — the README's first two commands are `make run` and `make test`.
# Both work on a fresh clone: they create .venv with uv, install, migrate.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
STAMP := $(VENV)/.installed
export DPP_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: help setup browser oidc-provider run up lab demo-data test test-fast lint format migrate bench-ingest bench-metrics bench-api bench-dashboards screenshots clean

help:
	@echo "make run          set up, migrate, load the demo organisation, start the platform"
	@echo "make test         set up and run the whole suite (SQLite and Postgres)"
	@echo "make lint         ruff, ruff format --check, mypy"
	@echo "make bench-ingest ingestion benchmark (Postgres), results in docs/performance.md"
	@echo "make bench-metrics metric engine benchmark (Postgres, 1,000 engineers x 2 years)"
	@echo "make bench-api    read API benchmark (uvicorn, 50 clients, cached and uncached)"
	@echo "make bench-dashboards Voila pages in Chromium: warm, cold, 50 simultaneous users"
	@echo "make screenshots  the dashboards' browser tests, their screenshots copied to docs/images"

.tools/bin/uv:
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet uv

$(STAMP): pyproject.toml | $(UV)
	$(UV) venv --quiet --allow-existing --python $(PYTHON) $(VENV)
	$(UV) pip install --quiet --python $(BIN)/python -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

migrate: setup
	$(BIN)/dpp db upgrade

# The example organisation's config, and its demo history on a new install.
demo-data: migrate
	$(BIN)/dpp config load config/example.yaml
	$(BIN)/dpp demo load --if-empty

run: demo-data
	$(BIN)/dpp up

# JupyterLab for analysts (notebooks/explore/getting_started.ipynb), on the same database.
lab: demo-data
	$(BIN)/dpp lab

up: migrate
	$(BIN)/dpp up

# Two pytest workers (pytest-xdist), a test file per worker at a time: much of the suite waits
# on kernels, browsers and Postgres rather than on the CPU. TEST_WORKERS=0 runs it serially.
TEST_WORKERS ?= 2

test: setup browser oidc-provider
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

# Browser tests use Debian's Chromium through Playwright (no browser download).
browser:
	@test -x /usr/bin/chromium || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# The OIDC sign-in tests run a real OpenID provider (npm oidc-provider, tests/oidc): its
# packages are installed from the committed lock file when missing or older than it.
OIDC_MODULES := tests/oidc/node_modules/.package-lock.json

oidc-provider: $(OIDC_MODULES)

$(OIDC_MODULES): tests/oidc/package-lock.json
	@command -v npm >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq nodejs npm >/dev/null; }
	npm ci --prefix tests/oidc --no-audit --no-fund --loglevel=error
	@touch $@

# The README's pictures: the dashboards' browser tests save them; this copies them in place.
screenshots: setup browser
	DPP_SCREENSHOTS_DIR=$(CURDIR)/docs/images $(BIN)/pytest -q -p no:cacheprovider \
	  tests/dashboards/test_overview.py tests/dashboards/test_cross_stream.py \
	  tests/dashboards/test_admin.py tests/dashboards/test_pulse_survey.py

test-fast: setup
	$(BIN)/pytest -q -m "not slow"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench-ingest: setup
	$(BIN)/python bench/ingest.py --write-docs

bench-metrics: setup
	$(BIN)/python bench/metrics.py --write-docs

bench-api: setup
	$(BIN)/python bench/api.py --write-docs

bench-dashboards: setup browser
	$(BIN)/python bench/dashboards.py --write-docs

clean:
	rm -rf $(VENV) .tools .pytest_cache .mypy_cache .ruff_cache
