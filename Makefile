# Everything runs from a local virtualenv, .venv/, created on first use.
PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
# Touched after a successful install: pip runs again only when pyproject.toml changes.
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: venv lint test test-servers dist demo bench fuzz man

venv: $(STAMP)

$(VPY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

# Lint first (seconds), then the suite. pytest's exit status is make's: any
# failure, or 5 (no tests collected), fails.
test: lint
	$(VPY) -m pytest -q -p no:cacheprovider $(PYTEST_ARGS)

lint: venv
	$(VENV)/bin/ruff check -q gitjit tests fuzz benchmarks demo

# `python -m build` for test-servers and dist, installed once into .venv.
BUILD := $(VENV)/.build-installed

$(BUILD): | $(STAMP)
	$(VENV)/bin/pip install -q 'build>=1'
	touch $@

# Real servers on 127.0.0.1 (gitolite3 behind sshd, Apache with git-http-backend):
# needs root and the packages .ci/run installs. Not part of `make test`.
test-servers: venv $(BUILD)
	$(VPY) -m pytest -q -p no:cacheprovider tests/hosting $(PYTEST_ARGS)

# A wheel and an sdist in dist/ (docs/hosting.md: install the wheel into a venv on the server).
dist: venv $(BUILD)
	rm -rf dist
	$(VPY) -m build --outdir dist .

demo: venv
	$(VPY) demo/demo.py

bench: venv
	$(VPY) benchmarks/bench.py

# Not part of `make test`: >100,000 generated inputs, some minutes (FUZZ_ARGS="--scale 0.1" for a quick look).
fuzz: venv
	$(VPY) -m fuzz $(FUZZ_ARGS)

# The man page `git jit --help` shows, generated from the CLI (a test checks it is current).
man: venv
	$(VPY) -m gitjit.cli.manpage > man/gitjit.1
