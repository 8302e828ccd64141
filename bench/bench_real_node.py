"""The real-node tier (tests/e2e/realnode): a real kubelet, containerd and runc, and the agent image
that deploy/Containerfile describes.

- the agent image's size (the docker-archive tar, and unpacked as containerd reports it);
- first answer on the node through ``connect node/X`` and through ``connect cluster``, each next to
  a bare ``kubectl debug node/X -i -- true`` (a pod that starts and exits) on the same node, in
  this run, interleaved: the pod start is the floor both pay; and next to the agent alone started
  by a bare ``kubectl debug node/X -i -- k8s-gpu-mcp serve`` (its initialize reply): the pod start
  plus the agent's own Python and SDK start, the floor of any answer an agent gives;
- a second call on the same node through connect cluster, next to one on a connect node/X session.

Needs root, and the kubelet that tests/e2e/apiserver_build.sh builds (``make e2e`` does); without
them this section says so.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NS = "default"
RUNS = 3
CALLS = 20
AGENT = ["--", "--nvml-mode=mock", "--log-level", "WARNING"]


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 3)


def _params(cluster: Any, args: list[str]) -> Any:
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(command=str(Path(sys.executable).parent / "k8s-gpu-mcp"), args=args,
                                 env=cluster.env())  # fmt: skip


def _pods_left(node: Any) -> list[str]:
    return [p["metadata"]["name"] for p in node.pods()]


def _wait_gone(node: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while _pods_left(node) and time.monotonic() < deadline:
        time.sleep(0.2)


def _bare_debug(cluster: Any, node: Any, image: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["kubectl", "debug", f"node/{node.name}", f"--image={image}", "--profile=sysadmin", "-i", "--quiet",
         "-n", NS, "--", "true"],
        check=True, capture_output=True, env=cluster.env(), stdin=subprocess.DEVNULL, timeout=180,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    cluster.kubectl("delete", "pods", "-n", NS, "--all", "--grace-period=0", "--force", check=False)
    _wait_gone(node)
    return elapsed


INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "bench", "version": "0"}}}  # fmt: skip


def _agent_in_pod(cluster: Any, node: Any, image: str) -> float:
    """A bare ``kubectl debug node/X -i -- k8s-gpu-mcp serve``: seconds to the agent's initialize reply.
    The floor of any first answer on the node: the pod start plus the agent's own start in it."""
    argv = ["kubectl", "debug", f"node/{node.name}", f"--image={image}", "--profile=sysadmin", "-i", "--quiet",
            "-n", NS, "--", "k8s-gpu-mcp", "serve", "--nvml-mode=mock", "--log-level", "WARNING"]  # fmt: skip
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            env=cluster.env())  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(INIT) + "\n").encode())
    proc.stdin.flush()
    line = proc.stdout.readline()
    elapsed = time.perf_counter() - start
    assert json.loads(line).get("id") == 1, line[:200]
    proc.stdin.close()
    proc.wait(timeout=60)
    cluster.kubectl("delete", "pods", "-n", NS, "--all", "--grace-period=0", "--force", check=False)
    _wait_gone(node)
    return elapsed


async def _node_session(cluster: Any, node: Any, image: str) -> tuple[float, list[float]]:
    from mcp.client import Client

    args = ["connect", f"node/{node.name}", "--kubeconfig", str(cluster.kubeconfig), "-n", NS,
            "--image", image, *AGENT]  # fmt: skip
    start = time.perf_counter()
    async with Client(_params(cluster, args), read_timeout_seconds=180) as client:
        r = await client.call_tool("get_gpu_inventory", {})
        first = time.perf_counter() - start
        assert not r.is_error, r.content
        later = []
        for _ in range(CALLS):
            t = time.perf_counter()
            await client.call_tool("get_gpu_inventory", {})
            later.append(time.perf_counter() - t)
    return first, later


async def _cluster_session(cluster: Any, node: Any, image: str) -> tuple[float, float, list[float]]:
    """(process start to the first answer on the node, initialized to that answer, later calls). A
    client starts its servers at launch, so the second figure is what a question waits for."""
    from mcp.client import Client

    args = ["connect", "cluster", "--kubeconfig", str(cluster.kubeconfig), "-n", NS, "--image", image,
            *AGENT]  # fmt: skip
    start = time.perf_counter()
    async with Client(_params(cluster, args), read_timeout_seconds=180) as client:
        ready = time.perf_counter()
        r = await client.call_tool("get_gpu_inventory", {"node": node.name})
        first = time.perf_counter() - start
        after_init = time.perf_counter() - ready
        assert r.structured_content["summary"]["succeeded"] == 1, r.structured_content
        later = []
        for _ in range(CALLS):
            t = time.perf_counter()
            await client.call_tool("get_gpu_inventory", {"node": node.name})
            later.append(time.perf_counter() - t)
    return first, after_init, later


