"""Destructive tools through the gateway: off by default, one node per call, the user confirms through
elicitation (the agent's dry run is the question), audit lines carry the caller and correlation id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mcp_types as types
import pytest
from mcp.client import Client

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gateway.server import GatewayApp
from tests.gateway.conftest import SimFleet

pytestmark = pytest.mark.anyio


async def gateway(tmp_path: Path, fleet: SimFleet, **kw) -> GatewayApp:
    await fleet.start()
    path = tmp_path / "agents.json"
    path.write_text(json.dumps(fleet.agents_list()))
    plan = {"outcome": "dry-run", "plan": {"gpu": 0}}
    reply = {"structuredContent": plan, "content": [{"type": "text", "text": json.dumps(plan)}]}
    fleet.results["reset_gpu"] = json.dumps(reply).encode()  # what an operator-mode agent answers
    return GatewayApp(Settings(agents=str(path), node_timeout=2.0, **kw))


def text(result) -> str:
    return " ".join(getattr(c, "text", "") for c in result.content)


async def test_off_by_default_and_never_fanned_out(tmp_path, payloads):
    fleet = SimFleet(payloads, ["ok", "ok"])
    gw = await gateway(tmp_path, fleet)
    async with Client(gw.server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "reset_gpu" not in names and "kill_gpu_process" not in names
        r = await client.call_tool(
            "call_node_tool", {"tool": "reset_gpu", "arguments": {"gpu": 0, "confirm": True}}
        )
        assert r.is_error and "never fans out" in text(r)
    assert all(a.last_params is None for a in fleet.agents)
    await fleet.stop()


async def test_one_node_confirmed_by_the_user_and_audited(tmp_path, payloads, caplog):
    fleet = SimFleet(payloads, ["ok", "ok"])
    gw = await gateway(tmp_path, fleet, gateway_operator=True)
    asked: list[tuple[str, dict]] = []
    answer = {"approve": True}

    async def elicit(_ctx, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append((params.message, dict(fleet.agents[0].last_params or {})))
        return types.ElicitResult(action="accept", content=answer)

    caplog.set_level(logging.INFO, logger="k8s_gpu_mcp.audit")
    async with Client(gw.server, elicitation_callback=elicit, mode="legacy") as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["reset_gpu"].input_schema["required"] == ["node", "gpu"]
        assert "no ready agent on node 'nope'" in text(
            await client.call_tool("reset_gpu", {"node": "nope", "gpu": 0})
        )

        r = await client.call_tool("reset_gpu", {"node": "sim-0000", "gpu": 0})
        assert not r.is_error, text(r)
        sent = fleet.agents[0].last_params
        assert sent["arguments"] == {"gpu": 0, "dry_run": False, "confirm": True}
        correlation = r.structured_content["correlation_id"]
        assert sent["_meta"]["io.k8s-gpu-mcp/correlation-id"] == correlation
        assert "mcp" in sent["_meta"]["io.k8s-gpu-mcp/caller"].lower()
        message, at_question = asked[0]
        assert "sim-0000" in message and at_question["arguments"]["dry_run"] is True
        assert fleet.agents[1].last_params is None, "exactly one node"

        answer["approve"] = False
        refused = await client.call_tool("reset_gpu", {"node": "sim-0001", "gpu": 0})
        assert refused.is_error and "did not approve" in text(refused)
        assert fleet.agents[1].last_params["arguments"]["dry_run"] is True, "only the dry run reached it"
    lines = [r.audit for r in caplog.records if getattr(r, "audit", None)]
    assert {(a["node"], a["outcome"]) for a in lines} >= {
        ("sim-0000", "requested"),
        ("sim-0000", "answered"),
        ("sim-0001", "refused"),
    }
    assert all(a["caller"] and len(a["correlation_id"]) == 16 for a in lines)
    await fleet.stop()


async def test_a_client_without_elicitation_needs_confirm(tmp_path, payloads):
    fleet = SimFleet(payloads, ["ok"])
    gw = await gateway(tmp_path, fleet, gateway_operator=True)
    async with Client(gw.server) as client:
        r = await client.call_tool("reset_gpu", {"node": "sim-0000", "gpu": 0})
        assert r.is_error and "confirm=true" in text(r) and fleet.agents[0].last_params is None
        r = await client.call_tool("reset_gpu", {"node": "sim-0000", "gpu": 0, "confirm": True})
        assert not r.is_error and fleet.agents[0].last_params["arguments"]["confirm"] is True
    await fleet.stop()
