# paramstack developer tasks. `make help` lists them.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-builtin-rules

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := postgres,train,ecg,llm,data,rag,presidio,deploy,otel,pipeline,dev

PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv install run lint test bench bench-llm bench-gateway deploy-check deploy-smoke clean distclean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# The virtualenv is rebuilt only when pyproject.toml changes (or the stamp is removed).
# torch is pinned exactly in the `train` extra; pip takes the local CPU wheel via its
# configured find-links, so no index options are given here.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[$(EXTRAS)]'
	@touch $@

venv: $(STAMP) ## create .venv and install the project with all extras
install: $(STAMP) ## same as venv

run: $(STAMP) ## train + register the demo model, then serve on 127.0.0.1:8000
	$(BIN)/paramstack quickstart
	$(BIN)/paramstack serve

lint: $(STAMP) ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# Starts (installing if needed) the local PostgreSQL and Redis servers for the `postgres` and
# Redis limiter tests unless PARAMSTACK_TEST_POSTGRES_URL / PARAMSTACK_TEST_REDIS_URL are
# already set; each script's last stdout line is the URL.
test: $(STAMP) ## start PostgreSQL and Redis, lint, then pytest (extra args: PYTEST_ARGS=...)
	@if [[ -z "$${PARAMSTACK_TEST_POSTGRES_URL:-}" ]]; then \
	    PARAMSTACK_TEST_POSTGRES_URL="$$(scripts/start-postgres.sh | tail -n 1)"; \
	fi; \
	export PARAMSTACK_TEST_POSTGRES_URL; \
	echo "PARAMSTACK_TEST_POSTGRES_URL=$$PARAMSTACK_TEST_POSTGRES_URL"; \
	if [[ -z "$${PARAMSTACK_TEST_REDIS_URL:-}" ]]; then \
	    PARAMSTACK_TEST_REDIS_URL="$$(scripts/start-redis.sh | tail -n 1)"; \
	fi; \
	export PARAMSTACK_TEST_REDIS_URL; \
	echo "PARAMSTACK_TEST_REDIS_URL=$$PARAMSTACK_TEST_REDIS_URL"; \
	$(MAKE) --no-print-directory lint; \
	$(BIN)/pytest -q $(PYTEST_ARGS)

bench: $(STAMP) ## predict-endpoint benchmark (extra args: BENCH_ARGS=...)
	$(BIN)/python bench/predict.py $(BENCH_ARGS)

deploy-check: $(STAMP) ## validate every deployment artefact offline (needs deploy/scripts/install-tools.sh)
	$(BIN)/paramstack deploy check

deploy-smoke: $(STAMP) ## build the gateway image with podman, run it, predict, stop (root)
	PYTHON=$(BIN)/python deploy/scripts/smoke-image.sh

bench-llm: $(STAMP) ## in-process LLM backend vs plain model.generate, tokens/s (BENCH_ARGS=...)
	$(BIN)/python bench/llm_local.py $(BENCH_ARGS)

# wrk (the load generator) comes from Debian; LiteLLM and Portkey are installed by the script
# itself into bench/.venvs and bench/.node (pinned, outside .venv).
bench-gateway: $(STAMP) ## LLM gateway vs LiteLLM and Portkey in one run (extra args: BENCH_ARGS=...)
	@command -v wrk >/dev/null || $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y wrk
	$(BIN)/python bench/gateway.py $(BENCH_ARGS)

clean: ## remove caches and build outputs (keeps .venv and var/)
	rm -rf build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis bench/results
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -exec rm -rf {} +
	find . -path ./$(VENV) -prune -o -type d -name '*.egg-info' -exec rm -rf {} +

distclean: clean ## also remove .venv and the local data folder var/
	rm -rf $(VENV) var
