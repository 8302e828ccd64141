"""Fixtures for the real-API-server tier: a control plane, GPU nodes, GPU pods and a test kubelet.

Every test module here sets `pytestmark = pytest.mark.e2e`. Run with `make e2e` (builds/caches kube-apiserver first). Without a built apiserver the tier skips,
unless K8S_GPU_MCP_E2E_REQUIRED=1 (set by `make e2e`), where it fails instead.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.cluster import Cluster, find_apiserver, start_cluster
from tests.e2e.kubelet import TestKubelet

REPO = Path(__file__).resolve().parents[2]
GPU_NODE = "gpu-node-1"
MIG_NODE = "gpu-node-2"
CPU_NODE = "cpu-node-1"
UUIDS = [f"GPU-00000000-0000-0000-0000-00000000000{i}" for i in range(8)]


def venv_bin() -> Path:
    """The bin dir of the interpreter running the tests (where `k8s-gpu-mcp` is installed)."""
    return Path(sys.executable).parent


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    apiserver = find_apiserver()
    if apiserver is None:
        message = "kube-apiserver not built: run tests/e2e/apiserver_build.sh (or `make e2e`)"
        if os.environ.get("K8S_GPU_MCP_E2E_REQUIRED"):
            pytest.fail(message)
        pytest.skip(message)
    c = start_cluster(tmp_path_factory.mktemp("cluster"), apiserver)
    try:
        yield c
    finally:
        c.stop()


def node(
    name: str, labels: dict[str, str], taints: list[dict[str, str]] | None = None, **spec: Any
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", **labels},
        },
        "spec": {"taints": taints or [], **spec},
    }


def node_status(port: int, resources: dict[str, str], ready: str = "True") -> dict[str, Any]:
    base = {"cpu": "64", "memory": "1056Gi", "pods": "110", **resources}
    return {
        "status": {
            "capacity": base,
            "allocatable": base,
            "conditions": [
                {"type": "Ready", "status": ready, "reason": "KubeletReady" if ready == "True" else "NodeStatusUnknown",
                 "message": "kubelet is posting ready status" if ready == "True" else "Kubelet stopped posting node status.",
                 "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                {"type": "MemoryPressure", "status": "False", "reason": "KubeletHasSufficientMemory",
                 "lastHeartbeatTime": "2025-01-01T00:00:00Z", "lastTransitionTime": "2025-01-01T00:00:00Z"},
            ],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "nodeInfo": {"kubeletVersion": "v1.20.2", "kernelVersion": "6.1.0", "osImage": "e2e",
                         "containerRuntimeVersion": "test://1", "kubeProxyVersion": "v1.20.2",
                         "operatingSystem": "linux", "architecture": "amd64", "machineID": "", "systemUUID": "",
                         "bootID": ""},
        }
    }  # fmt: skip


def pod(ns: str, name: str, node_name: str, resources: dict[str, str] | None, **extra: Any) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": extra.pop("container", "main"),
        "image": extra.pop("image", "nvcr.io/nvidia/pytorch:24.05-py3"),
    }
    if resources:
        container["resources"] = {"limits": resources}
    if "env" in extra:
        container["env"] = extra.pop("env")
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "annotations": extra.pop("annotations", {})},
        "spec": {"nodeName": node_name, "containers": [container], "restartPolicy": "Never", **extra},
    }  # fmt: skip


@pytest.fixture(scope="session")
def gpu_cluster(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKubelet]:
    """gpu-node-1 (8x H100, served by a test kubelet), gpu-node-2 (A100 MIG, cordoned, NotReady), a CPU
    node, GPU pods in namespace `ml`, and the base manifests (namespace k8s-gpu-mcp + RBAC) applied."""
    kubelet = TestKubelet(
        cluster, GPU_NODE, tmp_path_factory.mktemp("kubelet"), path_prepend=[str(venv_bin())]
    )
    kubelet.start()
    try:
        gfd = {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.count": "8",
            "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
            "nvidia.com/gpu.memory": "81559",
            "nvidia.com/gpu.family": "hopper",
            "nvidia.com/cuda.driver.major": "550",
            "nvidia.com/mig.capable": "true",
        }
        mig = {
            "nvidia.com/gpu.present": "true",
            "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB-MIG-1g.10gb",
            "nvidia.com/gpu.count": "1",
            "nvidia.com/mig.strategy": "mixed",
        }
        cluster.apply(
            node(GPU_NODE, gfd),
            node(MIG_NODE, mig, taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}], unschedulable=True),
            node(CPU_NODE, {}),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}},
        )  # fmt: skip
        for name, port, res, ready in (
            (GPU_NODE, kubelet.port, {"nvidia.com/gpu": "8"}, "True"),
            (MIG_NODE, 1, {"nvidia.com/gpu": "0", "nvidia.com/mig-1g.10gb": "7"}, "Unknown"),
            (CPU_NODE, 1, {}, "True"),
        ):
            cluster.kubectl(
                "patch",
                "node",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps(node_status(port, res, ready)),
            )
        cluster.apply(
            pod("ml", "trainer-0", GPU_NODE, {"nvidia.com/gpu": "4"},
                env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": ",".join(UUIDS[:4])}]),
            pod("ml", "inference-0", GPU_NODE, {"nvidia.com/gpu": "1"},
                annotations={"example.com/gpu-uuids": UUIDS[5]}),
            pod("ml", "unassigned-0", GPU_NODE, {"nvidia.com/gpu": "2"}),
            pod("ml", "cpu-only", GPU_NODE, {"cpu": "1"}),
            pod("ml", "mig-job", MIG_NODE, {"nvidia.com/mig-1g.10gb": "1"}),
        )  # fmt: skip
        cluster.kubectl("apply", "-k", str(REPO / "deploy" / "kubernetes" / "base"))
        yield kubelet
    finally:
        kubelet.stop()
