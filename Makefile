# Everything bootstraps itself: the first target run builds .venv/ from pyproject.toml.
# `make ask` installs only what running qabot needs; `make test` adds the dev, ray, serve and serve-ray extras.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
Q      ?= Which road did Azerbaijan propose to help Armenian residents in Karabakh?

.PHONY: ask index bot test lint bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@# torch first and pinned: 2.13.0 resolves to the CPU wheel; a looser spec pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.dev: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e ".[dev,ray,serve,serve-ray]"
	touch $@

ask: $(VENV)/.installed  ## answer Q about the shipped seeds (builds the index first if needed)
	$(BIN)/qabot ask "$(Q)"

index: $(VENV)/.installed
	$(BIN)/qabot index

bot: $(VENV)/.installed
	$(BIN)/qabot bot

lint: $(VENV)/.dev
	$(BIN)/ruff check qabot tests benchmarks
	$(BIN)/mypy qabot tests benchmarks

test: lint  ## lint, type-check, then the whole suite (offline, real model, real FAISS)
	$(BIN)/python -m pytest -q

bench: $(VENV)/.dev
	$(BIN)/python benchmarks/core.py

clean:
	rm -rf $(VENV) embeddings .pytest_cache .mypy_cache .ruff_cache .hypothesis
