"""Operator mode end to end over stdio: the real pid is registered by the server's scenario."""

from __future__ import annotations

import json
import os
import sys

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from tests.tools.remediation_helpers import GIB, audit_lines, reap, spawn

FREE = 85018542080  # the H100 profile's free memory with nothing running


def params(*extra: str) -> StdioServerParameters:
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["NODE_NAME"] = "node-7"
    return StdioServerParameters(
        command=sys.executable, args=["-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", *extra], env=env
    )


@pytest.mark.anyio
async def test_kill_a_real_process_over_stdio(tmp_path):
    child = spawn()
    try:
        scenario = tmp_path / "real.json"
        scenario.write_text(
            json.dumps(
                {
                    "gpus": {
                        "5": {
                            "memory": {"used": 6 * GIB, "free": FREE - 6 * GIB},
                            "processes": {
                                "compute": [{"pid": child.pid, "used_memory": 6 * GIB, "real": True}]
                            },
                        }
                    }
                }
            )
        )
        audit = tmp_path / "audit.jsonl"
        args = ("--mode", "operator", "--scenario", str(scenario), "--audit-log", str(audit))
        async with Client(params(*args)) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            assert tools["kill_gpu_process"].annotations.destructive_hint is True
            listed = await client.call_tool("list_gpu_processes", {"gpus": 5, "detail": "full"})
            proc = listed.structured_content["gpus"][0]["processes"][0]
            assert proc["pid"] == child.pid and proc["command"] == "sleep 300"
            refused = await client.call_tool("kill_gpu_process", {"pid": child.pid})
            assert refused.is_error and "confirm=true" in refused.content[0].text
            result = await client.call_tool("kill_gpu_process", {"pid": child.pid, "gpu": 5, "confirm": True})
            data = result.structured_content
            assert data["outcome"] == "done" and data["memory_freed_mib"] == 6144, data
            assert data["source"]["node"] == "node-7"
            after = await client.call_tool("list_gpu_processes", {"gpus": 5, "detail": "full"})
            assert after.structured_content["gpus"][0]["processes"] == []
        assert child.wait(timeout=10) == -15
        assert [line["outcome"] for line in audit_lines(audit)] == ["refused", "approved", "done"]
    finally:
        reap(child)


@pytest.mark.anyio
async def test_read_only_over_stdio_hides_remediation():
    async with Client(params()) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert "list_gpu_processes" in names and not names & {"kill_gpu_process", "reset_gpu"}
