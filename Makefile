# README.md: Quick start (make synth, make check, make test-fast, make test) and Zero to dev
# (make bootstrap, make apply-shared, make apply-env ENV=dev, ...); Commands lists every target.

PYTHON       ?= python3
PIPENV_PIN   := pipenv==2026.10.3
VENV         := .venv
CHECKOV_VENV := .venv-checkov
PY           := $(VENV)/bin/python

export PIPENV_VENV_IN_PROJECT := 1
export PIPENV_VERBOSITY := -1
export PIPENV_NOSPIN := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: synth test test-fast test-emulator snapshot-update lint bench bench-suite install venv checkov-venv cdktf-synth clean deploy-frontend \
        checkov plan-env apply-env bootstrap apply-shared role lock grafana diagrams \
        release promote migrate verify apply-migrations check cost mirror-collector drift plan-release apply-release notify \
        canary-start canary-step canary-promote canary-abort canary-judge canary-pending

# ENVIRONMENTS=dev,stage limits the run to some environments.
synth: $(VENV)/.synced
	ENVIRONMENTS="$(ENVIRONMENTS)" $(PY) main.py

# Most of the suite's CPU is terraform and the aws provider (Go programs) starting, planning and applying
# (CONTRIBUTING.md: How long the tests take). A garbage-collection target four times Go's default cuts
# their CPU by about a fifth for ~10% more memory per process; GOGC set by the caller wins.
test test-fast test-emulator: export GOGC ?= 400

test: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced $(VENV)/.graphviz $(VENV)/.postgresql $(VENV)/.groovy
	$(PY) -m pytest

test-fast: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced $(VENV)/.graphviz $(VENV)/.postgresql $(VENV)/.groovy
	$(PY) -m pytest -m "not emulator and not slow"

test-emulator: $(VENV)/.synced
	$(PY) -m pytest -m emulator

# Re-record the stack snapshots on purpose; read `git diff tests/__snapshots__` before committing.
snapshot-update: $(VENV)/.synced
	$(PY) -m pytest tests/test_snapshots.py --snapshot-update

# The design's rule pack over cdktf.out/ (make synth first): one line per finding, exit 1 on any that
# checks/rules/suppressions.toml does not explain (README: "What the checks guarantee"). CHECK_ARGS adds
# options, e.g. CHECK_ARGS="--emulator cdktf.local" for WEBAPP-TARGET-1.
check: $(VENV)/.synced
	$(PY) -m checks cdktf.out $(CHECK_ARGS)

# Each environment's estimated monthly cost from cdktf.out/ (make synth first) and the dated price table
# checks/cost/prices.toml (README: "What it costs"). COST_ARGS adds options, e.g.
#   make cost COST_ARGS="--environment prod --assume api_requests_million=30 --sources"
cost: $(VENV)/.synced
	$(PY) -m checks.cost cdktf.out $(COST_ARGS)

# Publish a built frontend to an environment (README: "Publishing the frontend"), e.g.
#   make deploy-frontend ENV=stage DIR=dist ARGS="--wait --keep-old-days 7"
deploy-frontend: $(VENV)/.synced
	@test -n "$(ENV)" -a -n "$(DIR)" || { echo "usage: make deploy-frontend ENV=<env> DIR=<build dir> [ARGS='--dry-run ...']" >&2; exit 2; }
	$(PY) -m delivery deploy-frontend "$(ENV)" --dir "$(DIR)" $(ARGS)

# checkov over cdktf.out/ (make synth first), failing on any finding tests/checkov/suppressions.toml
# does not explain: the same gate as the test suite.
checkov: $(VENV)/.synced $(CHECKOV_VENV)/.synced
	$(PY) -m tests.harness.checkov cdktf.out/stacks

# Saved plans (make synth first; README: How a change reaches production):
#   make plan-env ENV=prod                    plans/prod/: <stack>.tfplan(.json, .txt), summary.json, summary.md
#   make apply-env ENV=prod PLANS=plans/prod  exactly those plans; ALLOW_REPLACE="<address> ..." for a production
#                                             plan that replaces or deletes a stateful resource
#   make apply-env ENV=dev                    without PLANS: plan and apply now (humans), same guards
#   make drift ENV=prod                       exit 0 no drift, 3 drift, 1 error
# LOCK_TIMEOUT=10m changes how long terraform waits for a state lock (default 5m).
TF_FLAGS = $(if $(LOCK_TIMEOUT),--lock-timeout "$(LOCK_TIMEOUT)")
# YES=1: apply without the question `delivery apply` asks on a terminal (the pipelines pass it).
APPLY_FLAGS = $(if $(YES),--yes)

# The organisation's two stacks, each planned, checked and applied like an environment's (README: Zero to dev);
# make synth (every environment) first. bootstrap: state account credentials; apply-shared (shared-cicd):
# registry account credentials. ALLOW_REPLACE as for apply-env.
bootstrap: $(VENV)/.synced
	$(PY) -m delivery apply-stack bootstrap $(foreach address,$(ALLOW_REPLACE),--allow-replace "$(address)") $(TF_FLAGS) $(APPLY_FLAGS)

