"""The gateway reads the agent's real get_gpu_health output, statuses passed through unchanged."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.gateway.health import from_health
from tests.conftest import call


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scenario", "gpu", "status"),
    [
        ("gpu-lost-xid79", None, "lost"),
        ("ecc-dbe-xid48", 0, "critical"),
        ("row-remap-pending", None, "degraded"),
    ],
)
@pytest.mark.parametrize("detail", ["summary", "full"])
async def test_real_health_output_maps_status_and_reasons(make_app, scenario, gpu, status, detail):
    app = make_app(profile=None, scenario=scenario)
    result = (await call(app, "get_gpu_health", {"detail": detail})).structured_content
    verdicts = from_health("node-5", result)
    assert len(verdicts) == result["counts"]["gpus"] == len(app.backend.adapter.gpus())
    by_status = {v.status for v in verdicts}
    assert status in by_status, by_status
    bad = next(v for v in verdicts if v.status == status)
    assert bad.basis == "get_gpu_health" and bad.reasons and bad.node == "node-5"
    assert (status == "lost" or (bad.uuid and bad.pci_bus_id)) and (gpu is None or bad.index == gpu)
    assert "unknown" not in by_status or result["counts"]["unknown"]


@pytest.mark.anyio
async def test_cluster_health_summary_keeps_every_verdict_and_drops_the_evidence(make_app):
    import json

    from k8s_gpu_mcp.gateway.tools import health_summary

    app = make_app(profile=None, scenario="ecc-dbe-xid48")
    full = (await call(app, "get_gpu_health", {"detail": "full"})).structured_content
    brief = health_summary(full)
    assert brief["status"] == full["status"] and brief["action"] == full["action"]
    assert [(p["index"], p["status"], p["reason"]) for p in brief["problems"]] == [
        (p["index"], p["status"], p["reason"]) for p in full["problems"]
    ]
    assert brief["counts"] == full["counts"]
    assert brief["mock"] is True and "evidence" not in brief["problems"][0]
    assert len(json.dumps(brief)) < len(json.dumps(full)) / 3


@pytest.mark.anyio
async def test_find_unhealthy_gpus_reports_nothing_on_a_busy_power_capped_node(make_app, tmp_path):
    from mcp.client import Client

    from tests.gateway.conftest import SimFleet
    from tests.gateway.test_gateway_server import gateway

    async with Client(make_app(profile=None, scenario="busy-and-capped").server) as agent:
        reply = await agent.call_tool("get_gpu_health", {})
    payload = reply.model_dump(mode="json", by_alias=True, exclude_none=True)
    fleet = SimFleet({"get_gpu_health": payload}, ["ok"])
    gw = await gateway(tmp_path, fleet)
    async with Client(gw.server) as client:
        found = (await client.call_tool("find_unhealthy_gpus", {})).structured_content
    await fleet.stop()
    assert found["unhealthy"] == [] and found["unknown"] == [] and found["unreachable"] == []
    assert found["healthy_gpus"] == 1
