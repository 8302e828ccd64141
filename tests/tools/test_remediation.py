from __future__ import annotations

import os
import stat

import pytest
from mcp.client import Client

from tests.conftest import call
from tests.tools.remediation_helpers import BUS, GIB, alive, answering, audit_lines, host_trees, reap, spawn


@pytest.fixture
def operator(make_app, tmp_path):
    """An operator-mode agent on fake trees, with an audit log; returns (app, audit path)."""

    def build(**kw):
        kw = {"audit_log": str(tmp_path / "audit.jsonl"), **host_trees(tmp_path), **kw}
        return make_app(mode="operator", **kw), kw["audit_log"]

    return build


@pytest.fixture
def child():
    proc = spawn()
    yield proc
    reap(proc)


# ---- registration --------------------------------------------------------------------------
@pytest.mark.anyio
async def test_read_only_mode_does_not_list_remediation_tools(make_app):
    app = make_app()
    async with Client(app.server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert "list_gpu_processes" in names
        assert not names & {"kill_gpu_process", "reset_gpu"}
        result = await client.call_tool("kill_gpu_process", {"pid": 4242, "confirm": True})
    assert result.is_error


@pytest.mark.anyio
async def test_operator_mode_lists_them_as_destructive(operator):
    app, _ = operator()
    async with Client(app.server) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
    for name in ("kill_gpu_process", "reset_gpu"):
        ann = tools[name].annotations
        assert ann.destructive_hint is True and ann.read_only_hint is False and ann.idempotent_hint is False
        assert "approval" not in tools[name].input_schema["properties"]
    assert tools["kill_gpu_process"].input_schema["properties"]["signal"]["enum"] == ["TERM", "KILL", "INT"]


# ---- kill: refusals ---------------------------------------------------------------------------
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("pid", "expected"),
    [
        (1, "greater than 1"),
        (0, "greater than 1"),
        (-5, "greater than 1"),
        (os.getpid(), "this agent itself"),
        (os.getppid(), "this agent's parent"),
        (2**31, "not a Linux pid"),
    ],
)
async def test_kill_refuses_protected_pids(operator, pid, expected):
    app, audit = operator()
    result = await call(app, "kill_gpu_process", {"pid": pid, "confirm": True})
    assert result.is_error and expected in result.content[0].text
    lines = audit_lines(audit)
    assert [line["outcome"] for line in lines] == ["refused"] and expected in lines[0]["reason"]
    assert lines[0]["args"]["pid"] == pid


@pytest.mark.anyio
async def test_kill_refuses_a_pid_that_is_not_a_gpu_process(operator, child):
    app, audit = operator()
    result = await call(app, "kill_gpu_process", {"pid": child.pid, "confirm": True})
    assert result.is_error and "not a GPU process" in result.content[0].text
    assert alive(child) and audit_lines(audit)[-1]["outcome"] == "refused"


@pytest.mark.anyio
async def test_kill_refuses_a_process_on_another_gpu(operator, child):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    result = await call(app, "kill_gpu_process", {"pid": child.pid, "gpu": 3, "confirm": True})
    text = result.content[0].text
    assert result.is_error and "runs on GPU 1" in text and "not on GPU 3" in text
    assert alive(child)
    bad = await call(app, "kill_gpu_process", {"pid": child.pid, "gpu": 42, "confirm": True})
    assert bad.is_error and "valid GPUs" in bad.content[0].text
    assert [line["outcome"] for line in audit_lines(audit)] == ["refused", "refused"]


@pytest.mark.anyio
async def test_kill_needs_confirmation_without_elicitation(operator, child):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    result = await call(app, "kill_gpu_process", {"pid": child.pid})
    assert result.is_error and "confirm=true" in result.content[0].text
    assert alive(child) and audit_lines(audit)[-1]["outcome"] == "refused"