apply-shared: $(VENV)/.synced
	$(PY) -m delivery apply-stack shared-cicd $(foreach address,$(ALLOW_REPLACE),--allow-replace "$(address)") $(TF_FLAGS) $(APPLY_FLAGS)

plan-env: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make plan-env ENV=<env> [OUT=plans/<env>]" >&2; exit 2; }
	$(PY) -m delivery plan "$(ENV)" --out "$(or $(OUT),plans/$(ENV))" $(TF_FLAGS)

apply-env: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make apply-env ENV=<env> [PLANS=plans/<env>] [ALLOW_REPLACE='<address> ...']" >&2; exit 2; }
	$(PY) -m delivery apply "$(ENV)" $(if $(PLANS),--plans "$(PLANS)") $(foreach address,$(ALLOW_REPLACE),--allow-replace "$(address)") $(TF_FLAGS) $(APPLY_FLAGS)

drift: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make drift ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery drift "$(ENV)" --out "plans/drift-$(ENV)" $(TF_FLAGS)

# An application release (environments/<env>.release.hcl changed): <env>-api only, refused when its plan
# holds anything but task definitions and ECS services (infrastructure goes through the infra pipeline).
plan-release: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make plan-release ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery plan "$(ENV)" --release --out "plans/release-$(ENV)" $(TF_FLAGS)

apply-release: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make apply-release ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery apply "$(ENV)" --release --plans "plans/release-$(ENV)" $(TF_FLAGS) $(APPLY_FLAGS)

# A message to the pipeline report topic (the CI role may publish), e.g. the drift summary.
notify: $(VENV)/.synced
	@test -n "$(SUBJECT)" -a -n "$(FILE)" || { echo "usage: make notify SUBJECT=<subject> FILE=<message file>" >&2; exit 2; }
	$(PY) -m delivery notify --subject "$(SUBJECT)" --message-file "$(FILE)"

# The delivery steps of the application pipeline (README: Delivery), in the project's virtualenv:
#   make release SERVICE=service1 TAG=3f2c1a9     make promote FROM=dev TO=stage SERVICE=service1 TAG=3f2c1a9
#   make migrate ENV=dev                          make verify ENV=dev
release: $(VENV)/.synced
	@test -n "$(SERVICE)" -a -n "$(TAG)" || { echo "usage: make release SERVICE=<service> TAG=<tag>" >&2; exit 2; }
	$(PY) -m delivery release --service "$(SERVICE)" --tag "$(TAG)"

# The ADOT collector sidecar, copied into the registry with every platform (README: Delivery):
#   make mirror-collector [SOURCE=public.ecr.aws/aws-observability/aws-otel-collector:<tag>]
mirror-collector: $(VENV)/.synced
	@set -- $$($(PY) -m delivery collector-image $(if $(SOURCE),--source "$(SOURCE)")) && ci/mirror-image.sh "$$1" "$$2" "$$3"
	$(PY) -m delivery collector-image --check

promote: $(VENV)/.synced
	@test -n "$(FROM)" -a -n "$(TO)" || { echo "usage: make promote FROM=<env> TO=<next env> [SERVICE=<service> [TAG=<tag>]]" >&2; exit 2; }
	$(PY) -m delivery promote "$(FROM)" "$(TO)" $(if $(SERVICE),--service "$(SERVICE)") $(if $(TAG),--tag "$(TAG)")

# Canary releases (README: Releasing with a canary): each action but judge rewrites <env>.release.hcl.
CANARY = @test -n "$(ENV)" -a -n "$(SERVICE)" || { echo "usage: make $@ ENV=<env> SERVICE=<service> [PERCENT=<share>]" >&2; exit 2; }; \
	$(PY) -m delivery canary $(patsubst canary-%,%,$@) "$(ENV)" --service "$(SERVICE)" $(if $(PERCENT),--percent "$(PERCENT)")

canary-start: $(VENV)/.synced
	$(CANARY)

canary-step: $(VENV)/.synced
	$(CANARY)

canary-promote: $(VENV)/.synced
	$(CANARY)

canary-abort: $(VENV)/.synced
	$(CANARY)

# The services a promotion to ENV would change, space-separated (the pipeline canaries each).
canary-pending: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make canary-pending ENV=<env>" >&2; exit 2; }
	@$(PY) -m delivery canary pending "$(ENV)"

canary-judge: $(VENV)/.synced
	@test -n "$(ENV)" -a -n "$(SERVICE)" -a -n "$(BAKE)" || { echo "usage: make canary-judge ENV=<env> SERVICE=<service> BAKE=<minutes>" >&2; exit 2; }
	$(PY) -m delivery canary judge "$(ENV)" --service "$(SERVICE)" --bake "$(BAKE)"

