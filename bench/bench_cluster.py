"""connect cluster on the e2e tier: a real kube-apiserver, test kubelets, real kubectl debug.

- first answer: a node tool's call on a node with no session yet (pod created, agent started, MCP
  initialized, tool answered), next to a bare ``kubectl debug node/X -i -- true`` on the same tier;
- second call on the same node (session reused), next to the same call on a `connect node/X` session;
- a sweep (find_unhealthy_gpus) over every node of the tier, cold (no session open) and warm, with
  its time per node.

Each figure is measured in this run, interleaved with its reference. Needs the kube-apiserver that
tests/e2e/apiserver_build.sh builds (``make e2e`` does); without it this section says so.
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

NODES = [f"bench-node-{i}" for i in range(1, 5)]
NS = "k8s-gpu-mcp"
SERVE = ["--", "--profile", "h100-sxm5-80gb-x8", "--log-level", "WARNING"]
RUNS = 5
CALLS = 30


def _median(xs: list[float]) -> float:
    return round(statistics.median(xs), 4)


def _debugger_pods(cluster: Any) -> list[str]:
    items = cluster.get_json("pods", "-n", NS)["items"]
    return [p["metadata"]["name"] for p in items if p["metadata"]["name"].startswith("node-debugger-")]


def _wait_gone(cluster: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while _debugger_pods(cluster) and time.monotonic() < deadline:
        time.sleep(0.2)


def _bare_debug(cluster: Any, node: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        ["kubectl", "debug", f"node/{node}", "--image=local", "--profile=sysadmin", "-i", "--quiet",
         "-n", NS, "--", "true"],
        check=True, capture_output=True, env=cluster.env(), stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip
    elapsed = time.perf_counter() - start
    for name in _debugger_pods(cluster):
        cluster.kubectl("delete", "pod", "-n", NS, name, "--wait=false")
    _wait_gone(cluster)
    return elapsed


def _params(cluster: Any, args: list[str]) -> Any:
    from mcp.client.stdio import StdioServerParameters

    return StdioServerParameters(
        command=str(Path(sys.executable).parent / "k8s-gpu-mcp"),
        args=args,
        env={
            "HOME": str(cluster.workdir / "home"),
            "PATH": os.environ["PATH"],
            "KUBECONFIG": str(cluster.kubeconfig),
        },
    )


def _cluster_args(cluster: Any) -> list[str]:
    return [
        "connect",
        "cluster",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--image",
        "local",
        "-n",
        NS,
        *SERVE,
    ]


async def _first_and_second(cluster: Any, node: str) -> tuple[float, list[float]]:
    """One connect cluster process: the first call on a node, then CALLS more on the same session."""
    from mcp.client import Client

    async with Client(_params(cluster, _cluster_args(cluster)), read_timeout_seconds=180) as client:
        start = time.perf_counter()
        r = await client.call_tool("get_gpu_inventory", {"node": node})
        first = time.perf_counter() - start
        assert r.structured_content["summary"]["succeeded"] == 1, r.structured_content
        later = []
        for _ in range(CALLS):
            start = time.perf_counter()
            r = await client.call_tool("get_gpu_inventory", {"node": node})
            later.append(time.perf_counter() - start)
            assert r.structured_content["summary"]["succeeded"] == 1
    return first, later


async def _node_session(cluster: Any, node: str) -> tuple[float, list[float]]:
    """A `connect node/X` session: process start to its first answer, then CALLS more calls."""
    from mcp.client import Client

    args = [
        "connect",
        f"node/{node}",
        "--kubeconfig",
        str(cluster.kubeconfig),
        "--image",
        "local",
        "-n",
        NS,
        *SERVE,
    ]
    start = time.perf_counter()
    async with Client(_params(cluster, args), read_timeout_seconds=180) as client:
        await client.call_tool("get_gpu_inventory", {})
        first = time.perf_counter() - start
        out = []
        for _ in range(CALLS):
            start = time.perf_counter()
            r = await client.call_tool("get_gpu_inventory", {})
            out.append(time.perf_counter() - start)
            assert not r.is_error
    return first, out


async def _sweep(cluster: Any) -> tuple[float, float, dict[str, Any]]:
    from mcp.client import Client

    async with Client(_params(cluster, _cluster_args(cluster)), read_timeout_seconds=300) as client:
        times = []
        for _ in range(2):  # cold: every node gets its session; warm: every session reused
            start = time.perf_counter()
            r = await client.call_tool("find_unhealthy_gpus", {})
            times.append(time.perf_counter() - start)
            report = r.structured_content
            assert report["nodes_checked"] == len(NODES) and not report["unreachable"], report
    return times[0], times[1], report


def _start_tier(tmp: Path) -> tuple[Any, list[Any]]:
    from tests.e2e.cluster import find_apiserver, start_cluster
    from tests.e2e.conftest import node, node_status
    from tests.e2e.kubelet import TestKubelet

    apiserver = find_apiserver()
    if apiserver is None:
        raise FileNotFoundError("kube-apiserver not built: run tests/e2e/apiserver_build.sh (or make e2e)")
    cluster = start_cluster(tmp / "cluster", apiserver)
    kubelets = [TestKubelet(cluster, n, tmp / n, [str(Path(sys.executable).parent)]) for n in NODES]
    for k in kubelets:
        k.start()
    labels = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.count": "8"}
    cluster.apply(*(node(n, labels) for n in NODES))
    for n, k in zip(NODES, kubelets, strict=True):
        patch = json.dumps(node_status(k.port, {"nvidia.com/gpu": "8"}))
        cluster.kubectl("patch", "node", n, "--subresource=status", "--type=merge", "-p", patch)
    cluster.kubectl("apply", "-k", str(REPO / "deploy" / "kubernetes" / "base"))
    return cluster, kubelets


def _cold_start(runs: int = 10) -> tuple[float, float]:
    """Process start to the initialize reply: connect cluster (no API call yet) and the minimal SDK
    server, interleaved."""
    sys.path.insert(0, str(REPO / "bench"))
    from stdio_rpc import StdioPeer

    cluster = [sys.executable, "-m", "k8s_gpu_mcp", "connect", "cluster", "--kubeconfig", "/nonexistent"]
    minimal = [sys.executable, str(REPO / "bench" / "minimal_server.py")]
    ours, floor = [], []
    for _ in range(runs):
        for argv, bucket in ((cluster, ours), (minimal, floor)):
            peer = StdioPeer(argv, {})
            bucket.append(peer.initialize())
            peer.close()
    return statistics.median(ours), statistics.median(floor)


def run() -> dict[str, Any]:
    start_s, minimal_s = _cold_start()
    with tempfile.TemporaryDirectory(prefix="bench-cluster-") as d:
        try:
            cluster, kubelets = _start_tier(Path(d))
        except FileNotFoundError as exc:
            return {"not run": str(exc)}
        try:
            bare, first, later, session, node_first = [], [], [], [], []
            for i in range(RUNS):
                node = NODES[i % len(NODES)]
                bare.append(_bare_debug(cluster, node))
                f, s = anyio.run(_first_and_second, cluster, node)
                _wait_gone(cluster)
                first.append(f)
                later += s
                nf, calls = anyio.run(_node_session, cluster, node)
                node_first.append(nf)
                session += calls
                _wait_gone(cluster)
            cold, warm, sweep = anyio.run(_sweep, cluster)
            _wait_gone(cluster)
            left = _debugger_pods(cluster)
        finally:
            for k in kubelets:
                k.stop()
            cluster.stop()
    first_ratio = statistics.median(first) / statistics.median(bare)
    second_ratio = statistics.median(later) / statistics.median(session)
    return {
        "connect cluster start to initialize reply, median s": round(start_s, 4),
        "minimal SDK server start to initialize reply, median s": round(minimal_s, 4),
        "start ratio": round(start_s / minimal_s, 3),
        "verdict:connect cluster start <= 1.3x minimal SDK server": start_s / minimal_s <= 1.3,
        "first answer via connect cluster, median s": _median(first),
        "bare kubectl debug node/X -i -- true, median s": _median(bare),
        "first answer ratio": round(first_ratio, 3),
        "connect node/X start to first answer, median s (the agent's own start-up)": _median(node_first),
        "first answer vs connect node/X": round(statistics.median(first) / statistics.median(node_first), 3),
        "verdict:connect cluster first answer <= 1.3x bare kubectl debug": first_ratio <= 1.3,
        "second call same node, median s": _median(later),
        "call on a connect node/X session, median s": _median(session),
        "second call ratio": round(second_ratio, 3),
        "verdict:connect cluster second call <= 1.2x node session": second_ratio <= 1.2,
        "sweep nodes": len(NODES),
        "sweep cold s (sessions opened)": round(cold, 3),
        "sweep cold s per node": round(cold / len(NODES), 3),
        "sweep warm s (sessions reused)": round(warm, 3),
        "sweep warm s per node": round(warm / len(NODES), 3),
        "sweep GPUs healthy / unhealthy / unknown": f"{sweep['healthy_gpus']} / {len(sweep['unhealthy'])} / "
        f"{len(sweep['unknown'])}",
        "debugger pods left after the clients exited": len(left),
        "runs": RUNS,
        "calls per session": CALLS,
    }


if __name__ == "__main__":
    sys.stderr.write(json.dumps(run(), indent=2) + "\n")