@pytest.mark.anyio
@pytest.mark.parametrize("dry_run", [False, True])
async def test_kill_refused_when_the_audit_log_is_unwritable(operator, child, tmp_path, dry_run):
    app, _ = operator(audit_log=str(tmp_path / "no-such-dir" / "audit.jsonl"))
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    result = await call(app, "kill_gpu_process", {"pid": child.pid, "confirm": True, "dry_run": dry_run})
    assert result.is_error and "audit" in result.content[0].text and "refused" in result.content[0].text
    assert alive(child)


@pytest.mark.anyio
async def test_kill_refuses_simulated_mock_pids(operator):
    app, _ = operator(scenario="zombie")
    result = await call(app, "kill_gpu_process", {"pid": 4194303 - 1, "confirm": True})
    assert result.is_error and "not a GPU process" in result.content[0].text
    app.backend.nvml.fake_add_process(0, 4242, GIB)  # simulated: may be some unrelated host process
    result = await call(app, "kill_gpu_process", {"pid": 4242, "confirm": True})
    assert result.is_error and "simulated" in result.content[0].text


@pytest.mark.anyio
@pytest.mark.parametrize(("action", "approve"), [("decline", True), ("cancel", True), ("accept", False)])
async def test_kill_refused_when_the_user_says_no(operator, child, action, approve):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    async with Client(app.server, elicitation_callback=answering(action, approve)) as client:
        result = await client.call_tool("kill_gpu_process", {"pid": child.pid, "confirm": True})
    assert result.is_error and alive(child)
    assert audit_lines(audit)[-1]["outcome"] == "refused"


# ---- kill: end to end -------------------------------------------------------------------------
@pytest.mark.anyio
async def test_dry_run_returns_the_plan_and_sends_nothing(operator, child):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, 3 * GIB, real=True)
    result = await call(app, "kill_gpu_process", {"pid": child.pid, "dry_run": True})
    data = result.structured_content
    assert data["outcome"] == "dry-run" and data["signals_sent"] == []
    plan = data["plan"]
    assert plan["command"] == "sleep 300" and plan["gpus"][0]["index"] == 1
    assert plan["gpus"][0]["used_memory_mib"] == 3072 and plan["then_kill"] is True
    assert alive(child) and [line["outcome"] for line in audit_lines(audit)] == ["dry-run"]


@pytest.mark.anyio
async def test_kill_with_confirm_true_terminates_and_frees_memory(operator, child):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, 4 * GIB, real=True)
    result = await call(
        app, "kill_gpu_process", {"pid": child.pid, "gpu": 1, "confirm": True, "grace_seconds": 5}
    )
    data = result.structured_content
    assert data["outcome"] == "done" and data["signals_sent"] == ["TERM"] and data["exited"] is True
    assert data["still_listed_by_nvml"] is False and data["memory_freed_mib"] == 4096
    assert data["confirmation"].startswith("confirm=true") and data["audit"]["written"] is True
    assert child.wait(timeout=10) == -15
    assert [line["outcome"] for line in audit_lines(audit)] == ["approved", "done"]
    listed = (await call(app, "list_gpu_processes", {"gpus": 1, "detail": "full"})).structured_content[
        "gpus"
    ][0]
    assert listed["processes"] == [] and listed["memory_used_mib"] == 0


@pytest.mark.anyio
async def test_kill_escalates_to_sigkill_after_the_grace_period(operator):
    stubborn = spawn(ignore_term=True)
    try:
        app, _ = operator()
        app.backend.nvml.fake_add_process(2, stubborn.pid, GIB, real=True)
        result = await call(
            app, "kill_gpu_process", {"pid": stubborn.pid, "confirm": True, "grace_seconds": 1}
        )
        data = result.structured_content
        assert data["signals_sent"] == ["TERM", "KILL"] and data["outcome"] == "done"
        assert stubborn.wait(timeout=10) == -9
    finally:
        reap(stubborn)


