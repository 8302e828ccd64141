"""The node timeline (pure): pod history from the API's pod status, merging, order and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from k8s_gpu_mcp.diagnose.timeline import Entry, event_entries, merge, node_entries, pod_entries

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def pod(name: str, status: dict[str, Any], gpus: int = 1) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "ml"},
        "spec": {"containers": [{"name": "main", "resources": {"limits": {"nvidia.com/gpu": str(gpus)}}}]},
        "status": status,
    }


def test_pod_start_and_an_oom_killed_restart_are_entries_with_their_times():
    started, ended = NOW - timedelta(hours=3), NOW - timedelta(hours=1)
    status = {
        "startTime": iso(started),
        "containerStatuses": [
            {"name": "main", "restartCount": 2, "state": {"running": {}},
             "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": iso(ended)}}}
        ],
    }  # fmt: skip
    entries = pod_entries([pod("train-0", status, gpus=8)], NOW - timedelta(hours=24))
    assert [(e.kind, e.time) for e in entries] == [("pod_started", started), ("container_ended", ended)]
    assert entries[0].meaning == "pod ml/train-0 started using 8 GPUs"
    assert "OOMKilled (exit code 137); restarted 2 times" in entries[1].meaning
    assert all(e.source == "kubernetes" and e.pod == "ml/train-0" for e in entries)


def test_entries_before_since_are_left_out():
    status = {"startTime": iso(NOW - timedelta(days=3))}
    assert pod_entries([pod("old", status)], NOW - timedelta(hours=24)) == []
    assert len(pod_entries([pod("old", status)], None)) == 1


def test_an_eviction_and_a_disruption_condition_are_reported():
    ended = NOW - timedelta(minutes=10)
    status = {
        "reason": "Evicted",
        "message": "The node was low on resource: memory.",
        "containerStatuses": [{"name": "main", "state": {"terminated": {"reason": "Error", "exitCode": 1, "finishedAt": iso(ended)}}}],
        "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
                        "lastTransitionTime": iso(ended - timedelta(seconds=30))}],
    }  # fmt: skip
    kinds = {e.kind: e for e in pod_entries([pod("job", status)], None)}
    assert kinds["pod_evicted"].time == ended and "low on resource: memory" in kinds["pod_evicted"].meaning
    assert "EvictionByEvictionAPI" in kinds["pod_disrupted"].meaning


def test_merge_orders_oldest_first_drops_duplicates_and_keeps_the_most_recent():
    a = Entry(NOW - timedelta(hours=2), "kernel-log", "xid", "XID 48", gpu=0)
    b = Entry(NOW - timedelta(hours=1), "nvml", "ecc", "ECC now", gpu=0)
    undated = Entry(None, "kubernetes", "pod_evicted", "pod ml/x evicted")
    entries, dropped = merge([[b, a], [a, undated]], limit=10)
    assert entries == [a, b, undated] and dropped == 0
    entries, dropped = merge([[a, b, undated]], limit=2)
    assert entries == [b, undated] and dropped == 1


def node_event(reason: str, when: datetime, message: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": f"gpu-node-1.{reason}", "namespace": "default"},
        "involvedObject": {"kind": "Node", "name": "gpu-node-1"},
        "reason": reason,
        "message": message,
        "lastTimestamp": iso(when),
        "type": extra.pop("type", "Normal"),
        "source": {"component": extra.pop("component", "kubelet")},
        **extra,
    }


def test_node_conditions_events_and_cordon_from_the_api():
    since = NOW - timedelta(hours=24)
    node = {
        "metadata": {"name": "gpu-node-1"},
        "spec": {"unschedulable": True},
        "status": {
            "conditions": [
                {"type": "Ready", "status": "False", "reason": "KubeletNotReady",
                 "message": "container runtime is down", "lastTransitionTime": iso(NOW - timedelta(hours=2))},
                {"type": "MemoryPressure", "status": "False", "lastTransitionTime": iso(NOW - timedelta(days=30))},
                {"type": "GpuXidError", "status": "True", "reason": "XID48",
                 "lastTransitionTime": iso(NOW - timedelta(hours=5))},
            ]
        },
    }  # fmt: skip
    events = [
        node_event("Rebooted", NOW - timedelta(hours=6), "Node gpu-node-1 has been rebooted, boot id: 7e1d",
                   type="Warning"),
        node_event("NodeNotSchedulable", NOW - timedelta(hours=1), "Node gpu-node-1 status is now: NodeNotSchedulable"),
        node_event("Starting", NOW - timedelta(days=3), "Starting kubelet."),  # before the window
        node_event("NodeNotReady", NOW - timedelta(hours=2), "Node gpu-node-1 status is now: NodeNotReady",
                   count=3, component="node-controller"),
    ]  # fmt: skip
    entries, _ = merge([node_entries(node, events, since)], 50)
    assert [(e.kind, e.time) for e in entries] == [
        ("boot", NOW - timedelta(hours=6)),
        ("node_condition", NOW - timedelta(hours=5)),
        ("node_event", NOW - timedelta(hours=2)),  # same time: in the order read (events, then conditions)
        ("node_condition", NOW - timedelta(hours=2)),
        ("cordoned", NOW - timedelta(hours=1)),
    ]
    assert entries[0].meaning.startswith("Warning Rebooted: Node gpu-node-1 has been rebooted")
    assert entries[1].meaning == "node condition GpuXidError became True (XID48)"
    assert entries[3].meaning == "node became NotReady (KubeletNotReady; container runtime is down)"
    assert entries[2].meaning.endswith("(x3) [node-controller]")
    assert all(e.source == "kubernetes" and e.gpu is None for e in entries)


def test_a_cordon_without_an_event_dates_from_its_taint_or_says_when_is_unknown():
    since = NOW - timedelta(hours=24)
    tainted = {
        "spec": {"unschedulable": True, "taints": [
            {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": iso(NOW - timedelta(hours=3))}
        ]}
    }  # fmt: skip
    (entry,) = node_entries(tainted, [], since)
    assert (entry.kind, entry.time) == ("cordoned", NOW - timedelta(hours=3))
    (bare,) = node_entries({"spec": {"unschedulable": True}}, [], since)
    assert bare.time is None and "when is not recorded" in bare.meaning
    old = node_entries(
        {"spec": {"unschedulable": True}}, [node_event("NodeNotSchedulable", NOW - timedelta(days=3))], since
    )
    assert [(e.time, e.meaning.split("; ")[-1]) for e in old] == [
        (None, f"cordoned since {NOW - timedelta(days=3):%Y-%m-%dT%H:%M:%S+00:00}")
    ]
    assert node_entries({"spec": {}}, [], since) == []


def test_event_time_falls_back_through_the_api_fields():
    series = {"reason": "Rebooted", "eventTime": iso(NOW - timedelta(hours=9)),
              "series": {"count": 2, "lastObservedTime": iso(NOW - timedelta(hours=1))}}  # fmt: skip
    (e,) = event_entries([series], None)
    assert e.time == NOW - timedelta(hours=1) and e.kind == "boot" and "(x2)" in e.meaning
    (undated,) = event_entries([{"reason": "Odd"}], NOW)
    assert undated.time is None and undated.kind == "node_event"
