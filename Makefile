# k8s-gpu-mcp: every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench e2e demo clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

## Run the agent on stdio (mock fleet when no GPU is present).
serve: $(STAMP)
	$(VENV)/bin/k8s-gpu-mcp serve $(ARGS)

## Unit and in-process end-to-end tests.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts

## Performance report (not part of make test).
bench: $(STAMP)
	$(PY) bench/run.py

## The one-minute story: "why is the training job on node-5 stuck?" (mock H100, XID 48).
demo: $(STAMP)
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
