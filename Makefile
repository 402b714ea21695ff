# `make test` and `make demo` create .venv with Python 3.10 when it is missing and
# reinstall only when setup.py or constraints.txt change.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: test demo lint bench clean-venv

$(STAMP): setup.py constraints.txt
	@test -x $(PY) || { interp=$$(scripts/find-python310) && "$$interp" -m venv $(VENV); }
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	@touch $(STAMP)

test: $(STAMP)
	$(PY) -m ruff check components pipeline tests bench
	$(PY) -m pytest $(PYTEST_ARGS)

# The demo's preprocessing_fn and run_fn are passed to TFX as import paths.
demo: $(STAMP)
	PYTHONPATH=pipeline/user_modules $(PY) pipeline/run_demo.py

lint: $(STAMP)
	$(PY) -m ruff check components pipeline tests bench
	$(PY) -m ruff format --check components pipeline tests bench

bench: $(STAMP)
	$(PY) bench/run_bench.py

clean-venv:
	rm -rf $(VENV)
