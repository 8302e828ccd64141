"""The gateway's MCP tools, in process, over simulated agents."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from mcp.client import Client

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gateway.server import GatewayApp
from tests.gateway.conftest import SimFleet

pytestmark = pytest.mark.anyio


async def gateway(tmp_path: Path, fleet: SimFleet, **kw) -> GatewayApp:
    await fleet.start()
    agents = fleet.agents_list()
    for i, agent in enumerate(agents):
        agent["labels"]["zone"] = "a" if i % 2 == 0 else "b"
    path = tmp_path / "agents.json"
    path.write_text(json.dumps(agents))
    return GatewayApp(Settings(agents=str(path), node_timeout=kw.pop("node_timeout", 2.0), **kw))


async def test_tools_listed_with_target_arguments(tmp_path, payloads):
    gw = await gateway(tmp_path, SimFleet(payloads, ["ok"]))
    async with Client(gw.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    assert {
        "list_gpu_nodes",
        "find_unhealthy_gpus",
        "get_gpu_health",
        "get_gpu_telemetry",
        "call_node_tool",
    } <= set(tools)
    props = tools["get_gpu_telemetry"].input_schema["properties"]
    assert {"node", "nodes", "node_selector", "gpus"} <= set(props) and "ctx" not in props
    assert tools["get_gpu_health"].output_schema["properties"].keys() == {"summary", "nodes"}
    assert tools["find_unhealthy_gpus"].annotations.read_only_hint is True
    assert tools["call_node_tool"].annotations.read_only_hint is False


async def test_targets_and_partial_results(tmp_path, payloads, caplog):
    fleet = SimFleet(payloads, ["ok", "ok", "hang", "ok"])
    gw = await gateway(tmp_path, fleet, node_timeout=1.0)
    caplog.set_level(logging.INFO, logger="k8s_gpu_mcp.gateway.core")
    async with Client(gw.server) as client:
        r = await client.call_tool("get_gpu_telemetry", {"gpus": [0]})
        s = r.structured_content
        assert s["summary"]["targeted"] == 4 and s["summary"]["succeeded"] == 3 and s["summary"]["partial"]
        assert s["summary"]["errors_by_kind"] == {"timeout": 1}
        hung = next(n for n in s["nodes"] if not n["ok"])
        assert hung["node"] == "sim-0002" and hung["result"] is None and "timeout" in hung["error"]
        assert fleet.agents[0].last_params == {
            "name": "get_gpu_telemetry",
            "arguments": {"gpus": [0]},
            "_meta": {"io.k8s-gpu-mcp/correlation-id": s["summary"]["correlation_id"]},
        }
        assert json.loads(r.content[0].text)["summary"] == s["summary"]

        r = await client.call_tool("get_gpu_inventory", {"node": "sim-0000", "nodes": ["sim-0003", "nope"]})
        nodes = {n["node"]: n for n in r.structured_content["nodes"]}
        assert (
            set(nodes) == {"sim-0000", "sim-0003", "nope"} and nodes["nope"]["error_kind"] == "unknown_node"
        )

        r = await client.call_tool("list_gpu_nodes", {"node_selector": "zone=b"})
        assert [n["node"] for n in r.structured_content["nodes"]] == ["sim-0001", "sim-0003"]

        r = await client.call_tool("get_gpu_health", {"node_selector": "zone in (a)"})
        assert r.structured_content["summary"]["targeted"] == 2

        r = await client.call_tool("list_gpu_nodes", {"node_selector": "zone=(b"})
        assert r.is_error and "bad label selector" in r.content[0].text
    await fleet.stop()
    lines = [rec for rec in caplog.records if rec.getMessage() == "gateway call"]
    assert lines and all(len(rec.correlation_id) == 16 for rec in lines)
    assert {rec.tool for rec in lines} >= {"get_gpu_telemetry", "get_gpu_inventory", "get_gpu_health"}


async def test_find_unhealthy_reads_health_and_reports_nodes_without_it(tmp_path, payloads):
    health = json.loads(json.dumps(payloads["get_gpu_health"]))
    for g in health["structuredContent"]["gpus"]:  # the mapping under test, from a known-healthy base
        g["status"] = "healthy"
    health["structuredContent"]["gpus"][2]["status"] = "critical"
    health["structuredContent"]["gpus"][2]["reasons"] = [{"message": "uncorrectable ECC errors"}]
    health["structuredContent"]["gpus"][5]["status"] = "mystery"
    fleet = SimFleet({**payloads, "get_gpu_health": health}, ["ok", "missing", "garbage"])
    gw = await gateway(tmp_path, fleet)
    async with Client(gw.server) as client:
        r = await client.call_tool("find_unhealthy_gpus", {})
    await fleet.stop()
    s = r.structured_content
    assert [(v["node"], v["index"], v["status"], v["basis"]) for v in s["unhealthy"]] == [
        ("sim-0000", 2, "critical", "get_gpu_health")
    ]
    assert s["unhealthy"][0]["reasons"] == ["uncorrectable ECC errors"]
    assert [(v["node"], v["index"]) for v in s["unknown"]] == [("sim-0000", 5)]
    assert s["healthy_gpus"] == 6  # sim-0000's others; sim-0001 has no get_gpu_health: not guessed healthy
    assert [(n["node"], n["error_kind"]) for n in s["unreachable"]] == [
        ("sim-0001", "tool_missing"),
        ("sim-0002", "bad_reply"),
    ]
    assert s["summary"]["succeeded"] == 1 and s["nodes_checked"] == 3


async def test_progress_notifications_during_a_fan_out(tmp_path, payloads):
    fleet = SimFleet(payloads, ["ok"] * 40)
    gw = await gateway(tmp_path, fleet)
    seen: list[tuple[float, float | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total))

    async with Client(gw.server) as client:
        r = await client.call_tool("get_gpu_health", {}, progress_callback=on_progress)
    await fleet.stop()
    assert r.structured_content["summary"]["succeeded"] == 40
    assert seen and seen[-1] == (40, 40) and len(seen) <= 21
    assert [p for p, _ in seen] == sorted(p for p, _ in seen)


async def test_gateway_metrics_move(tmp_path, payloads):
    fleet = SimFleet(payloads, ["ok", "hang"])
    gw = await gateway(tmp_path, fleet, node_timeout=0.5, breaker_failures=1)
    async with Client(gw.server) as client:
        await client.call_tool("get_gpu_health", {})
    await fleet.stop()
    text = gw.metrics.render()[0].decode()
    assert 'k8s_gpu_mcp_gateway_tool_requests_total{status="ok",tool="get_gpu_health"} 1.0' in text
    assert 'k8s_gpu_mcp_gateway_node_calls_total{outcome="ok"} 1.0' in text
    assert 'k8s_gpu_mcp_gateway_node_calls_total{outcome="timeout"} 1.0' in text
    assert "k8s_gpu_mcp_gateway_breakers_open 1.0" in text


async def test_large_results_keep_the_text_block_small(tmp_path, payloads):
    fleet = SimFleet(payloads, ["ok"] * 60)  # 60 full health replies: more than TEXT_LIMIT_BYTES
    gw = await gateway(tmp_path, fleet)
    async with Client(gw.server) as client:
        r = await client.call_tool("get_gpu_health", {})
    await fleet.stop()
    text = json.loads(r.content[0].text)
    assert "structuredContent only" in text["note"] and "result" not in text["nodes"][0]
    assert all(n["result"]["counts"]["gpus"] == 8 for n in r.structured_content["nodes"])


async def test_destructive_tools_need_the_gateway_operator_flag(tmp_path, payloads):
    gw = await gateway(tmp_path, SimFleet(payloads, ["ok"]))
    async with Client(gw.server) as client:
        result = await client.call_tool("kill_gpu_process", {"node": "n1", "pid": 1})
    text = " ".join(getattr(c, "text", "") for c in result.content)
    assert result.is_error and "kill_gpu_process needs --gateway-operator" in text
