"""Hypothesis over every argument of both remediation tools: a clear refusal or validation error,
never a crash, never a signal sent and never a reset, as long as the call is not confirmed."""

from __future__ import annotations

import os
import signal

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp.client import Client

from tests.tools.remediation_helpers import BUS, GIB, host_trees, reap, spawn

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
ANY = (
    JSON_SCALARS
    | st.lists(JSON_SCALARS, max_size=3)
    | st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=2)
)
PIDS = (
    st.integers(min_value=-(2**40), max_value=2**40)
    | st.sampled_from([0, 1, 2, os.getpid(), os.getppid()])
    | ANY
)
SIGNALS = st.sampled_from(["TERM", "KILL", "INT", "HUP", "term", "SIGTERM", "", "9"]) | ANY
GPUS = st.integers(-3, 12) | st.sampled_from(["0", "GPU-nope", "0000:64:00", "00000000:64:00.0"]) | ANY
NOT_TRUE = ANY.filter(lambda v: v is not True)
GENERIC_CRASH = "Error executing tool {}"  # what the SDK says, and only says, for an unexpected exception


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.server import AgentApp

    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    tmp = tmp_path_factory.mktemp("fuzz")
    trees = host_trees(tmp)
    app = AgentApp(Settings(nvml_mode="mock", mode="operator", audit_log=str(tmp / "audit.jsonl"), **trees))
    child = spawn()
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    yield app, child, tmp / "sys" / "bus" / "pci" / "devices" / BUS / "reset"
    reap(child)
    app.close()


@pytest.fixture
def sent(monkeypatch):
    """Record every non-probe signal instead of sending it."""
    calls: list[tuple[str, int]] = []
    real_kill, real_pidfd = os.kill, signal.pidfd_send_signal

    def kill(pid, sig):
        if sig:
            calls.append(("kill", sig))
            return None
        return real_kill(pid, sig)

    def pidfd_send(fd, sig, *a):
        if sig:
            calls.append(("pidfd", sig))
            return None
        return real_pidfd(fd, sig, *a)

    monkeypatch.setattr(os, "kill", kill)
    monkeypatch.setattr(signal, "pidfd_send_signal", pidfd_send)
    return calls


def run(app, tool, arguments):
    async def go():
        async with Client(app.server) as client:
            return await client.call_tool(tool, arguments)

    return anyio.run(go)


def check(result, tool):
    if result.is_error:
        text = result.content[0].text
        assert text.strip() != GENERIC_CRASH.format(tool), "crashed"
        # a refusal, a bad argument named with what is valid, or an argument the tool does not take
        named = ("argument '" in text and "valid" in text) or "takes no argument" in text
        assert "refused:" in text or named, text
    else:
        assert result.structured_content["outcome"] == "dry-run"


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    pid=PIDS, gpu=GPUS, sig=SIGNALS, grace=st.integers(-10, 1000) | ANY, dry_run=ANY, confirm=NOT_TRUE,
    omit=st.sets(st.sampled_from(["gpu", "signal", "grace_seconds", "dry_run", "confirm"])),
)  # fmt: skip
def test_kill_fuzz(rig, sent, pid, gpu, sig, grace, dry_run, confirm, omit):
    app, child, _ = rig
    args = {
        "pid": pid,
        "gpu": gpu,
        "signal": sig,
        "grace_seconds": grace,
        "dry_run": dry_run,
        "confirm": confirm,
    }
    check(run(app, "kill_gpu_process", {k: v for k, v in args.items() if k not in omit}), "kill_gpu_process")
    assert sent == [] and child.poll() is None


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(sig=SIGNALS, grace=st.integers(-10, 1000) | ANY, gpu=GPUS, confirm=NOT_TRUE)
def test_kill_fuzz_on_the_real_target(rig, sent, sig, grace, gpu, confirm):
    app, child, _ = rig
    args = {"pid": child.pid, "gpu": gpu, "signal": sig, "grace_seconds": grace, "confirm": confirm}
    check(run(app, "kill_gpu_process", args), "kill_gpu_process")
    assert sent == [] and child.poll() is None


@settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    gpu=GPUS,
    dry_run=ANY,
    confirm=NOT_TRUE,
    extra=st.dictionaries(st.sampled_from(["pid", "x"]), ANY, max_size=1),
)
def test_reset_fuzz(rig, sent, gpu, dry_run, confirm, extra):
    app, _, reset_file = rig
    check(run(app, "reset_gpu", {"gpu": gpu, "dry_run": dry_run, "confirm": confirm, **extra}), "reset_gpu")
    assert reset_file.read_text() == "" and sent == []
