# The two commands of the README: `make run` and `make test`. Both create .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test test-fast test-specs test-resilience test-cluster lint fmt clean browser postgres bench

$(STAMP): pyproject.toml sandbox/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]' -e ./sandbox
	touch $(STAMP)

install: $(STAMP)

## Start the embedded stack in the foreground (Temporal dev server, sandbox AWS, worker, API).
run: $(STAMP)
	$(BIN)/vend dev

## Lint, type-check and run the whole test suite (starts every server it needs), in
## TEST_PROCESSES processes (pytest-xdist), each with an embedded stack of its own.
TEST_PROCESSES ?= 3
test: lint browser postgres
	$(BIN)/pytest -n $(TEST_PROCESSES) --dist loadgroup

## Headless Chromium for the web page tests, from Debian's packages (Playwright drives it; it
## downloads no browser). Where it cannot be installed the page tests skip, loudly.
browser:
	@command -v chromium >/dev/null 2>&1 || sh tools/apt_install.sh chromium "the web page tests"

## PostgreSQL's server for the cluster tests (tests/cluster), from Debian's packages; they start
## a private one of their own and never touch the machine's. Go, which builds the Temporal
## server for them, comes with the machine. Where either is missing those tests skip, loudly.
postgres:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || \
	  sh tools/apt_install.sh postgresql "the cluster tests"
	@command -v go >/dev/null 2>&1 || \
	  echo "*** WARNING: no Go toolchain: the cluster tests will be SKIPPED unless built before ***"

## Only the cluster tests: a real Temporal cluster (built from Go on first use) on PostgreSQL.
test-cluster: $(STAMP) postgres
	$(BIN)/pytest -m cluster

## Benchmarks (see BENCHMARKS.md); `make bench BENCH=overhead` runs one.
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH)

## The workflow specifications: the time-skipping test server and fake activities, no stack.
test-specs: $(STAMP)
	$(BIN)/pytest tests/workflows

## Every layer that needs no embedded stack: the specifications, units and static checks.
test-fast: $(STAMP)
	$(BIN)/pytest --without-stack

## Only the heavier crash/restart tests.
test-resilience: $(STAMP)
	VEND_FAULT_RUN_REQUESTS=100 $(BIN)/pytest -m resilience

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .data test-artifacts .mypy_cache .ruff_cache .pytest_cache
