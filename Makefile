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

.PHONY: install demo test test-fast test-slow bench lint clean browser agent-example device-kit

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

## The bundled example agent (examples/agents/shop, pydantic-ai) at f16 and q4_0, replayed, reported.
agent-example: install
	AGENTSIM=$(VENV)/bin/agentsim PYTHON=$(PY) bash examples/agents/shop/run.sh

## A headless browser for the report test (tests/e2e/test_report_browser.py): Debian's chromium,
## installed with apt-get when missing and run as root (CI); otherwise skipped with a message.
browser:
	@if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then \
	  echo "browser: $$(command -v chromium || command -v chromium-browser)"; \
	elif [ "$$(id -u)" != "0" ]; then \
	  echo "browser: chromium is missing and this is not root: not installing it (the HTML report's browser test skips; as root: make browser)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: chromium is missing and there is no apt-get: install chromium to run the HTML report's browser test"; \
	else \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

## The test suite (fast tier + the real-model tier where the model is available), one worker per
## core (pytest-xdist; a file's tests stay in one worker, so module fixtures are built once).
## TEST_WORKERS=0 runs it in this process, serially.
TEST_WORKERS ?= auto
test: install browser
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

test-slow: install
	$(PY) -m pytest --runslow

bench: install
	$(PY) benchmarks/run_all.py

## The wheelhouse a bare GPU machine's CPython 3.12 installs from (benchmarks/device_check.py;
## docs/gpu.md): the wheels agentsim needs there, and the lab models that are not package data.
device-kit: install
	$(PY) benchmarks/device_kit.py

lint: install
	$(VENV)/bin/ruff check agentsim backends tui tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info
