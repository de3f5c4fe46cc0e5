# make book: run every chapter at the default profile (skipping unchanged ones) and build _build/html.
# make test: the test suite. Both create the virtualenv from requirements.txt when it is missing, and
# install the masking page's browser runtime (npm ci) when package-lock.json is newer than node_modules.
# make lab: JupyterLab with the chapters (notebooks/*.py, jupytext) opening as notebooks.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export MAELIB_DATA ?= $(abspath ../shared/data)
export PYTHONUNBUFFERED := 1
CHAPTER ?= images
PARAMS ?=
PROFILE ?= auto

.PHONY: book test run data clean venv node lab

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 > /dev/null
	touch $@

# onnxruntime-web, which the book's masking page runs its model with; without npm that page keeps its
# precomputed slider and the browser tests of the model skip
node: node_modules/.package-lock.json
node_modules/.package-lock.json: package-lock.json
	@if command -v npm > /dev/null; then npm ci --ignore-scripts --no-audit --no-fund; \
	else echo "npm not found: the masking page will fall back to its precomputed slider"; fi

book: venv node
	$(PY) -m maelib book --profile $(PROFILE)
	@echo "open _build/html/index.html"

test: venv node
	$(PY) -m pytest

lab: venv
	$(PY) -c "from maelib.browser import write_lab_settings as w; w('$(VENV)/share/jupyter/lab/settings')"
	$(PY) -m jupyterlab --ServerApp.root_dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

run: venv
	$(PY) -m maelib run $(CHAPTER) $(PARAMS)

data: venv
	$(PY) -m maelib data list

clean:
	rm -rf _build book/executed book/chapters book/figures book/_static/mae-live
