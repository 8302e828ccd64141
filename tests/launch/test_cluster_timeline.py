"""connect cluster's get_node_timeline in process: the API half (conditions, events, cordon, pods)
without any session, and the node half from the agent (here the real agent on the mock XID 48
scenario, through tests/launch/fake_node_session.py) only when include_node=true."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from mcp.client import Client

from k8s_gpu_mcp.launch.cluster import ClusterApp, ClusterOptions
from k8s_gpu_mcp.launch.cluster_sessions import SessionPool
from tests.k8s.fake_api import FakeCluster, gpu_node, gpu_pod

pytestmark = pytest.mark.anyio
FAKE = Path(__file__).with_name("fake_node_session.py")


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def make_app(state: Path) -> tuple[ClusterApp, datetime]:
    now = datetime.now(UTC).replace(microsecond=0)
    node = gpu_node("gpu-node-2", spec={"unschedulable": True})
    node["status"]["conditions"] = [
        {"type": "Ready", "status": "True", "reason": "KubeletReady", "lastTransitionTime": iso(now - timedelta(hours=5))}
    ]  # fmt: skip
    pod = gpu_pod("trainer-0", "gpu-node-2", 8)
    pod["status"] = {
        "phase": "Running",
        "startTime": iso(now - timedelta(hours=4)),
        "containerStatuses": [
            {"name": "main", "restartCount": 1, "state": {"running": {}}, "image": "x", "imageID": "", "ready": True,
             "lastState": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": iso(now - timedelta(hours=2))}}}
        ],
    }  # fmt: skip
    events = [
        {"metadata": {"name": "e1", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "gpu-node-2"},
         "reason": "Rebooted", "type": "Warning", "message": "Node gpu-node-2 has been rebooted, boot id: 7e1d",
         "lastTimestamp": iso(now - timedelta(hours=6)), "source": {"component": "kubelet"}},
        {"metadata": {"name": "e2", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "gpu-node-2"},
         "reason": "NodeNotSchedulable", "message": "Node gpu-node-2 status is now: NodeNotSchedulable",
         "lastTimestamp": iso(now - timedelta(hours=1)), "source": {"component": "kubelet"}},
        {"metadata": {"name": "e3", "namespace": "default"}, "involvedObject": {"kind": "Node", "name": "gpu-node-1"},
         "reason": "Rebooted", "lastTimestamp": iso(now - timedelta(hours=1))},
    ]  # fmt: skip
    fake = FakeCluster([gpu_node("gpu-node-1"), node], [pod], events)
    pool = SessionPool(lambda n: [sys.executable, str(FAKE), n, str(state), "xid48"], max_sessions=2)
    return ClusterApp(ClusterOptions(), api=fake.api("kubeconfig"), pool=pool), now


def ok(result):
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


async def test_the_api_half_starts_no_session(tmp_path: Path) -> None:
    app, now = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        data = ok(await client.call_tool("get_node_timeline", {"node": "gpu-node-2"}))
    assert app.pool.opened_total == 0 and list(tmp_path.iterdir()) == []
    kinds = [(e["kind"], e["source"]) for e in data["entries"]]
    assert kinds == [
        ("boot", "kubernetes"),
        ("node_condition", "kubernetes"),
        ("pod_started", "kubernetes"),
        ("container_ended", "kubernetes"),
        ("cordoned", "kubernetes"),
    ], data["entries"]
    assert "rebooted" in data["entries"][0]["meaning"] and data["entries"][2]["pod"] == "ml/trainer-0"
    assert data["node_half"] is False and data["node_source"] is None
    assert any("include_node=true" in n for n in data["notes"])
    times = [datetime.fromisoformat(e["time"]) for e in data["entries"]]
    assert times == sorted(times) and times[0] == now - timedelta(hours=6)


async def test_include_node_adds_the_agents_half_ordered_and_once(tmp_path: Path) -> None:
    app, now = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        data = ok(await client.call_tool("get_node_timeline", {"node": "gpu-node-2", "include_node": True}))
        again = ok(await client.call_tool("get_node_timeline", {"node": "gpu-node-2", "include_node": True}))
        opened = app.pool.opened_total
    assert opened == 1, "the second call reuses the node's session"
    assert data["node_half"] is True and data["node_source"]["mock"] is True
    assert data["node_source"]["scenario"] == "xid48-dbe"
    entries = data["entries"]
    xids = [e for e in entries if e["kind"] == "xid"]
    # the scenario's kernel log and its NVML event (the watcher's, stamped when it fired)
    assert {(e["gpu"], e["source"]) for e in xids} == {(0, "kernel-log"), (0, "nvml")}
    assert any("XID 48" in e["meaning"] for e in xids)
    # the DBE and pending remap, as NVML reads them now
    assert any(e["kind"] == "ecc" and e["gpu"] == 0 for e in entries), entries
    api = [e for e in entries if e["source"] == "kubernetes"]
    assert len(api) == 5, "the API half once: the agent's own pod reads are left out"
    keys = [(e["time"], e["kind"], e["gpu"], e["meaning"]) for e in entries]
    assert len(keys) == len(set(keys))
    dated = [datetime.fromisoformat(e["time"]) for e in entries if e["time"]]
    assert dated == sorted(dated)
    assert "node.kubernetes" not in data["unavailable"]
    again_api = [e for e in again["entries"] if e["source"] == "kubernetes"]
    assert again["node_half"] is True and again_api == api


async def test_unknown_node_and_bad_since_are_errors(tmp_path: Path) -> None:
    app, _ = make_app(tmp_path)
    async with app.pool.running(), Client(app.server) as client:
        missing = await client.call_tool("get_node_timeline", {"node": "gpu-node-404"})
        future = await client.call_tool(
            "get_node_timeline", {"node": "gpu-node-2", "since": "2999-01-01T00:00:00Z"}
        )
        missing_node = await client.call_tool(
            "get_node_timeline", {"node": "gpu-node-404", "include_node": True}
        )
    assert missing.is_error and "not found" in missing.content[0].text
    assert future.is_error and "in the future" in future.content[0].text
    assert missing_node.is_error and app.pool.opened_total == 0
