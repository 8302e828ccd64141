"""End to end over stdio: a real `k8s-gpu-mcp serve` subprocess, driven by the SDK's own Client."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

SERVE = [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock"]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    e["NODE_NAME"] = "node-5"
    return e


def params(*extra: str) -> StdioServerParameters:
    return StdioServerParameters(command=SERVE[0], args=[*SERVE[1:], *extra], env=env())


@pytest.mark.anyio
async def test_initialize_list_and_call_both_tools_on_h100():
    async with Client(params("--profile", "h100-sxm5-80gb-x8")) as client:
        assert client.server_info.name == "k8s-gpu-mcp"
        assert client.server_capabilities.tools is not None and "mock" in client.instructions
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert {"get_gpu_inventory", "get_gpu_telemetry"} <= set(tools)
        assert all(t.input_schema and t.output_schema for t in tools.values())
        inventory = await client.call_tool("get_gpu_inventory", {})
        assert inventory.structured_content["gpu_count"] == 8
        assert inventory.structured_content["source"]["node"] == "node-5"
        telemetry = await client.call_tool("get_gpu_telemetry", {"gpus": [0, 7], "detail": "full"})
        assert [g["index"] for g in telemetry.structured_content["gpus"]] == [0, 7]


@pytest.mark.anyio
async def test_throttling_scenario_over_stdio():
    async with Client(params("--scenario", "thermal-slowdown")) as client:
        result = await client.call_tool("get_gpu_telemetry", {"gpus": [3], "detail": "full"})
        gpu = result.structured_content["gpus"][0]
        assert gpu["throttling"]["active"] is True and gpu["throttling"]["category"] == "thermal"
        assert result.structured_content["source"]["scenario"] == "thermal-slowdown"


def test_every_stdout_line_is_json_rpc_while_tools_log():
    """Raw wire check: drive the server by hand at DEBUG log level; stdout must be pure JSON-RPC."""
    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "wire-test", "version": "0"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "get_gpu_telemetry", "arguments": {}},
        },
        {
            "jsonrpc": "2.0",
            "id": 4,
            "method": "tools/call",
            "params": {"name": "get_gpu_inventory", "arguments": {"gpus": [99]}},
        },
        {
            "jsonrpc": "2.0",
            "id": 5,
            "method": "tools/call",
            "params": {"name": "no_such_tool", "arguments": {}},
        },
    ]
    proc = subprocess.Popen(
        [*SERVE, "--scenario", "thermal-slowdown", "--log-level", "DEBUG"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    ids = set()
    try:
        for message in messages:
            proc.stdin.write(json.dumps(message) + "\n")
            proc.stdin.flush()
            if "id" not in message:
                continue
            line = proc.stdout.readline()
            msg = json.loads(line)  # every stdout line parses
            assert msg.get("jsonrpc") == "2.0", line
            ids.add(msg.get("id"))
        proc.stdin.close()  # EOF: the server must exit cleanly
        rest, err = proc.stdout.read(), proc.stderr.read()
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    assert ids == {1, 2, 3, 4, 5}
    for line in rest.splitlines():
        assert json.loads(line).get("jsonrpc") == "2.0", line
    # the server did log, and it logged JSON lines to stderr
    err_lines = [line for line in err.splitlines() if line.strip()]
    assert err_lines and all(json.loads(line)["level"] for line in err_lines)


def test_call_command_prints_structured_json():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8s_gpu_mcp",
            "call",
            "get_gpu_telemetry",
            "--args",
            '{"gpus": [3], "detail": "full"}',
            "--scenario",
            "thermal-slowdown",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["gpus"][0]["throttling"]["category"] == "thermal"


def test_call_reports_tool_errors_on_stderr_with_nonzero_exit():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "k8s_gpu_mcp",
            "call",
            "get_gpu_telemetry",
            "--args",
            '{"gpus": [42]}',
            "--nvml-mode",
            "mock",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )
    assert proc.returncode == 1 and proc.stdout == "" and "valid GPUs" in proc.stderr


def test_tools_command_lists_tools():
    proc = subprocess.run(
        [sys.executable, "-m", "k8s_gpu_mcp", "tools", "--nvml-mode", "mock"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env(),
    )
    assert proc.returncode == 0 and "get_gpu_inventory" in proc.stdout


def test_serve_inside_a_pod_without_nvml_refuses_mock():
    e = env() | {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "K8S_GPU_MCP_NVML_SEARCH_PATHS": "/nonexistent/lib.so",
    }
    proc = subprocess.run(
        [sys.executable, "-m", "k8s_gpu_mcp", "serve"],
        input="",
        capture_output=True,
        text=True,
        timeout=60,
        env=e,
    )
    if "serving the mock fleet" in proc.stderr:
        pytest.fail("served mock data inside a pod")
    if proc.returncode == 0:
        pytest.skip("a real NVML is present on this machine")
    assert proc.returncode == 2 and "will not serve mock data" in proc.stderr and proc.stdout == ""


def test_make_serve_writes_only_json_rpc_to_stdout():
    """`make serve` may be an MCP client's command: make's own output must stay off stdout."""
    import shutil
    from pathlib import Path

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    repo = Path(__file__).resolve().parents[1]
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "make", "version": "0"},
        },
    }
    proc = subprocess.run(
        ["make", "--no-print-directory", "-C", str(repo), "serve", "ARGS=--nvml-mode mock"],
        input=json.dumps(init) + "\n",
        capture_output=True,
        text=True,
        timeout=300,
        env=env(),
    )
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert lines and all(json.loads(line)["jsonrpc"] == "2.0" for line in lines), proc.stdout[:500]
