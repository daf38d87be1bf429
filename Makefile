# The two commands of the README: `make run` and `make test`.
PYTHON ?= python3
PORT ?= 8000
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The project on the venv's path: `.venv/bin/python -m chalicelib` works from any directory.
LINKED := $(VENV)/.linked

.PHONY: run test lint imports format bench bench-ingest bench-imports bench-cold bench-load bench-emulator run-aws emulate clean clean-all

# Before anything uses .venv: Python 3.11+ (said in one line, before a venv or pip is touched),
# and a .venv made by another Python is removed, to be rebuilt below.
ifeq ($(filter-out clean clean-all,$(or $(MAKECMDGOALS),run)),$(or $(MAKECMDGOALS),run))
PYTHON_PROBLEM := $(shell $(PYTHON) tools/venv.py check $(VENV) || echo "cannot run $(PYTHON)")
ifneq ($(PYTHON_PROBLEM),)
$(error $(PYTHON_PROBLEM))
endif
endif

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

$(LINKED): $(STAMP)
	$(BIN)/python tools/venv.py link
	touch $(LINKED)

## Load the bundled sample shop, train, and serve on http://127.0.0.1:$(PORT) (local provider).
run: $(LINKED)
	$(BIN)/python -m chalicelib serve --bootstrap --port $(PORT)

## The whole AWS path on one machine: moto (S3, SQS, Kinesis, DynamoDB), the Personalize
## emulator, Lambda's event sources played locally, the API on the personalize provider at :8000.
run-aws: $(LINKED)
	$(BIN)/python -m chalicelib run-aws

## Amazon Personalize's three APIs on the local engine at http://127.0.0.1:8001.
emulate: $(LINKED)
	$(BIN)/python -m chalicelib emulate

## The whole test suite.
test: $(LINKED)
	$(BIN)/python -m pytest

lint: $(LINKED)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python tools/imports.py --check

## The import graph, layer by layer (app, edges, seam, providers, engine, shared), checked.
imports: $(STAMP)
	$(BIN)/python tools/imports.py

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Benchmarks: serving latency through the Chalice handler; offline quality against peers.
bench: $(STAMP)
	$(BIN)/python bench/serving.py
	$(BIN)/python bench/engine.py

## Ingestion and import throughput against their peers (SPEC §7).
bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest.py

## GetRecommendations through boto3 against the emulator, beside the engine in process.
bench-emulator: $(STAMP)
	$(BIN)/python bench/emulator.py

bench-imports: $(STAMP)
	$(BIN)/python bench/imports.py

## chalice local against the production server, 16 clients on loopback (SPEC §7).
bench-load: $(STAMP)
	$(BIN)/python bench/load.py

## A cold Lambda container from the packaged zip, with and without bytecode (SPEC §7).
bench-cold: $(STAMP)
	$(BIN)/python bench/cold_start.py

## The store (.data: datasets, models) and caches; .venv stays (`make clean-all` removes it too).
clean:
	rm -rf .data .pytest_cache .ruff_cache .mypy_cache

clean-all: clean
	rm -rf $(VENV)
