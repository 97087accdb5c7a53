# `make demo` and `make test` bootstrap the environment themselves (idempotently) on a machine that has
# only python3: uv is installed with pip if missing, then `uv sync --all-packages --compile-bytecode` builds .venv.
SHELL := /bin/bash
PYTHON ?= python3
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV := .venv
STAMP := $(VENV)/.synced
RUN := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: demo test bootstrap lint clean-data

bootstrap: $(STAMP)

# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (this VM), every command would
# otherwise compile torch's sources again (~10 s of each recognizer or GAN start-up on 2 cores). The stamp
# follows this file too, so a .venv synced before a change of these flags is synced again.
$(STAMP): Makefile uv.lock pyproject.toml packages/common/pyproject.toml packages/gan_aug/pyproject.toml packages/recognizer/pyproject.toml packages/experiment/pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --all-packages --locked --compile-bytecode
	@touch $(STAMP)

# The whole chain (packages/experiment: expr_experiment/chain.py): corpus, prepare, GAN, samples, FID, fidelity, recognizer arms,
# ablation, runs/demo/report.md. Rerunning continues where an interrupted run stopped.
demo: $(STAMP)
	$(VENV)/bin/expr-experiment chain --config configs/chain/demo.yaml --run-dir runs/demo

test: $(STAMP)
	$(RUN) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check packages tests benchmarks

clean-data:
	rm -rf data runs
