# mmdet-spine: two commands for a newcomer.
#   make demo   set up (if needed), generate the shapes data, train, evaluate, draw predictions
#   make test   set up (if needed), run the test suite
# The environment lives in .venv; its stamp is rebuilt only when a requirements file changes,
# so a second `make` spends no time on set-up.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
CONSTRAINTS := requirements/constraints.txt
PIPC   := $(PIP) install -c $(CONSTRAINTS)
STAMP  := $(VENV)/.mmdet-spine-installed
PYTEST_ARGS ?=

.PHONY: setup demo test clean-venv

setup: $(STAMP)

$(STAMP): requirements/constraints.txt requirements/runtime.txt requirements/tests.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIPC) -q setuptools==80.9.0 wheel ninja
	$(PIPC) -q torch==2.13.0 numpy
	# mmcv 2.1.0 has no wheel for torch 2.13: built from source with its ops (~10-14 min once,
	# then pip's wheel cache makes it a few seconds).
	$(PY) -c "import mmcv, mmcv.ops" 2>/dev/null || \
	  MMCV_WITH_OPS=1 MAX_JOBS=$$(nproc) $(PIPC) --no-build-isolation mmcv==2.1.0
	$(PIPC) -q -r requirements/runtime.txt -r requirements/tests.txt
	$(PIPC) -q --no-build-isolation --no-deps -e .
	touch $@

demo: $(STAMP)
	$(PY) tools/demo.py

test: $(STAMP)
	$(PY) -m pytest tests $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV)
