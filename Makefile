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

.PHONY: venv demo test test-setup lint browser bulk-venv clean

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

# What the tests need beyond .venv; tests themselves install nothing.
test-setup: venv browser bulk-venv

# Debian's Chromium for the explorer's browser tests (needs root and apt).
browser:
	@test -x /usr/bin/chromium || { \
		test "$$(id -u)" = 0 || { echo 'make browser: /usr/bin/chromium is missing; install Debian chromium as root' >&2; exit 1; }; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

# bulk pins numpy<2 and bokeh<3: its own environment reads the Bulk export.
BULK_VENV := .venv-bulk
bulk-venv: $(BULK_VENV)/.ready

$(BULK_VENV)/.ready: requirements/bulk-check.txt
	rm -rf $(BULK_VENV)
	$(PYTHON) -m venv $(BULK_VENV)
	$(BULK_VENV)/bin/python -m pip install -q --disable-pip-version-check \
		-r requirements/bulk-check.txt
	$(BULK_VENV)/bin/python -c 'import bulk._bokeh_utils, bulk.cli.image'
	touch $@

# Lint and import order in one tool, configured in ruff.toml.
lint: venv
	$(PY) -m ruff check .

test: test-setup lint
	$(PY) -m pytest -q -n auto tests

clean:
	rm -rf $(VENV) $(BULK_VENV) work_dirs data/digits
