"""The agent lists tools from the manifest and loads a tool's module on its first call."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys

import anyio
import pytest
from mcp.client import Client
from mcp.server.mcpserver.exceptions import ToolError

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp
from k8s_gpu_mcp.tools._manifest import load_manifest

pytestmark = pytest.mark.anyio

PROBE = """
import json, sys, anyio
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

def loaded():
    return sorted(m.rsplit(".", 1)[1] for m in sys.modules if m.startswith("k8s_gpu_mcp.tools.")
                  and not m.rsplit(".", 1)[1].startswith("_"))

app = AgentApp(Settings(nvml_mode="mock", log_level="ERROR"))
at_start = loaded()
result = anyio.run(app.server.call_tool, "get_gpu_telemetry", {})
print(json.dumps({"listed": app.tool_names, "at_start": at_start, "after_call": loaded(),
                  "ok": not result.is_error, "gpus": len(result.structured_content["gpus"])}))
app.close()
"""


def test_no_tool_module_is_imported_until_one_of_its_tools_is_called():
    env = {**os.environ, "NODE_NAME": "probe"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, check=True)
    seen = json.loads(out.stdout)
    assert "get_gpu_telemetry" in seen["listed"] and "analyze_xid_errors" in seen["listed"]
    assert seen["at_start"] == []
    assert seen["after_call"] == ["telemetry"]
    assert seen["ok"] and seen["gpus"] == 8


async def test_a_module_registers_once_under_concurrent_first_calls(make_app, monkeypatch):
    import k8s_gpu_mcp.tools.inventory as inventory

    app = make_app()
    calls = []
    original = inventory.register
    monkeypatch.setattr(inventory, "register", lambda a: (calls.append(a), original(a)))
    results = []
    async with Client(app.server) as client, anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(lambda: _append(results, client.call_tool("get_gpu_inventory", {})))
    assert len(calls) == 1
    assert len(results) == 5 and not any(r.is_error for r in results)


async def _append(results, call):
    results.append(await call)


def test_a_module_missing_from_the_manifest_is_registered_at_start(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    manifest = load_manifest()
    partial = {
        "modules": {k: v for k, v in manifest["modules"].items() if k != "ecc"},
        "tools": {k: v for k, v in manifest["tools"].items() if k != "snapshot_ecc"},
    }
    app = AgentApp(Settings(nvml_mode="mock"), manifest=partial)
    try:
        assert "snapshot_ecc" in app.sdk_tools and "snapshot_ecc" in app.tool_names
        assert "get_gpu_telemetry" not in app.sdk_tools  # still deferred
        listed = {t.name: t for t in anyio.run(app.server.list_tools)}
        assert listed["snapshot_ecc"].output_schema == manifest["tools"]["snapshot_ecc"]["output_schema"]
    finally:
        app.close()


async def test_a_tool_the_manifest_lists_but_no_module_registers_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    manifest = load_manifest()
    ghost = {**manifest["tools"]["get_gpu_inventory"], "description": "gone"}
    stale = {
        "modules": {**manifest["modules"], "inventory": {"read-only": ["get_gpu_inventory", "ghost_tool"]}},
        "tools": {**manifest["tools"], "ghost_tool": ghost},
    }
    app = AgentApp(Settings(nvml_mode="mock"), manifest=stale)
    try:
        with pytest.raises(ToolError, match="ghost_tool is in tools/manifest.json .* stale"):
            await app.server.call_tool("ghost_tool", {})
        ok = await app.server.call_tool("get_gpu_inventory", {})
        assert not ok.is_error
    finally:
        app.close()


async def test_a_stale_tool_spec_is_logged_when_its_module_loads(monkeypatch, caplog):
    monkeypatch.setenv("NODE_NAME", "n")
    manifest = load_manifest()
    edited = {**manifest["tools"]["get_gpu_inventory"], "description": "an old description"}
    app = AgentApp(
        Settings(nvml_mode="mock"),
        manifest={**manifest, "tools": {**manifest["tools"], "get_gpu_inventory": edited}},
    )
    try:
        with caplog.at_level(logging.WARNING, logger="k8s_gpu_mcp.server"):
            result = await app.server.call_tool("get_gpu_inventory", {})
        assert not result.is_error
        assert any(
            "manifest.json is stale" in r.getMessage() and r.tool == "get_gpu_inventory"
            for r in caplog.records
        )
    finally:
        app.close()


async def test_a_tool_missing_from_a_listed_module_is_logged_when_the_module_loads(monkeypatch, caplog):
    monkeypatch.setenv("NODE_NAME", "n")
    manifest = load_manifest()
    old = {
        "modules": {**manifest["modules"], "cluster": {"read-only": ["describe_gpu_node"]}},
        "tools": {k: v for k, v in manifest["tools"].items() if k != "get_pod_gpu_allocation"},
    }
    app = AgentApp(Settings(nvml_mode="mock"), manifest=old)
    try:
        assert "get_pod_gpu_allocation" not in app.tool_names
        with caplog.at_level(logging.WARNING, logger="k8s_gpu_mcp.server"):
            with contextlib.suppress(ToolError):  # no API server here; the module loads first
                await app.server.call_tool("describe_gpu_node", {"node": "n"})
        assert any(
            "lists this tool's module but not the tool" in r.getMessage()
            and r.tool == "get_pod_gpu_allocation"
            for r in caplog.records
        )
    finally:
        app.close()


def test_remediation_code_is_not_listed_or_loaded_in_read_only_mode(monkeypatch):
    monkeypatch.setenv("NODE_NAME", "n")
    app = AgentApp(Settings(nvml_mode="mock"))
    try:
        assert not {"kill_gpu_process", "reset_gpu"} & set(app.tool_names)
        assert app.module_of.get("kill_gpu_process") is None
    finally:
        app.close()
