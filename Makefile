# The two commands a newcomer needs: `make run` serves the gateway with the vendor emulators,
# `make test` runs the whole suite. Both install what they need first.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PYTEST_WORKERS ?= 2

.PHONY: install run test bench lint clean

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

bench: install
	$(BIN)/python bench/gateway_overhead.py
	$(BIN)/python bench/outbound.py
	$(BIN)/python bench/system_read.py

lint: install
	$(BIN)/ruff check contracts system_apis process_apis experience_apis sandbox gateway tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
