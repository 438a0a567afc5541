# Each target bootstraps .venv (re-installing only when pyproject.toml changed).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
PYTEST_WORKERS ?= 2

.PHONY: demo test bench lint clean venv docs fortunes

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev,docs]"
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

# Optional system data (docs/development.md): the Debian/Ubuntu fortunes files, the corpus of the
# tvq-vae experiment. A system package, so it needs root; run it yourself, nothing else calls it.
FORTUNES_DIR := /usr/share/games/fortunes
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
fortunes:
	@if [ -d $(FORTUNES_DIR) ]; then echo "the fortunes corpus is installed at $(FORTUNES_DIR)"; else \
	  echo "installing the Debian package fortunes into $(FORTUNES_DIR) (system package, needs root):"; \
	  set -x; $(SUDO) apt-get update && $(SUDO) apt-get install -y fortunes; fi

clean:
	rm -rf runs site .pytest_cache
