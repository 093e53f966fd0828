# pileon: `make demo` runs the main job on the embedded broker; `make test` runs every test.
# Both create .venv and install what they need; nothing has to be installed beforehand but
# Python >= 3.11 (on Debian/Ubuntu, python3-venv is installed with apt when missing).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml setup.py constraints.txt | sha256sum | cut -c1-12)

.PHONY: demo test test-fast lint typecheck tools generate lock clean

# Prometheus, promtool and Alertmanager, PostgreSQL (the console's production database) and
# Chromium (the console's browser tests, PDF reports) and poppler-utils (PDF pages as images)
# from Debian packages, and Helm built with Go, for the
# tests that run them.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
HELM_VERSION := v3.22.0
tools:
	@command -v promtool >/dev/null && command -v prometheus-alertmanager >/dev/null && \
	  command -v chromium >/dev/null && command -v pdftoppm >/dev/null && \
	  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    prometheus prometheus-alertmanager postgresql chromium poppler-utils; }
	@test -x .cache/bin/helm && .cache/bin/helm version --short | grep -q $(HELM_VERSION) || \
	  GOBIN=$(CURDIR)/.cache/bin go install helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)

$(STAMP): pyproject.toml setup.py constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "pileon needs Python >= 3.11 (set PYTHON=...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  rm -rf $(VENV); \
	  command -v apt-get >/dev/null && apt-get update -qq && apt-get install -y -qq python3-venv \
	  && $(PYTHON) -m venv $(VENV); }
	@# The near-duplicate kernels are a C extension: a compiler and Python's headers.
	@$(PYTHON) -c 'import os, sysconfig; p = sysconfig.get_paths()["include"]; \
	  raise SystemExit(not os.path.exists(os.path.join(p, "Python.h")))' && command -v cc >/dev/null || { \
	  command -v apt-get >/dev/null && $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends gcc python3-dev; }
	$(BIN)/python -m pip install -q --upgrade pip
	@# setuptools says once per editable install how it works (a meta path finder): not news.
	PYTHONWARNINGS='ignore:Editable installation' \
	  $(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

# --follow: the console stays up (its URL and a one-time admin password are printed) until Ctrl-C.
demo: $(STAMP)
	$(BIN)/pileon demo --follow

# ruff, and the import rule (docs/architecture.md): an upward import fails here.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

typecheck: $(STAMP)
	$(BIN)/mypy

# Rules and dashboards from pileon/observability (a test checks the files are up to date).
generate: $(STAMP)
	$(BIN)/pileon generate

# Everything, slow integration tests included (CI runs exactly this).
test: lint typecheck tools
	$(BIN)/python -m pytest -q --durations=10

# Unit tests only, for the edit-test loop: no brokers, and no promtool, amtool or helm (those
# run in `make test`, after `make tools`), so it passes on a machine with only Python.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not tools"

# Re-resolve constraints.txt from pyproject.toml's ranges in a fresh venv (then review and commit).
lock:
	rm -rf .cache/lock && $(PYTHON) -m venv .cache/lock
	.cache/lock/bin/python -m pip install -q --upgrade pip
	.cache/lock/bin/python -m pip install -q '.[dev]'
	{ sed -n '1,3p' constraints.txt; .cache/lock/bin/python -m pip freeze --exclude-editable \
	  | grep -v '^pileon'; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean:
	rm -rf $(VENV) .pileon pileon-demo .pytest_cache .mypy_cache .ruff_cache
