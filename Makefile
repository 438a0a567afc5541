# Each target bootstraps .venv (re-installing only when pyproject.toml changed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: demo test bench lint clean venv docs

venv: $(STAMP)

$(STAMP): pyproject.toml
	@# system data the library uses (the fortunes corpus); only as root with apt, never fatal
	@if [ ! -d /usr/share/games/fortunes ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing Debian package fortunes (topic-model corpus)"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fortunes) >/dev/null 2>&1 \
	    || echo "note: could not install fortunes; the tvq-vae experiment will say how"; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,docs]"
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/reprozoo run all --preset quick
	@echo "open runs/index.html in a browser"

lint: $(STAMP)
	$(BIN)/ruff check src tests

test: lint
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=15

docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site/index.html"

bench: $(STAMP)
	$(BIN)/reprozoo bench all --out benchmarks/results --overwrite

clean:
	rm -rf runs site .pytest_cache
