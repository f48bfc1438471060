# Two entry points do all the set-up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck unit crds manifests lock bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/credwarden demo

lint: $(STAMP)
	$(BIN)/ruff check operator tests bench e2e deploy
	$(BIN)/ruff format --check operator tests bench e2e deploy

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

test: lint typecheck unit

crds: $(STAMP)
	$(BIN)/credwarden crds --output-dir crds
	$(BIN)/python deploy/generate.py

manifests: $(STAMP)
	$(BIN)/python deploy/generate.py

lock:
	bash deploy/lock.sh

bench: $(STAMP)
	$(BIN)/python bench/engine_bench.py

clean:
	rm -rf $(VENV) .venv-helm .pytest_cache .mypy_cache .ruff_cache
