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
    """As on a real node: the container's stdin never sees EOF (kubectl debug sets stdin without
    stdinOnce); closing kubectl's stdin ends the attach while the container keeps running."""
    proc = subprocess.Popen(
        ["kubectl", "debug", f"node/{GPU_NODE}", "--image=local", "--profile=sysadmin", "-i", "--quiet", "--",
         "sh", "-c", 'read line; echo "$line"; echo to-stderr >&2; cat'],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env(),
    )  # fmt: skip
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        line = b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
        proc.stdin.write(line)
        proc.stdin.flush()
        assert proc.stdout.readline() == line
        assert proc.stderr.readline() == b"to-stderr\n"
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
        pods = [
            p
            for p in cluster.get_json("pods", "-n", "default")["items"]
            if p["metadata"]["name"].startswith(f"node-debugger-{GPU_NODE}-")
        ]
        assert pods and all(p["status"]["phase"] == "Running" for p in pods)  # cat never saw EOF
    finally:
        proc.kill()
        proc.wait()
        for p in cluster.get_json("pods", "-n", "default")["items"]:
            if p["metadata"]["name"].startswith(f"node-debugger-{GPU_NODE}-"):
                cluster.kubectl("delete", "pod", "-n", "default", p["metadata"]["name"], "--wait=false")
