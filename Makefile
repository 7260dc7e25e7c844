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

.PHONY: help venv test lint search sweep compare deploy bench clean fashion-mnist

help:
	@echo "make test                 lint + unit and end-to-end tests"
	@echo "make search BOARD=pynq    the architecture search on digits [SPACE=fashion SPEC_MS= EPISODES= STYLE= DEVICE= FINAL_K= FINAL_EPOCHS= QAT_EPOCHS= OUT= RESUME=1 FORCE=1]"
	@echo "make sweep BOARD=pynq     latency of every architecture of SPACE (default fnas-mnist) on BOARD"
	@echo "make compare PROJECT=dir  predicted vs synthesized latency of an emitted project"
	@echo "make deploy PROJECT=dir BOARD=b OUT=dir   block design script and PYNQ driver of an emitted project"
	@echo "make bench [BENCH=quick]  benchmarks, as ratios measured side by side"
	@echo "make fashion-mnist        Fashion-MNIST from Debian (dataset-fashion-mnist), as root or with sudo"

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
		$(if $(BATCH),--batch $(BATCH)) $(if $(WORKERS),--workers $(WORKERS)) $(if $(RAY),--ray $(RAY)) \
		$(if $(FINAL_K),--final-k $(FINAL_K)) $(if $(FINAL_EPOCHS),--final-epochs $(FINAL_EPOCHS)) $(if $(QAT_EPOCHS),--qat-epochs $(QAT_EPOCHS))

deploy: $(STAMP)
	@test -n "$(PROJECT)" -a -n "$(OUT)" || { echo "usage: make deploy PROJECT=<folder written by fnas-hls emit> BOARD=<board> OUT=<folder>"; exit 2; }
	$(BIN)/fnas-hls deploy $(PROJECT) --board $(BOARD) -o $(OUT)

compare: $(STAMP)
	@test -n "$(PROJECT)" || { echo "usage: make compare PROJECT=<folder written by fnas-hls emit>"; exit 2; }
	$(BIN)/fnas-hls compare $(PROJECT)

# The search section trains on Fashion-MNIST: bench gets it as CI does when it can (root or
# sudo without a password); when it cannot, bench.run says so before it starts and leaves those
# sections out.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[ray]"  # the workers section runs the search on Ray
	-@$(MAKE) --no-print-directory fashion-mnist
	$(BIN)/python -m bench.run --mode $(BENCH)

# Fashion-MNIST from Debian into /usr/share/datasets/fashion-mnist/ (what CI installs too).
FASHION := /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz
fashion-mnist:
	@if [ -f $(FASHION) ] || [ -n "$$(ls data/fashion-mnist/train-images-idx3-ubyte* 2>/dev/null)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
		echo "fashion-mnist: needs root to install the Debian package: sudo apt-get install dataset-fashion-mnist (or put the four idx files in data/fashion-mnist/)" >&2; exit 1; fi; \
	for attempt in 1 2; do \
		if $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dataset-fashion-mnist; then exit 0; fi; \
		echo "fashion-mnist: apt-get install dataset-fashion-mnist failed (attempt $$attempt)" >&2; sleep 10; \
	done; exit 1

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
