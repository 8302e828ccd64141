"""connect cluster's get_node_timeline on the real kube-apiserver, as the documented SRE role.

The API half (node conditions, the node's Events, the cordon, pod starts, restarts and evictions)
comes from the API server with no agent started; include_node=true opens one node session (here the
real agent, run directly on the mock XID 48 scenario: no kubelet, no debugger pod) whose half, the
XID 48 on GPU 0 and the ECC state now, joins the same ordered, de-duplicated list.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from k8s_gpu_mcp.k8s.client import KubeApi
from k8s_gpu_mcp.launch.cluster import ClusterApp, ClusterOptions
from k8s_gpu_mcp.launch.cluster_sessions import SessionPool
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import REPO, node, node_status, pod

pytestmark = [pytest.mark.e2e, pytest.mark.anyio]
NODE = "tl-node-1"
NS = "timeline-e2e"
XID48 = Path(__file__).with_name("scenarios") / "xid48.yaml"
NOW = datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def node_event(name: str, reason: str, message: str, when: datetime, kind: str = "Normal") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": f"{NODE}.{name}", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": NODE, "uid": NODE},
        "reason": reason, "message": message, "type": kind, "count": 1,
        "firstTimestamp": iso(when), "lastTimestamp": iso(when), "source": {"component": "kubelet", "host": NODE},
    }  # fmt: skip


@pytest.fixture(scope="module")
def timeline_node(cluster: Cluster) -> Iterator[Cluster]:
    cluster.kubectl("apply", "-k", str(REPO / "deploy" / "kubernetes" / "base"))
    binding = cluster.kubectl(
        "create", "clusterrolebinding", f"{NS}-sre", "--clusterrole=k8s-gpu-mcp-connect-cluster", "--group=sre",
        check=False,
    )  # fmt: skip
    assert binding.returncode == 0 or "AlreadyExists" in binding.stderr, binding.stderr
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}},
        node(NODE, {"nvidia.com/gpu.present": "true"}),
    )
    status = node_status(1, {"nvidia.com/gpu": "8"})
    ready = status["status"]["conditions"][0]
    ready["lastTransitionTime"] = iso(NOW - timedelta(hours=3))
    cluster.kubectl("patch", "node", NODE, "--subresource=status", "--type=merge", "-p", json.dumps(status))
    cluster.kubectl("cordon", NODE)
    cluster.apply(
        node_event("rebooted", "Rebooted", f"Node {NODE} has been rebooted, boot id: 7e1d9c0b", NOW - timedelta(hours=5),
                   "Warning"),
        node_event("notready", "NodeNotReady", f"Node {NODE} status is now: NodeNotReady", NOW - timedelta(hours=4)),
        pod(NS, "train-0", NODE, {"nvidia.com/gpu": "8"}),
        pod(NS, "evicted-0", NODE, {"nvidia.com/gpu": "1"}),
    )  # fmt: skip
    running = {
        "status": {
            "phase": "Running", "startTime": iso(NOW - timedelta(hours=2)),
            "containerStatuses": [{
                "name": "main", "image": "nvcr.io/nvidia/pytorch:24.05-py3", "imageID": "", "ready": True,
                "restartCount": 1, "state": {"running": {"startedAt": iso(NOW - timedelta(minutes=50))}},
                "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137,
                                             "finishedAt": iso(NOW - timedelta(hours=1))}},
            }],
        }
    }  # fmt: skip
    evicted = {
        "status": {"phase": "Failed", "reason": "Evicted", "message": "The node was low on resource: memory."}
    }
    for name, patch in (("train-0", running), ("evicted-0", evicted)):
        cluster.kubectl(
            "patch", "pod", name, "-n", NS, "--subresource=status", "--type=merge", "-p", json.dumps(patch)
        )
    try:
        yield cluster
    finally:
        cluster.kubectl("delete", "pods", "--all", "-n", NS, "--grace-period=0", "--force", check=False)
        cluster.kubectl(
            "delete", "events", f"{NODE}.rebooted", f"{NODE}.notready", "-n", "default", check=False
        )
        cluster.kubectl("delete", "node", NODE, check=False)
        cluster.kubectl("delete", "clusterrolebinding", f"{NS}-sre", check=False)


def cluster_app(cluster: Cluster) -> ClusterApp:
    """connect cluster as user sre-alice (group sre, bound to k8s-gpu-mcp-connect-cluster only);
    each node session is the agent itself on the XID 48 scenario."""
    api = KubeApi(kubeconfig=str(cluster.kubeconfig), context="sre", in_cluster=False)
    agent = [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode=mock", "--log-level", "WARNING",
             "--profile", "h100-sxm5-80gb-x8", "--scenario", str(XID48)]  # fmt: skip
    pool = SessionPool(lambda _node: agent, max_sessions=1)
    return ClusterApp(ClusterOptions(), api=api, pool=pool)


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


async def test_the_api_half_then_the_node_half(timeline_node: Cluster) -> None:
    app = cluster_app(timeline_node)
    async with app.pool.running(), Client(app.server) as client:
        api_only = ok(await client.call_tool("get_node_timeline", {"node": NODE, "since": "24h"}))
        opened_after_api = app.pool.opened_total
        both = ok(
            await client.call_tool("get_node_timeline", {"node": NODE, "since": "24h", "include_node": True})
        )
        opened_after_node = app.pool.opened_total

    assert opened_after_api == 0, "the API half starts nothing on the node"
    assert api_only["unavailable"] == {}, api_only["unavailable"]  # the SRE role reads nodes, events, pods
    got = [(e["kind"], e["time"], e["pod"]) for e in api_only["entries"]]
    assert got == [
        ("boot", iso(NOW - timedelta(hours=5)), None),
        ("node_event", iso(NOW - timedelta(hours=4)), None),
        ("node_condition", iso(NOW - timedelta(hours=3)), None),
        ("pod_started", iso(NOW - timedelta(hours=2)), f"{NS}/train-0"),
        ("container_ended", iso(NOW - timedelta(hours=1)), f"{NS}/train-0"),
        # undated, after the dated ones, in the order read (the node, then its pods):
        ("cordoned", None, None),  # kubectl cordon, no controller to taint or record it: when is unknown
        ("pod_evicted", None, f"{NS}/evicted-0"),  # no recorded end
    ], api_only["entries"]
    meanings = {e["kind"]: e["meaning"] for e in api_only["entries"]}
    assert "Rebooted" in meanings["boot"] and "boot id: 7e1d9c0b" in meanings["boot"]
    assert "OOMKilled (exit code 137); restarted 1 time" in meanings["container_ended"]
    assert "low on resource: memory" in meanings["pod_evicted"]
    assert meanings["node_condition"].startswith("node became Ready")
    assert api_only["node_half"] is False and any("include_node=true" in n for n in api_only["notes"])

    assert opened_after_node == 1, "include_node opens one session on that node"
    assert both["node_half"] is True and both["node_source"]["mock"] is True
    assert both["node_source"]["scenario"] == "xid48-dbe"
    entries = both["entries"]
    kernel = [e for e in entries if e["source"] == "kernel-log" and e["kind"] == "xid"]
    assert kernel and all(e["gpu"] == 0 for e in kernel) and any("XID 48" in e["meaning"] for e in kernel)
    assert any(e["kind"] == "ecc" and e["gpu"] == 0 and e["source"] == "nvml" for e in entries)
    assert [e for e in entries if e["source"] == "kubernetes"] == api_only["entries"], "the API half, once"
    keys = [(e["time"], e["kind"], e["gpu"], e["meaning"]) for e in entries]
    assert len(keys) == len(set(keys))
    dated = [e["time"] for e in entries if e["time"]]
    assert dated == sorted(dated) and entries.index(kernel[0]) < len(dated)
