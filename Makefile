# The two commands a new user needs (README.md):
#   make synth   - install what is missing, then synthesize every environment into cdktf.out/
#   make test    - install what is missing, then run every test (terraform, checkov, emulator)

PYTHON       ?= python3
PIPENV_PIN   := pipenv==2026.10.3
VENV         := .venv
CHECKOV_VENV := .venv-checkov
PY           := $(VENV)/bin/python

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_NOSPIN := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: synth test test-fast test-emulator snapshot-update lint bench install checkov-venv cdktf-synth clean

synth: $(VENV)/.synced
	$(PY) main.py

test: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced
	$(PY) -m pytest

test-fast: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced
	$(PY) -m pytest -m "not emulator"

test-emulator: $(VENV)/.synced
	$(PY) -m pytest -m emulator

# Re-record the stack snapshots on purpose; read `git diff tests/__snapshots__` before committing.
snapshot-update: $(VENV)/.synced
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update

lint: $(VENV)/.synced
	$(PY) -m ruff check modules tests main.py
	$(PY) -m mypy modules main.py

# Synth wall time and peak memory (python and node separately), baseline vs optimized, 1x/3x/10x.
bench: $(VENV)/.synced
	$(PY) -m bench.synth $(BENCH_ARGS)

install: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced

checkov-venv: $(CHECKOV_VENV)/.synced

# `cdktf synth` through cdktf-cli 0.21 (npm); writes the same cdktf.out/ as `make synth`.
cdktf-synth: $(VENV)/.synced node_modules/.synced
	npx --no-install cdktf synth

$(VENV)/.synced: Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "$(PIPENV_PIN)"
	$(PYTHON) -m pipenv sync --dev
	@touch $@

# checkov lives in its own virtualenv: its bc-python-hcl2 replaces python-hcl2's `hcl2` module.
$(CHECKOV_VENV)/.synced: tests/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r tests/checkov/requirements.txt
	@touch $@

node_modules/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

clean:
	rm -rf cdktf.out .pytest_cache
