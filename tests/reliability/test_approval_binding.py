"""Issue 20 item 7: an approval covers one process (pid + start time), named in the question; a
pid that names another process by the time the signal would go out is refused, and nothing is sent."""

from __future__ import annotations

import pytest
from mcp.client import Client

from k8s_gpu_mcp.host.procfs import start_ticks
from k8s_gpu_mcp.tools import _remediation_act
from tests.tools.remediation_helpers import GIB, alive, audit_lines, host_trees, reap, spawn


@pytest.fixture
def child():
    proc = spawn()
    yield proc
    reap(proc)


@pytest.mark.anyio
async def test_the_question_names_the_start_time_and_a_reused_pid_is_refused(
    make_app, tmp_path, child, monkeypatch
):
    audit = str(tmp_path / "audit.jsonl")
    app = make_app(mode="operator", audit_log=audit, **host_trees(tmp_path))
    app.backend.nvml.fake_add_process(1, child.pid, GIB, real=True)
    ticks = start_ticks("/proc", child.pid)
    asked: list[str] = []

    async def approve_then_the_pid_is_reused(ctx, params):
        from mcp_types import ElicitResult

        asked.append(params.message)
        # while the user reads the question, the process exits and its pid goes to another one
        monkeypatch.setattr(_remediation_act, "start_ticks", lambda root, pid: (ticks or 0) + 12345)
        return ElicitResult(action="accept", content={"approve": True})

    async with Client(app.server, elicitation_callback=approve_then_the_pid_is_reused) as client:
        result = await client.call_tool("kill_gpu_process", {"pid": child.pid, "signal": "TERM"})
    assert len(asked) == 1 and f"pid {child.pid} (started " in asked[0]
    assert f"start ticks {ticks}" in asked[0] and "covers only that process" in asked[0]
    assert result.is_error and "pid reused" in result.content[0].text
    assert alive(child)
    lines = audit_lines(audit)
    assert [line["outcome"] for line in lines] == ["approved", "refused"]
    assert lines[0]["plan"]["start_ticks"] == ticks and lines[0]["plan"]["pid"] == child.pid
