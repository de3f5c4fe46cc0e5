# make book: run every chapter at the default profile (skipping unchanged ones) and build _build/html.
# make test: the test suite. Both create the virtualenv from requirements.txt when it is missing.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export MAELIB_DATA ?= $(abspath ../shared/data)
export PYTHONUNBUFFERED := 1
CHAPTER ?= images
PARAMS ?=
PROFILE ?= auto

.PHONY: book test run data clean venv

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

book: venv
	$(PY) -m maelib book --profile $(PROFILE)
	@echo "open _build/html/index.html"

test: venv
	$(PY) -m pytest

run: venv
	$(PY) -m maelib run $(CHAPTER) $(PARAMS)

data: venv
	$(PY) -m maelib data list

clean:
	rm -rf _build book/executed book/figures
