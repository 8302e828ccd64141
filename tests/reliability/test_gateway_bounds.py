"""Issue 20 items 2, 5 and 9 as attacks on a real gateway process on 127.0.0.1: misbehaving agents
that send huge error texts or results, a huge label selector, and a huge ``nodes`` list. Each
asserts the bound: the gateway's peak RSS, the reply size, the time, and a clear error."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from k8s_gpu_mcp.gateway.rpc import MAX_ERROR_CHARS, MAX_REPLY_BYTES
from tests.http.conftest import TOKEN, Served, child_env, start

BENCH = Path(__file__).resolve().parents[2] / "bench"
AGENTS = 20
BIG = MAX_REPLY_BYTES - 4096  # each agent sends just under the per-reply cap
PEAK_RSS_MIB = 450  # the gateway Deployment's limit is 512Mi (measured: ~200 for errors, ~390 for results)
REPLY_BOUND = 512 * 1024


@pytest.fixture
def fleet(tmp_path):
    procs: list[subprocess.Popen[bytes]] = []
    served: list[Served] = []

    def run(behaviours: list[str]) -> Served:
        out = tmp_path / f"agents-{len(procs)}.json"
        argv = [sys.executable, str(BENCH / "sim_agents.py"), "--behaviours", ",".join(behaviours)]
        procs.append(subprocess.Popen([*argv, "--out", str(out)], env=child_env()))
        end = time.monotonic() + 60
        while not out.exists():
            assert time.monotonic() < end, "sim agents did not start"
            time.sleep(0.05)
        gw = start(
            ["gateway", "--agents", str(out), "--node-timeout", "20", "--log-level", "WARNING"],
            child_env(K8S_GPU_MCP_TOKEN=TOKEN),
        )
        served.append(gw)
        return gw

    yield run
    for gw in served:
        gw.stop()
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=10)


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def call(gw: Served, tool: str, arguments: dict[str, Any], timeout: float = 60) -> tuple[dict[str, Any], int]:
    """tools/call on the gateway; (the JSON-RPC result, the reply's size in bytes)."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": tool, "arguments": arguments},
    }
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": "2025-06-18",
        "authorization": f"Bearer {TOKEN}",
    }
    request = urllib.request.Request(gw.url, json.dumps(body).encode(), headers, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as r:
        raw = r.read()
    events = [line[5:].strip() for line in raw.decode().splitlines() if line.startswith("data:")]
    messages = [json.loads(e) for e in events if e]
    return next(m for m in messages if m.get("id") == 1)["result"], len(raw)


@pytest.mark.parametrize("kind", ["bigerror", "bigrpcerror"])
def test_huge_agent_error_texts_are_cut_and_the_gateway_stays_small(fleet, kind):
    gw = fleet([f"{kind}:{BIG}"] * AGENTS)
    result, size = call(gw, "call_node_tool", {"tool": "get_gpu_inventory"})
    nodes = result["structuredContent"]["nodes"]
    assert len(nodes) == AGENTS and not any(n["ok"] for n in nodes)
    # each error is cut; past the gateway's buffer budget a node is refused before it is read
    assert all(len(n["error"]) < MAX_ERROR_CHARS + 200 for n in nodes)
    kinds = {n["error_kind"] for n in nodes}
    assert kinds <= {"tool_error" if kind == "bigerror" else "rpc_error", "reply_budget"}, kinds
    assert any("cut" in n["error"] for n in nodes)
    assert size < REPLY_BOUND
    assert peak_rss_mib(gw.proc.pid) < PEAK_RSS_MIB


def test_huge_results_hit_the_reply_budget_not_the_memory_limit(fleet):
    gw = fleet([f"bigreply:{BIG}"] * AGENTS)
    result, _ = call(gw, "call_node_tool", {"tool": "get_gpu_inventory"})
    summary = result["structuredContent"]["summary"]
    assert summary["targeted"] == AGENTS and summary["errors_by_kind"].get("reply_budget", 0) > 0
    assert peak_rss_mib(gw.proc.pid) < PEAK_RSS_MIB


def test_a_huge_selector_or_node_list_is_refused_fast_and_the_probes_stay_up(fleet):
    gw = fleet(["ok"] * 3)
    probe_times: list[float] = []
    stop = threading.Event()

    def probe() -> None:
        while not stop.is_set() and len(probe_times) < 500:
            t = time.monotonic()
            with urllib.request.urlopen(gw.base + "/healthz", timeout=10):
                probe_times.append(time.monotonic() - t)
            time.sleep(0.05)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        for arguments in (
            {"node_selector": " " * (3 << 20)},  # 3 MiB of spaces: 6 s at 15k with the old regex
            {"node_selector": "a in (" + "x," * 200_000},
            {"nodes": [f"node-{i}" for i in range(150_000)]},  # was a 46 MB reply
        ):
            start_t = time.monotonic()
            result, size = call(gw, "get_gpu_inventory", arguments)
            assert time.monotonic() - start_t < 10
            assert result["isError"] and size < 4096, result["content"][0]["text"][:300]
    finally:
        stop.set()
        thread.join(30)
    assert probe_times and max(probe_times) < 2.0
