# picksel — two set-up commands for a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV  ?= .venv
BIN   := $(VENV)/bin
# textual-image >= 0.14 needs Python 3.12: prefer 3.13/3.12 when they really run
# (a pyenv shim can exist for a version that is not active), else any Python >= 3.11.
PYTHON ?= $(shell for p in python3.12 python3.13 \
	$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.1[23]*/bin/python3 2>/dev/null | sort -V) \
	python3.11 python3 python; do \
	  "$$p" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && { echo "$$p"; break; }; \
	done)
STAMP := $(VENV)/.installed

.PHONY: demo test test-clip bench bench-large lint screenshots clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "picksel needs Python >= 3.11 on PATH" >&2; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -e '.[test,demo]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/picksel demo

test: $(STAMP)
	$(BIN)/ruff check core tui tests bench
	$(BIN)/python -m pytest -n 2 -q

# The CLIP tests live in their own venv: torch is several GB and stays out of .venv.
# torch 2.14.1 + torchvision 0.29.1 are the pair that import together on this kind of
# machine (pip takes them from the local wheel store for Python 3.11).
CLIP_VENV ?= .venv-clip
CLIP_PYTHON ?= python3.11
test-clip:
	@test -x $(CLIP_VENV)/bin/python || $(CLIP_PYTHON) -m venv $(CLIP_VENV)
	$(CLIP_VENV)/bin/python -m pip install --quiet torch==2.14.1 torchvision==0.29.1
	$(CLIP_VENV)/bin/python -m pip install --quiet -e '.[test,clip]'
	$(CLIP_VENV)/bin/python -m pytest -q -m clip -p no:xdist -o addopts=""

# The bench extra (cleanvision, for the side-by-side) goes into .venv on the first
# `make bench` only, so `make test` installs stay as they were.
BENCH_STAMP := $(VENV)/.installed-bench

$(BENCH_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[test,demo,bench]'
	@touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python -m bench

# One million images (1M x 768 float32): minutes, ~6 GB of disk in bench/.cache/large (or
# $$PICKSEL_BENCH_CACHE) and ~5 GB of RAM; not part of `make bench` or `make test`.
bench-large: $(STAMP)
	$(BIN)/python -m bench large

lint: $(STAMP)
	$(BIN)/ruff check core tui tests bench

screenshots: $(STAMP)
	$(BIN)/python tests/make_screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache
