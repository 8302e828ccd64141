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

MAX_FIELD_CHARS = 512  # a command line or an NVML message fits; a caller's megabyte does not
MAX_ITEMS = 64  # per list or mapping: a plan names at most a node's GPUs (8-16)
MAX_DEPTH = 6
MAX_LINE_BYTES = 16 * 1024

# _meta keys a connect cluster or gateway puts on the node call it forwards: who asked, and the id
# that ties the agent's audit line to the fan-out's own log line.
META_CORRELATION = "io.k8s-gpu-mcp/correlation-id"
META_CALLER = "io.k8s-gpu-mcp/caller"

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
            **{key: bounded(value) for key, value in fields.items()},
        }
        line = json.dumps(record, default=str, sort_keys=True)
        if len(line) > MAX_LINE_BYTES:  # many fields, each under the limits: keep the identity
            identity: tuple[str, ...] = ("ts", "tool", "outcome", "node", "agent_pid", "reason")
            keep = {k: record[k] for k in identity if k in record}
            record = {**keep, "truncated": f"{len(line)} bytes of fields cut to fit {MAX_LINE_BYTES}"}
            record["fields"] = line[: MAX_LINE_BYTES // 2]
            line = json.dumps(record, sort_keys=True)
        if self.path:
            try:
                _append(self.path, line + "\n")
            except OSError as exc:
                log.error("audit line NOT written to audit log", extra={"audit": record, "error": str(exc)})
                raise AuditError(f"cannot write the audit log {self.path}: {exc}") from exc
        log.info("audit", extra={"audit": record})
        return record


def who_asked(meta: Any, client_name: str | None) -> dict[str, str]:
    """The audit's "who asked": the caller a connect cluster or gateway named in the call's _meta
    (with its correlation id), else the MCP client's own name from initialize, else "unknown"."""
    fields = dict(meta) if isinstance(meta, dict) else {}
    caller, correlation = fields.get(META_CALLER), fields.get(META_CORRELATION)
    out = {
        "requested_by": str(caller) if caller else f"MCP client {client_name!r}" if client_name else "unknown"
    }
    if caller and client_name:
        out["via"] = f"MCP client {client_name!r}"
    if correlation:
        out["correlation_id"] = str(correlation)
    return out


def bounded(value: Any, depth: int = 0) -> Any:
    """``value`` with long strings, long lists and deep nesting clipped, so that no caller input
    makes an audit line (written and fsync'd on every refusal) large."""
    if isinstance(value, str):
        return (
            value if len(value) <= MAX_FIELD_CHARS else f"{value[:MAX_FIELD_CHARS]}... ({len(value)} chars)"
        )
    if isinstance(value, (bool, int, float)) or value is None:
        return value
    if depth >= MAX_DEPTH:
        return bounded(repr(value)[:MAX_FIELD_CHARS], depth)
    if isinstance(value, dict):
        items = list(value.items())
        out = {bounded(str(k)): bounded(v, depth + 1) for k, v in items[:MAX_ITEMS]}
        if len(items) > MAX_ITEMS:
            out["..."] = f"{len(items) - MAX_ITEMS} more entries"
        return out
    if isinstance(value, (list, tuple)):
        out_list = [bounded(v, depth + 1) for v in value[:MAX_ITEMS]]
        if len(value) > MAX_ITEMS:
            out_list.append(f"... {len(value) - MAX_ITEMS} more items")
        return out_list
    return bounded(str(value), depth)


def _append(path: str, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(data.encode())
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
