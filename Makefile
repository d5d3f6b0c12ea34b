# i2i: `make run` builds the whole workflow on the bundled sample album; `make test` runs the tests.
# Both create .venv and install what they need on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= all
# The FLUX tests need torch; 2.13.0 is the CPU build this project is tested with.
TORCH ?= torch==2.13.0
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Daemons such as slurmctld live in sbin, which a plain user's PATH may lack.
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: run photos test lint format dag report clean system-test-deps wheel

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "i2i needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# The workflow's console is a Snakemake logger plugin (profiles/default: logger: i2i). Snakemake
# only finds plugins installed as regular packages, so it is not installed editable (the wheel
# carries it too, so that one `pip install` of the wheel gives both).
LOGGER_PLUGIN := snakemake-logger-plugin-i2i
$(VENV)/.installed: pyproject.toml setup.py $(LOGGER_PLUGIN)/pyproject.toml \
		$(wildcard $(LOGGER_PLUGIN)/snakemake_logger_plugin_i2i/*.py) | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e . ./$(LOGGER_PLUGIN)
	touch $@

# Linting and formatting need the dev tools, not torch.
$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e '.[dev,flux,slurm,photos,quantize]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

# Restyle an Apple Photos library end to end:
#   make photos LIBRARY="$$HOME/Pictures/Photos Library.photoslibrary"
$(VENV)/.installed-photos: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[photos]'
	touch $@

photos: $(VENV)/.installed-photos
	@test -n "$(LIBRARY)" || { echo 'usage: make photos LIBRARY="path/to/Library.photoslibrary"'; exit 2; }
	$(BIN)/snakemake --cores $(CORES) --config 'photos={library: "$(LIBRARY)"}' albums_dir=photos/albums

# exiftool checks metadata and EXIF, chromium opens the gallery and the report, slurm-wlm and
# munge make a one-node Slurm cluster for the cluster profile's test, graphviz draws the README's
# rule graph example (tests/test_readme.py). Installed when missing.
SYSTEM_TEST_PACKAGES := exiftool:libimage-exiftool-perl chromium:chromium \
	slurmctld:slurm-wlm munged:munge dot:graphviz
system-test-deps:
	@missing=""; for pair in $(SYSTEM_TEST_PACKAGES); do \
	  command -v $${pair%%:*} >/dev/null || missing="$$missing $${pair#*:}"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; $(SUDO) apt-get update -qq && \
	  $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    $$missing >/dev/null; fi

test: $(VENV)/.installed-test system-test-deps
	$(BIN)/python -m pytest

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile rules/
	$(BIN)/snakemake --lint

format: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile rules/

dag: $(VENV)/.installed
	$(BIN)/snakemake --rulegraph | dot -Tsvg > rules.svg

report: $(VENV)/.installed
	$(BIN)/snakemake --report report.html

# The wheel (dist/): the i2i package with the workflow and the console plugin in it, for
# `pip install dist/i2i_workflow-*.whl` then `i2i init` and `i2i run` in any folder.
wheel: | $(BIN)/python
	$(BIN)/python -m pip wheel --no-deps --quiet --wheel-dir dist .

clean:
	rm -rf results logs benchmarks .snakemake
