"""The drain plan (pure): which pods a drain evicts, which it leaves, and why."""

from __future__ import annotations

from typing import Any

from k8s_gpu_mcp.k8s.drain import gpu_request, plan_drain, plan_pod


def pod(name: str, limits: dict[str, str] | None = None, **meta: Any) -> dict[str, Any]:
    phase = meta.pop("phase", "Running")
    container: dict[str, Any] = {"name": "main", "image": "x"}
    if limits:
        container["resources"] = {"limits": limits, "requests": meta.pop("requests", {})}
    return {
        "metadata": {"name": name, "namespace": "ml", **meta},
        "spec": {"nodeName": "n1", "containers": [container]},
        "status": {"phase": phase},
    }


def test_gpu_request_counts_whole_gpus_and_mig_instances_once_per_container():
    assert gpu_request(pod("a", {"nvidia.com/gpu": "4"}, requests={"nvidia.com/gpu": "4"})) == 4
    assert gpu_request(pod("b", {"nvidia.com/mig-1g.10gb": "2", "cpu": "3"})) == 2
    assert gpu_request(pod("c", {"cpu": "8"})) == 0
    assert gpu_request({"spec": {}}) == 0


def test_only_gpu_pods_are_evicted_unless_all_pods():
    plans = {
        p.name: p
        for p in plan_drain([pod("train", {"nvidia.com/gpu": "8"}), pod("web", {"cpu": "1"})], all_pods=False)
    }
    assert plans["train"].action == "evict" and plans["train"].why == "uses 8 GPUs"
    assert plans["web"].action == "skip" and "no GPU" in plans["web"].why
    assert plan_pod(pod("web", {"cpu": "1"}), all_pods=True).action == "evict"


def test_daemonset_static_finished_and_terminating_pods_are_never_evicted():
    gpu = {"nvidia.com/gpu": "1"}
    cases = {
        "ds": pod("ds", gpu, ownerReferences=[{"kind": "DaemonSet", "name": "dcgm-exporter"}]),
        "static": pod("static", gpu, annotations={"kubernetes.io/config.mirror": "abc"}),
        "done": pod("done", gpu, phase="Succeeded"),
        "going": pod("going", gpu, deletionTimestamp="2026-12-01T00:00:00Z"),
    }
    whys = {name: plan_pod(p, all_pods=True) for name, p in cases.items()}
    assert all(p.action == "skip" for p in whys.values())
    assert "DaemonSet" in whys["ds"].why and "static" in whys["static"].why
    assert "succeeded" in whys["done"].why and "terminating" in whys["going"].why


def test_the_plan_lists_evictions_first():
    plans = plan_drain([pod("z-web", {"cpu": "1"}), pod("a-train", {"nvidia.com/gpu": "1"})], all_pods=False)
    assert [p.name for p in plans] == ["a-train", "z-web"]
