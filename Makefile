# agentsim — the two commands are `make demo` and `make test` (see README.md).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# llama-cpp-python builds from source: skip multimodal, build a portable wheel.
# pip's wheel cache is kept on purpose (never --no-cache-dir): a second install takes seconds.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF
export FORCE_CMAKE ?= 1
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install demo test test-fast test-slow bench lint clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade 'pip>=25'

$(VENV)/.installed: pyproject.toml constraints.txt | $(VENV)/bin/python
	$(PIP) install -c constraints.txt -e '.[all,dev]'
	touch $@

install: $(VENV)/.installed

## The main job: bundled scenarios x precisions, a comparison table, a database to browse.
demo: install
	$(VENV)/bin/agentsim demo

## The test suite (fast tier + the real-model tier where the model is available).
test: install
	$(PY) -m pytest

test-slow: install
	$(PY) -m pytest --runslow

bench: install
	$(PY) benchmarks/run_all.py

lint: install
	$(VENV)/bin/ruff check agentsim backends tui tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
