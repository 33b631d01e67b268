# Two commands: `make run` (the service, with its databases) and `make test` (the whole suite).
# Only Python 3.11+ is needed; everything else comes from pip. Pass arguments with ARGS='...'.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint bench clean venv

help:
	@echo "make run    create .venv, install, run 'agensium dev' (API + worker + services)  ARGS='--embedded --port 8001'"
	@echo "make test   create .venv, install, run the test suite                             ARGS='-k storage -x'"
	@echo "make lint   ruff + mypy"
	@echo "make bench  benchmarks in bench/ (not part of CI)"
	@echo "make clean  remove caches (not .venv, not the data dir .agensium/)"

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
		echo "Agensium needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found')." >&2; \
		echo "Install one and run: make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changed.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)

run: $(STAMP)
	$(BIN)/agensium dev $(ARGS)

# pytest's exit status 5 ("no tests collected") is non-zero, so make fails on it too.
test: $(STAMP)
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy service worker agents

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script $(ARGS); done

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
