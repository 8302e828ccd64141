"""describe_gpu_node / get_pod_gpu_allocation through MCP, on a fake API (tests/k8s/fake_api.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from k8s_gpu_mcp.k8s.client import set_default_api
from k8s_gpu_mcp.tools.cluster import pod_allocation
from tests.conftest import call
from tests.k8s.fake_api import UUIDS, FakeCluster, forbidden, gpu_node, gpu_pod


@pytest.fixture
def fake() -> Iterator[FakeCluster]:
    cluster = FakeCluster(
        [
            gpu_node("gpu-node-test"),
            gpu_node(
                "gpu-node-sick",
                gpus="8",
                allocatable="7",
                spec={
                    "unschedulable": True,
                    "taints": [{"key": "nvidia.com/gpu", "value": "xid", "effect": "NoSchedule"}],
                },
                conditions=[
                    {"type": "Ready", "status": "False", "reason": "KubeletNotReady", "message": "PLEG"}
                ],
            ),
        ],
        [
            gpu_pod(
                "train",
                "gpu-node-test",
                4,
                env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": ",".join(UUIDS[:4])}],
            ),
            gpu_pod("infer", "gpu-node-test", 1, annotations={"example.com/gpus": f"assigned={UUIDS[6]}"}),
            gpu_pod("done", "gpu-node-test", 2, phase="Succeeded"),
            gpu_pod("web", "gpu-node-test", None),
            gpu_pod("greedy", "gpu-node-sick", 8, ns="other"),
        ],
    )
    set_default_api(cluster.api())
    yield cluster
    set_default_api(None)


@pytest.mark.anyio
async def test_describe_own_node_adds_local_view(make_app, fake) -> None:
    result = await call(make_app(), "describe_gpu_node", {"node": "gpu-node-test"})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["gpu_labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
    assert data["capacity"] == {"nvidia.com/gpu": 8} and data["allocated"] == {"nvidia.com/gpu": 5}
    assert data["ready"] is True and data["findings"] == []
    assert sorted(p["name"] for p in data["gpu_pods"]) == ["done", "infer", "train"]
    assert data["local"]["gpu_count"] == 8 and data["local"]["backend"] == "mock"
    assert data["api"] == {
        "server": "https://k8s.test:6443",
        "auth": "in-cluster service account",
        "context": None,
    }
    assert data["source"]["node"] == "gpu-node-test"


@pytest.mark.anyio
async def test_describe_sick_node_findings(make_app, fake) -> None:
    data = (await call(make_app(), "describe_gpu_node", {"node": "gpu-node-sick"})).structured_content
    assert data["local"] is None and "gpu-node-test" in data["unavailable"]["local"]
    text = " | ".join(data["findings"])
    assert "NotReady" in text and "cordoned" in text and "taint nvidia.com/gpu=xid:NoSchedule" in text
    assert "allocatable nvidia.com/gpu (7) < capacity (8)" in text
    assert "pods request 8 nvidia.com/gpu but only 7 are allocatable" in text


@pytest.mark.anyio
async def test_unknown_node_lists_gpu_nodes(make_app, fake) -> None:
    result = await call(make_app(), "describe_gpu_node", {"node": "nope"})
    assert result.is_error
    assert "node 'nope' not found" in result.content[0].text and "gpu-node-sick" in result.content[0].text


@pytest.mark.anyio
async def test_forbidden_is_a_clear_tool_error(make_app, fake) -> None:
    fake.override = lambda r: forbidden("get", "nodes")
    result = await call(make_app(), "describe_gpu_node", {"node": "gpu-node-test"})
    assert result.is_error
    assert (
        "RBAC forbids 'get' on 'nodes' 'gpu-node-test' for service account default/default"
        in result.content[0].text
    )


@pytest.mark.anyio
async def test_pods_forbidden_still_describes_node(make_app, fake) -> None:
    fake.override = lambda r: forbidden("list", "pods") if "pods" in r.url.path else None
    data = (await call(make_app(), "describe_gpu_node", {"node": "gpu-node-test"})).structured_content
    assert data["gpu_pods"] == [] and "RBAC forbids 'list' on 'pods'" in data["unavailable"]["gpu_pods"]


@pytest.mark.anyio
async def test_allocation_on_one_node(make_app, fake) -> None:
    data = (await call(make_app(), "get_pod_gpu_allocation", {"node": "gpu-node-test"})).structured_content
    assert data["node"] == "gpu-node-test" and data["allocated"] == {"nvidia.com/gpu": 5}
    pods = {p["name"]: p for p in data["pods"]}
    assert pods["train"]["containers"][0]["gpu_uuids"] == UUIDS[:4]
    assert pods["train"]["containers"][0]["uuid_source"] == "env NVIDIA_VISIBLE_DEVICES"
    assert (
        pods["infer"]["gpu_uuids"] == [UUIDS[6]]
        and pods["infer"]["uuid_source"] == "annotation example.com/gpus"
    )
    assert pods["done"]["holds_gpus"] is False and "gpu_uuids" in pods["done"]["unavailable"]


@pytest.mark.anyio
async def test_allocation_by_namespace_across_nodes(make_app, fake) -> None:
    data = (
        await call(make_app(), "get_pod_gpu_allocation", {"node": "*", "namespace": "other"})
    ).structured_content
    assert data["node"] is None and [p["name"] for p in data["pods"]] == ["greedy"]


def test_mig_resources_and_requests_default_to_limits() -> None:
    pod = gpu_pod("m", "n", None)
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.10gb": "2", "cpu": "1"}}
    alloc = pod_allocation(pod)
    assert alloc is not None and alloc.gpus == {"nvidia.com/mig-1g.10gb": 2}
    assert alloc.containers[0].requests == {"nvidia.com/mig-1g.10gb": 2}
    assert pod_allocation(gpu_pod("cpu", "n", None)) is None