# The release's Flyway task definition alone (a targeted apply of <env>-api), before `make migrate`.
apply-migrations: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make apply-migrations ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery apply-migrations "$(ENV)" $(TF_FLAGS)

migrate: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make migrate ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery migrate "$(ENV)"

verify: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make verify ENV=<env>" >&2; exit 2; }
	$(PY) -m delivery verify "$(ENV)"

# The ARN of a role the pipeline assumes with its Jenkins id token (derived from the environment
# files, no AWS call), e.g.  make --silent role ROLE=ci   make --silent role ROLE=plan ENV=prod
role: $(VENV)/.synced
	@test -n "$(ROLE)" || { echo "usage: make role ROLE=ci|plan|deploy [ENV=<env>]" >&2; exit 2; }
	@$(PY) -m delivery role "$(ROLE)" $(ENV)

# The infrastructure pipeline's lock on an environment, <project>-<env>, from the environment files, e.g.
#   make --silent lock ENV=prod   ->   webapp-prod
lock: $(VENV)/.synced
	@test -n "$(ENV)" || { echo "usage: make lock ENV=<env>" >&2; exit 2; }
	@$(PY) -m delivery lock "$(ENV)"

# Architecture pictures (PNG + SVG per environment and per tier) drawn from cdktf.out/; they are
# committed, linked from README.md (What you get), so re-run this after changing the stacks.
# Grafana dashboards from the environment files (docs/grafana/<env>.json; README "Grafana").
grafana: $(VENV)/.synced
	$(PY) -m modules.api.grafana environments docs/grafana

diagrams: synth $(VENV)/.graphviz
	$(PY) -m diagrams_gen --out docs/architecture --synth-dir cdktf.out

lint: $(VENV)/.synced
	$(PY) -m ruff check modules delivery bench diagrams_gen checks tests main.py
	$(PY) -m mypy modules delivery diagrams_gen checks main.py

# Synth wall time and peak memory (python and node separately), baseline vs optimized, 1x/3x/10x.
bench: $(VENV)/.synced
	$(PY) -m bench.synth $(BENCH_ARGS)

# Where the test suite's CPU goes: wall time, exact CPU, CPU by program and by where terraform ran
# (python -m bench.suite; CONTRIBUTING.md: How long the tests take). SUITE=test-fast for the fast suite.
bench-suite: $(VENV)/.synced
	$(PY) -m bench.suite $(SUITE_ARGS) -- $(MAKE) --no-print-directory $(or $(SUITE),test)

install: $(VENV)/.synced $(CHECKOV_VENV)/.synced node_modules/.synced

checkov-venv: $(CHECKOV_VENV)/.synced

# Only the project's virtualenv (what the delivery commands need), e.g. on a fresh CI agent before
# `make --silent role ROLE=ci`, whose output would otherwise start with pipenv's.
venv: $(VENV)/.synced

# `cdktf synth` through cdktf-cli 0.21 (npm); writes the same cdktf.out/ as `make synth`.
cdktf-synth: $(VENV)/.synced node_modules/.synced
	npx --no-install cdktf synth

$(VENV)/.synced: Pipfile.lock
	@$(PYTHON) -m pipenv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "$(PIPENV_PIN)"
	$(PYTHON) -m pipenv sync --dev
	@touch $@

# Graphviz's `dot` draws the architecture pictures. As root (CI, containers) it is installed
# from the distribution; elsewhere installing system packages is the user's call, so this only
# says how, and the picture tests skip (CI=true makes them fail instead).
$(VENV)/.graphviz: | $(VENV)/.synced
	@if command -v dot >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq graphviz && touch $@; \
	else echo "note: Graphviz is missing; install it with 'sudo apt-get install graphviz' or 'brew install graphviz'" >&2; fi

# PostgreSQL's server (initdb, pg_ctl, psql): the tests start their own throwaway server to run the
# database logins' SQL against (tests/harness/postgres.py). Installed like Graphviz: as root from the
# distribution, elsewhere only a hint (the tests skip; CI=true makes them fail).
$(VENV)/.postgresql: | $(VENV)/.synced
	@if command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql && touch $@; \
	else echo "note: PostgreSQL is missing; install it with 'sudo apt-get install postgresql' or 'brew install postgresql'" >&2; fi

# Groovy parses the Jenkinsfiles in the tests (a syntax error fails the suite); installed like
# Graphviz: from the distribution as root, else a note, and the parse tests skip (fail with CI=true).
$(VENV)/.groovy: | $(VENV)/.synced
	@if command -v groovy >/dev/null 2>&1; then touch $@; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq groovy && touch $@; \
	else echo "note: Groovy is missing; install it with 'sudo apt-get install groovy' or 'brew install groovy'" >&2; fi

# checkov lives in its own virtualenv: its bc-python-hcl2 replaces python-hcl2's `hcl2` module.
$(CHECKOV_VENV)/.synced: tests/checkov/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet -r tests/checkov/requirements.txt
	@touch $@

node_modules/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

clean:
	rm -rf cdktf.out plans .pytest_cache
