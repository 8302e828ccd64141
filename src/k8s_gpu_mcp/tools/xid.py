"""analyze_xid_errors: NVIDIA XID errors from the kernel log and live NVML events, with actions."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BeforeValidator, Field

from k8s_gpu_mcp.tools import _common
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    Evidence,
    GpuName,
    GpuProblem,
    GpuSelector,
    NodeAnswer,
    Source,
    clip,
    full_only,
    node_head,
    select_gpus,
    window_start,
)
from k8s_gpu_mcp.vocabulary import Detail, DetailLevel, Status, worst
from k8s_gpu_mcp.xid.models import BootRecord, SxidEvent, Workflow, XidAnalysis, XidEvent, XidSummary

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "xid"

SOURCES = ("auto", "kmsg", "journal", "dmesg", "nvml", "scenario")
MOCK_LAST_LINE_AGE = timedelta(minutes=5)
MAX_PATH_CHARS = 4096  # PATH_MAX: a longer source cannot name a file the operator listed


def allowed_files(settings: Any) -> dict[str, str]:
    """The files a client may name as ``source``: --kernel-log and --xid-log-files, by normalised path."""
    names = [settings.kernel_log or "", *(settings.xid_log_files or "").split(",")]
    return {os.path.normpath(n.strip()): n.strip() for n in names if n.strip()}


def _file_source(settings: Any, source: str) -> str:
    """The operator-named file ``source`` refers to, or a ToolError; the filesystem is not touched."""
    allowed = allowed_files(settings)
    key = os.path.normpath(source) if len(source) <= MAX_PATH_CHARS and "\0" not in source else None
    if key is None or key not in allowed:
        listed = ", ".join(sorted(allowed.values())) or "none (the operator named no file)"
        raise ToolError(
            f"invalid source {clip(source)}: use one of {', '.join(SOURCES)}, or a kernel log file the "
            f"operator named at start-up (--kernel-log, --xid-log-files): {listed}"
        )
    return allowed[key]


def _severity_word(value: Any) -> Any:
    """``fatal``, ``FATAL``, `` Fatal `` -> ``Fatal``: input enums are case-insensitive."""
    return value.strip().capitalize() if isinstance(value, str) else value


def _check_filters(since: str, min_severity: str | None) -> None:
    """Bad ``since``/``min_severity`` as a ToolError that echoes the input clipped."""
    from k8s_gpu_mcp.xid.catalog import SEVERITY_ORDER

    window_start(since, datetime.now(UTC))
    if min_severity is not None and min_severity.strip().lower() not in {k.lower() for k in SEVERITY_ORDER}:
        raise ToolError(f"invalid min_severity {clip(min_severity)}; valid: {', '.join(SEVERITY_ORDER)}")


class XidErrorsResult(NodeAnswer):
    since: datetime | None = Field(description="start of the window (null: no lower bound)")
    covered_since: datetime | None = Field(
        None,
        description="the earliest time the kernel log read covers (ring buffer, earlier boots' journal, "
        "rotated kern.log); later than `since`: the window is not fully seen (a note says so)",
    )
    boots: list[BootRecord] | None = full_only("the boots the kernel history knows, oldest first")
    sources: list[str] = Field(
        description="where events were read: kmsg, journal, dmesg, file, nvml, scenario"
    )
    total_events: int
    notes: list[str] = Field(default_factory=list)
    sxid_count: int = Field(0, description="NVSwitch SXids in the window (listed with detail=full)")
    xids: list[XidSummary] | None = full_only(
        "per XID and GPU, the count, first and last seen, and the action"
    )
    workflows: list[Workflow] | None = full_only(
        "NVIDIA's investigatory workflows per GPU, the pattern seen and its advice"
    )
    events: list[XidEvent] | None = full_only("the most recent events (limit)")
    truncated: bool | None = full_only("limit cut the event list")
    sxids: list[SxidEvent] | None = full_only("NVSwitch SXids (never GPU XIDs)")
    source: Source


def xid_problems(rows: list[XidSummary]) -> list[GpuProblem]:
    """Per GPU (or unmatched PCI id), the XIDs that are not informational, as summary problems."""
    by_gpu: dict[tuple[int | None, str | None], list[XidSummary]] = {}
    for row in rows:
        if row.status != "healthy":
            by_gpu.setdefault((row.index, row.pci_bus_id if row.index is None else None), []).append(row)
    problems = []
    for group in by_gpu.values():
        first = group[0]  # rows are sorted most severe first
        problems.append(
            GpuProblem(
                index=first.index,
                uuid=first.uuid,
                pci_bus_id=first.pci_bus_id,
                status=worst(r.status for r in group),
                reason="; ".join(f"XID {r.xid} {r.name} x{r.count}" for r in group),
                evidence=[
                    Evidence(
                        check="xid",
                        status=r.status,
                        finding=f"XID {r.xid} ({r.name}) x{r.count}: {r.sre_action}",
                        readings={
                            "xid": r.xid,
                            "count": r.count,
                            "catalog_severity": r.catalog_severity,
                            "first_seen": r.first_seen.isoformat() if r.first_seen else None,
                            "last_seen": r.last_seen.isoformat() if r.last_seen else None,
                            "boots": ",".join(r.boots) or None,
                        },
                    )
                    for r in group
                ],
                action=first.sre_action,
            )
        )
    return problems


def answer(app: AgentApp, analysis: XidAnalysis, refs: list[Any], detail: DetailLevel) -> XidErrorsResult:
    problems = xid_problems(analysis.xids)
    lost = {r.index: r for r in refs if r.lost_reason}
    for p in problems:  # a lost GPU is lost, whatever its XIDs say: one status for the GPU
        if p.index in lost:
            p.status = "lost"
    for index, ref in lost.items():
        if not any(p.index == index for p in problems):
            why = f"{_common.LOST_REASON}: {ref.lost_reason}"
            problems.append(
                GpuProblem(
                    **_common.gpu_name(ref).model_dump(),
                    status="lost",
                    reason=why,
                    evidence=[_common.evidence("lost", "lost", why, {"nvml": ref.lost_reason})],
                    action="Cordon and drain the node and reboot it (see get_gpu_health)",
                )
            )
    status_of = {p.index: p.status for p in problems if p.index is not None}
    statuses: list[tuple[GpuName, Status]] = [
        (_common.gpu_name(r), "lost" if r.lost_reason else status_of.get(r.index, "healthy")) for r in refs
    ]
    head = node_head(detail, statuses, problems, analysis.action, analysis.unavailable)
    if any(p.index is None for p in problems):  # an XID on a GPU NVML does not list still counts
        head["status"] = worst([head["status"], *(p.status for p in problems)])
    result = XidErrorsResult(
        **head,
        since=analysis.since,
        covered_since=analysis.covered_since,
        sources=analysis.sources,
        total_events=analysis.total_events,
        notes=analysis.notes,
        sxid_count=len(analysis.sxids),
        source=_common.source(app),
    )
    if detail == "full":
        result.xids, result.events, result.sxids = analysis.xids, analysis.events, analysis.sxids
        result.workflows = analysis.workflows
        result.truncated = analysis.truncated
        result.boots = analysis.boots
    return result


def _mock_boot_time(lines: list[str], now: datetime) -> datetime:
    """Mock fleet: a boot time that makes the scenario's last kernel line a few minutes old."""
    from k8s_gpu_mcp.xid.parse import parse_prefix

    uptimes = [parse_prefix(line[: line.find("NVRM")] if "NVRM" in line else line).uptime_s for line in lines]
    latest = max((u for u in uptimes if u is not None), default=0.0)
    return now - MOCK_LAST_LINE_AGE - timedelta(seconds=latest)