def run() -> dict[str, Any]:
    from tests.e2e.cluster import find_apiserver, start_cluster
    from tests.e2e.realnode.image import AGENT_TAG, build_agent
    from tests.e2e.realnode.node import RealNode, find_kubelet, node_ip, realnode_cache

    apiserver = find_apiserver()
    if os.geteuid() != 0 or find_kubelet() is None or apiserver is None:
        return {"not run": "needs root and the kube-apiserver + kubelet of tests/e2e/apiserver_build.sh"}
    built = subprocess.run([str(REPO / "tests/e2e/realnode/build.sh")], capture_output=True, text=True)
    if built.returncode != 0:
        return {"not run": f"tests/e2e/realnode/build.sh failed: {built.stderr[-500:]}"}
    cache = realnode_cache()
    t = time.perf_counter()
    agent_tar = build_agent(cache)
    image_build_s = time.perf_counter() - t
    with tempfile.TemporaryDirectory(prefix="bench-realnode-") as d:
        cluster = start_cluster(Path(d) / "cluster", apiserver)
        node = RealNode(name="bench-real-node", workdir=Path(d) / "node", cluster=cluster, ip=node_ip())
        try:
            t = time.perf_counter()
            node.start([cache / "pause.tar", agent_tar])
            node_up_s = time.perf_counter() - t
            unpacked = node.image_size(AGENT_TAG)
            bare, via_node, via_cluster, node_calls, cluster_calls, asked, in_pod = [], [], [], [], [], [], []
            _bare_debug(cluster, node, AGENT_TAG)  # warm the image's page cache for both sides
            for _ in range(RUNS):
                bare.append(_bare_debug(cluster, node, AGENT_TAG))
                in_pod.append(_agent_in_pod(cluster, node, AGENT_TAG))
                first, later = anyio.run(_node_session, cluster, node, AGENT_TAG)
                _wait_gone(node)
                via_node.append(first)
                node_calls += later
                first, after_init, later = anyio.run(_cluster_session, cluster, node, AGENT_TAG)
                _wait_gone(node)
                via_cluster.append(first)
                asked.append(after_init)
                cluster_calls += later
            left = _pods_left(node)
        finally:
            node.stop()
            cluster.stop()
        leftovers = node.leftovers()
    floor = statistics.median(bare)
    node_ratio = statistics.median(via_node) / floor
    cluster_ratio = statistics.median(via_cluster) / floor
    second_ratio = statistics.median(cluster_calls) / statistics.median(node_calls)
    return {
        "agent image tar, MB": round(agent_tar.stat().st_size / 1e6, 1),
        "agent image unpacked (containerd), MB": round(unpacked / 1e6, 1) if unpacked else "unreadable",
        "agent image build s (cached per checkout)": round(image_build_s, 1),
        "containerd + kubelet up to node Ready s": round(node_up_s, 1),
        "bare kubectl debug node/X -i -- true, median s": _median(bare),
        "agent started by a bare kubectl debug -i: initialize reply, median s (pod + agent start)": _median(
            in_pod
        ),
        "first answer via connect node/X, median s": _median(via_node),
        "first answer via connect node/X / bare": round(node_ratio, 3),
        "first answer via connect cluster, median s": _median(via_cluster),
        "first answer via connect cluster / bare": round(cluster_ratio, 3),
        "first answer via connect cluster from initialized (the question's wait), median s": _median(asked),
        "that / bare": round(statistics.median(asked) / floor, 3),
        "that / the agent's own start in a bare pod": round(
            statistics.median(asked) / statistics.median(in_pod), 3
        ),
        "verdict:real node: connect cluster first answer <= 1.3x bare kubectl debug": cluster_ratio <= 1.3,
        "second call via connect cluster, median s": _median(cluster_calls),
        "call on a connect node/X session, median s": _median(node_calls),
        "second call ratio": round(second_ratio, 3),
        "verdict:real node: connect cluster second call <= 1.2x node session": second_ratio <= 1.2,
        "pods left on the node after the clients exited": len(left),
        "host state left after teardown": "none" if not any(leftovers.values()) else json.dumps(leftovers),
        "runs": RUNS,
    }


if __name__ == "__main__":
    sys.stderr.write(json.dumps(run(), indent=2) + "\n")
