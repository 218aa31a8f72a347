# `make demo` and `make test` each set up .venv on first use, then run.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Pinned for these machines (x86_64, Python 3.11, wheels on local disk);
# elsewhere `make TORCH_SPEC="torch torchvision"` takes any compatible pair.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
REQS := requirements/runtime.txt requirements/optional.txt \
	requirements/tests.txt setup.py

DEMO_CONFIG := configs/digits/resnet18-slim_digits.py
DEMO_CHECKPOINT := configs/digits/resnet18-slim_digits.pth

.PHONY: venv demo test clean

venv: $(STAMP)

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 'setuptools<81' wheel
	$(PY) -m pip install -q $(TORCH_SPEC)
	$(PY) -m pip install -q -r requirements/runtime.txt \
		-r requirements/optional.txt -r requirements/tests.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

demo: venv
	$(PY) tools/make_digits.py --out data/digits
	$(PY) tools/vis_tsne.py $(DEMO_CONFIG) --checkpoint $(DEMO_CHECKPOINT)

test: venv
	$(PY) -m pytest -q tests

clean:
	rm -rf $(VENV) work_dirs data/digits
