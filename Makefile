# Two commands do all the set-up themselves: `make demo` and `make test`.
# They create .venv from requirements.txt (with PYTHON) the first time. make never deletes an environment:
# it installs into .venv only if it created it (the .made-by-make marker), and with PY=/path/to/python
# it uses that environment as it is and creates nothing.
PYTHON ?= python3
VENV := .venv
DATA ?= $(or $(SR_DATA),./datasets)
RUN ?= runs/multiblock

.PHONY: demo test test-fast lint phases gpu-check clean-venv

ifeq ($(origin PY),undefined)
PY := $(VENV)/bin/python
# Create .venv when missing; (re)install when requirements.txt is newer than the last install.
$(VENV)/.installed: requirements.txt
	@if [ -e $(VENV) ] && [ ! -e $(VENV)/.made-by-make ] && [ ! -e $@ ]; then \
	  echo "make: $(VENV) was not created by make; using it as it is (install requirements.txt into it" \
	       "yourself, or run make with PY=/path/to/python)"; \
	else \
	  set -e; \
	  if [ ! -x $(PY) ]; then mkdir -p $(VENV); touch $(VENV)/.made-by-make; $(PYTHON) -m venv $(VENV); fi; \
	  touch $(VENV)/.made-by-make; \
	  $(PY) -m pip install --quiet --upgrade pip; \
	  $(PY) -m pip install --quiet -r requirements.txt; \
	  touch $@; \
	fi
else
# PY given: its environment is used as it is; nothing is created or installed.
.PHONY: $(VENV)/.installed
$(VENV)/.installed:
	@:
endif

demo: $(VENV)/.installed
	$(PY) demo.py

# The suite, then its precision tests again as on a CPU without bf16 (SR_CPU_BF16=off: core.hardware), so a
# machine with bf16 hardware also proves the suite on one without.
test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest
	SR_CPU_BF16=off $(PY) -m pytest -m precision

# The edit loop: the suite without the tests marked slow (phase chain, script subprocesses, shipped weights).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

lint: $(VENV)/.installed
	$(PY) -m ruff check .

# The six multiblock scripts in order on one run folder, each given the same settings:
#   make phases DATA=/path/to/datasets RUN=runs/x [PRESET=report|small|tiny] [ARGS="--set NAME=VALUE ..."]
PHASE_ARGS = --data $(DATA) --out $(RUN) $(if $(PRESET),--set PRESET=$(PRESET)) $(ARGS)
PHASE_SCRIPTS = $(shell $(PY) -c 'from pipelines.multiblock.chain import SCRIPTS; print(*SCRIPTS)')
phases: $(VENV)/.installed
	@for script in $(PHASE_SCRIPTS); do echo "$(PY) $$script $(PHASE_ARGS)"; $(PY) $$script $(PHASE_ARGS) || exit 1; done

# One-shot GPU check (benchmarks/gpu_check.py): every path on one CUDA GPU in a few minutes, results in OUT.
# `make gpu-check PY=python3` uses that interpreter as it is (no .venv); DRY=1 rehearses it on the CPU.
OUT ?= runs/gpu_check
gpu-check: $(VENV)/.installed
	$(PY) benchmarks/gpu_check.py --out $(OUT) $(if $(DRY),--dry-run)

# Deletes .venv only when make created it.
clean-venv:
	@if [ -e $(VENV)/.made-by-make ] || [ -e $(VENV)/.installed ]; then rm -rf $(VENV); \
	else echo "make: $(VENV) was not created by make; left alone"; fi
