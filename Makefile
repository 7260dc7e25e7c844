# fnas-hls: every target bootstraps the virtual environment it needs (.venv) on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

BOARD    ?= pynq
SPACE    ?=
OUT      ?=
SPEC_MS  ?=
EPISODES ?=
STYLE    ?=
DEVICE   ?=
BENCH    ?= full

PROJECT  ?=

.PHONY: help venv test lint search sweep compare bench clean

help:
	@echo "make test                 lint + unit and end-to-end tests"
	@echo "make search BOARD=pynq    the architecture search on digits [SPACE=fashion SPEC_MS= EPISODES= STYLE= DEVICE= OUT= RESUME=1 FORCE=1]"
	@echo "make sweep BOARD=pynq     latency of every architecture of SPACE (default fnas-mnist) on BOARD"
	@echo "make compare PROJECT=dir  predicted vs synthesized latency of an emitted project"
	@echo "make bench [BENCH=quick]  benchmarks, as ratios measured side by side"

# torch is pinned to the CPU build (2.13.0) that this machine keeps on disk: a plain `torch`
# requirement would pull a CUDA build of several GB. The project itself asks for torch>=2.1,<3.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check fnas_hls tests bench

test: lint
	$(BIN)/python -m pytest -q -m "not slow"

sweep: $(STAMP)
	$(BIN)/fnas-hls sweep --space $(or $(SPACE),fnas-mnist) --board $(BOARD) $(if $(SPEC_MS),--spec-ms $(SPEC_MS))

# The main job: the search on the embedded default space (scikit-learn's digits), leaving
# runs/<space>-<board>/ (RESUME=1 continues an interrupted run, FORCE=1 starts it afresh).
# SPACE=fashion searches on Fashion-MNIST (apt-get install dataset-fashion-mnist, or data/fashion-mnist/).
search: $(STAMP)
	$(BIN)/fnas-hls search --space $(or $(SPACE),digits) --board $(BOARD) \
		$(if $(SPEC_MS),--spec-ms $(SPEC_MS)) $(if $(EPISODES),--episodes $(EPISODES)) \
		$(if $(STYLE),--style $(STYLE)) $(if $(DEVICE),--device $(DEVICE)) $(if $(OUT),--out $(OUT)) $(if $(RESUME),--resume) $(if $(FORCE),--force) \
		$(if $(BATCH),--batch $(BATCH)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(RAY),--ray $(RAY))

compare: $(STAMP)
	@test -n "$(PROJECT)" || { echo "usage: make compare PROJECT=<folder written by fnas-hls emit>"; exit 2; }
	$(BIN)/fnas-hls compare $(PROJECT)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[ray]"  # the workers section runs the search on Ray
	$(BIN)/python -m bench.run --mode $(BENCH)

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
