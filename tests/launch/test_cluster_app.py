"""connect cluster's tools in process: API-only tools inject nothing, node tools need a target and
reach the right nodes, named errors for missing and GPU-less nodes, and every pod goes on exit,
stdin EOF or a signal (the real serve loop in a subprocess: tests/launch/cluster_harness.py)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from mcp.client import Client

from tests.launch.cluster_harness import make_app

pytestmark = pytest.mark.anyio
HARNESS = Path(__file__).with_name("cluster_harness.py")


def ok(result):
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


def error_text(result) -> str:
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_api_only_tools_start_no_session(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        nodes = ok(await client.call_tool("list_gpu_nodes", {}))
        assert [n["node"] for n in nodes["nodes"]] == ["gpu-node-1", "gpu-node-2", "gpu-node-3"]
        assert nodes["nodes_without_gpus"] == 1
        two = next(n for n in nodes["nodes"] if n["node"] == "gpu-node-2")
        assert two["requested"] == {"nvidia.com/gpu": 8} and two["gpu_pods"] == 1 and two["gpu_count"] == 8

        desc = ok(await client.call_tool("describe_gpu_node", {"node": "gpu-node-2"}))
        assert desc["nodes"][0]["allocated"] == {"nvidia.com/gpu": 8}
        assert "has no GPU" in error_text(await client.call_tool("describe_gpu_node", {"node": "cpu-node-1"}))

        alloc = ok(await client.call_tool("get_pod_gpu_allocation", {}))
        assert alloc["by_node"] == {"gpu-node-2": {"nvidia.com/gpu": 8}}

        pod = ok(await client.call_tool("find_workload_gpus", {"namespace": "ml", "name": "trainer-0"}))
        sel = ok(
            await client.call_tool(
                "find_workload_gpus", {"namespace": "ml", "kind": "selector", "name": "job-name=llm-train"}
            )
        )
        for found in (pod, sel):
            assert found["nodes"] == {"gpu-node-2": ["trainer-0"]} and found["gpus"] == {"nvidia.com/gpu": 8}
            assert "node='gpu-node-2'" in found["next_step"]
    assert app.pool.opened_total == 0 and list(tmp_path.iterdir()) == []


async def test_workload_through_its_controllers_selector(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "trainer", "namespace": "ml"},
        "spec": {
            "selector": {"matchLabels": {"app": "trainer"}},
            "template": {"metadata": {}, "spec": {"containers": []}},
        },
    }

    def route(request: httpx2.Request) -> httpx2.Response | None:
        if request.url.path == "/apis/apps/v1/namespaces/ml/deployments/trainer":
            return httpx2.Response(200, json=deployment)
        return None

    app.fake.override = route
    async with app.pool.running(), Client(app.server) as client:
        found = ok(
            await client.call_tool(
                "find_workload_gpus", {"namespace": "ml", "kind": "deployment", "name": "trainer"}
            )
        )
        assert found["selector"] == "app=trainer" and found["nodes"] == {"gpu-node-2": ["trainer-0"]}
        missing = error_text(
            await client.call_tool("find_workload_gpus", {"namespace": "ml", "kind": "job", "name": "nope"})
        )
        assert "not found" in missing and "nope" in missing


async def test_node_tools_need_a_target_and_name_bad_nodes(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "kill_gpu_process" not in tools and "call_node_tool" not in tools
        for name in ("get_gpu_health", "analyze_xid_errors", "snapshot_ecc", "get_gpu_telemetry",
                     "inspect_topology", "list_gpu_processes", "get_gpu_inventory"):  # fmt: skip
            assert {"node", "nodes", "node_selector"} <= set(tools[name].input_schema["properties"])
            assert "choose the nodes" in error_text(await client.call_tool(name, {}))
        r = ok(
            await client.call_tool(
                "get_gpu_inventory", {"nodes": ["gpu-node-3", "cpu-node-1", "gpu-node-404"]}
            )
        )
        by_node = {n["node"]: n for n in r["nodes"]}
        assert by_node["gpu-node-3"]["ok"] and by_node["gpu-node-3"]["result"]["gpu_count"] == 1
        assert (
            by_node["cpu-node-1"]["error_kind"] == "no_gpu" and "has no GPU" in by_node["cpu-node-1"]["error"]
        )
        assert by_node["gpu-node-404"]["error_kind"] == "unknown_node"
        assert "does not exist" in by_node["gpu-node-404"]["error"]
        assert r["summary"]["partial"] is True
    assert app.pool.opened_total == 1 and (tmp_path / "gpu-node-3.deleted").exists()


async def test_operator_mode_passes_destructive_tools_to_one_node(tmp_path: Path) -> None:
    app = make_app(tmp_path, mode="operator")
    async with app.pool.running(), Client(app.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["reset_gpu"].input_schema["required"] == ["node", "gpu"]
        assert tools["kill_gpu_process"].annotations.destructive_hint is True
        r = await client.call_tool("reset_gpu", {"node": "cpu-node-1", "gpu": 0})
        assert "has no GPU" in error_text(r) and app.pool.opened_total == 0


async def test_the_agents_confirmation_question_reaches_the_user(tmp_path: Path, caplog) -> None:
    """reset_gpu on one node: the agent there asks; the question arrives here as an elicitation; the
    user's "no" goes back and the agent refuses. The audit lines carry the caller and correlation id."""
    import logging

    import mcp_types as types

    app = make_app(tmp_path, mode="operator")
    asked: list[str] = []

    async def user_says_no(_ctx, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="decline")

    caplog.set_level(logging.INFO, logger="k8s_gpu_mcp.audit")
    async with (
        app.pool.running(),
        Client(app.server, elicitation_callback=user_says_no, mode="legacy") as client,
    ):
        r = await client.call_tool("reset_gpu", {"node": "gpu-node-2", "gpu": 1})
    assert asked and "Reset GPU 1" in asked[0] and "gpu-node-2" in asked[0]
    text = error_text(r)
    assert "declined" in text and "refused" in text
    lines = [rec.audit for rec in caplog.records if getattr(rec, "audit", None)]
    requested = next(a for a in lines if a["outcome"] == "requested")
    assert requested["node"] == "gpu-node-2" and "kubeconfig context" in requested["caller"]
    assert len(requested["correlation_id"]) == 16 and app.pool.opened_total == 1
    reset_file = tmp_path / "gpu-node-2-trees/sys/bus/pci/devices/0000:64:00.0/reset"
    assert reset_file.read_text() == "", "the user said no: nothing was reset"


