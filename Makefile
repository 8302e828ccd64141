# k8s-gpu-mcp: every target sets itself up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: serve test lint bench e2e demo clean

# Setup is silent on stdout (recipes are not echoed, pip writes to stderr): `make serve` may be an
# MCP client's command, and stdout is the MCP wire.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) >&2
	@$(PY) -m pip install -q --disable-pip-version-check --upgrade pip >&2
	@$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]' >&2
	@touch $(STAMP)

## Run the agent on stdio (mock fleet when no GPU is present).
serve: $(STAMP)
	@$(VENV)/bin/k8s-gpu-mcp serve $(ARGS)

## Unit and in-process end-to-end tests.
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## ruff (lint + format) and mypy (the type checker; configuration in pyproject.toml).
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench scripts
	$(VENV)/bin/ruff format --check src tests bench scripts
	$(VENV)/bin/mypy

## Performance report (not part of make test). SECTIONS=a,b runs only those (others kept from docs/benchmarks.md). Bytecode is compiled first, as the image build does
## (PYTHONDONTWRITEBYTECODE would otherwise make every agent start compile its modules from source).
bench: $(STAMP)
	$(PY) -m compileall -q src
	$(PY) bench/run.py $(if $(SECTIONS),--only $(SECTIONS))

## End-to-end tier on a real kube-apiserver + etcd, and the real-node tier (a real kubelet, containerd,
## runc and the agent image of deploy/Containerfile). Built once per machine and cached in
## $${XDG_CACHE_HOME:-~/.cache}/k8s-gpu-mcp (see docs/kubernetes.md for what a cold build costs).
## The hypothesis plugin is off there: no e2e test uses it, and its import at session end crashed
## CPython 3.11.7's compiler inside pytest's assertion rewriting.
e2e: $(STAMP)
	tests/e2e/apiserver_build.sh >/dev/null
	tests/e2e/realnode/build.sh >/dev/null
	K8S_GPU_MCP_E2E_REQUIRED=1 $(PY) -m pytest -m e2e tests/e2e -rs -p no:hypothesispytest $(PYTEST_ARGS)

## The one-minute story: "why is the training job on node-5 stuck?" (mock H100, XID 48).
demo: $(STAMP)
	$(PY) scripts/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build dist src/*.egg-info
