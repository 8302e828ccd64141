"""Shared fixtures: agents on the mock fleet, driven in memory through the SDK's own Client."""

from __future__ import annotations

import functools
import importlib.util
import json
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "tests" / "fixtures" / "captures"


@functools.cache
def derive_profiles() -> ModuleType:
    """``scripts/derive_profiles.py`` as a module: its ``parse_topo`` is the one topo -m parser."""
    spec = importlib.util.spec_from_file_location("derive_profiles", REPO / "scripts" / "derive_profiles.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["derive_profiles"] = module
    spec.loader.exec_module(module)
    return module


def topo_cells(name: str) -> list[list[str]]:
    """The GPU-to-GPU words of a ``topo -m`` capture."""
    cells: list[list[str]] = derive_profiles().parse_topo((CAPTURES / name).read_text(encoding="utf-8")).cells
    return cells


@pytest.fixture
def make_app(monkeypatch: pytest.MonkeyPatch) -> Callable[..., AgentApp]:
    """Build an agent on the mock fleet; ``scenario`` may be a dict, written to a temp file."""
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("NODE_NAME", "gpu-node-test")
    apps: list[AgentApp] = []

    def build(
        profile: str | None = "h100-sxm5-80gb-x8", scenario: dict[str, Any] | str | None = None, **kw: Any
    ) -> AgentApp:
        if isinstance(scenario, dict):
            path = Path(pytest_tmp()) / "scenario.json"
            path.write_text(json.dumps(scenario))
            scenario = str(path)
        app = AgentApp(Settings(nvml_mode="mock", profile=profile, scenario=scenario, **kw))
        apps.append(app)
        return app

    tmp_dirs: list[str] = []

    def pytest_tmp() -> str:
        import tempfile

        tmp_dirs.append(tempfile.mkdtemp(prefix="k8s-gpu-mcp-test-"))
        return tmp_dirs[-1]

    yield build
    for app in apps:
        app.close()


async def call(app: AgentApp, tool: str, arguments: dict[str, Any] | None = None) -> Any:
    """Call a tool through the in-memory MCP client; return the CallToolResult."""
    from mcp.client import Client

    async with Client(app.server) as client:
        return await client.call_tool(tool, arguments or {})


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
