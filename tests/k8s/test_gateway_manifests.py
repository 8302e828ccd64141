"""The gateway overlay renders (kubectl kustomize), with the objects and wiring it promises.

Without the base and DaemonSet component (another branch), the components are rendered over a
minimal stand-in for them, so they are checked here either way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
KUBECTL = shutil.which("kubectl")

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="needs kubectl (kustomize)")

STUB_DAEMONSET = """
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: k8s-gpu-mcp, namespace: k8s-gpu-mcp}
spec:
  selector: {matchLabels: {app.kubernetes.io/component: agent, app.kubernetes.io/name: k8s-gpu-mcp}}
  template:
    metadata: {labels: {app.kubernetes.io/component: agent, app.kubernetes.io/name: k8s-gpu-mcp}}
    spec:
      containers:
        - name: agent
          image: k8s-gpu-mcp
          ports: [{name: mcp, containerPort: 8080}]
          readinessProbe: {tcpSocket: {port: mcp}}
"""


def render(path: Path) -> list[dict]:
    out = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


@pytest.fixture
def rendered(tmp_path) -> list[dict]:
    overlay = DEPLOY / "overlays" / "gateway"
    if (DEPLOY / "base").is_dir() and (DEPLOY / "components" / "daemonset").is_dir():
        return render(overlay)
    (tmp_path / "daemonset.yaml").write_text(STUB_DAEMONSET)
    rel = os.path.relpath(DEPLOY / "components", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [daemonset.yaml]\n"
        f"components: [{rel}/gateway, {rel}/agent-networkpolicy]\n"
    )
    return render(tmp_path)


def by_kind(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_gateway_objects_are_rendered(rendered):
    kinds = {(d["kind"], d["metadata"]["name"]) for d in rendered}
    assert {
        ("Deployment", "k8s-gpu-mcp-gateway"),
        ("Service", "k8s-gpu-mcp-gateway"),
        ("ServiceAccount", "k8s-gpu-mcp-gateway"),
        ("Role", "k8s-gpu-mcp-gateway"),
        ("ClusterRole", "k8s-gpu-mcp-gateway"),
        ("NetworkPolicy", "k8s-gpu-mcp-agent-from-gateway"),
        ("DaemonSet", "k8s-gpu-mcp"),
    } <= kinds


def test_gateway_rbac_is_list_pods_and_nodes_only(rendered):
    role = by_kind(rendered, "Role", "k8s-gpu-mcp-gateway")
    cluster = by_kind(rendered, "ClusterRole", "k8s-gpu-mcp-gateway")
    assert role["rules"] == [
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {
            "apiGroups": ["apps"],
            "resources": ["daemonsets"],
            "resourceNames": ["k8s-gpu-mcp"],
            "verbs": ["get"],
        },
    ]
    assert cluster["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]


def test_gateway_deployment_wiring(rendered):
    deploy = by_kind(rendered, "Deployment", "k8s-gpu-mcp-gateway")
    pod = deploy["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    args = container["args"]
    assert args[0] == "gateway" and "--transport=http" in args and "--host=0.0.0.0" in args
    assert any(a.startswith("--token-file=") for a in args) and any(
        a.startswith("--agent-token-file=") for a in args
    )
    selector = next(a for a in args if a.startswith("--agent-selector=")).split("=", 1)[1]
    daemonset = by_kind(rendered, "DaemonSet", "k8s-gpu-mcp")
    agent_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert all(agent_labels.get(k) == v for k, v in (term.split("=") for term in selector.split(",")))
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    env = {e["name"]: e for e in container["env"]}
    assert "$(POD_IP)" in env["K8S_GPU_MCP_ALLOWED_HOSTS"]["value"]
    service = by_kind(rendered, "Service", "k8s-gpu-mcp-gateway")
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()


def test_agents_get_pod_ip_and_http_probes(rendered):
    daemonset = by_kind(rendered, "DaemonSet", "k8s-gpu-mcp")
    agent = next(c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "agent")
    assert {e["name"] for e in agent["env"]} >= {"POD_IP"}
    assert (
        agent["readinessProbe"]["httpGet"]["path"] == "/readyz" and "tcpSocket" not in agent["readinessProbe"]
    )


def test_network_policy_admits_only_the_gateway(rendered):
    policy = by_kind(rendered, "NetworkPolicy", "k8s-gpu-mcp-agent-from-gateway")
    daemonset = by_kind(rendered, "DaemonSet", "k8s-gpu-mcp")
    gateway = by_kind(rendered, "Deployment", "k8s-gpu-mcp-gateway")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= daemonset["spec"]["template"]["metadata"]["labels"].items()
    )
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert (
        source["podSelector"]["matchLabels"].items()
        <= gateway["spec"]["template"]["metadata"]["labels"].items()
    )
    assert rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
