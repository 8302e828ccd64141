"""deploy/kubernetes rendered with `kubectl kustomize` (no cluster). The e2e tier applies them to a real
API server (base for real, the overlays with --dry-run=server)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from k8s_gpu_mcp.cli import build_parser
from k8s_gpu_mcp.launch.syringe import DEFAULT_IMAGE

KUSTOMIZE = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
pytestmark = pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize)")
PENDING_FLAGS = {"--token-file"}  # HTTP mode (another issue); the manifest already passes it


def render(target: str | Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        ["kubectl", "kustomize", str(target)], capture_output=True, text=True, check=True, timeout=60
    )
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def by_kind(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


def test_base_is_read_only_and_covers_the_tools() -> None:
    objs = render(KUSTOMIZE / "base")
    ns = by_kind(objs, "Namespace", "k8s-gpu-mcp")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    role = by_kind(objs, "ClusterRole", "k8s-gpu-mcp-read-only")
    verbs = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert verbs == {("nodes", "get"), ("nodes", "list"), ("pods", "get"), ("pods", "list")}
    binding = by_kind(objs, "ClusterRoleBinding", "k8s-gpu-mcp-read-only")
    subjects = {(s["namespace"], s["name"]) for s in binding["subjects"]}
    assert subjects == {("k8s-gpu-mcp", "k8s-gpu-mcp"), ("k8s-gpu-mcp", "default")}
    assert not any(o["kind"] == "ClusterRoleBinding" and "operator" in o["metadata"]["name"] for o in objs)


def test_operator_role_grants_exactly_what_the_operator_tools_call() -> None:
    """cordon_node/uncordon_node/drain_gpu_node (k8s/drain.py): get + patch the node, evict pods."""
    objs = render(KUSTOMIZE / "base")
    role = by_kind(objs, "ClusterRole", "k8s-gpu-mcp-operator")
    verbs = {(r, v) for rule in role["rules"] for r in rule["resources"] for v in rule["verbs"]}
    assert verbs == {("nodes", "get"), ("nodes", "patch"), ("pods/eviction", "create")}
    assert not any(v in ("*", "escalate", "bind", "impersonate") for _, v in verbs)
    assert not any(r in ("secrets", "*") for r, _ in verbs)


def test_daemonset_overlay(tmp_path: Path) -> None:
    objs = render(KUSTOMIZE / "overlays" / "daemonset")
    ds = by_kind(objs, "DaemonSet", "k8s-gpu-mcp")
    pod = ds["spec"]["template"]
    container = pod["spec"]["containers"][0]
    assert container["image"] == DEFAULT_IMAGE
    args = container["args"]
    assert args[0] == "serve"
    for flag in (
        "--transport=http",
        "--host=0.0.0.0",
        "--port=8080",
        "--token-file=/var/run/k8s-gpu-mcp/token",
    ):
        assert flag in args
    _, unknown = build_parser().parse_known_args(args)
    assert {u.split("=", 1)[0] for u in unknown} <= PENDING_FLAGS, f"flags serve does not know: {unknown}"
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert pod["spec"]["serviceAccountName"] == "k8s-gpu-mcp"
    assert pod["spec"]["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert mounts["/host"]["readOnly"] is True and "/var/run/k8s-gpu-mcp" in mounts
    svc = by_kind(objs, "Service", "k8s-gpu-mcp")
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in svc["spec"]["selector"].items())
    assert svc["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}


def test_operator_component_binds_the_operator_role(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{os.path.relpath(KUSTOMIZE / 'overlays' / 'daemonset', tmp_path)}]\n"
        f"components: [{os.path.relpath(KUSTOMIZE / 'components' / 'operator', tmp_path)}]\n"
    )
    objs = render(tmp_path)
    binding = by_kind(objs, "ClusterRoleBinding", "k8s-gpu-mcp-operator")
    assert binding["roleRef"]["name"] == "k8s-gpu-mcp-operator"
    assert {s["name"] for s in binding["subjects"]} == {"k8s-gpu-mcp", "default"}
    assert by_kind(objs, "DaemonSet", "k8s-gpu-mcp")
