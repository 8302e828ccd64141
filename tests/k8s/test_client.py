"""k8s/client.py: configuration order and error messages (lightkube over a mock transport)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx2
import pytest

from k8s_gpu_mcp.k8s.client import K8sError, load_config
from tests.k8s.fake_api import FakeCluster, forbidden, gpu_node, gpu_pod


@pytest.fixture
def fake() -> FakeCluster:
    return FakeCluster([gpu_node()], [gpu_pod("a", "gpu-node-1", 1)])


def test_reads_nodes_and_pods(fake: FakeCluster) -> None:
    api = fake.api()
    assert api.get_node("gpu-node-1")["status"]["capacity"]["nvidia.com/gpu"] == "8"
    assert [p["metadata"]["name"] for p in api.list_pods(node="gpu-node-1")] == ["a"]
    assert api.list_pods(node="elsewhere") == []
    assert "fieldSelector=spec.nodeName" in str(fake.requests[-1].url)


def test_forbidden_names_verb_resource_namespace_and_identity(fake: FakeCluster) -> None:
    fake.override = lambda r: forbidden("list", "pods", "system:serviceaccount:k8s-gpu-mcp:default")
    with pytest.raises(K8sError) as err:
        fake.api().list_pods(namespace="team-x")
    msg = str(err.value)
    assert "RBAC forbids 'list' on 'pods' in namespace 'team-x'" in msg
    assert "service account k8s-gpu-mcp/default" in msg and "k8s-gpu-mcp-read-only" in msg


def test_forbidden_get_node(fake: FakeCluster) -> None:
    fake.override = lambda r: forbidden("get", "nodes", "alice")
    with pytest.raises(K8sError, match=r"RBAC forbids 'get' on 'nodes' 'gpu-node-1' for user alice"):
        fake.api().get_node("gpu-node-1")


def test_not_found(fake: FakeCluster) -> None:
    with pytest.raises(K8sError, match=r"nodes 'nope' not found"):
        fake.api().get_node("nope")


def test_unreachable(fake: FakeCluster) -> None:
    def down(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("[Errno 111] Connection refused", request=request)

    fake.override = down
    with pytest.raises(K8sError, match=r"Kubernetes API at https://k8s.test:6443 is unreachable: .*refused"):
        fake.api().get_node("gpu-node-1")


def test_timeout(fake: FakeCluster) -> None:
    def slow(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ReadTimeout("timed out", request=request)

    fake.override = slow
    with pytest.raises(K8sError, match="did not answer in time"):
        fake.api().list_nodes()


def _kubeconfig(path: Path, server: str, context: str = "c1") -> Path:
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "k", "cluster": {"server": server}}],
                "users": [{"name": "u", "user": {"token": "t"}}],
                "contexts": [
                    {"name": "c1", "context": {"cluster": "k", "user": "u"}},
                    {"name": "c2", "context": {"cluster": "k", "user": "u", "namespace": "ns2"}},
                ],
                "current-context": context,
            }
        )
    )
    return path


def test_config_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "K8S_GPU_MCP_KUBECONFIG",
        "K8S_GPU_MCP_KUBE_CONTEXT",
        "KUBERNETES_SERVICE_HOST",
        "KUBECONFIG",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("K8S_GPU_MCP_SERVICE_ACCOUNT_DIR", str(tmp_path / "sa"))
    with pytest.raises(K8sError, match="no Kubernetes configuration"):
        load_config()

    monkeypatch.setenv("KUBECONFIG", str(_kubeconfig(tmp_path / "kc", "https://from-kubeconfig")))
    monkeypatch.setenv("K8S_GPU_MCP_KUBE_CONTEXT", "c2")
    _, info = load_config()
    assert (info.server, info.auth, info.context, info.namespace) == (
        "https://from-kubeconfig",
        "kubeconfig",
        "c2",
        "ns2",
    )

    sa = tmp_path / "sa"
    sa.mkdir()
    (sa / "token").write_text("tok")
    (sa / "namespace").write_text("k8s-gpu-mcp")
    (sa / "ca.crt").write_text("")
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    _, info = load_config()
    assert (info.server, info.auth, info.namespace) == (
        "https://10.96.0.1:443",
        "in-cluster service account",
        "k8s-gpu-mcp",
    )

    monkeypatch.setenv("K8S_GPU_MCP_KUBECONFIG", str(_kubeconfig(tmp_path / "explicit", "https://explicit")))
    monkeypatch.setenv("K8S_GPU_MCP_KUBE_CONTEXT", "missing")
    with pytest.raises(K8sError, match="Context 'missing' not found"):
        load_config()
    monkeypatch.delenv("K8S_GPU_MCP_KUBE_CONTEXT")
    assert load_config()[1].server == "https://explicit"


def test_lightkube_is_imported_lazily() -> None:
    import subprocess
    import sys

    code = "import sys, k8s_gpu_mcp.tools.cluster, k8s_gpu_mcp.k8s.client; print('lightkube' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