@pytest.mark.anyio
async def test_kill_asks_the_user_through_elicitation_even_with_confirm(operator, child):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, 2 * GIB, real=True)
    asked: list[str] = []
    async with Client(app.server, elicitation_callback=answering(asked=asked)) as client:
        result = await client.call_tool(
            "kill_gpu_process", {"pid": child.pid, "signal": "INT", "confirm": True}
        )
    data = result.structured_content
    assert data["outcome"] == "done" and data["signals_sent"] == ["INT"]
    assert data["confirmation"] == "elicitation: approved by the user"
    assert len(asked) == 1 and f"SIGINT to pid {child.pid}" in asked[0]
    assert "sleep 300" in asked[0] and "GPU 1" in asked[0] and "2048 MiB" in asked[0]
    assert audit_lines(audit)[-1]["confirmation"] == "elicitation: approved by the user"


# ---- reset ------------------------------------------------------------------------------------
@pytest.mark.anyio
async def test_reset_dry_run_reports_every_precondition(operator, tmp_path):
    app, audit = operator()
    data = (await call(app, "reset_gpu", {"gpu": 1, "dry_run": True})).structured_content
    checks = {c["name"]: c for c in data["preconditions"]}
    assert set(checks) == {"no_processes", "mig", "persistence_mode", "reset_method", "mock_safety", "peers"}
    assert checks["no_processes"]["ok"] is True and checks["mig"]["ok"] is True
    assert checks["persistence_mode"]["blocking"] is False and "on" in checks["persistence_mode"]["detail"]
    assert checks["peers"]["ok"] is None and "out of scope" in checks["peers"]["detail"]
    assert data["method"].startswith("echo 1 > ") and data["method"].endswith(f"{BUS}/reset")
    assert data["outcome"] == "dry-run" and audit_lines(audit)[-1]["outcome"] == "dry-run"
    assert (tmp_path / "sys" / "bus" / "pci" / "devices" / BUS / "reset").read_text() == ""


@pytest.mark.anyio
async def test_reset_through_sysfs(operator, tmp_path):
    app, audit = operator()
    data = (await call(app, "reset_gpu", {"gpu": "0000:64:00", "confirm": True})).structured_content
    assert data["outcome"] == "done" and data["gpu"] == 1
    assert (tmp_path / "sys" / "bus" / "pci" / "devices" / BUS / "reset").read_text() == "1"
    assert data["state_after"]["process_pids"] == [] and data["state_after"]["lost"] is False
    assert any("does not change on reset" in n for n in data["notes"])
    assert [line["outcome"] for line in audit_lines(audit)] == ["approved", "done"]


@pytest.mark.anyio
@pytest.mark.parametrize(("exit_code", "outcome"), [(0, "done"), (3, "failed")])
async def test_reset_prefers_the_hosts_nvidia_smi(operator, tmp_path, exit_code, outcome):
    host = tmp_path / "host"
    (host / "usr" / "bin").mkdir(parents=True)
    (host / "usr" / "lib" / "x86_64-linux-gnu").mkdir(parents=True)
    smi = host / "usr" / "bin" / "nvidia-smi"
    smi.write_text(
        f'#!/bin/sh\necho "$@" > {tmp_path}/args\necho "$LD_LIBRARY_PATH" > {tmp_path}/ld\n'
        f'echo "GPU 00000000:64:00.0 reset"\nexit {exit_code}\n'
    )
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    app, _ = operator()
    data = (await call(app, "reset_gpu", {"gpu": 1, "confirm": True})).structured_content
    assert data["outcome"] == outcome and data["method"].endswith("--gpu-reset -i 00000000:64:00.0")
    assert (tmp_path / "args").read_text().split() == ["--gpu-reset", "-i", "00000000:64:00.0"]
    assert (tmp_path / "ld").read_text().strip().split(":")[0] == str(
        host / "usr" / "lib" / "x86_64-linux-gnu"
    )
    assert "reset" in data["output"] and data["output"].startswith(f"exit {exit_code}")
    assert (tmp_path / "sys" / "bus" / "pci" / "devices" / BUS / "reset").read_text() == ""


