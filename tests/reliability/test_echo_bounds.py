"""Issue 20 item 9: caller input is clipped wherever it is echoed: in refusals and in the audit
lines that every refusal writes and fsyncs (1 MB of input must not become 1 MB of audit)."""

from __future__ import annotations

import json

import pytest

from k8s_gpu_mcp.audit import MAX_LINE_BYTES, AuditLog, bounded
from tests.conftest import call
from tests.tools.remediation_helpers import audit_lines, host_trees

MB = "x" * (1 << 20)
CALLS = 40
ERROR_BOUND = (
    2000  # characters of a refusal: the valid-GPU list of an 8-GPU node fits, 1 MB of input does not
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("args", "audited"),
    [
        ({"pid": 4242, "signal": MB, "confirm": True}, True),
        ({"pid": 4242, "gpu": MB, "confirm": True}, True),
        ({"pid": 4242, "gpu": [MB] * 3, "confirm": True}, False),  # the input schema refuses it first
    ],
)
async def test_refused_remediations_echo_and_audit_clipped_input(make_app, tmp_path, args, audited):
    audit = tmp_path / "audit.jsonl"
    app = make_app(mode="operator", audit_log=str(audit), **host_trees(tmp_path))
    for _ in range(CALLS):
        result = await call(app, "kill_gpu_process", args)
        assert result.is_error and len(result.content[0].text) < ERROR_BOUND
    lines = audit_lines(audit)
    assert len(lines) == (CALLS if audited else 0) and all(line["outcome"] == "refused" for line in lines)
    assert not audited or audit.stat().st_size < CALLS * 4096  # was CALLS MB before the clip


def test_bounded_clips_strings_lists_depth_and_the_whole_line(tmp_path):
    deep: object = "leaf"
    for _ in range(50):
        deep = [deep]
    value = bounded({"s": MB, "l": list(range(10_000)), "d": deep, "m": {str(i): i for i in range(1000)}})
    assert len(json.dumps(value)) < 8192
    log = AuditLog(str(tmp_path / "a.jsonl"), "node-1")
    record = log.write("kill_gpu_process", "refused", **{f"f{i}": "y" * 500 for i in range(200)})
    line = (tmp_path / "a.jsonl").read_text()
    assert len(line) <= MAX_LINE_BYTES + 1 and record["tool"] == "kill_gpu_process" and "truncated" in record
