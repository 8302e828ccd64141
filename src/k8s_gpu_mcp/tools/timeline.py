"""get_node_timeline: "what happened on this node in the last 24 hours?", as one ordered list.

Sources, each entry naming its own: XIDs, lost GPUs and SXids from the kernel log and NVML events
(through the XID analysis), the boot of this kernel, pod starts, container ends and restarts,
evictions and disruptions from the Kubernetes API, and, stamped with the time of the call, the ECC and
throttling state now. A source that could not be read is named in ``unavailable``, never skipped
silently.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

from pydantic import Field

from k8s_gpu_mcp.diagnose import timeline
from k8s_gpu_mcp.gpu.adapter import GpuLost
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import READ_ONLY, Source, fold_unavailable, source, window_start
from k8s_gpu_mcp.vocabulary import Detail, DetailLevel

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp
    from k8s_gpu_mcp.xid.models import XidAnalysis

TOOLSET = "core"


class TimelineEntry(ToolModel):
    time: datetime | None = Field(description="UTC; null when the source gave no time (sorted last)")
    source: timeline.Source
    kind: timeline.Kind
    gpu: int | None = Field(None, description="GPU index, when the entry is about one GPU")
    pod: str | None = Field(None, description="namespace/name, for Kubernetes entries")
    meaning: str


class TimelineResult(ToolModel):
    source: Source
    since: datetime | None
    entries: list[TimelineEntry] = Field(description="oldest first; the most recent `limit` are kept")
    dropped: int = Field(description="older entries left out by `limit`")
    notes: list[str] = Field(default_factory=list)
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="sources that could not be read, and why"
    )


def xid_entries(result: "XidAnalysis") -> list[timeline.Entry]:
    out = []
    for ev in result.events:
        where: timeline.Source = "nvml" if ev.sources == ["nvml"] else "kernel-log"
        kind: timeline.Kind = "gpu_lost" if ev.kind == "gpu_lost" else "xid"
        act = ev.sre_action if ev.sre_action and ev.sre_action.lower() != "none" else "no action"
        meaning = f"XID {ev.xid} {ev.name} ({ev.status}): {act}"
        if ev.boot == "previous":
            meaning += f" [previous boot{' ' + ev.boot_id[:12] if ev.boot_id else ''}]"
        out.append(timeline.Entry(ev.timestamp, where, kind, meaning, gpu=ev.index))
    for sx in result.sxids:
        meaning = (
            f"SXid {sx.sxid} on NVSwitch {sx.switch}" + (" (fatal)" if sx.fatal else "") + f": {sx.message}"
        )
        out.append(timeline.Entry(sx.timestamp, "kernel-log", "sxid", meaning))
    return out


def state_entries(
    app: "AgentApp", now: datetime, detail: DetailLevel = "summary"
) -> tuple[list[timeline.Entry], dict[str, str]]:
    """ECC and throttling as they are now, for the GPUs where they are not fine."""
    from k8s_gpu_mcp.tools import ecc as ecc_tool
    from k8s_gpu_mcp.tools.telemetry import build_telemetry

    out: list[timeline.Entry] = []
    unavailable: dict[str, str] = {}
    per_gpu: dict[int, dict[str, str]] = {}
    for ref in app.backend.adapter.gpus():
        if ref.lost_reason:
            out.append(
                timeline.Entry(now, "nvml", "gpu_lost", f"GPU lost now: {ref.lost_reason}", gpu=ref.index)
            )
            continue
        try:
            ecc, verdict = ecc_tool.snapshot(app, ref)
            readings = app.backend.adapter.telemetry(ref)
        except GpuLost as lost:
            out.append(timeline.Entry(now, "nvml", "gpu_lost", f"GPU lost now: {lost}", gpu=ref.index))
            continue
        # what could not be read for the state-now entries (a missing entry must not read as "fine")
        per_gpu[ref.index] = {**{f"ecc.{k}": v for k, v in ecc.unavailable.items()}, **readings.unavailable}
        if verdict is not None and verdict.verdict not in ("healthy", "unknown"):
            why = verdict.reasons[0].text if verdict.reasons else verdict.action
            out.append(timeline.Entry(now, "nvml", "ecc", f"ECC {verdict.verdict} now: {why}", gpu=ref.index))
        elif verdict is not None and verdict.verdict == "unknown":
            unavailable[f"ecc.gpu{ref.index}"] = "; ".join(verdict.unknown[:3])
        throttling = build_telemetry(ref.index, ref.uuid, ref.name, readings).throttling
        if throttling.active and throttling.category not in (None, "idle", "none"):
            out.append(
                timeline.Entry(now, "nvml", "throttling", f"now: {throttling.explanation}", gpu=ref.index)
            )
    # by-design NotSupported fields (L1 ECC on Hopper, ...) are no gap, kept only with detail=full;
    # the same reason on several GPUs is said once
    return out, {**unavailable, **fold_unavailable({}, per_gpu, keep_not_supported=detail == "full")}


def history_entries(xids: "XidAnalysis", since: datetime | None) -> list[timeline.Entry]:
    """The earlier boots the kernel history knows (journal, rotated kern.log): when each started and
    when its journal ends (the node went down, or the journal stopped, after that)."""
    out = []
    for b in xids.boots:
        if b.current:
            continue  # this boot's start comes from /proc/stat (boot_entries)
        name = f"boot {b.boot_id[:12]}" if b.boot_id else "an earlier boot"
        if b.started is not None and (since is None or b.started >= since):
            out.append(
                timeline.Entry(b.started, "kernel-log", "boot", f"node booted ({name}, from the {b.source})")
            )
        if b.last_entry is not None and (since is None or b.last_entry >= since):
            text = f"last journal entry of {name}: the node went down or its journal stopped after this"
            out.append(timeline.Entry(b.last_entry, "kernel-log", "boot_ended", text))
    return out


def boot_entries(
    app: "AgentApp", since: datetime | None, history: bool = False
) -> tuple[list[timeline.Entry], list[str]]:
    if app.backend.mock is not None:  # this machine's boot is not the mock node's
        return [], ["Mock fleet: no boot record; the kernel-log entries come from the scenario."]
    from k8s_gpu_mcp.host.procfs import boot_time

    booted = boot_time(app.settings.proc_root)
    if booted is None:
        return [], ["The boot time could not be read from /proc/stat."]
    when = datetime.fromtimestamp(booted, UTC)
    notes = (
        []
        if history
        else [
            f"The kernel ring buffer starts at this boot ({when.isoformat()}); earlier XIDs need the journal."
        ]
    )
    if since is not None and when < since:
        return [], notes
    return [timeline.Entry(when, "host", "boot", "node booted (this kernel's log starts here)")], notes


def entries_of(answer: dict[str, object]) -> tuple[list[timeline.Entry], int]:
    """A get_node_timeline answer (JSON, from an agent) back into entries; also how many could not
    be read (an agent of another version may know other kinds)."""
    out, bad = [], 0
    for raw in answer.get("entries") or []:  # type: ignore[attr-defined]
        try:
            e = TimelineEntry.model_validate(raw)
        except ValueError:
            bad += 1
            continue
        out.append(timeline.Entry(e.time, e.source, e.kind, e.meaning, gpu=e.gpu, pod=e.pod))
    return out, bad


def build_timeline(
    app: "AgentApp", since: str, limit: int, detail: DetailLevel = "summary"
) -> TimelineResult:
    from k8s_gpu_mcp.tools.xid import collect_xids

    now = datetime.now(UTC)
    lower = window_start(since, now)
    xids, _ = collect_xids(app, since=since, limit=5000, history=True)
    unavailable = {f"xids.{k}": v for k, v in xids.unavailable.items()}
    notes = [f"XID analysis: {n}" for n in xids.notes]
    boots, boot_notes = boot_entries(app, lower, history=bool(xids.boots))
    boots += history_entries(xids, lower)
    states, state_unavailable = state_entries(app, now, detail)
    unavailable.update(state_unavailable)
    pods: list[timeline.Entry] = []
    try:
        from k8s_gpu_mcp.k8s.client import K8sError, default_api

        pods = timeline.pod_entries(default_api().list_pods(node=app.backend.node_name), lower)
    except K8sError as exc:
        unavailable["kubernetes"] = str(exc)
    entries, dropped = timeline.merge([xid_entries(xids), boots, pods, states], limit)
    return TimelineResult(
        source=source(app),
        since=lower,
        entries=[TimelineEntry(**vars(e)) for e in entries],
        dropped=dropped,
        notes=notes + boot_notes,
        unavailable=unavailable,
    )


def register(app: "AgentApp") -> None:
    def get_node_timeline(
        since: Annotated[str, Field(description='window: "30m", "24h", "7d" or an RFC 3339 time')] = "24h",
        limit: Annotated[int, Field(ge=1, le=500, description="most recent entries to return")] = 50,
        detail: Detail = "summary",
    ) -> TimelineResult:
        """What happened on this node, in one ordered list: XIDs, lost GPUs and NVSwitch SXids (kernel
        log and NVML events), the boot, pod starts, container ends and restarts (OOMKilled, exit codes),
        evictions and disruptions (Kubernetes API), and the ECC and throttling state now. Each entry has
        a time, a source, the GPU or pod it is about, and one line of meaning. Sources that could not be
        read are listed in `unavailable` (detail="full" also lists the fields this GPU model never has)."""
        return build_timeline(app, since, limit, detail)

    app.add_tool(get_node_timeline, title="Node timeline", annotations=READ_ONLY)
