"""Issue 20 item 11 (and issue 17 item 3, the launcher side): no debug pod outlives its client by more
than a bounded time (SIGKILL of the launcher, a client that closes stdin while the stream keeps the
agent alive, a signal before kubectl starts), no serve flag override after `--`, strict node names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from k8s_gpu_mcp.launch import syringe
from tests.launch.test_syringe import FAKE, calls

CLEANUP_BOUND_S = 15.0  # the watcher's first look is at once; it retries every 2 s for a pod being made


def launcher(tmp_path: Path, scenario: str, *extra: str) -> subprocess.Popen[bytes]:
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
    return subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


def wait_for(path: Path, seconds: float) -> float:
    start = time.monotonic()
    while not path.exists():
        assert time.monotonic() - start < seconds, f"{path.name} not there after {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - start


def test_sigkill_of_the_launcher_still_deletes_the_pod(tmp_path: Path) -> None:
    proc = launcher(tmp_path, "ok")
    try:
        wait_for(tmp_path / "pod.json", 20)
        proc.kill()  # no handler runs: only the watcher can clean up
        proc.wait(timeout=10)
        elapsed = wait_for(tmp_path / "deleted", CLEANUP_BOUND_S)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    assert (tmp_path / "deleted").read_text() == "node-debugger-gpu-node-5-abcde"
    assert elapsed < CLEANUP_BOUND_S


def test_stdin_eof_ends_the_session_even_when_the_stream_keeps_the_agent(tmp_path: Path) -> None:
    proc = launcher(tmp_path, "ignore-eof")
    start = time.monotonic()
    out, err = proc.communicate(b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n', timeout=60)
    elapsed = time.monotonic() - start
    assert out == b'{"jsonrpc":"2.0","id":1,"method":"ping"}\n'
    assert (tmp_path / "deleted").read_text() == "node-debugger-gpu-node-5-abcde", err
    assert elapsed < syringe.EOF_GRACE_S + 10 and b"did not end" in err


def test_a_normal_end_leaves_no_watcher_action(tmp_path: Path) -> None:
    proc = launcher(tmp_path, "ok")
    out, _ = proc.communicate(b"x", timeout=30)
    assert proc.returncode == 0 and out == b"x"
    time.sleep(0.5)
    deletes = [c for c in calls(tmp_path) if c[:2] == ["delete", "pod"]]
    assert len(deletes) == 1  # the launcher's own; the watcher saw "done" and did nothing


def test_a_signal_before_kubectl_starts_starts_nothing(tmp_path: Path, monkeypatch) -> None:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE} "$@"\n')
    kubectl.chmod(0o755)
    monkeypatch.setenv("FAKE_KUBECTL_STATE", str(tmp_path))
    opts = syringe.parse_args(["node/gpu-node-5", "--kubectl", str(kubectl)])
    session = syringe.Session(opts, syringe.Kubectl(opts))
    session.stop(signal.SIGTERM, None)  # SIGTERM between the session's creation and kubectl's start
    assert session.run() == 128 + signal.SIGTERM
    assert session.proc is None
    assert not (tmp_path / "calls.jsonl").exists() or not any("debug" in c for c in calls(tmp_path))


@pytest.mark.parametrize(
    "extra",
    [["--mode=operator"], ["--mode", "operator"], ["--mod=operator"], ["--host-root=/"],
     ["--transport", "http"], ["--log-level", "INFO", "--transp=http"]],
)  # fmt: skip
def test_serve_args_cannot_override_the_fixed_flags(extra: list[str]) -> None:
    with pytest.raises(SystemExit) as err:
        syringe.parse_args(["node/a", "--", *extra])
    assert err.value.code == 2


def test_serve_args_that_do_not_override_pass() -> None:
    opts = syringe.parse_args(["node/a", "--", "--log-level", "DEBUG", "--scenario", "x.yaml"])
    assert opts.serve_args == ["--log-level", "DEBUG", "--scenario", "x.yaml"]
    # --nvml-mode may be chosen after `--`; the launcher then does not add its own
    assert syringe.nvml_mode_flag(["--nvml-mode=mock"]) is None
    assert syringe.nvml_mode_flag(["--scenario", "x"]) == "--nvml-mode=mock"


@pytest.mark.parametrize(
    "target",
    ["node/-n", "node/--kubeconfig=/x", "node/A", "node/a_b", "node/a..b", "node/" + "a" * 254, "node/a/b"],
)
def test_node_names_are_strict(target: str, capsys) -> None:
    with pytest.raises(SystemExit) as err:
        syringe.parse_args([target])
    assert err.value.code == 2 and len(capsys.readouterr().err) < 1000


def test_dotted_node_names_pass() -> None:
    assert syringe.parse_args(["node/ip-10-0-0-1.ec2.internal"]).node == "ip-10-0-0-1.ec2.internal"
