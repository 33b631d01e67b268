# Two commands: `make run` (the service, with its databases) and `make test` (the whole suite).
# Only Python 3.11+ is needed; everything else comes from pip. Pass arguments with ARGS='...'.

# The first of these that is Python 3.11+ (Ubuntu 22.04's python3 is 3.10); override with PYTHON=...
PYTHON ?= $(or $(firstword $(foreach candidate,python3 python3.13 python3.12 python3.11,$(if $(shell \
	$(candidate) -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && echo yes),$(candidate)))),python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Every dependency pinned (the project's and its test extra's): written by `make lock`, used by every install.
CONSTRAINTS := constraints.txt
INSTALL_LOG := $(VENV)/install.log
ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help run test lint bench clean venv env lock

help:
	@echo "make run    create .venv, install, run 'agensium dev' (API + worker + services)  ARGS='--embedded --port 8001'"
	@echo "make test   create .venv, install, run the test suite                             ARGS='-k storage -x'"
	@echo "make lint   ruff + mypy"
	@echo "make lock   pin the dependencies again in constraints.txt (kept pins stay)          ARGS='--upgrade'"
	@echo "make bench  benchmarks in bench/ (not part of CI)"
	@echo "make clean  remove caches (not .venv, not the data dir .agensium/)"
	@echo "make env    write .env for docker compose: .env.example with fresh random secrets (never overwrites)"

# A failed attempt is removed (Debian/Ubuntu without python3.X-venv leave a pip-less .venv behind),
# so the next `make` starts over instead of failing on a half-made .venv.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null || { \
		echo "Agensium needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>/dev/null || echo 'not found')." >&2; \
		echo "Install one and run: make $(MAKECMDGOALS) PYTHON=python3.12" >&2; exit 1; }
	@echo "creating $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV) || { rm -rf $(VENV); \
		echo "Could not create $(VENV) with $(PYTHON). On Debian/Ubuntu install the venv module:" >&2; \
		echo "  sudo apt install python3-venv   (or python$$($(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')-venv)" >&2; \
		exit 1; }
	@$(BIN)/python -m pip install --upgrade pip > $(INSTALL_LOG) 2>&1 || { cat $(INSTALL_LOG) >&2; rm -rf $(VENV); exit 1; }

# Reinstall only when the project's metadata or the pins changed. pip's output goes to a log that is shown
# only when the install fails.
$(STAMP): pyproject.toml $(CONSTRAINTS) | $(BIN)/python
	@echo "installing agensium and its pinned dependencies into $(VENV) (log: $(INSTALL_LOG))"
	@$(BIN)/python -m pip install -c $(CONSTRAINTS) -e '.[test]' > $(INSTALL_LOG) 2>&1 || { \
		cat $(INSTALL_LOG) >&2; echo "pip install failed; its output is above and in $(INSTALL_LOG)" >&2; exit 1; }
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

# uv's resolution for Python 3.11+ on every platform, preferring the pins already in the file: ARGS='--upgrade'
# moves every package to its newest release, ARGS='--upgrade-package polars' one of them. The bench extra is
# not pinned: it needs an older numpy and lives in its own venv (bench/).
lock: | $(BIN)/python
	@$(BIN)/python -m pip install --quiet 'uv>=0.5'
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 --quiet \
		--custom-compile-command 'make lock' -o $(CONSTRAINTS) $(ARGS)

bench: $(STAMP)
	@set -e; for script in bench/bench_*.py; do echo "== $$script"; $(BIN)/python $$script $(ARGS); done

# docker-compose.yml's .env: .env.example with a fresh random value in each empty `NAME=` line (its
# secrets), mode 0600. Never overwrites an .env: its secrets may be in use (PostgreSQL keeps the password
# of its first start). Written to a temporary file and hard-linked, so a failure leaves no half .env.
env:
	@if [ -e .env ]; then echo ".env exists: left as it is (delete it to make a new one)"; exit 0; fi; \
	umask 077; tmp=".env.$$$$.tmp"; trap 'rm -f "$$tmp"' EXIT; \
	while IFS= read -r line || [ -n "$$line" ]; do \
		case $$line in \
			\#*) printf '%s\n' "$$line" ;; \
			*=) secret=$$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))') || exit 1; \
				printf '%s%s\n' "$$line" "$$secret" ;; \
			*) printf '%s\n' "$$line" ;; \
		esac; \
	done < .env.example > "$$tmp" && ln "$$tmp" .env && echo "wrote .env with fresh random secrets (mode 0600)"

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache test-artifacts
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +
