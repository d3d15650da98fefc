# The two commands a newcomer needs: `make run` serves the gateway with the vendor emulators,
# `make test` runs the whole suite. Both install what they need first; so does `make bench`.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test bench bench-tools lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres]'
	touch $(STAMP)

run: install
	ERPGW_SANDBOX=true $(BIN)/erp-gateway serve

test: install
	$(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider

# The benches drive the servers with wrk. Root installs it from Debian's packages; anyone else
# is told the one command to run, and the target stops there instead of failing later.
bench-tools:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "bench: installing wrk (the load generator the benches use)"; \
	    (apt-get install -y -qq wrk || (apt-get update -qq && apt-get install -y -qq wrk)) >/dev/null; \
	  else \
	    echo "bench: wrk is missing; install it first: sudo apt-get install -y wrk" >&2; exit 1; \
	  fi; }
	@command -v wrk >/dev/null 2>&1 || { echo "bench: wrk did not install" >&2; exit 1; }

# Every bench, one after the other (about 15 minutes). PostgreSQL figures need
# ERPGW_BENCH_DATABASE_URL (a database the flow benches may empty); Redis ones
# ERPGW_BENCH_REDIS_URL (flushed).
bench: install bench-tools
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/system_read.py
	$(BIN)/python bench/fanout.py
	$(BIN)/python bench/flows_noop.py
	$(BIN)/python bench/flows.py
	$(BIN)/python bench/outbound.py
	$(BIN)/python bench/rate_limit_acquire.py
	$(BIN)/python bench/reconcile.py --invoices 300

lint: install
	$(BIN)/ruff check contracts system_apis process_apis experience_apis sandbox gateway tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
