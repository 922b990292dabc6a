# Two commands do all the set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(or $(SR_DATA),./datasets)
RUN ?= runs/multiblock

.PHONY: demo test lint phases clean-venv

# (Re)create the virtual environment when it is missing or older than requirements.txt.
$(VENV)/.installed: requirements.txt
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

demo: $(VENV)/.installed
	$(PY) demo.py

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# The six multiblock scripts in order on one run folder, each given the same settings:
#   make phases DATA=/path/to/datasets RUN=runs/x [PRESET=report|small|tiny] [ARGS="--set NAME=VALUE ..."]
PHASE_ARGS = --data $(DATA) --out $(RUN) $(if $(PRESET),--set PRESET=$(PRESET)) $(ARGS)
phases: $(VENV)/.installed
	$(PY) phase1_1.py $(PHASE_ARGS)
	$(PY) phase1_2.py $(PHASE_ARGS)
	$(PY) phase2_1.py $(PHASE_ARGS)
	$(PY) phase2_2.py $(PHASE_ARGS)
	$(PY) phase3.py $(PHASE_ARGS)
	$(PY) phase4.py $(PHASE_ARGS)

clean-venv:
	rm -rf $(VENV)
