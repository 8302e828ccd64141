"""cordon_node / drain_gpu_node / uncordon_node, and get_node_timeline, on the real kube-apiserver, as
the shipped roles.

The agent runs in-process (mock GPUs, operator mode) with a kubeconfig for a service account bound to
deploy/kubernetes/base's read-only and operator ClusterRoles, and nothing else: so the roles are proven
enough. A PodDisruptionBudget blocks one eviction, which must be reported, not forced.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.k8s.client import set_default_api
from k8s_gpu_mcp.server import AgentApp
from tests.conftest import call
from tests.e2e.cluster import VIEWER_TOKEN, Cluster, sa_token
from tests.e2e.conftest import REPO, node, node_status, pod

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
NODE = "ops-node-1"
NS = "node-ops-e2e"


def _bind(role: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": f"{NS}-{role}"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": NS}],
    }


def _running(cluster: Cluster, name: str) -> None:
    """A pod a kubelet would report Running and Ready (Pending pods are evicted without PDB checks)."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    status = {
        "status": {"phase": "Running", "startTime": now, "conditions": [{"type": "Ready", "status": "True"}]}
    }
    cluster.kubectl(
        "patch", "pod", name, "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(status)
    )


@pytest.fixture(scope="module")
def ops_node(cluster: Cluster) -> Iterator[Cluster]:
    """Set up once: this tier runs no namespace controller, so a deleted namespace never goes away."""
    cluster.kubectl("apply", "-k", str(REPO / "deploy" / "kubernetes" / "base"))
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        _bind("k8s-gpu-mcp-read-only"),
        _bind("k8s-gpu-mcp-operator"),
        node(NODE, {"nvidia.com/gpu.present": "true"}),
    )
    cluster.kubectl("patch", "node", NODE, "--subresource=status", "--type=merge",
                    "-p", json.dumps(node_status(1, {"nvidia.com/gpu": "8"})))  # fmt: skip
    guarded = pod(NS, "train-1", NODE, {"nvidia.com/gpu": "2"})
    guarded["metadata"]["labels"] = {"app": "guarded"}
    cluster.apply(
        pod(NS, "train-0", NODE, {"nvidia.com/gpu": "4"}),
        guarded,
        pod(NS, "web", NODE, {"cpu": "1"}),
        {
            "apiVersion": "policy/v1beta1",
            "kind": "PodDisruptionBudget",
            "metadata": {"name": "guarded", "namespace": NS},
            "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "guarded"}}},
        },
    )
    for name in ("train-0", "train-1", "web"):
        _running(cluster, name)
    try:
        yield cluster
    finally:
        set_default_api(None)
        cluster.kubectl("delete", "pods,poddisruptionbudgets", "--all", "-n", NS, "--grace-period=0", "--force",
                        check=False)  # fmt: skip
        cluster.kubectl("delete", "node", NODE, check=False)
        cluster.kubectl("delete", "clusterrolebinding", f"{NS}-k8s-gpu-mcp-read-only", f"{NS}-k8s-gpu-mcp-operator",
                        check=False)  # fmt: skip


def _agent(cluster: Cluster, tmp_path: Path, monkeypatch, token: str) -> AgentApp:
    kubeconfig = cluster.write_kubeconfig(tmp_path / f"kubeconfig-{token}", token)
    monkeypatch.setenv("K8S_GPU_MCP_KUBECONFIG", str(kubeconfig))
    monkeypatch.setenv("NODE_NAME", NODE)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    set_default_api(None)
    return AgentApp(Settings(nvml_mode="mock", mode="operator", audit_log=str(tmp_path / "audit.jsonl")))


async def test_without_the_operator_role_the_refusal_names_verb_and_resource(
    ops_node: Cluster, tmp_path, monkeypatch
):
    app = _agent(ops_node, tmp_path, monkeypatch, VIEWER_TOKEN)
    try:
        result = await call(app, "cordon_node", {"node": NODE, "confirm": True})
        assert result.is_error
        text = result.content[0].text
        assert "RBAC forbids" in text and "'nodes'" in text and "user viewer" in text, text
        assert ops_node.get_json("node", NODE)["spec"].get("unschedulable") is not True
    finally:
        app.close()


async def test_the_timeline_has_the_node_pods_from_the_api(ops_node: Cluster, tmp_path, monkeypatch):
    app = _agent(ops_node, tmp_path, monkeypatch, sa_token(NS, "operator"))
    try:
        data = (await call(app, "get_node_timeline", {"since": "1h"})).structured_content
        started = {e["pod"]: e for e in data["entries"] if e["kind"] == "pod_started"}
        assert set(started) == {f"{NS}/train-0", f"{NS}/train-1", f"{NS}/web"}, data
        assert "using 4 GPUs" in started[f"{NS}/train-0"]["meaning"]
        assert "kubernetes" not in data["unavailable"]
    finally:
        app.close()


async def test_cordon_drain_uncordon_with_the_shipped_operator_role(ops_node: Cluster, tmp_path, monkeypatch):
    app = _agent(ops_node, tmp_path, monkeypatch, sa_token(NS, "operator"))
    try:
        plan = (await call(app, "drain_gpu_node", {"node": NODE, "dry_run": True})).structured_content
        assert {p["name"]: p["action"] for p in plan["pods"]} == {
            "train-0": "evict",
            "train-1": "evict",
            "web": "skip",
        }
        assert ops_node.get_json("node", NODE)["spec"].get("unschedulable") is not True

        result = await call(app, "drain_gpu_node", {"node": NODE, "confirm": True, "grace_seconds": 0})
        assert not result.is_error, result.content[0].text
        data = result.structured_content
        assert data["outcome"] == "partial" and data["cordoned"] is True
        by_name = {p["name"]: p for p in data["pods"]}
        assert by_name["train-0"]["outcome"] == "evicted"
        assert by_name["train-1"]["outcome"] == "blocked", by_name["train-1"]
        assert "disruption budget" in by_name["train-1"]["message"]
        assert by_name["web"]["outcome"] is None and by_name["web"]["action"] == "skip"
        assert ops_node.get_json("node", NODE)["spec"]["unschedulable"] is True
        left = {
            p["metadata"]["name"]: p["metadata"].get("deletionTimestamp")
            for p in ops_node.get_json("pods", "-n", NS)["items"]
        }
        assert "train-1" in left and left["train-1"] is None and "web" in left
        assert "train-0" not in left or left["train-0"] is not None  # evicted: gone, or terminating

        back = (await call(app, "uncordon_node", {"node": NODE, "confirm": True})).structured_content
        assert back["outcome"] == "uncordoned" and back["unschedulable_before"] is True
        assert ops_node.get_json("node", NODE)["spec"].get("unschedulable") is not True
    finally:
        app.close()
