"""The agent registers every tool module at start; destructive tools only in operator mode."""

from __future__ import annotations

import anyio
import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp, ToolsetError
from k8s_gpu_mcp.tools import tool_module_names
from k8s_gpu_mcp.tools._common import DESTRUCTIVE, READ_ONLY

REMEDIATION = {"kill_gpu_process", "reset_gpu", "cordon_node", "uncordon_node", "drain_gpu_node"}


def _listed(app: AgentApp) -> dict:
    return {t.name: t for t in anyio.run(app.server.list_tools)}


@pytest.fixture
def agent(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    apps: list[AgentApp] = []

    def make(mode: str = "read-only") -> AgentApp:
        apps.append(AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR")))  # type: ignore[arg-type]
        return apps[-1]

    yield make
    for app in apps:
        app.close()


def test_every_tool_module_registers_at_start(agent):
    app = agent()
    listed = _listed(app)
    assert set(listed) == set(app.tool_names)
    assert set(app.module_of.values()) == set(tool_module_names()) - {
        "remediation",
        "node_ops",
    }  # operator only
    assert {"get_gpu_health", "analyze_xid_errors", "get_gpu_telemetry"} <= set(listed)


def test_read_only_mode_lists_no_destructive_tool(agent):
    listed = _listed(agent())
    assert not REMEDIATION & set(listed)
    assert all(not t.annotations.destructive_hint for t in listed.values())


def test_operator_mode_lists_the_remediation_tools(agent):
    listed = _listed(agent("operator"))
    assert REMEDIATION <= set(listed)
    assert all(listed[name].annotations.destructive_hint for name in REMEDIATION)


def test_the_mode_filter_is_by_annotation_not_by_module(agent):
    """A destructive tool from any module is dropped outside operator mode; a read-only one is kept."""
    app = agent()

    def wipe_something() -> str:
        """A stand-in destructive tool."""
        return "done"

    def look_at_something() -> str:
        """A stand-in read-only tool."""
        return "seen"

    app.add_tool(wipe_something, title="wipe", annotations=DESTRUCTIVE)
    app.add_tool(look_at_something, title="look", annotations=READ_ONLY)
    listed = _listed(app)
    assert "wipe_something" not in listed and "wipe_something" in app.dropped
    assert "look_at_something" in listed


def test_toolsets_limit_the_listed_tools(agent, monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    app = AgentApp(Settings(nvml_mode="mock", toolsets="xid, K8S", log_level="ERROR"))
    try:
        listed = _listed(app)
        assert {app.module_of[name] for name in listed} == {"xid", "cluster"}
        assert {"analyze_xid_errors", "describe_gpu_node"} <= set(listed) and "get_gpu_health" not in listed
    finally:
        app.close()


def test_an_unknown_toolset_is_refused_with_the_valid_names():
    with pytest.raises(
        ToolsetError, match=r"unknown toolset 'gpus'; valid: core, k8s, processes, remediation, xid"
    ):
        AgentApp(Settings(nvml_mode="mock", toolsets="core,gpus"))


def test_every_tool_module_declares_its_toolset():
    import importlib

    for name in tool_module_names():
        assert hasattr(importlib.import_module(f"k8s_gpu_mcp.tools.{name}"), "TOOLSET"), name
