"""The remediation audit trail: one JSON line per attempt (done, refused, dry-run, failed).

Each line goes to stderr through the ``k8s_gpu_mcp.audit`` logger and, with ``--audit-log PATH``,
is appended to that file (``O_APPEND``, then ``fsync``). A line that cannot be written raises
:class:`AuditError`; the remediation tools then refuse to act, so no action goes unrecorded.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("k8s_gpu_mcp.audit")
log.setLevel(logging.INFO)  # audit lines pass whatever --log-level the operator picked


class AuditError(RuntimeError):
    """The audit line could not be written; the action must not proceed."""


class AuditLog:
    def __init__(self, path: str | None, node: str | None = None):
        self.path = path
        self.node = node

    def write(self, tool: str, outcome: str, **fields: Any) -> dict[str, Any]:
        """Record one attempt; raises AuditError when the file cannot take the line."""
        record: dict[str, Any] = {
            "ts": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "tool": tool,
            "outcome": outcome,
            "node": self.node,
            "agent_pid": os.getpid(),
            **fields,
        }
        line = json.dumps(record, default=str, sort_keys=True)
        if self.path:
            try:
                _append(self.path, line + "\n")
            except OSError as exc:
                log.error("audit line NOT written to audit log", extra={"audit": record, "error": str(exc)})
                raise AuditError(f"cannot write the audit log {self.path}: {exc}") from exc
        log.info("audit", extra={"audit": record})
        return record


def _append(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data.encode())
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
