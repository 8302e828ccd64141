"""`connect cluster` for real: one MCP entry, a kube-apiserver, four GPU nodes with test kubelets.

train-1..3 run the agent (mock H100 profile); train-2 alone has the XID 48 scenario and the training
job's pod; train-4's kubelet cannot pull any image. The journey: list_gpu_nodes -> job -> pod -> node
-> get_gpu_health sees XID 48 on GPU 0; a sweep finds exactly that GPU; the bad node is that node's
error while the others answer; nothing is left on the cluster afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.e2e.cluster import Cluster
from tests.e2e.conftest import REPO, node, node_status, venv_bin
from tests.e2e.kubelet import TestKubelet

pytestmark = pytest.mark.e2e
XID48 = Path(__file__).with_name("scenarios") / "xid48.yaml"
AGENT_NS = "k8s-gpu-mcp"
POOL = "e2e.k8s-gpu-mcp/pool"
GOOD = ["train-1", "train-2", "train-3"]
BAD = "train-4"
XID_NODE = "train-2"
CPU = "train-cpu"


class ScenarioKubelet(TestKubelet):
    """A test kubelet whose pods get extra environment (here: the node's fault scenario)."""

    def __init__(self, *args: Any, extra_env: dict[str, str] | None = None, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.extra_env = extra_env or {}

    def _env(self, pod: Any, spec: Any, poddir: Path) -> dict[str, str]:
        return {**super()._env(pod, spec, poddir), **self.extra_env}


class PullFailKubelet(TestKubelet):
    """A node whose registry is unreachable: every image fails to pull."""

    async def _run_pod(self, pod: Any) -> None:
        await self._report_pull_error(pod, {c.name: "pull-error" for c in pod.spec.containers})


def gfd(name: str) -> dict[str, str]:
    return {
        POOL: "cluster",
        "e2e.k8s-gpu-mcp/registry": "broken" if name == BAD else "ok",
        "nvidia.com/gpu.present": "true",
        "nvidia.com/gpu.count": "8",
        "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
    }


@pytest.fixture(scope="module")
def fleet(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, TestKubelet]]:
    path = [str(venv_bin())]
    kubelets: dict[str, TestKubelet] = {}
    for name in GOOD:
        env = {"K8S_GPU_MCP_SCENARIO": str(XID48)} if name == XID_NODE else {}
        kubelets[name] = ScenarioKubelet(cluster, name, tmp_path_factory.mktemp(name), path, extra_env=env)
    kubelets[BAD] = PullFailKubelet(cluster, BAD, tmp_path_factory.mktemp(BAD), path)
    for k in kubelets.values():
        k.start()
    try:
        cluster.apply(
            *(node(n, gfd(n)) for n in kubelets),
            node(CPU, {POOL: "cluster"}),
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ml"}},
        )
        for name, k in kubelets.items():
            patch = node_status(k.port, {"nvidia.com/gpu": "8"})
            cluster.kubectl(
                "patch", "node", name, "--subresource=status", "--type=merge", "-p", json.dumps(patch)
            )
        labels = {"job-name": "llm-train"}
        cluster.apply(
            {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "llm-train", "namespace": "ml"},
             "spec": {"manualSelector": True, "selector": {"matchLabels": labels},
                      "template": {"metadata": {"labels": labels},
                                   "spec": {"restartPolicy": "Never", "containers": [
                                       {"name": "train", "image": "nvcr.io/nvidia/pytorch:24.05-py3",
                                        "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}}}},
            {"apiVersion": "v1", "kind": "Pod",
             "metadata": {"name": "llm-train-0", "namespace": "ml", "labels": labels},
             "spec": {"nodeName": XID_NODE, "restartPolicy": "Never", "containers": [
                 {"name": "train", "image": "nvcr.io/nvidia/pytorch:24.05-py3",
                  "resources": {"limits": {"nvidia.com/gpu": "8"}}}]}},
        )  # fmt: skip
        cluster.kubectl("apply", "-k", str(REPO / "deploy" / "kubernetes" / "base"))
        yield kubelets
    finally:
        for k in kubelets.values():
            k.stop()


def debugger_pods(cluster: Cluster, namespace: str = AGENT_NS) -> list[dict[str, Any]]:
    items = cluster.get_json("pods", "-n", namespace)["items"]
    return [p for p in items if p["metadata"]["name"].startswith("node-debugger-")]


def wait_gone(cluster: Cluster, namespace: str = AGENT_NS, timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while (left := debugger_pods(cluster, namespace)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


def cluster_argv(cluster: Cluster, *extra: str, namespace: str = AGENT_NS) -> list[str]:
    return ["connect", "cluster", "--kubeconfig", str(cluster.kubeconfig), "--image", "local",
            "--namespace", namespace, *extra, "--", "--profile", "h100-sxm5-80gb-x8"]  # fmt: skip


async def session(cluster: Cluster, args: list[str], steps: Any) -> Any:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=str(venv_bin() / "k8s-gpu-mcp"),
        args=args,
        env={"HOME": str(cluster.workdir / "home"), "PATH": os.environ["PATH"]},
    )
    async with Client(params, read_timeout_seconds=120) as client:
        return await steps(client)


def ok(result: Any) -> dict[str, Any]:
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_journey_job_to_xid48_and_nothing_left(cluster: Cluster, fleet: dict[str, TestKubelet]) -> None:
    seen: dict[str, Any] = {}

    async def steps(client: Any) -> None:
        nodes = ok(await client.call_tool("list_gpu_nodes", {"node_selector": f"{POOL}=cluster"}))
        assert [n["node"] for n in nodes["nodes"]] == [*GOOD, BAD] and nodes["nodes_without_gpus"] == 1
        assert all(n["gpu_count"] == 8 and n["ready"] for n in nodes["nodes"])
        assert next(n for n in nodes["nodes"] if n["node"] == XID_NODE)["requested"] == {"nvidia.com/gpu": 8}

        job = ok(
            await client.call_tool(
                "find_workload_gpus", {"namespace": "ml", "kind": "job", "name": "llm-train"}
            )
        )
        assert job["nodes"] == {XID_NODE: ["llm-train-0"]} and job["gpus"] == {"nvidia.com/gpu": 8}
        assert XID_NODE in job["next_step"]
        ok(await client.call_tool("describe_gpu_node", {"node": XID_NODE}))
        ok(await client.call_tool("get_pod_gpu_allocation", {"namespace": "ml"}))
        seen["pods_after_api_tools"] = debugger_pods(cluster)

        refused = error_text(await client.call_tool("get_gpu_health", {}))
        assert "choose the nodes" in refused and "node_selector" in refused

        health = ok(await client.call_tool("get_gpu_health", {"node": XID_NODE, "detail": "full"}))
        assert health["summary"]["succeeded"] == 1, health["nodes"]
        result = health["nodes"][0]["result"]
        assert result["source"]["mock"] is True and result["source"]["scenario"] == "xid48-dbe"
        gpu0 = next(g for g in result["gpus"] if g["index"] == 0)
        assert gpu0["status"] == "critical" and "XID 48" in gpu0["summary"]
        others = {g["status"] for g in result["gpus"] if g["index"] != 0}
        assert others <= {"healthy", "unknown"}, others  # the capture has no NVLink error counters: unknown
        seen["pods_during"] = [p["spec"]["nodeName"] for p in debugger_pods(cluster)]

        again = ok(await client.call_tool("analyze_xid_errors", {"node": XID_NODE}))
        assert again["nodes"][0]["ok"], again["nodes"][0]
        problems = again["nodes"][0]["result"]["problems"]  # the summary: the unhealthy GPUs
        assert any(p["index"] == 0 and "XID 48" in p["reason"] for p in problems), problems
        seen["pods_after_second"] = [p["spec"]["nodeName"] for p in debugger_pods(cluster)]

        sweep = ok(
            await client.call_tool(
                "find_unhealthy_gpus", {"node_selector": f"{POOL}=cluster,e2e.k8s-gpu-mcp/registry=ok"}
            )
        )
        assert sweep["nodes_checked"] == 3 and sweep["unreachable"] == [], sweep
        assert [(g["node"], g["index"], g["status"]) for g in sweep["unhealthy"]] == [
            (XID_NODE, 0, "critical")
        ]
        assert sweep["healthy_gpus"] + len(sweep["unknown"]) == 23

        inv = ok(await client.call_tool("get_gpu_inventory", {"node_selector": f"{POOL}=cluster"}))
        by_node = {n["node"]: n for n in inv["nodes"]}
        assert (
            inv["summary"]["targeted"] == 4 and inv["summary"]["succeeded"] == 3 and inv["summary"]["partial"]
        )
        assert by_node[BAD]["error_kind"] == "image_pull" and "cannot be pulled" in by_node[BAD]["error"]
        assert BAD in by_node[BAD]["error"]
        assert all(by_node[n]["ok"] and by_node[n]["result"]["gpu_count"] == 8 for n in GOOD)

        missing = ok(await client.call_tool("get_gpu_health", {"nodes": [CPU, "train-404"]}))
        kinds = {n["node"]: n["error_kind"] for n in missing["nodes"]}
        assert kinds == {CPU: "no_gpu", "train-404": "unknown_node"}
        live = [p for p in debugger_pods(cluster) if not p["metadata"].get("deletionTimestamp")]
        seen["pods_before_exit"] = sorted(p["spec"]["nodeName"] for p in live)

    anyio.run(session, cluster, cluster_argv(cluster), steps)
    assert seen["pods_after_api_tools"] == [], "API-only tools create nothing on the cluster"
    assert seen["pods_during"] == [XID_NODE], "one debugger pod, on the node asked about"
    assert seen["pods_after_second"] == [XID_NODE], "the second call reuses the session"
    assert seen["pods_before_exit"] == GOOD, "sessions stay open (idle timeout) until the client exits"
    assert wait_gone(cluster) == [], "every debugger pod is deleted when the client exits"


def test_idle_sessions_close_and_max_sessions_waves(cluster: Cluster, fleet: dict[str, TestKubelet]) -> None:
    seen: dict[str, Any] = {}

    async def steps(client: Any) -> None:
        progress: list[tuple[float, float | None]] = []

        async def on_progress(done: float, total: float | None, _message: str | None) -> None:
            progress.append((done, total))

        r = ok(await client.call_tool("get_gpu_telemetry", {"nodes": GOOD}, progress_callback=on_progress))
        assert r["summary"]["succeeded"] == 3, r["nodes"]
        seen["progress"] = progress
        seen["pods_right_after"] = len(debugger_pods(cluster))
        deadline = time.monotonic() + 30
        while debugger_pods(cluster) and time.monotonic() < deadline:
            await anyio.sleep(0.5)
        seen["pods_after_idle"] = debugger_pods(cluster)

    argv = cluster_argv(cluster, "--max-sessions", "1", "--idle-timeout", "2")
    anyio.run(session, cluster, argv, steps)
    assert seen["pods_right_after"] <= 1, "--max-sessions 1: one pod at a time, the nodes ran in waves"
    assert seen["progress"] and seen["progress"][-1] == (3, 3)
    assert seen["pods_after_idle"] == [], "the idle session closed and deleted its pod"


def test_rbac_documented_roles_are_enough_and_missing_ones_are_named(
    cluster: Cluster, fleet: dict[str, TestKubelet]
) -> None:
    """Bind group `sre` as README/docs/kubernetes.md say; the viewer (no RBAC) gets the named error."""
    for args in (
        ["create", "clusterrolebinding", "sre-gpu-mcp-cluster", "--clusterrole=k8s-gpu-mcp-connect-cluster", "--group=sre"],
        ["-n", AGENT_NS, "create", "rolebinding", "sre-gpu-mcp", "--clusterrole=k8s-gpu-mcp-connect", "--group=sre"],
    ):  # fmt: skip
        res = cluster.kubectl(*args, check=False)
        assert res.returncode == 0 or "AlreadyExists" in res.stderr, res.stderr

    async def as_sre(client: Any) -> dict[str, Any]:
        ok(await client.call_tool("list_gpu_nodes", {}))
        ok(
            await client.call_tool(
                "find_workload_gpus", {"namespace": "ml", "kind": "job", "name": "llm-train"}
            )
        )
        return ok(await client.call_tool("get_gpu_health", {"node": XID_NODE}))

    health = anyio.run(session, cluster, cluster_argv(cluster, "--context", "sre"), as_sre)
    assert health["nodes"][0]["ok"], health["nodes"]
    assert wait_gone(cluster) == []

    async def sre_elsewhere(client: Any) -> dict[str, Any]:
        return ok(await client.call_tool("get_gpu_health", {"node": XID_NODE}))

    other = anyio.run(
        session, cluster, cluster_argv(cluster, "--context", "sre", namespace="default"), sre_elsewhere
    )
    failed = other["nodes"][0]
    assert failed["error_kind"] == "forbidden" and "RBAC forbids 'create' on 'pods'" in failed["error"], (
        failed
    )

    async def as_viewer(client: Any) -> tuple[str, str]:
        listed = error_text(await client.call_tool("list_gpu_nodes", {}))
        node_tool = error_text(await client.call_tool("get_gpu_health", {"node": XID_NODE}))
        return listed, node_tool

    listed, node_tool = anyio.run(session, cluster, cluster_argv(cluster, "--context", "viewer"), as_viewer)
    for text in (listed, node_tool):
        assert "RBAC forbids 'list' on 'nodes'" in text and "user viewer" in text, text
        assert "k8s-gpu-mcp-connect-cluster" in text


def test_signals_delete_every_pod(cluster: Cluster, fleet: dict[str, TestKubelet]) -> None:
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        proc = subprocess.Popen(
            [str(venv_bin() / "k8s-gpu-mcp"), *cluster_argv(cluster)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env(),
        )  # fmt: skip
        try:
            assert proc.stdin is not None and proc.stdout is not None
            lines = [
                {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
                 "capabilities": {}, "clientInfo": {"name": "e2e", "version": "0"}}},
                {"jsonrpc": "2.0", "method": "notifications/initialized"},
                {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                 "params": {"name": "get_gpu_inventory", "arguments": {"nodes": GOOD[:2]}}},
            ]  # fmt: skip
            proc.stdin.write(b"".join(json.dumps(m).encode() + b"\n" for m in lines))
            proc.stdin.flush()
            replies = [json.loads(proc.stdout.readline()) for _ in range(2)]
            assert replies[1]["id"] == 2 and not replies[1]["result"].get("isError"), replies[1]
            assert len(debugger_pods(cluster)) == 2
            proc.send_signal(sig)
            proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert wait_gone(cluster) == [], f"pods left after {sig.name}"
