"""The node timeline (pure): pod history from the API's pod status, merging, order and limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from k8s_gpu_mcp.diagnose.timeline import Entry, merge, pod_entries

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
