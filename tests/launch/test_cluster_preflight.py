"""connect cluster's RBAC pre-flight: started as it starts serving (launch/cluster.serve), read by the
first node call; once it passes no session repeats it, and when it fails the session runs its own (named error)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from mcp.client import Client

from k8s_gpu_mcp.launch.cluster import node_argv, start_rbac_checks
from k8s_gpu_mcp.launch.cluster_cli import ClusterOptions
from tests.launch.cluster_harness import make_app

pytestmark = pytest.mark.anyio
FAKE = Path(__file__).with_name("fake_kubectl.py")


def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scenario: str) -> str:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    kubectl.chmod(0o755)
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(tmp_path))
    monkeypatch.setenv("FAKE_KUBECTL_SCENARIO", scenario)
    return str(kubectl)


def kubectl_calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


async def test_passed_checks_spare_every_session_its_preflight(tmp_path: Path, monkeypatch) -> None:
    opts = ClusterOptions(kubectl=fake_kubectl(tmp_path, monkeypatch, "ok"), namespace="gpu-debug")
    state = tmp_path / "sessions"
    state.mkdir()
    app = make_app(state)
    app.rbac_checks = start_rbac_checks(opts)
    assert app.rbac_checks is not None and not app.preflight_passed
    async with app.pool.running(), Client(app.server) as client:
        result = await client.call_tool("get_gpu_inventory", {"node": "gpu-node-1"})
        assert result.structured_content["summary"]["succeeded"] == 1
    assert app.preflight_passed and app.rbac_checks is None
    assert "--no-preflight" in node_argv(opts, "gpu-node-3", preflight=not app.preflight_passed)
    asked = sorted(c[c.index("can-i") + 1 :] for c in kubectl_calls(tmp_path))
    assert asked == [["create", "pods"], ["create", "pods/attach"], ["delete", "pods"]]
    assert all(c[:2] == ["-n", "gpu-debug"] for c in kubectl_calls(tmp_path))  # the pods' namespace


async def test_failed_checks_leave_the_preflight_to_the_first_session(tmp_path: Path, monkeypatch) -> None:
    opts = ClusterOptions(kubectl=fake_kubectl(tmp_path, monkeypatch, "no-create"))
    app = make_app(tmp_path / "unused")
    app.rbac_checks = start_rbac_checks(opts)
    await app.settle_preflight()
    assert not app.preflight_passed
    # the syringe's own pre-flight then names the missing verb for that node (tests/launch/test_syringe.py)
    assert "--no-preflight" not in node_argv(opts, "gpu-node-1", preflight=not app.preflight_passed)


async def test_a_missing_delete_permission_passes_with_a_warning(tmp_path: Path, monkeypatch, capsys) -> None:
    opts = ClusterOptions(kubectl=fake_kubectl(tmp_path, monkeypatch, "no-delete"))
    app = make_app(tmp_path / "unused")
    app.rbac_checks = start_rbac_checks(opts)
    await app.settle_preflight()
    assert app.preflight_passed
    assert "RBAC forbids 'delete' on 'pods'" in capsys.readouterr().err
    await app.settle_preflight()  # read once: the warning is not repeated
    assert "forbids" not in capsys.readouterr().err


def test_nothing_starts_without_preflight_or_kubectl(tmp_path: Path, monkeypatch) -> None:
    kubectl = fake_kubectl(tmp_path, monkeypatch, "ok")
    assert start_rbac_checks(ClusterOptions(kubectl=kubectl, preflight=False)) is None
    assert start_rbac_checks(ClusterOptions(kubectl=str(tmp_path / "no-such-kubectl"))) is None
    assert not (tmp_path / "calls.jsonl").exists()
