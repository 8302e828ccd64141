"""Bring up the real node for a test module: prerequisites (cached per machine), the agent image for
this checkout, then containerd and the kubelet. Without root or a built kubelet the tier skips, unless
K8S_GPU_MCP_E2E_REQUIRED=1 (`make e2e`), where it fails."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.realnode.image import build_agent
from tests.e2e.realnode.node import RealNode, find_kubelet, node_ip, realnode_cache

HERE = Path(__file__).resolve().parent
NODE_NAME = "real-gpu-node-1"


def _unavailable(message: str) -> None:
    if os.environ.get("K8S_GPU_MCP_E2E_REQUIRED"):
        pytest.fail(message)
    pytest.skip(message)


def prerequisites() -> tuple[Path, Path]:
    """(pause image tar, agent image tar), building what this machine lacks."""
    if os.geteuid() != 0:
        _unavailable("the real-node tier needs root (containerd, kubelet)")
    if find_kubelet() is None:
        _unavailable("kubelet not built: run tests/e2e/apiserver_build.sh (or `make e2e`)")
    proc = subprocess.run([str(HERE / "build.sh")], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        _unavailable(f"tests/e2e/realnode/build.sh failed: {proc.stderr[-2000:]}")
    cache = realnode_cache()
    return cache / "pause.tar", build_agent(cache)


def real_node_or_fail(cluster: Cluster, workdir: Path) -> RealNode:
    pause, agent = prerequisites()
    node = RealNode(name=NODE_NAME, workdir=workdir, cluster=cluster, ip=node_ip())
    try:
        node.start([pause, agent])
    except BaseException:
        node.stop()
        raise
    return node
