# i2i: `make run` builds the whole workflow on the bundled sample album; `make test` runs the tests.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# The FLUX tests need torch; 2.13.0 is the CPU build this project is tested with.
TORCH ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint format dag report clean system-test-deps

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "i2i needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev,flux]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

# exiftool checks metadata and EXIF; chromium opens the gallery page. Installed when missing.
system-test-deps:
	@command -v exiftool >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq libimage-exiftool-perl >/dev/null; }
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq chromium >/dev/null; }

test: $(VENV)/.installed-test system-test-deps
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

format: $(VENV)/.installed-test
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules/

dag: $(VENV)/.installed
	$(BIN)/snakemake --dag | dot -Tsvg > dag.svg

report: $(VENV)/.installed
	$(BIN)/snakemake --report report.html

clean:
	rm -rf results logs benchmarks .snakemake
