"""cordon_node / uncordon_node / drain_gpu_node through MCP, with the API calls replaced by a recorder.

The real API server path (patch, Eviction API, a PodDisruptionBudget that blocks) is in
tests/e2e/test_node_ops_e2e.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from mcp.client import Client

import k8s_gpu_mcp.k8s.drain as drain
import k8s_gpu_mcp.tools._node_ops as node_ops
from tests.conftest import call
from tests.tools.remediation_helpers import answering, audit_lines

pytestmark = pytest.mark.anyio
NODE = "gpu-node-test"  # the make_app agent's node


class Recorder:
    """Stands in for KubeApi: the node and its pods, and every change the tools ask for."""

    def __init__(
        self, pods: list[dict[str, Any]], unschedulable: bool = False, blocked: set[str] = frozenset()
    ):
        self.pods = pods
        self.unschedulable = unschedulable
        self.blocked = blocked
        self.evicted: list[str] = []

    def get_node(self, name: str) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"unschedulable": self.unschedulable}}

    def list_pods(self, node: str | None = None, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.pods


def gpu_pod(name: str, gpus: int) -> dict[str, Any]:
    limits = {"nvidia.com/gpu": str(gpus)} if gpus else {"cpu": "1"}
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"containers": [{"name": "m", "resources": {"limits": limits}}]},
        "status": {"phase": "Running"},
    }


@pytest.fixture
def api(monkeypatch) -> Recorder:
    rec = Recorder([gpu_pod("train-0", 8), gpu_pod("train-1", 4), gpu_pod("web", 0)], blocked={"train-1"})

    def set_unschedulable(_api: Any, node: str, value: bool) -> bool:
        before, rec.unschedulable = rec.unschedulable, value
        return before

    def evict(_api: Any, namespace: str, name: str, grace: int | None) -> tuple[str, str]:
        if name in rec.blocked:
            return "blocked", "Cannot evict pod as it would violate the pod's disruption budget."
        rec.evicted.append(f"{namespace}/{name}")
        return "evicted", "eviction accepted"

    monkeypatch.setattr(node_ops, "_api", lambda: rec)
    monkeypatch.setattr(drain, "set_unschedulable", set_unschedulable)
    monkeypatch.setattr(drain, "evict", evict)
    return rec


async def test_the_node_tools_exist_only_in_operator_mode(make_app):
    read_only = {t.name for t in await _tools(make_app())}
    operator = {t.name for t in await _tools(make_app(mode="operator"))}
    names = {"cordon_node", "uncordon_node", "drain_gpu_node"}
    assert not names & read_only and names <= operator


async def _tools(app):
    async with Client(app.server) as client:
        return (await client.list_tools()).tools


async def test_another_node_is_refused_and_audited(make_app, api, tmp_path):
    log = tmp_path / "audit.jsonl"
    app = make_app(mode="operator", audit_log=str(log))
    result = await call(app, "cordon_node", {"node": "gpu-node-9", "confirm": True})
    assert result.is_error and "acts only on it" in result.content[0].text
    assert api.unschedulable is False
    assert audit_lines(log)[-1]["outcome"] == "refused"


async def test_cordon_needs_confirmation_without_elicitation(make_app, api):
    app = make_app(mode="operator")
    refused = await call(app, "cordon_node", {"node": NODE})
    assert refused.is_error and "confirm=true" in refused.content[0].text and api.unschedulable is False
    done = (await call(app, "cordon_node", {"node": NODE, "confirm": True})).structured_content
    assert done["outcome"] == "cordoned" and done["unschedulable_before"] is False and api.unschedulable
    again = (await call(app, "cordon_node", {"node": NODE, "confirm": True})).structured_content
    assert again["outcome"] == "unchanged"
    back = (await call(app, "uncordon_node", {"node": NODE, "confirm": True})).structured_content
    assert back["outcome"] == "uncordoned" and api.unschedulable is False


async def test_drain_dry_run_lists_the_plan_and_changes_nothing(make_app, api, tmp_path):
    log = tmp_path / "audit.jsonl"
    app = make_app(mode="operator", audit_log=str(log))
    data = (await call(app, "drain_gpu_node", {"node": NODE, "dry_run": True})).structured_content
    assert data["outcome"] == "dry-run" and not api.evicted and api.unschedulable is False
    assert [(p["name"], p["action"]) for p in data["pods"]] == [
        ("train-0", "evict"),
        ("train-1", "evict"),
        ("web", "skip"),
    ]
    assert "evict 2 pods" in data["action"]
    assert audit_lines(log)[-1]["outcome"] == "dry-run"


async def test_drain_asks_the_user_then_evicts_and_reports_a_blocking_budget(make_app, api, tmp_path):
    log = tmp_path / "audit.jsonl"
    app = make_app(mode="operator", audit_log=str(log))
    asked: list[str] = []
    async with Client(app.server, elicitation_callback=answering(asked=asked)) as client:
        result = await client.call_tool("drain_gpu_node", {"node": NODE})
    data = result.structured_content
    assert asked and "evict 2 pods" in asked[0] and "ml/train-0 (8 GPU)" in asked[0]
    assert data["outcome"] == "partial" and data["cordoned"] and api.unschedulable
    assert (data["evicted"], data["blocked"], data["failed"], data["skipped"]) == (1, 1, 0, 1)
    blocked = next(p for p in data["pods"] if p["name"] == "train-1")
    assert blocked["outcome"] == "blocked" and "disruption budget" in blocked["message"]
    assert "PodDisruptionBudget" in data["action"]
    outcomes = [line["outcome"] for line in audit_lines(log)]
    assert outcomes == ["approved", "partial"]


async def test_a_declined_drain_does_nothing(make_app, api):
    app = make_app(mode="operator")
    async with Client(app.server, elicitation_callback=answering(approve=False)) as client:
        result = await client.call_tool("drain_gpu_node", {"node": NODE, "confirm": True})
    assert result.is_error and "did not approve" in result.content[0].text
    assert not api.evicted and api.unschedulable is False


async def test_grace_seconds_out_of_range_is_a_clear_error(make_app, api):
    app = make_app(mode="operator")
    result = await call(app, "drain_gpu_node", {"node": NODE, "grace_seconds": -1, "confirm": True})
    assert result.is_error and "grace_seconds must be 0 to 3600" in result.content[0].text