def _history(
    app: AgentApp, klog: Any, lower: datetime | None, now: datetime, journal_dir: str | None
) -> tuple[Any | None, datetime | None]:
    """Earlier boots (journal, rotated kern.log under the host root) when the live log does not
    reach back to ``lower``; the history (or None) and the earliest time covered overall. Live
    events are marked as the current boot's."""
    from k8s_gpu_mcp.xid.history import read_boot_id, read_history

    current_id = read_boot_id(app.settings.proc_root)
    for ev in klog.parser.events:
        ev.boot, ev.boot_id, ev.boot_started = "current", current_id, klog.boot_time
    if lower is not None and klog.covered_since is not None and klog.covered_since <= lower:
        return None, klog.covered_since
    history = read_history(
        app.settings.host_root, since=lower, now=now, journal_dir=journal_dir, current_id=current_id,
        current_start=klog.boot_time, skip_current=klog.source == "journal",
    )  # fmt: skip
    covered = [c for c in (klog.covered_since, history.covered_since) if c is not None]
    return history, min(covered, default=None)


def collect_xids(
    app: AgentApp,
    *,
    since: str = "24h",
    gpus: list[int | str] | int | str | None = None,
    min_severity: str | None = None,
    limit: int = 200,
    source: str | None = None,
    history: bool = False,
) -> tuple[XidAnalysis, list[Any]]:
    """The XID analysis behind analyze_xid_errors (also used by get_gpu_health), and the GPUs it
    covers; ToolError on bad input. ``history``: on a real node, a window reaching before the live
    log also reads the earlier boots (journal, rotated kern.log); get_gpu_health asks about now and
    leaves it off."""
    from k8s_gpu_mcp.xid.analyze import analyze
    from k8s_gpu_mcp.xid.sources import parse_boot_time, read_kernel_log

    settings, mock, watcher = app.settings, app.backend.mock, app.xid_watcher
    chosen = source or "auto"
    if chosen not in SOURCES:
        chosen = _file_source(settings, chosen)
    _check_filters(since, min_severity)
    try:
        log_boot = parse_boot_time(settings.boot_time) if settings.boot_time else None
    except ValueError as exc:
        raise ToolError(f"--boot-time {clip(settings.boot_time)}: {exc}") from None
    indexes = [r.index for r in select_gpus(app, gpus)] if gpus is not None else None
    now = datetime.now(UTC)
    if chosen == "auto" and settings.kernel_log:
        chosen = settings.kernel_log
    elif chosen == "auto" and mock is not None:
        chosen = "scenario"
    if mock is not None and chosen in ("kmsg", "journal", "dmesg"):
        raise ToolError(
            f"source {chosen!r} reads this machine's kernel, but the agent serves the mock fleet; "
            "use 'scenario', 'nvml' or a file path"
        )
    events: list[Any] = []
    sxids: list[Any] = []
    used: list[str] = []
    notes: list[str] = []
    unavailable: dict[str, str] = {}
    covered: datetime | None = None
    boots: list[BootRecord] = []
    if chosen != "nvml":
        lines = mock.kernel_log if mock is not None else []
        boot = _mock_boot_time(lines, now) if chosen == "scenario" and mock is not None else None
        if chosen == "scenario" and mock is None:
            raise ToolError("source 'scenario' needs the mock fleet (--profile/--scenario)")
        journal = Path(settings.host_root) / "var" / "log" / "journal"
        try:
            klog = read_kernel_log(
                chosen,
                since=None,
                lines=lines,
                proc_root=settings.proc_root,
                journal_dir=str(journal) if journal.is_dir() else None,
                boot_time=boot,
                log_boot_time=log_boot,
                now=now,
            )
        except OSError as exc:
            raise ToolError(f"cannot read kernel log {clip(chosen)}: {exc.strerror or exc}") from None
        except ValueError as exc:
            raise ToolError(str(exc)) from exc
        notes.extend(klog.parser.notes)
        unavailable.update({f"kernel_log.{k}": v for k, v in klog.unavailable.items()})
        if klog.source is None:
            notes.append("No kernel log source could be read; only live NVML events are included.")
        else:
            used.append(klog.source)
            for ev in klog.parser.events:
                ev.source = klog.source
            events.extend(klog.parser.events)
            sxids.extend(klog.parser.sxids)
            covered = klog.covered_since
        live_log = mock is None and klog.source in ("kmsg", "journal", "dmesg")
        if live_log and not (history and (source or "auto") in ("auto", "journal")):
            from k8s_gpu_mcp.xid.history import read_boot_id

            current_id = read_boot_id(settings.proc_root)
            for ev in klog.parser.events:
                ev.boot, ev.boot_id, ev.boot_started = "current", current_id, klog.boot_time
        elif live_log:
            from k8s_gpu_mcp.xid.analyze import parse_since
            from k8s_gpu_mcp.xid.history import reach_note

            lower = parse_since(since, now)
            hist, covered = _history(app, klog, lower, now, str(journal) if journal.is_dir() else None)
            if hist is not None:
                events.extend(hist.events)
                sxids.extend(hist.sxids)
                used.extend(s for s in hist.sources if s not in used)
                notes.extend(hist.notes)
                unavailable.update({f"history.{k}": v for k, v in hist.unavailable.items()})
                boots = [
                    BootRecord(boot_id=b.boot_id, started=b.started, last_entry=b.last, current=b.current,
                               source=b.source)
                    for b in hist.boots
                ]  # fmt: skip
            if note := reach_note(covered, lower, used):
                notes.append(note)
        if boot is not None:
            notes.append(
                "Mock fleet: scenario uptime stamps are dated as if the last line were 5 minutes old."
            )
    if watcher is not None:
        watcher.drain()
        live = watcher.events()
        events.extend(live)
        used.append("nvml")
        notes.append(
            f"Live XID events come from an NVML event set (nvmlEventSetWait_v2) registered when the agent "
            f"started: {len(live)} so far; earlier XIDs are only in the kernel log."
        )
        unavailable.update({f"nvml.gpu{i}": why for i, why in watcher.unwatched.items()})
        if watcher.last_error:
            unavailable["nvml"] = watcher.last_error
    else:
        unavailable["nvml"] = "NVML XID watcher not running"
    refs = app.backend.adapter.gpus()
    if app.backend.adapter.enumeration_error:
        unavailable["gpus"] = app.backend.adapter.enumeration_error
    for ref in refs:
        if ref.lost_reason:
            unavailable[f"gpu{ref.index}"] = ref.lost_reason
        unavailable.update({f"gpu{ref.index}.{k}": v for k, v in ref.unavailable.items()})
    gpu_map = [{"index": r.index, "uuid": r.uuid, "bus_id": r.bus_id} for r in refs]
    try:
        result = analyze(
            events,
            gpu_map,
            since=since,
            gpus=indexes,
            min_severity=min_severity,
            limit=limit,
            sxids=sxids,
            sources=used,
            proc_root=settings.proc_root if mock is None else None,
            now=now,
            notes=notes,
            unavailable=unavailable,
            covered_since=covered,
            boots=boots,
        )
    except ValueError as exc:
        raise ToolError(str(exc)) from exc
    return result, refs if indexes is None else [r for r in refs if r.index in indexes]


