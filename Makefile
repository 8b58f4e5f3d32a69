# Two commands on a fresh machine with python3 + make:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

# The install ends by compiling the Numba kernels into their cache (ckks.compile_kernels), so that the
# first demo only loads them; without it the demo compiles them itself, before its first timed stage.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,helayers,dev]'
	$(PY) -c 'import ckks; print("compile kernels:", ckks.compile_kernels().describe())'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ckkslab demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ckks nn reference validation tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
