"""The agent over streamable HTTP: auth, Host guard, probes, metrics, SDK client, shutdown."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.http.conftest import TOKEN, child_env, free_port

HEADERS = {
    "content-type": "application/json",
    "accept": "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
}


def post(url: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {**HEADERS, **(headers or {})}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {"name": "get_gpu_inventory", "arguments": {}},
}
AUTH = {"authorization": f"Bearer {TOKEN}"}


def metric(text: str, name: str, **labels: str) -> float:
    want = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            got = line[line.find("{") + 1 : line.find("}")] if "{" in line else ""
            if ",".join(sorted(got.split(","))) == want:
                return float(line.rsplit(" ", 1)[1])
    raise KeyError(f"{name}{{{want}}} not in /metrics")


def test_probes_are_open_and_readyz_says_only_ready(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN})
    assert get(agent.base + "/healthz")[0] == 200
    status, body = get(agent.base + "/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True}  # no backend, GPU count or NVML error text to anyone


def test_token_is_required_on_mcp_and_metrics(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN})
    assert post(agent.url, CALL)[0] == 401
    assert post(agent.url, CALL, {"authorization": "Bearer wrong"})[0] == 401
    assert post(agent.url, CALL, {"authorization": f"Basic {TOKEN}"})[0] == 401
    assert get(agent.base + "/metrics")[0] == 401
    status, body = post(agent.url, CALL, AUTH)
    assert status == 200 and json.loads(body)["result"]["structuredContent"]["gpu_count"] == 8


def test_token_from_file(serve_http, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    agent = serve_http("--token-file", str(token_file))
    assert post(agent.url, CALL)[0] == 401
    assert post(agent.url, CALL, AUTH)[0] == 200


def test_wrong_host_is_rejected_with_421(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN})
    assert post(agent.url, CALL, {**AUTH, "host": "evil.example:80"})[0] == 421
    assert post(agent.url, CALL, {**AUTH, "origin": "http://evil.example"})[0] == 403
    assert post(agent.url, CALL, {**AUTH, "host": f"localhost:{agent.port}"})[0] == 200
    for host in (
        "localhost:80.evil.com",
        "localhost:",
        "localhost:80:81",
        "localhost.evil.com",
        "127.0.0.1@e",
    ):
        assert post(agent.url, CALL, {**AUTH, "host": host})[0] in (400, 421), host
    for origin in ("http://localhost:80.evil.com", "http://localhost.evil.com", "http://localhost:1/x"):
        assert post(agent.url, CALL, {**AUTH, "origin": origin})[0] == 403, origin
    assert post(agent.url, CALL, {**AUTH, "origin": f"http://localhost:{agent.port}"})[0] == 200
    assert post(agent.url, CALL, {**AUTH, "origin": "http://127.0.0.1"})[0] == 200


def test_pod_ip_is_an_allowed_host_in_a_pod(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN, "POD_IP": "10.1.2.3"})
    assert post(agent.url, CALL, {**AUTH, "host": "10.1.2.3:8080"})[0] == 200
    assert post(agent.url, CALL, {**AUTH, "host": "10.9.9.9:8080"})[0] == 421


def test_a_call_moves_the_metrics(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN})
    before = get(agent.base + "/metrics", AUTH)[1].decode()
    assert post(agent.url, CALL, AUTH)[0] == 200
    bad = {**CALL, "params": {"name": "get_gpu_inventory", "arguments": {"gpus": [99]}}}
    assert json.loads(post(agent.url, bad, AUTH)[1])["result"]["isError"] is True
    after = get(agent.base + "/metrics", AUTH)[1].decode()
    name = "k8s_gpu_mcp_tool_requests_total"
    assert (
        metric(after, name, tool="get_gpu_inventory", status="ok")
        == metric(before, name, tool="get_gpu_inventory", status="ok") + 1
    )
    assert metric(after, name, tool="get_gpu_inventory", status="error") == 1
    assert metric(after, "k8s_gpu_mcp_tool_duration_seconds_count", tool="get_gpu_inventory") == 2
    assert metric(after, "k8s_gpu_mcp_tool_in_flight", tool="get_gpu_inventory") == 0


@pytest.mark.anyio
async def test_the_sdk_client_works_over_http(serve_http):
    agent = serve_http(env={"K8S_GPU_MCP_TOKEN": TOKEN})
    async with httpx2.AsyncClient(headers=AUTH, timeout=30) as http:
        async with Client(streamable_http_client(agent.url, http_client=http)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            assert {"get_gpu_inventory", "get_gpu_telemetry"} <= names
            result = await client.call_tool("get_gpu_telemetry", {"gpus": [0]})
            assert result.structured_content["source"]["node"] == "node-http"


def test_non_loopback_bind_without_token_refuses_to_start():
    port = free_port()
    proc = subprocess.run(
        [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", "--transport", "http"]
        + ["--host", "0.0.0.0", "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
    )
    assert proc.returncode == 2
    assert "refusing to serve HTTP on 0.0.0.0 without authentication" in proc.stderr
    assert "--insecure-no-auth" in proc.stderr and proc.stdout == ""


def test_insecure_no_auth_is_an_explicit_opt_out(serve_http):
    agent = serve_http("--host", "0.0.0.0", "--insecure-no-auth", "--allowed-hosts", "127.0.0.1:*")
    assert post(agent.url, CALL)[0] == 200


def test_sigterm_exits_cleanly(serve_http):
    agent = serve_http("--log-level", "INFO", env={"K8S_GPU_MCP_TOKEN": TOKEN})
    code, stderr = agent.stop()
    assert code == 0, stderr
    assert "draining" in stderr