def register(app: AgentApp) -> None:
    def analyze_xid_errors(
        since: Annotated[str, Field(description='Window: "30m", "24h", "7d" or an RFC 3339 time')] = "24h",
        gpus: GpuSelector = None,
        min_severity: Annotated[
            Literal["Info", "Warning", "Critical", "Fatal"] | None,
            BeforeValidator(_severity_word),
            Field(
                description="Only events at or above this catalog severity: Info, Warning, Critical or Fatal "
                "(any case)"
            ),
        ] = None,
        limit: Annotated[int, Field(ge=1, le=5000, description="Most recent events to return")] = 200,
        source: Annotated[
            str | None,
            Field(
                description="auto (default), kmsg, journal, dmesg, nvml, scenario, or a kernel log file "
                "the operator named at start-up (--kernel-log, --xid-log-files)"
            ),
        ] = None,
        detail: Detail = "summary",
    ) -> XidErrorsResult:
        """Find NVIDIA XID errors (kernel log + live NVML events) and say what to do: the node's status
        (worst XID on the status scale) and one action naming GPUs and actions, then per GPU the XIDs
        that need action with counts, catalog severity, first/last seen and NVIDIA's SRE action (decoded
        from the message where NVIDIA's action depends on it: 45, 48, 74, 144-150, 154).
        detail="full" adds per event the resolution bucket, pid, process and the kernel line, and the
        NVSwitch SXids. NVIDIA's investigatory workflows (13, 31, 45, 48, 74, 154) are evaluated per GPU
        over the window and name the pattern seen (detail="full": workflows). Use it for stuck or crashed
        GPU jobs."""
        analysis, refs = collect_xids(
            app, since=since, gpus=gpus, min_severity=min_severity, limit=limit, source=source, history=True
        )
        return answer(app, analysis, refs, detail)

    app.add_tool(analyze_xid_errors, title="Analyze XID errors", annotations=READ_ONLY)
