"""The whole path, for real: MCP client -> `k8s-gpu-mcp connect` -> kubectl debug -> kube-apiserver ->
test kubelet -> `k8s-gpu-mcp serve` in the "pod" -> back. Then the failure modes the launcher names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from k8s_gpu_mcp.launch import syringe
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import GPU_NODE, MIG_NODE, UUIDS, venv_bin
from tests.e2e.kubelet import TestKubelet

pytestmark = pytest.mark.e2e
XID48 = Path(__file__).with_name("scenarios") / "xid48.yaml"
AGENT_NS = "k8s-gpu-mcp"  # created by deploy/kubernetes/base; its default SA is bound read-only


def connect_argv(cluster: Cluster, node: str, *extra: str, namespace: str = AGENT_NS) -> list[str]:
    return ["connect", f"node/{node}", "--kubeconfig", str(cluster.kubeconfig), "--image", "local",
            "--namespace", namespace, *extra]  # fmt: skip


def debugger_pods(cluster: Cluster, namespace: str) -> list[dict[str, Any]]:
    items = cluster.get_json("pods", "-n", namespace)["items"]
    return [p for p in items if p["metadata"]["name"].startswith("node-debugger-")]


def wait_gone(cluster: Cluster, namespace: str, timeout: float = 15) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while (left := debugger_pods(cluster, namespace)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left


async def mcp_session(cluster: Cluster, args: list[str], steps: Any) -> Any:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=str(venv_bin() / "k8s-gpu-mcp"),
        args=args,
        env={"HOME": str(cluster.workdir / "home"), "PATH": os.environ["PATH"]},
    )
    async with Client(params, read_timeout_seconds=60) as client:
        return await steps(client)


def structured(result: Any) -> dict[str, Any]:
    assert not result.is_error, [getattr(c, "text", c) for c in result.content]
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error
    return " ".join(getattr(c, "text", "") for c in result.content)


def test_mcp_session_through_kubectl_debug(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    seen: dict[str, Any] = {}

    async def steps(client: Any) -> None:
        tools = {t.name for t in (await client.list_tools()).tools}
        seen["tools"] = tools
        assert {"get_gpu_inventory", "describe_gpu_node", "get_pod_gpu_allocation"} <= tools
        seen["pods_during"] = debugger_pods(cluster, AGENT_NS)

        inv = structured(await client.call_tool("get_gpu_inventory", {}))
        assert inv["gpu_count"] == 8
        assert inv["source"]["scenario"] == "xid48-dbe" and inv["source"]["mock"] is True
        assert inv["source"]["node"] == GPU_NODE  # NODE_NAME set by the launcher

        node = structured(await client.call_tool("describe_gpu_node", {"node": GPU_NODE}))
        assert node["api"]["auth"] == "in-cluster service account"
        assert node["gpu_labels"]["nvidia.com/gpu.product"] == "NVIDIA-H100-80GB-HBM3"
        assert node["capacity"] == {"nvidia.com/gpu": 8} and node["allocatable"] == {"nvidia.com/gpu": 8}
        assert node["ready"] is True and node["unschedulable"] is False
        assert node["allocated"] == {"nvidia.com/gpu": 7}
        pods = {p["name"]: p for p in node["gpu_pods"]}
        assert set(pods) == {"trainer-0", "inference-0", "unassigned-0"}
        assert pods["trainer-0"]["containers"][0]["gpu_uuids"] == UUIDS[:4]
        assert pods["inference-0"]["gpu_uuids"] == [UUIDS[5]]
        assert "gpu_uuids" in pods["unassigned-0"]["unavailable"]
        assert node["local"]["gpu_count"] == 8  # the agent runs on this node: NVML view included

        mig = structured(await client.call_tool("describe_gpu_node", {"node": MIG_NODE}))
        assert mig["capacity"]["nvidia.com/mig-1g.10gb"] == 7 and mig["unschedulable"] is True
        assert mig["local"] is None and "local" in mig["unavailable"]
        assert any("cordoned" in f for f in mig["findings"]) and any("Unknown" in f for f in mig["findings"])

        missing = error_text(await client.call_tool("describe_gpu_node", {"node": "gpu-node-404"}))
        assert "not found" in missing and GPU_NODE in missing and MIG_NODE in missing

        alloc = structured(await client.call_tool("get_pod_gpu_allocation", {"node": inv["source"]["node"]}))
        assert alloc["node"] == GPU_NODE and alloc["allocated"] == {"nvidia.com/gpu": 7}

        if "analyze_xid_errors" in tools:
            seen["xid"] = structured(await client.call_tool("analyze_xid_errors", {"detail": "full"}))

    anyio.run(mcp_session, cluster, connect_argv(cluster, GPU_NODE, "--", "--scenario", str(XID48)), steps)
    assert len(seen["pods_during"]) == 1, "exactly one debugger pod while the session is open"
    assert wait_gone(cluster, AGENT_NS) == [], "the debugger pod is deleted when the session ends"
    if "analyze_xid_errors" not in seen["tools"]:
        pytest.skip("analyze_xid_errors is not on main yet (XID teammate's tool); every other step passed")
    xid = seen["xid"]
    assert xid["status"] == "critical", json.dumps(xid)[:2000]
    assert any(e["xid"] == 48 and e["index"] == 0 and e["uuid"] for e in xid["events"])


def test_agent_reports_rbac_it_lacks(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    """In `default`, the debugger pod's service account has no RBAC: the tool says exactly what is missing."""

    async def steps(client: Any) -> str:
        return error_text(await client.call_tool("describe_gpu_node", {"node": GPU_NODE}))

    text = anyio.run(
        mcp_session,
        cluster,
        connect_argv(cluster, GPU_NODE, "--", "--nvml-mode=mock", namespace="default"),
        steps,
    )
    assert "RBAC forbids 'get' on 'nodes'" in text and "service account default/default" in text
    assert wait_gone(cluster, "default") == []


