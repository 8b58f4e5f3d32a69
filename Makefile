# Two commands on a fresh machine with python3 + make:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[train,helayers,dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ckkslab demo

test: $(STAMP)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check ckks nn reference validation tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
