"""The kubectl-debug syringe against a scripted kubectl (tests/launch/fake_kubectl.py).

The real kubectl + real API server path is covered by tests/e2e/test_syringe_e2e.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.launch import syringe

FAKE = Path(__file__).with_name("fake_kubectl.py")


def connect(
    tmp_path: Path, scenario: str, *extra: str, stdin: bytes = b"", timeout: float = 30
) -> subprocess.CompletedProcess[bytes]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    kubectl.chmod(0o755)
    env = {**os.environ, "FAKE_KUBECTL_STATE": str(tmp_path), "FAKE_KUBECTL_SCENARIO": scenario}
    argv = [
        sys.executable,
        "-m",
        "k8s_gpu_mcp",
        "connect",
        "node/gpu-node-5",
        "--kubectl",
        str(kubectl),
        *extra,
    ]
    return subprocess.run(argv, input=stdin, capture_output=True, env=env, timeout=timeout)


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def debug_call(tmp_path: Path) -> list[str] | None:
    return next((c for c in calls(tmp_path) if "debug" in c), None)


def test_relays_bytes_exactly_and_deletes_its_pod(tmp_path: Path) -> None:
    payload = b"".join(
        json.dumps({"jsonrpc": "2.0", "id": i, "method": "ping"}).encode() + b"\n" for i in range(3000)
    )
    payload += bytes(range(256))  # not even UTF-8: byte for byte
    res = connect(tmp_path, "ok", "--namespace", "gpu-debug", "--", "--log-level", "DEBUG", stdin=payload)
    assert res.returncode == 0, res.stderr
    assert res.stdout == payload
    assert (tmp_path / "deleted").read_text() == "node-debugger-gpu-node-5-abcde"
    argv = debug_call(tmp_path)
    assert argv is not None
    i = argv.index("debug")
    assert argv[i + 1 : i + 6] == [
        "node/gpu-node-5",
        f"--image={syringe.DEFAULT_IMAGE}",
        "--profile=sysadmin",
        "-i",
        "--quiet",
    ]
    assert ["-n", "gpu-debug"] == argv[argv.index("-n") : argv.index("-n") + 2]
    assert "--env=NODE_NAME=gpu-node-5" in argv
    custom = json.loads((tmp_path / "custom.json").read_text())  # root on top of the sysadmin profile
    assert custom["securityContext"]["runAsUser"] == 0
    serve = argv[argv.index("--") + 1 :]
    assert serve == [
        "k8s-gpu-mcp",
        "serve",
        "--nvml-mode=real",
        "--mode=read-only",
        "--host-root=/host",
        "--log-level",
        "DEBUG",
    ]


def test_run_as_image_user_skips_the_root_profile(tmp_path: Path) -> None:
    res = connect(tmp_path, "ok", "--run-as-image-user", stdin=b"x")
    assert res.returncode == 0 and res.stdout == b"x"
    argv = debug_call(tmp_path)
    assert argv is not None and not any(a.startswith("--custom") for a in argv)


def test_default_image_follows_package_version() -> None:
    assert syringe.DEFAULT_IMAGE.endswith(f":{__version__}")
    assert syringe.DEFAULT_IMAGE.startswith("ghcr.io/")


def test_node_not_found(tmp_path: Path) -> None:
    res = connect(tmp_path, "no-node")
    assert res.returncode == syringe.EXIT_NODE_NOT_FOUND
    assert b"node 'gpu-node-5' does not exist" in res.stderr
    assert res.stdout == b""
    assert debug_call(tmp_path) is None


def test_node_get_forbidden(tmp_path: Path) -> None:
    res = connect(tmp_path, "node-forbidden")
    assert res.returncode == syringe.EXIT_FORBIDDEN
    assert b"RBAC forbids 'get' on 'nodes'" in res.stderr


def test_create_pods_forbidden(tmp_path: Path) -> None:
    res = connect(tmp_path, "no-create", "-n", "team-a")
    assert res.returncode == syringe.EXIT_FORBIDDEN
    assert b"RBAC forbids 'create' on 'pods' in namespace 'team-a'" in res.stderr
    assert debug_call(tmp_path) is None


def test_missing_delete_permission_only_warns(tmp_path: Path) -> None:
    res = connect(tmp_path, "no-delete", stdin=b"x")
    assert res.returncode == 0
    assert res.stdout == b"x"
    assert b"warning: RBAC forbids 'delete' on 'pods'" in res.stderr


def test_unreachable(tmp_path: Path) -> None:
    res = connect(tmp_path, "unreachable")
    assert res.returncode == syringe.EXIT_UNREACHABLE
    assert b"cannot reach the Kubernetes API server" in res.stderr


def test_image_pull_error_fails_fast_and_cleans_up(tmp_path: Path) -> None:
    start = time.monotonic()
    res = connect(tmp_path, "image-pull", "--image", "registry.example/agent:nope")
    assert res.returncode == syringe.EXIT_IMAGE_PULL
    assert b"image 'registry.example/agent:nope' cannot be pulled" in res.stderr
    assert b"ErrImagePull" in res.stderr
    assert (tmp_path / "deleted").read_text() == "node-debugger-gpu-node-5-abcde"
    assert time.monotonic() - start < 15


def test_pod_not_running_in_time(tmp_path: Path) -> None:
    res = connect(tmp_path, "stuck", "--timeout", "1.5")
    assert res.returncode == syringe.EXIT_TIMEOUT
    assert b"did not start running" in res.stderr and b"ContainerCreating" in res.stderr
    assert (tmp_path / "deleted").exists()


def test_agent_exit_code_passes_through(tmp_path: Path) -> None:
    res = connect(tmp_path, "crash", stdin=b"{}")
    assert res.returncode == 3
    assert (tmp_path / "deleted").exists()


def test_log_replay_after_failed_attach_never_reaches_stdout(tmp_path: Path) -> None:
    """Best effort: kubectl warns on stderr, then fetches and prints the logs; the warning closes stdout."""
    res = connect(tmp_path, "logs-fallback", stdin=b"mcp-bytes")
    assert res.stdout == b"mcp-bytes"
    assert b"falling back to streaming logs" in res.stderr


def test_sigterm_deletes_the_pod(tmp_path: Path) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    kubectl.chmod(0o755)
    env = {**os.environ, "FAKE_KUBECTL_STATE": str(tmp_path), "FAKE_KUBECTL_SCENARIO": "ok"}
    argv = [sys.executable, "-m", "k8s_gpu_mcp", "connect", "node/gpu-node-5", "--kubectl", str(kubectl)]
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    deadline = time.monotonic() + 20
    while not (tmp_path / "pod.json").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.8)  # let the watcher see the pod
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert (tmp_path / "deleted").read_text() == "node-debugger-gpu-node-5-abcde", err
    assert out == b""


@pytest.mark.parametrize(
    ("argv", "node", "serve"),
    [
        (["node/a"], "a", []),
        (["nodes/b", "--", "--scenario", "x.yaml"], "b", ["--scenario", "x.yaml"]),
        (["c", "--mode", "operator"], "c", []),
    ],
)
def test_parse_args(argv: list[str], node: str, serve: list[str]) -> None:
    opts = syringe.parse_args(argv)
    assert opts.node == node and opts.serve_args == serve


def test_parse_args_rejects_other_kinds() -> None:
    with pytest.raises(SystemExit):
        syringe.parse_args(["pod/x"])


def test_scenario_asks_for_mock_nvml() -> None:
    assert syringe.nvml_mode_flag(["--scenario", "x"]) == "--nvml-mode=mock"
    assert syringe.nvml_mode_flag(["--profile=t4"]) == "--nvml-mode=mock"
    assert syringe.nvml_mode_flag(["--log-level", "DEBUG"]) == "--nvml-mode=real"


def test_kubectl_missing(tmp_path: Path) -> None:
    res = subprocess.run(
        [sys.executable, "-m", "k8s_gpu_mcp", "connect", "node/x", "--kubectl", str(tmp_path / "nope")],
        capture_output=True,
        timeout=30,
    )
    assert res.returncode == syringe.EXIT_UNREACHABLE
    assert b"kubectl not found" in res.stderr
