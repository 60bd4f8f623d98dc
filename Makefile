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
REF_STAMP := $(VENV)/.reference-installed
# TF Model Garden (SpineNet reference) lives in its own venv: TensorFlow never enters the
# package's environment. ~3 min and 2.8 GB the first time; only the tests need it.
TF_VENV  ?= .venv-tf
TF_STAMP := $(TF_VENV)/.tf-reference-installed
PYTEST_ARGS ?=
# The suite runs in one pytest-xdist worker per core, a test file per worker at a time (module
# fixtures such as the wheel's venv and the TF exports are built once), each worker with one
# intra-op thread: two workers that each spun two OpenMP threads on two cores would stall each
# other. Measured on a 2-core machine: 8.0 min instead of 14.6 min for the same 787 tests.
TEST_WORKERS ?= auto

.PHONY: setup setup-test demo demo-cls test clean-venv

setup: $(STAMP)

setup-test: $(STAMP) $(REF_STAMP) $(TF_STAMP)

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

# effdet + timm (EfficientDet reference, test-only) into .venv without their dependencies, so
# nothing can replace the CPU torch or bring torchvision.
$(REF_STAMP): $(STAMP) requirements/reference.txt requirements/mmpretrain.txt
	$(PIPC) -q --no-deps -r requirements/reference.txt
	$(PIPC) -q --no-deps -r requirements/mmpretrain.txt
	touch $@

$(TF_STAMP): requirements/tf_reference.txt
	test -x $(TF_VENV)/bin/python || $(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/python -m pip install -q -r requirements/tf_reference.txt
	$(TF_VENV)/bin/python -m pip install -q --no-deps tf-models-official==2.20.0
	touch $@

demo: $(STAMP)
	$(PY) tools/demo.py

# image classification: generated 6-class shapes data, a small SpineNet classifier, top-1 on val
demo-cls: $(STAMP)
	$(PY) tools/demo_cls.py

test: setup-test
	OMP_NUM_THREADS=1 $(PY) -m pytest tests -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

clean-venv:
	rm -rf $(VENV) $(TF_VENV)
