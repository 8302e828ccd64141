"""Shared fixtures: agents on the mock fleet, driven in memory through the SDK's own Client."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

REPO = Path(__file__).resolve().parents[1]
CAPTURES = REPO / "tests" / "fixtures" / "captures"


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
