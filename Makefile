# The two commands of the README's Quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Start the gateway on the embedded default (SQLite) with the example config and mock upstreams.
run: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ./scripts/run-local

## `make run` plus Prometheus (deploy/prometheus/alerts.yml) scraping the status listener.
.PHONY: run-monitoring
run-monitoring: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" ./scripts/run-monitoring

## Lint, type-check and run the whole test suite.
test: $(STAMP)
	$(VENV)/bin/ruff check tollway tests bench
	$(VENV)/bin/mypy
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check tollway tests bench
	$(VENV)/bin/mypy

## Benchmarks: wrk against nginx, an aiohttp proxy and tollway on loopback.
bench: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/run.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
