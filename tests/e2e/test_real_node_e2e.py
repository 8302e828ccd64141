"""The real-node tier: the same launcher, through a real kubelet, containerd and runc, with the agent
image that deploy/Containerfile describes (built without an engine by tests/e2e/realnode/image.py).

A real kubelet differs from the test kubelet where it matters to the syringe: `kubectl debug` sets
`stdin` without `stdinOnce`, so the container never sees EOF when the client goes; the attach ends at
kubectl's stdin EOF, not when the container exits; and the exit code does not come back. So the
launcher must delete the pod itself, and the agent must stop by itself once nobody talks to it."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import pytest

from k8s_gpu_mcp import __version__
from tests.containerfile import CONTAINERFILE, runtime_config
from tests.e2e.cluster import Cluster
from tests.e2e.conftest import venv_bin
from tests.e2e.realnode.image import AGENT_TAG
from tests.e2e.realnode.node import RealNode
from tests.e2e.realnode.setup import real_node_or_fail

pytestmark = pytest.mark.e2e
NS = "default"
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "e2e", "version": "1"}}}  # fmt: skip


@pytest.fixture(scope="module")
def real_node(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    node = real_node_or_fail(cluster, tmp_path_factory.mktemp("realnode"))
    try:
        yield node
    finally:
        node.stop()
        left = node.leftovers()
        assert not any(left.values()), f"the real node left this behind: {left}"


def connect_args(cluster: Cluster, node: RealNode, *agent_args: str) -> list[str]:
    return ["connect", f"node/{node.name}", "--kubeconfig", str(cluster.kubeconfig), "--namespace", NS,
            "--image", AGENT_TAG, "--", "--nvml-mode=mock", *agent_args]  # fmt: skip


def debugger_pods(node: RealNode) -> list[dict[str, Any]]:
    return [p for p in node.pods() if p["metadata"]["name"].startswith("node-debugger-")]


def running(node: RealNode) -> list[dict[str, Any]]:
    return [p for p in debugger_pods(node) if p.get("status", {}).get("phase") == "Running"]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.25)
    pytest.fail(f"{what}: not within {timeout}s")


def launch(cluster: Cluster, node: RealNode, *agent_args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(venv_bin() / "k8s-gpu-mcp"), *connect_args(cluster, node, *agent_args)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cluster.env(),
    )  # fmt: skip


def initialize(proc: subprocess.Popen[bytes], timeout: float = 120) -> dict[str, Any]:
    """Send initialize and read its reply: the session is then up through the real attach."""
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write((json.dumps(INIT) + "\n").encode())
    proc.stdin.flush()
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    assert ready, "no initialize reply through the real kubelet"
    reply = json.loads(proc.stdout.readline())
    assert reply["id"] == 1 and "result" in reply, reply
    return reply


def force_delete(node: RealNode) -> None:
    for p in debugger_pods(node):
        node.cluster.kubectl("delete", "pod", "-n", p["metadata"]["namespace"], p["metadata"]["name"],
                             "--grace-period=0", "--force", check=False)  # fmt: skip


def test_mcp_session_through_the_real_kubelet(cluster: Cluster, real_node: RealNode) -> None:
    from mcp.client import Client
    from mcp.client.stdio import StdioServerParameters

    seen: dict[str, Any] = {}

    async def session() -> None:
        params = StdioServerParameters(
            command=str(venv_bin() / "k8s-gpu-mcp"), args=connect_args(cluster, real_node), env=cluster.env()
        )
        async with Client(params, read_timeout_seconds=120) as client:
            seen["tools"] = {t.name for t in (await client.list_tools()).tools}
            seen["pods"] = running(real_node)
            result = await client.call_tool("get_gpu_health", {})
            assert not result.is_error, [getattr(c, "text", c) for c in result.content]
            seen["health"] = result.structured_content

    anyio.run(session)
    assert {"get_gpu_health", "analyze_xid_errors", "get_gpu_inventory"} <= seen["tools"]
    (pod,) = seen["pods"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == AGENT_TAG and container["stdin"] is True
    assert not container.get("stdinOnce"), "kubectl debug sets no stdinOnce: the agent never sees EOF"
    assert seen["health"]["source"]["mock"] is True, "mock data is labelled as such"
    assert seen["health"]["source"]["node"] == real_node.name
    assert wait_for(lambda: not debugger_pods(real_node), 60, "debugger pod deleted after the client left")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_launcher_killed_deletes_the_pod(cluster: Cluster, real_node: RealNode, sig: signal.Signals) -> None:
    """SIGTERM: the launcher deletes the pod. SIGKILL: its orphan watcher does."""
    proc = launch(cluster, real_node)
    try:
        initialize(proc)
        assert running(real_node)
        proc.send_signal(sig)
        proc.wait(timeout=30)
        assert wait_for(lambda: not debugger_pods(real_node), 60, f"pod deleted after {sig.name}")
    finally:
        if proc.poll() is None:
            proc.kill()
        force_delete(real_node)


def _orphan_watchers() -> list[int]:
    out = subprocess.run(["pgrep", "-f", "k8s_gpu_mcp.launch.syringe --orphan-watcher"],
                         capture_output=True, text=True).stdout  # fmt: skip
    return [int(pid) for pid in out.split()]


def test_agent_stops_by_itself_when_nobody_talks(cluster: Cluster, real_node: RealNode) -> None:
    """With the launcher and its watcher both gone (SIGKILL), no EOF ever reaches the agent: its idle
    exit ends the container, so the pod does not run on forever."""
    before = set(_orphan_watchers())
    proc = launch(cluster, real_node, "--idle-exit", "5")
    try:
        initialize(proc)
        (pod,) = running(real_node)
        watchers = set(_orphan_watchers()) - before
        assert watchers, "the launcher starts an orphan watcher"
        for pid in watchers:
            os.kill(pid, signal.SIGKILL)
        proc.kill()
        proc.wait(timeout=30)
        name = pod["metadata"]["name"]

        def finished() -> str | None:
            phase = cluster.get_json("pod", "-n", NS, name).get("status", {}).get("phase")
            return phase if phase in ("Succeeded", "Failed") else None

        assert wait_for(finished, 60, "the agent's idle exit ends the pod") == "Succeeded"
    finally:
        if proc.poll() is None:
            proc.kill()
        force_delete(real_node)


def test_the_image_is_what_the_containerfile_describes(cluster: Cluster, real_node: RealNode) -> None:
    """Run in the image as the kubelet runs it: its user, PATH, entry point and installed version are
    the Containerfile's (the build replays that file; this checks what containerd made of it)."""
    want = runtime_config(CONTAINERFILE.read_text())
    script = 'id -u; echo "$PATH"; command -v k8s-gpu-mcp; k8s-gpu-mcp --version; python -c "import sys; print(sys.prefix)"'
    # kubectl debug as the launcher uses it, minus root and stdin: the image's own user and env
    cluster.kubectl("debug", f"node/{real_node.name}", "-n", NS, f"--image={AGENT_TAG}", "--profile=legacy",
                    "--", "sh", "-c", script)  # fmt: skip
    (pod,) = debugger_pods(real_node)
    name = pod["metadata"]["name"]

    def finished() -> str | None:
        phase = cluster.get_json("pod", "-n", NS, name).get("status", {}).get("phase")
        return phase if phase in ("Succeeded", "Failed") else None

    try:
        phase = wait_for(finished, 90, "image-check pod finished")
        logs = cluster.kubectl("logs", "-n", NS, name).stdout.split("\n")
    finally:
        force_delete(real_node)
    assert phase == "Succeeded", logs
    uid, path, entry, version, prefix = logs[:5]
    assert uid == want.user == "10001"
    assert path == want.env["PATH"]
    assert entry == f"/opt/k8s-gpu-mcp/bin/{want.entrypoint[0]}"
    assert version.split() == ["k8s-gpu-mcp", __version__]
    assert prefix == "/opt/k8s-gpu-mcp"
    size = real_node.image_size(AGENT_TAG)
    assert size is not None and size < 400 << 20, f"agent image unpacked size {size}"
