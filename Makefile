# gankit: `make demo` trains ProGAN on the built-in digits (about 5 min on 2 CPU cores); `make test` runs the test suite.
# Both create .venv on first use and install gankit into it (no system packages needed).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_WORKERS ?= 2
# `make install TORCH_INDEX=https://download.pytorch.org/whl/cpu` installs PyTorch's CPU build
# first (about 0.2 GB instead of about 5.3 GB with the CUDA libraries PyPI's Linux wheel pulls in).
TORCH_INDEX ?=
# `make demo THREADS=1` (other work on the cores) or `make demo DEVICE=cuda`; empty: gankit's default.
THREADS ?=
DEVICE ?=
DEMO_FLAGS := $(if $(THREADS),--threads $(THREADS)) $(if $(DEVICE),--device $(DEVICE))

.PHONY: help install test browser-deps demo explore lint format clean

help:
	@echo "make install  create .venv and install gankit (TORCH_INDEX=https://download.pytorch.org/whl/cpu: CPU-only PyTorch)"
	@echo "make demo     install, then train ProGAN 4x4 -> 32x32 on the digits (about 5 min on 2 CPU cores; THREADS=N, DEVICE=cuda)"
	@echo "make explore  install Flask, then serve the web page of runs/demo (RUN=runs/other) on http://127.0.0.1:7860/"
	@echo "make test     install with the test extras, then run the test suite (after browser-deps)"
	@echo "make browser-deps  install Debian's chromium for the browser tests (as root, if missing; never fails)"
	@echo "make lint     ruff check and format check"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --disable-pip-version-check torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --disable-pip-version-check torch torchvision --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed

# Fails on any test failure and on "no tests collected" (pytest exit code 5).
test: $(VENV)/.installed-test browser-deps
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) -q --durations=15

# The browser tests of `gankit explore` (tests/explore/test_explore_browser.py) drive Debian's
# chromium through Playwright (never `playwright install`). Installs it with apt-get when running as
# root and it is missing; otherwise says why and carries on: those tests then skip, `make test` goes on.
browser-deps:
	@if command -v chromium >/dev/null 2>&1; then \
		echo "browser-deps: chromium found at $$(command -v chromium)"; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "browser-deps: chromium missing and not root; the browser tests will skip (as root: apt-get install chromium)"; \
	elif ! command -v apt-get >/dev/null 2>&1; then \
		echo "browser-deps: chromium missing and no apt-get; the browser tests will skip (install chromium and put it on PATH)"; \
	else \
		echo "browser-deps: installing Debian's chromium with apt-get"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null) \
			|| echo "browser-deps: apt-get could not install chromium; the browser tests will skip"; \
	fi

demo: $(VENV)/.installed
	@rm -rf runs/demo
	$(BIN)/gankit train configs/progan-digits-demo.yaml --out runs/demo $(DEMO_FLAGS)

# `make explore` after `make demo` (or RUN=runs/other): gankit explore's page on 127.0.0.1:7860.
RUN ?= runs/demo
$(VENV)/.installed-explore: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[explore]'
	@touch $@

explore: $(VENV)/.installed-explore
	$(BIN)/gankit explore $(RUN) $(if $(THREADS),--threads $(THREADS)) $(if $(DEVICE),--device $(DEVICE))

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(VENV)/.installed-test
	$(BIN)/ruff format src tests benchmarks

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .ruff_cache
