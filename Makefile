# Two commands do all the set-up themselves: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
DATA ?= $(or $(SR_DATA),./datasets)
RUN ?= runs/multiblock

.PHONY: demo test test-fast lint phases clean-venv

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

# The edit loop: the suite without the tests marked slow (phase chain, script subprocesses, shipped weights).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# The six multiblock scripts in order on one run folder: make phases DATA=/path/to/datasets RUN=runs/x
phases: $(VENV)/.installed
	$(PY) phase1_1.py --data $(DATA) --out $(RUN) $(ARGS)
	$(PY) phase1_2.py --data $(DATA) --out $(RUN) $(ARGS)
	$(PY) phase2_1.py --data $(DATA) --out $(RUN) $(ARGS)
	$(PY) phase2_2.py --data $(DATA) --out $(RUN) $(ARGS)
	$(PY) phase3.py --data $(DATA) --out $(RUN) $(ARGS)
	$(PY) phase4.py --data $(DATA) --out $(RUN) $(ARGS)

clean-venv:
	rm -rf $(VENV)
