from __future__ import annotations

import json
import logging

import pytest

from k8s_gpu_mcp.audit import AuditError, AuditLog


def test_audit_appends_json_lines_and_logs_to_stderr(tmp_path, caplog):
    path = tmp_path / "audit.jsonl"
    path.write_text('{"earlier": true}\n')
    log = AuditLog(str(path), node="n1")
    with caplog.at_level(logging.INFO, logger="k8s_gpu_mcp.audit"):
        log.write("kill_gpu_process", "refused", reason="pid 1")
        log.write("reset_gpu", "dry-run")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0] == {"earlier": True}
    assert [(r["tool"], r["outcome"], r["node"]) for r in lines[1:]] == [
        ("kill_gpu_process", "refused", "n1"),
        ("reset_gpu", "dry-run", "n1"),
    ]
    assert lines[1]["reason"] == "pid 1" and lines[1]["ts"]
    assert [r.audit["outcome"] for r in caplog.records if r.name == "k8s_gpu_mcp.audit"] == [
        "refused",
        "dry-run",
    ]


def test_audit_without_file_still_logs(caplog):
    with caplog.at_level(logging.INFO, logger="k8s_gpu_mcp.audit"):
        AuditLog(None).write("reset_gpu", "refused")
    assert caplog.records[-1].audit["tool"] == "reset_gpu"


@pytest.mark.parametrize("where", ["missing-dir/audit.jsonl", "."])
def test_unwritable_audit_log_raises(tmp_path, where):
    with pytest.raises(AuditError, match="cannot write the audit log"):
        AuditLog(str(tmp_path / where)).write("kill_gpu_process", "approved")


def test_audit_logger_passes_whatever_the_root_level():
    logging.getLogger().setLevel(logging.ERROR)
    try:
        assert logging.getLogger("k8s_gpu_mcp.audit").isEnabledFor(logging.INFO)
    finally:
        logging.getLogger().setLevel(logging.WARNING)
