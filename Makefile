# `make test`, `make lint` and `make demo` create .venv with Python 3.10 when it is
# missing and reinstall only when setup.py, constraints.txt or the framing
# extension's C source change.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
LINT_PATHS := components pipeline tests bench setup.py

.PHONY: test lint typecheck demo bench dist lock browser-deps clean-venv

# Everything under the exact pins of constraints.txt, pip and setuptools included.
$(STAMP): setup.py constraints.txt components/embedding_guard/read/_tfrecord_framing.c
	@test -x $(PY) || { interp=$$(scripts/find-python310) && "$$interp" -m venv $(VENV); }
	$(PY) -m pip install --quiet -c constraints.txt --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,kfp]'
	@touch $(STAMP)

# Headless Chromium for the `browser` tests; does nothing when it is installed.
browser-deps:
	@scripts/browser-deps

test: $(STAMP) browser-deps
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m pytest $(PYTEST_ARGS)

typecheck: $(STAMP)
	$(PY) -m mypy

lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(PY) -m mypy

# The demo's preprocessing_fn and run_fn are passed to TFX as import paths.
demo: $(STAMP)
	PYTHONPATH=pipeline/user_modules $(PY) pipeline/run_demo.py

bench: $(STAMP)
	$(PY) bench/run_bench.py

# sdist and wheel in dist/; no isolated build env, so it works offline.
dist: $(STAMP)
	$(PY) -m build --no-isolation --outdir dist .

# Rewrites constraints.txt from what .venv holds (see scripts/lock).
lock: $(STAMP)
	scripts/lock $(PY)

clean-venv:
	rm -rf $(VENV)