def test_documented_user_rbac_is_enough(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    """Bind user group `sre` exactly as docs/kubernetes.md says, then run a session as that user."""
    cluster.kubectl(
        "create",
        "clusterrolebinding",
        "sre-gpu-mcp-nodes",
        "--clusterrole=k8s-gpu-mcp-connect-nodes",
        "--group=sre",
    )
    res = cluster.kubectl(
        "-n",
        AGENT_NS,
        "create",
        "rolebinding",
        "sre-gpu-mcp",
        "--clusterrole=k8s-gpu-mcp-connect",
        "--group=sre",
        check=False,
    )  # test_connect_cluster_e2e binds the same documented role first on a shared cluster
    assert res.returncode == 0 or "AlreadyExists" in res.stderr or "already exists" in res.stderr, res.stderr

    async def steps(client: Any) -> dict[str, Any]:
        return structured(await client.call_tool("get_pod_gpu_allocation", {"node": GPU_NODE}))

    argv = connect_argv(cluster, GPU_NODE, "--context", "sre", "--", "--nvml-mode=mock")
    alloc = anyio.run(mcp_session, cluster, argv, steps)
    assert alloc["allocated"] == {"nvidia.com/gpu": 7}
    assert wait_gone(cluster, AGENT_NS) == []
    other = run_connect(cluster, *connect_argv(cluster, GPU_NODE, "--context", "sre", namespace="default"))
    assert other.returncode == syringe.EXIT_FORBIDDEN and "RBAC forbids 'create' on 'pods'" in other.stderr


def run_connect(cluster: Cluster, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv_bin() / "k8s-gpu-mcp"), *args], capture_output=True, text=True, env=cluster.env(),
        stdin=subprocess.DEVNULL, timeout=timeout,
    )  # fmt: skip


def test_node_does_not_exist(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    res = run_connect(cluster, *connect_argv(cluster, "gpu-node-404"))
    assert res.returncode == syringe.EXIT_NODE_NOT_FOUND, res.stderr
    assert "node 'gpu-node-404' does not exist" in res.stderr and res.stdout == ""


def test_rbac_forbidden_for_the_user(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    res = run_connect(cluster, *connect_argv(cluster, GPU_NODE, "--context", "viewer"))
    assert res.returncode == syringe.EXIT_FORBIDDEN, res.stderr
    assert "RBAC forbids 'get' on 'nodes'" in res.stderr and res.stdout == ""


def test_image_cannot_be_pulled(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    argv = connect_argv(cluster, GPU_NODE)
    argv[argv.index("local")] = "registry.invalid/k8s-gpu-mcp:nope"
    res = run_connect(cluster, *argv)
    assert res.returncode == syringe.EXIT_IMAGE_PULL, res.stderr
    assert "cannot be pulled" in res.stderr and "ErrImagePull" in res.stderr and res.stdout == ""
    assert wait_gone(cluster, AGENT_NS) == []


def test_pod_not_running_in_time(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    """gpu-node-2 has no kubelet: the pod stays Pending; the launcher gives up and deletes it."""
    res = run_connect(cluster, *connect_argv(cluster, MIG_NODE, "--timeout", "3"))
    assert res.returncode == syringe.EXIT_TIMEOUT, res.stderr
    assert "did not start running" in res.stderr and "within 3s" in res.stderr
    left = debugger_pods(cluster, AGENT_NS)  # no kubelet to confirm: Terminating, not gone
    assert all(p["metadata"].get("deletionTimestamp") for p in left)
    for p in left:
        cluster.kubectl("delete", "pod", "-n", AGENT_NS, p["metadata"]["name"], "--grace-period=0", "--force")


def test_sigterm_deletes_the_pod(cluster: Cluster, gpu_cluster: TestKubelet) -> None:
    proc = subprocess.Popen(
        [str(venv_bin() / "k8s-gpu-mcp"), *connect_argv(cluster, GPU_NODE, "--", "--nvml-mode=mock")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env(),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            pods = debugger_pods(cluster, AGENT_NS)
            if pods and pods[0].get("status", {}).get("phase") == "Running":
                break
            time.sleep(0.2)
        else:
            pytest.fail("debugger pod never ran")
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert out == b"", "nothing but MCP bytes on stdout (and no request was sent)"
    assert wait_gone(cluster, AGENT_NS) == [], err.decode(errors="replace")


def test_manifests_server_dry_run(cluster: Cluster, gpu_cluster: TestKubelet, tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    for target in ("overlays/daemonset", "base", "overlays/gateway"):
        res = cluster.kubectl("apply", "--dry-run=server", "-k", str(repo / "deploy" / "kubernetes" / target))
        assert "(server dry run)" in res.stdout
    assert "deployment.apps/k8s-gpu-mcp-gateway created (server dry run)" in res.stdout
    assert (
        "networkpolicy.networking.k8s.io/k8s-gpu-mcp-agent-from-gateway created (server dry run)"
        in res.stdout
    )
    combo = tmp_path / "kustomization.yaml"
    overlay = repo / "deploy" / "kubernetes"
    combo.write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(overlay / 'overlays' / 'daemonset', tmp_path)}]\n"
        f"components: [{os.path.relpath(overlay / 'components' / 'operator', tmp_path)}]\n"
    )
    res = cluster.kubectl("apply", "--dry-run=server", "-k", str(tmp_path))
    assert (
        "clusterrolebinding.rbac.authorization.k8s.io/k8s-gpu-mcp-operator created (server dry run)"
        in res.stdout
    )
