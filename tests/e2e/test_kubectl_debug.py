"""The harness itself: real kubectl debug through the real API server to the test kubelet."""

from __future__ import annotations

import subprocess

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.conftest import GPU_NODE
from tests.e2e.kubelet import TestKubelet

pytestmark = pytest.mark.e2e


def test_nodes_are_seeded(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    node = cluster.get_json("node", GPU_NODE)
    assert node["status"]["allocatable"]["nvidia.com/gpu"] == "8"
    assert node["metadata"]["labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"


def test_kubectl_debug_round_trip(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    proc = subprocess.run(
        ["kubectl", "debug", f"node/{GPU_NODE}", "--image=local", "--profile=sysadmin", "-i", "--quiet", "--",
         "sh", "-c", "cat; echo to-stderr >&2"],
        input=b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n', capture_output=True, env=cluster.env(), timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    assert b"to-stderr" in proc.stderr
    pods = cluster.get_json("pods", "-n", "default")["items"]
    for p in pods:
        if p["metadata"]["name"].startswith(f"node-debugger-{GPU_NODE}-"):
            assert p["status"]["phase"] == "Succeeded"
            cluster.kubectl("delete", "pod", "-n", "default", p["metadata"]["name"], "--wait=false")
