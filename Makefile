# Set-up and common tasks. `make test` and `make demo` work on a fresh machine
# with only Python 3.10+ and make. The test install includes the optional
# dask extra, so that its tests run too.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Tests and benchmarks read the shared UCI files from here when present.
SKDISTILL_DATA ?= $(if $(wildcard ../shared/datasets),$(abspath ../shared/datasets),)
export SKDISTILL_DATA

.PHONY: install test demo lint format bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,dev,dask]"
	touch $(STAMP)

install: $(STAMP)

# The docs extra (sphinx, sphinx-gallery, numpydoc, theme, offline MathJax).
DOCS_STAMP := $(VENV)/.installed-docs
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $(DOCS_STAMP)

# The array API tests need SCIPY_ARRAY_API=1 before scipy is imported, which
# changes scipy for the whole process: they run in a second process (the first
# skips them), with scikit-learn's array API checks of every estimator.
test: $(STAMP)
	$(BIN)/python -m pytest
	SCIPY_ARRAY_API=1 $(BIN)/python -m pytest tests -k array_api

demo: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python examples/plot_quickstart.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f || exit 1; done

# Builds the site into docs/_build/html, warnings as errors, running the
# gallery examples. Set SKDISTILL_DOCS_INTERSPHINX=1 (needs internet) to link
# to scikit-learn, numpy, scipy and optuna.
docs: $(DOCS_STAMP)
	MPLBACKEND=Agg $(BIN)/sphinx-build -b html -W --keep-going docs docs/_build/html

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
	rm -rf docs/_build docs/auto_examples docs/generated docs/api.rst docs/sg_execution_times.rst