@pytest.mark.anyio
async def test_reset_refused_while_processes_hold_the_gpu(operator, tmp_path):
    app, audit = operator()
    app.backend.nvml.fake_add_process(1, 4242, GIB)
    result = await call(app, "reset_gpu", {"gpu": 1, "confirm": True})
    assert result.is_error and "no_processes" in result.content[0].text and "4242" in result.content[0].text
    assert (tmp_path / "sys" / "bus" / "pci" / "devices" / BUS / "reset").read_text() == ""
    assert audit_lines(audit)[-1]["outcome"] == "refused"


@pytest.mark.anyio
async def test_reset_refused_with_mig_enabled(operator):
    app, _ = operator(profile="a100-sxm4-80gb-mig")
    result = await call(app, "reset_gpu", {"gpu": 0, "confirm": True})
    assert result.is_error and "MIG enabled" in result.content[0].text


@pytest.mark.anyio
async def test_reset_refused_without_method_confirmation_or_audit(operator, tmp_path):
    app, _ = operator()
    result = await call(app, "reset_gpu", {"gpu": 2, "confirm": True})  # no sysfs file for GPU 2
    assert result.is_error and "no reset method" in result.content[0].text
    result = await call(app, "reset_gpu", {"gpu": 1})
    assert result.is_error and "confirm=true" in result.content[0].text
    app2, _ = operator(audit_log=str(tmp_path))  # a directory: not appendable
    result = await call(app2, "reset_gpu", {"gpu": 1, "confirm": True})
    assert result.is_error and "audit" in result.content[0].text
    assert (tmp_path / "sys" / "bus" / "pci" / "devices" / BUS / "reset").read_text() == ""


@pytest.mark.anyio
async def test_mock_reset_never_touches_real_sysfs(operator, monkeypatch, tmp_path):
    from k8s_gpu_mcp.host import reset as host_reset

    app, _ = operator(sys_root="/sys")
    monkeypatch.setattr(
        host_reset,
        "find_method",
        lambda h, s, b: (host_reset.ResetMethod("sysfs", f"/sys/bus/pci/devices/{BUS}/reset"), []),
    )
    monkeypatch.setattr(host_reset, "run_reset", lambda method: pytest.fail("reset attempted"))
    result = await call(app, "reset_gpu", {"gpu": 1, "confirm": True})
    assert result.is_error and "mock_safety" in result.content[0].text


def test_confirmation_outcomes_read_clearly():
    from mcp.server.elicitation import AcceptedElicitation, CancelledElicitation, DeclinedElicitation

    from k8s_gpu_mcp.tools._confirm import INVALID, NO_ELICITATION, Approval, Refusal, confirmation

    assert confirmation(AcceptedElicitation(data=Approval(approve=True)), False).startswith("elicitation")
    assert confirmation(AcceptedElicitation.model_construct(data=NO_ELICITATION), True).startswith(
        "confirm=true"
    )
    for outcome, text in [
        (DeclinedElicitation(), "declined"),
        (CancelledElicitation(), "cancelled"),
        (AcceptedElicitation.model_construct(data=INVALID), "changed"),
        (AcceptedElicitation.model_construct(data=NO_ELICITATION), "confirm=true"),
    ]:
        with pytest.raises(Refusal, match=text):
            confirmation(outcome, False)


@pytest.mark.anyio
async def test_the_audit_line_says_who_asked(operator, child):
    """The caller a connect cluster or gateway names in _meta, with its correlation id; else the
    MCP client's own name."""
    from k8s_gpu_mcp.audit import META_CALLER, META_CORRELATION

    app, audit = operator()
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    async with Client(app.server) as client:
        await client.call_tool("kill_gpu_process", {"pid": child.pid, "dry_run": True})
        meta = {META_CALLER: "kubeconfig context sre at https://api", META_CORRELATION: "c0ffee"}
        await client.call_tool("kill_gpu_process", {"pid": child.pid, "dry_run": True}, meta=meta)
    plain, forwarded = audit_lines(audit)
    assert plain["requested_by"].startswith("MCP client '") and "correlation_id" not in plain
    assert forwarded["requested_by"] == "kubeconfig context sre at https://api"
    assert forwarded["correlation_id"] == "c0ffee" and forwarded["via"].startswith("MCP client '")