def _rpc(proc: subprocess.Popen[bytes], *messages: dict) -> None:
    assert proc.stdin is not None
    proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in messages))
    proc.stdin.flush()


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT", "SIGHUP", "EOF"])
def test_every_pod_is_deleted_on_signal_or_eof(tmp_path: Path, how: str) -> None:
    proc = subprocess.Popen(
        [sys.executable, str(HARNESS), str(tmp_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _rpc(
            proc,
            {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
             "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}},
            {"jsonrpc": "2.0", "method": "notifications/initialized"},
            {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
             "params": {"name": "get_gpu_inventory", "arguments": {"nodes": ["gpu-node-1", "gpu-node-2"]}}},
        )  # fmt: skip
        assert proc.stdout is not None
        replies = [json.loads(proc.stdout.readline()) for _ in range(2)]
        summary = replies[1]["result"]["structuredContent"]["summary"]
        assert summary["succeeded"] == 2, replies[1]
        assert not any(tmp_path.glob("*.deleted")), "sessions stay open between calls"
        if how == "EOF":
            assert proc.stdin is not None
            proc.stdin.close()
        else:
            proc.send_signal(getattr(signal, how))
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert sorted(p.name for p in tmp_path.glob("*.deleted")) == ["gpu-node-1.deleted", "gpu-node-2.deleted"]
    assert proc.stdout is not None and proc.stdout.read() == b""


async def test_errors_an_assistant_can_act_on(tmp_path: Path) -> None:
    """The agent's error sentences, from the cluster server too: a tool another mode serves, an
    argument no tool takes, and a bad value named with what is valid. No session is opened."""
    app = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        reset = error_text(await client.call_tool("reset_gpu", {"node": "gpu-node-1", "gpu": 0}))
        assert "reset_gpu needs --mode operator" in reset
        unknown = error_text(await client.call_tool("get_gpu_health", {"node": "gpu-node-1", "gpus_x": [0]}))
        assert "takes no argument 'gpus_x'" in unknown and "node_selector" in unknown
        bad = error_text(await client.call_tool("get_gpu_health", {"node": "gpu-node-1", "detail": "all"}))
        assert "'detail'" in bad and "summary" in bad and "pydantic" not in bad
    assert app.pool.opened_total == 0
