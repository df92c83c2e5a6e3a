# Everything runs from a local virtualenv, .venv/, created on first use.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Touched after a successful install: pip runs again only when pyproject.toml changes.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv test demo bench fuzz

venv: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# pytest's exit status is make's: any failure, or 5 (no tests collected), fails.
test: venv
	$(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

demo: venv
	$(VPY) demo/demo.py

bench: venv
	$(VPY) benchmarks/bench.py

# Not part of `make test`: >100,000 generated inputs, some minutes (FUZZ_ARGS="--scale 0.1" for a quick look).
fuzz: venv
	$(VPY) -m fuzz $(FUZZ_ARGS)
