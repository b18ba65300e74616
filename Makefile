# OMNIX developer tasks. `make help` lists them.
#
# Everything runs from the project's own virtualenv (.venv) and node_modules, both created on
# demand, so `make test` works on a fresh clone with nothing but python3, node and npm installed.
# Installs are stamped: pip runs again only when pyproject.toml changes, npm ci only when
# package-lock.json does (or node_modules is missing).

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check --no-input
NPM ?= npm
# pip warns once per package about configured local indexes that do not exist on this machine
PIP_NOISE := { grep -v "^WARNING: Location '[^']*' is ignored: it is neither a file nor a directory" || true; }

INSTALL_STAMP := $(VENV)/.omnix-installed
DEV_STAMP := $(VENV)/.omnix-dev-installed
NODE_STAMP := node_modules/.omnix-npm-ci

OMNIX_PORT ?= 8000
OMNIX_DATA_DIR ?= ./data
IMAGE ?= omnix:dev

step = @printf '==> %s\n' "$(1)"

.PHONY: help install dev-install node-deps run test lint bench schema clean distclean docker

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(call step,creating $(VENV) with $(PYTHON))
	@$(PYTHON) -m venv $(VENV)

$(INSTALL_STAMP): pyproject.toml | $(BIN)/python
	$(call step,installing omnix into $(VENV) (pyproject.toml changed))
	@$(PIP) install -e . 2>&1 | $(PIP_NOISE)
	@touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(call step,installing omnix with dev extras into $(VENV) (pyproject.toml changed))
	@$(PIP) install -e '.[dev]' 2>&1 | $(PIP_NOISE)
	@touch $@ $(INSTALL_STAMP)

$(NODE_STAMP): package.json package-lock.json
	$(call step,npm ci (node clients for the e2e tests))
	@command -v $(NPM) >/dev/null || { echo "npm not found: install Node.js 20+ and npm" >&2; exit 1; }
	@$(NPM) ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(INSTALL_STAMP) ## create .venv and install the app (only when pyproject.toml changed)

dev-install: $(DEV_STAMP) $(NODE_STAMP) ## install the app, dev tools and the e2e node clients

node-deps: $(NODE_STAMP)

run: $(INSTALL_STAMP) ## serve GraphQL on OMNIX_PORT (8000) with data in OMNIX_DATA_DIR (./data)
	$(call step,omnix serve on port $(OMNIX_PORT) with data in $(OMNIX_DATA_DIR))
	@OMNIX_DATA_DIR='$(OMNIX_DATA_DIR)' OMNIX_PORT='$(OMNIX_PORT)' $(BIN)/omnix serve --port '$(OMNIX_PORT)'

# Each gate runs even when an earlier one failed, so one run reports every problem; the target
# fails at the end if any gate did.
GATES = failed=(); \
	gate() { local name=$$1; shift; printf '==> %s\n' "$$name"; "$$@" || failed+=("$$name"); }; \
	imports() { $(BIN)/lint-imports --no-cache --no-logo > $(VENV)/lint-imports.log 2>&1 \
		&& grep -E '^Contracts: ' $(VENV)/lint-imports.log \
		|| { cat $(VENV)/lint-imports.log; return 1; }; }; \
	verdict() { if [ -n "$${failed[*]}" ]; then \
		printf '==> FAILED:' >&2; printf ' [%s]' "$${failed[@]}" >&2; echo >&2; exit 1; fi; \
		echo "==> all gates passed"; }
LINT_GATES = gate "ruff check" $(BIN)/ruff check --quiet .; \
	gate "lint-imports (dependency rule)" imports; \
	gate "mypy" $(BIN)/mypy

lint: $(DEV_STAMP) ## ruff, import-linter contracts and mypy
	@$(GATES); $(LINT_GATES); verdict

test: $(DEV_STAMP) $(NODE_STAMP) ## lint gates, then unit, integration and e2e tests (pytest)
	@$(GATES); $(LINT_GATES); gate "pytest (unit, integration, e2e)" $(BIN)/pytest; verdict

bench: $(DEV_STAMP) ## run tests/bench/bench_*.py (BENCH=graphql for one, BENCH_ARGS=... passed on)
	@shopt -s nullglob; scripts=(tests/bench/bench_$(or $(BENCH),*).py); \
	if [ $${#scripts[@]} -eq 0 ]; then \
		echo "no benchmark matches tests/bench/bench_$(or $(BENCH),*).py" >&2; exit 1; fi; \
	for script in "$${scripts[@]}"; do \
		printf '==> %s\n' "$$script"; \
		$(BIN)/python "$$script" $(BENCH_ARGS); \
	done

schema: $(INSTALL_STAMP) ## regenerate the committed schema/schema.graphql from the code
	$(call step,exporting schema/schema.graphql)
	@$(BIN)/python -m schema.export > schema/schema.graphql.tmp \
		&& mv schema/schema.graphql.tmp schema/schema.graphql \
		|| { rm -f schema/schema.graphql.tmp; exit 1; }

docker: ## build the container image (IMAGE=omnix:dev)
	$(call step,docker build -t $(IMAGE))
	@docker build -t '$(IMAGE)' .

clean: ## remove caches and build output (keeps .venv, node_modules and data)
	$(call step,cleaning caches)
	@find . -path ./$(VENV) -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
	@rm -rf .pytest_cache .mypy_cache .ruff_cache .import_linter_cache build dist *.egg-info

distclean: clean ## also remove .venv and node_modules
	$(call step,removing $(VENV) and node_modules)
	@rm -rf $(VENV) node_modules
