# Set-up and common jobs.  `make run` runs the main job, `make test` the test suite; both create the
# virtual environment .venv and install the project into it on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN = $(VENV)/bin

.PHONY: setup run test doc bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile tests/cf-checker.txt
	@echo "set-up: a virtual environment in $(VENV), fentsim and its dependencies, the CF checker the"
	@echo "tests use in an environment of its own, then the model compiled once (3 minutes from a"
	@echo "fresh clone on 2 shared cores; pip's last step, 'Installing collected packages', works"
	@echo "about a minute without output)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	@# the CF checker needs the netCDF4 library: apart, so that fentsim's environment keeps a single
	@# netCDF engine (h5netcdf); tests/test_conformance.py runs it from there
	$(PYTHON) -m venv $(VENV)/cf-checker
	$(VENV)/cf-checker/bin/python -m pip install -q -r tests/cf-checker.txt
	@# compat: a .pth with the checkout, so Hydra finds hydra_plugins/ (the experiment group);
	@# setuptools' default editable finder (used since pyproject maps configs/ into sim.configs) hides it
	$(BIN)/python -m pip install -e ".[test]" --config-settings editable_mode=compat
	@# compile the model once now, visibly (numba caches it in sim/**/__pycache__ for every run)
	$(BIN)/python -c "import sim; sim.simulate()"
	touch $@

# The main job: the headline experiments over the posterior ensemble: supply- vs demand-side
# scenarios against the calibrated baseline -> results/experiments/supply_vs_demand/<timestamp>/
# (sweep.nc, comparison.csv/.nc, deaths_by_scenario.png, deaths_averted.png), and the same question
# in dollars, portfolios at equal spending -> results/experiments/equal_spending/<timestamp>/
# (also deaths_averted_vs_spending.png).
run: setup
	$(BIN)/fentsim -m experiment=supply_vs_demand
	$(BIN)/fentsim -m experiment=equal_spending

# The suite on every core (pytest-xdist, at most 4 workers); --dist loadscope keeps a test file's tests
# (a class's, where there is one) on one worker, so module fixtures are made once, and
# --no-loadscope-reorder hands them out in collection order: tests/conftest.py puts the slowest first.
test: setup
	$(BIN)/python -m pytest -n logical --maxprocesses 4 --dist loadscope --no-loadscope-reorder

doc: setup
	$(BIN)/fentsim-doc

clean:
	rm -rf $(VENV) results/runs results/sweeps

# Performance benchmark (prints a table and, last, one JSON line); BENCH_ARGS=--quick for a short run.
bench: setup
	$(BIN)/python benchmarks/bench.py $(BENCH_ARGS)
