"""Pure XID analysis: events from any sources + the NVML GPU map -> verdict and recommendation."""

from __future__ import annotations

import re
import reprlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..gpu.pci import normalize_bus_id
from ..k8s.cgroup import read_cgroup
from ..vocabulary import XID_STATUS, worst
from . import workflows
from .catalog import SEVERITY_ORDER, lookup
from .decode import decode
from .models import BootRecord, SxidEvent, XidAnalysis, XidEvent, XidSummary
from .parse import KernelEvent
from .parse import SxidEvent as RawSxid
from .workflows import RECURRING_COUNT, REPLACE_ACTION

MERGE_WINDOW_S = 2.0  # the same XID on the same GPU seen by two sources
LOST_MERGE_WINDOW_S = 300.0  # a no-XID lost-GPU report next to an XID 79 is the same loss
RELATED_WINDOW_S = 300.0  # "nearby" XIDs for message decoding (48 with 63/64, 45 with its cause)
_DURATION_RE = re.compile(r"^(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_ECHO = reprlib.Repr()  # caller input in errors is echoed cut short
_ECHO.maxstring = _ECHO.maxother = 60
SINCE_HELP = 'a duration like "30m", "24h", "7d", "1h30m" or an RFC 3339 time like "2026-11-21T10:00:00Z"'


@dataclass(frozen=True, slots=True)
class Gpu:
    """A GPU as XID events name it: index, UUID, bus id."""

    index: int
    uuid: str | None
    bus_id: str | None


def parse_since(since: str | None, now: datetime) -> datetime | None:
    """``"24h"``/``"30m"``/``"7d"`` or RFC 3339 -> an aware datetime; None for no lower bound."""
    if since is None or since == "":
        return None
    text = since.strip()
    m = _DURATION_RE.match(text) if len(text) <= 64 else None
    try:
        if m and any(m.groups()):
            w, d, h, mi, s = (int(g or 0) for g in m.groups())
            return now - timedelta(weeks=w, days=d, hours=h, minutes=mi, seconds=s)
        ts = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError):  # OverflowError: a duration reaching before year 1
        raise ValueError(f"invalid since {_ECHO.repr(since)}: use {SINCE_HELP}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def _gpus(gpu_map: Iterable[dict[str, Any] | Gpu]) -> list[Gpu]:
    out = []
    for g in gpu_map:
        if isinstance(g, Gpu):
            out.append(g)
        else:
            out.append(Gpu(int(g["index"]), g.get("uuid"), normalize_bus_id(g.get("bus_id"))))
    return out


def _select(gpus: list[Gpu], selectors: Sequence[int | str] | None) -> set[int] | None:
    if selectors is None:
        return None
    chosen: set[int] = set()
    for sel in selectors:
        norm = normalize_bus_id(sel) if isinstance(sel, str) else None
        match = [
            g for g in gpus if sel in (g.index, g.uuid) or (norm and norm == g.bus_id) or str(g.index) == sel
        ]
        if not match:
            valid = ", ".join(f"{g.index} ({g.uuid})" for g in gpus) or "none"
            raise ValueError(f"unknown GPU {sel!r}; valid GPUs: {valid}")
        chosen.update(g.index for g in match)
    return chosen


def _merge(events: list[KernelEvent]) -> list[tuple[KernelEvent, list[str]]]:
    """Fold the same event seen by several sources (or a lost-GPU report beside its XID 79)."""
    merged: list[tuple[KernelEvent, list[str]]] = []
    for ev in sorted(
        events, key=lambda e: (e.timestamp is None, e.timestamp or datetime.min.replace(tzinfo=UTC))
    ):
        code = 79 if ev.kind == "gpu_lost" else ev.xid
        for prev, sources in reversed(merged[-64:]):
            prev_code = 79 if prev.kind == "gpu_lost" else prev.xid
            if prev_code != code or (prev.bus_id or prev.gpu_index) != (ev.bus_id or ev.gpu_index):
                continue
            if prev.bus_id is None and prev.gpu_index != ev.gpu_index:
                continue
            lost_pair = (prev.kind == "gpu_lost") != (ev.kind == "gpu_lost")
            window = LOST_MERGE_WINDOW_S if lost_pair else MERGE_WINDOW_S
            if not lost_pair and ev.source in sources:
                continue
            if (
                prev.timestamp
                and ev.timestamp
                and abs((ev.timestamp - prev.timestamp).total_seconds()) <= window
            ):
                if ev.source not in sources:
                    sources.append(ev.source)
                if prev.boot is None and ev.boot is not None:  # the other source knew the boot
                    prev.boot, prev.boot_id, prev.boot_started = ev.boot, ev.boot_id, ev.boot_started
                if prev.kind == "gpu_lost" and ev.kind == "xid":  # keep the XID line as the event
                    merged[merged.index((prev, sources))] = (ev, sources)
                break
        else:
            merged.append((ev, [ev.source]))
    return merged


def _attribute_by_elimination(
    events: Sequence[KernelEvent], gpus: list[Gpu], by_bus: dict[str, Gpu], notes: list[str]
) -> None:
    """A lost GPU often has no readable PCI bus id. When exactly one GPU lacks it and the kernel names
    exactly one bus id that matches no readable GPU, those events are that GPU's (said in a note)."""
    blind = [g for g in gpus if not g.bus_id]
    strangers = {ev.bus_id for ev in events if ev.gpu_index is None and ev.bus_id and ev.bus_id not in by_bus}
    if len(blind) != 1 or len(strangers) != 1:
        return
    bus_id = strangers.pop()
    by_bus[bus_id] = Gpu(blind[0].index, blind[0].uuid, bus_id)
    notes.append(
        f"GPU {blind[0].index}'s PCI bus id could not be read (lost GPU); kernel events from {bus_id}, "
        "the one bus id matching no readable GPU, are attributed to it by elimination"
    )


def analyze(
    events: Sequence[KernelEvent],
    gpu_map: Iterable[dict[str, Any] | Gpu],
    *,
    since: str | None = "24h",
    gpus: Sequence[int | str] | None = None,
    min_severity: str | None = None,
    limit: int = 200,
    sxids: Iterable[RawSxid] = (),
    sources: Sequence[str] = (),
    proc_root: str | Path | None = None,
    now: datetime | None = None,
    notes: Sequence[str] = (),
    unavailable: dict[str, str] | None = None,
    covered_since: datetime | None = None,
    boots: Sequence[BootRecord] = (),
) -> XidAnalysis:
    """Analyse XID events. Raises ValueError (with the valid choices) on bad arguments."""
    now = now or datetime.now(UTC)
    if min_severity is not None:
        min_severity = next(
            (k for k in SEVERITY_ORDER if k.lower() == min_severity.strip().lower()), min_severity
        )
    if min_severity is not None and min_severity not in SEVERITY_ORDER:
        raise ValueError(
            f"invalid min_severity {_ECHO.repr(min_severity)}; valid: {', '.join(SEVERITY_ORDER)}"
        )
    if limit < 1:
        raise ValueError("limit must be >= 1")
    lower = parse_since(since, now)
    gpu_list = _gpus(gpu_map)
    chosen = _select(gpu_list, gpus)
    by_bus = {g.bus_id: g for g in gpu_list if g.bus_id}
    by_index = {g.index: g for g in gpu_list}
    out_notes = list(notes)
    _attribute_by_elimination(events, gpu_list, by_bus, out_notes)

    resolved: list[KernelEvent] = []
    unmatched: set[str] = set()
    for ev in events:
        gpu = by_index.get(ev.gpu_index) if ev.gpu_index is not None else by_bus.get(ev.bus_id or "")
        if gpu is not None:
            ev.gpu_index, ev.bus_id = gpu.index, ev.bus_id or gpu.bus_id
        elif ev.pci:
            unmatched.add(ev.pci)
        if lower is not None and ev.timestamp is not None and ev.timestamp < lower:
            continue
        if chosen is not None and ev.gpu_index not in chosen:
            continue
        resolved.append(ev)
    if unmatched:
        out_notes.append(
            "XIDs on PCI ids NVML does not list (lost or hidden GPUs): " + ", ".join(sorted(unmatched))
        )
    undated = sum(1 for e in resolved if e.timestamp is None)
    if undated:
        out_notes.append(f"{undated} event(s) have no usable timestamp and were kept regardless of since")

    merged = _merge(resolved)
    decoded: list[XidEvent] = []
    for ev, srcs in merged:
        decoded.append(_event(ev, srcs, merged, by_index, proc_root))
    found = workflows.evaluate(decoded)  # over every event of the window, before min_severity
    workflows.apply(decoded, found)
    if min_severity is not None:
        decoded = [e for e in decoded if SEVERITY_ORDER[e.catalog_severity] >= SEVERITY_ORDER[min_severity]]

    summary = _summary(decoded, {(w.xid, w.index, w.pci_bus_id) for w in found})
    truncated = len(decoded) > limit
    return XidAnalysis(
        status=worst(e.status for e in decoded),
        action=_recommendation(summary),
        events=decoded[-limit:],
        xids=summary,
        workflows=found,
        sxids=[_sxid(s) for s in sxids if lower is None or s.timestamp is None or s.timestamp >= lower],
        total_events=len(decoded),
        truncated=truncated,
        since=lower,
        covered_since=covered_since,
        boots=list(boots),
        sources=list(sources),
        notes=out_notes,
        unavailable=unavailable or {},
    )


def _event(
    ev: KernelEvent,
    sources: list[str],
    merged: list[tuple[KernelEvent, list[str]]],
    by_index: dict[int, Gpu],
    proc_root: str | Path | None,
) -> XidEvent:
    code = 79 if ev.kind == "gpu_lost" or ev.xid is None else ev.xid
    related = {
        (79 if o.kind == "gpu_lost" else o.xid or 0)
        for o, _ in merged
        if o is not ev
        and (o.bus_id or o.gpu_index) == (ev.bus_id or ev.gpu_index)
        and (o.timestamp is None or ev.timestamp is None or abs((o.timestamp - ev.timestamp).total_seconds()) <= RELATED_WINDOW_S)
    }  # fmt: skip
    d = decode(code, ev.message, related=related, caused_by=ev.caused_by_xid)
    info = lookup(code)
    name = info.name if ev.kind == "xid" else "GPU has fallen off the bus (reported without an XID)"
    cg = read_cgroup(proc_root, ev.pid) if proc_root is not None and ev.pid else None
    gpu = by_index.get(ev.gpu_index) if ev.gpu_index is not None else None
    return XidEvent(
        timestamp=ev.timestamp,
        timestamp_note=ev.timestamp_note,
        uptime_s=ev.uptime_s,
        kind=ev.kind,
        xid=code,
        name=name,
        status=XID_STATUS[d.severity],
        catalog_severity=d.severity,
        sre_action=d.sre_action,
        bucket=d.bucket,
        investigatory_bucket=d.investigatory_bucket,
        subcode=d.subcode,
        notes=d.notes,
        app_caused=d.app_caused,
        app_caused_why=d.app_caused_why,
        sympathetic=ev.sympathetic or (code == 45 and d.severity == "Info"),
        caused_by_xid=ev.caused_by_xid,
        index=ev.gpu_index,
        uuid=gpu.uuid if gpu else None,
        pci_bus_id=ev.bus_id,
        pci=ev.pci,
        pid=ev.pid,
        process=ev.process,
        container_id=cg.container_id if cg else None,
        pod_uid=cg.pod_uid if cg else None,
        raw=ev.raw,
        sources=sources,
        boot=ev.boot,
        boot_id=ev.boot_id,
        boot_started=ev.boot_started,
    )


def _summary(
    events: list[XidEvent], by_workflow: set[tuple[int, int | None, str | None]]
) -> list[XidSummary]:
    """Per XID and GPU. A workflow's advice stands as it is; other hardware XIDs recurring on one
    GPU escalate to replacing it."""
    groups: dict[tuple[int, int | None, str | None], list[XidEvent]] = {}
    for e in events:
        groups.setdefault((e.xid, e.index, e.pci_bus_id), []).append(e)
    out = []
    for (xid, index, bus_id), evs in groups.items():
        top = max(evs, key=lambda e: SEVERITY_ORDER[e.catalog_severity])
        stamps = [e.timestamp for e in evs if e.timestamp]
        action = top.sre_action
        if (
            (xid, index, bus_id) not in by_workflow
            and len(evs) >= RECURRING_COUNT
            and top.catalog_severity in ("Critical", "Fatal")
            and lookup(xid).origin == "hardware"
        ):
            action = REPLACE_ACTION
        out.append(
            XidSummary(
                xid=xid,
                name=top.name,
                index=index,
                uuid=top.uuid,
                pci_bus_id=bus_id,
                count=len(evs),
                first_seen=min(stamps, default=None),
                last_seen=max(stamps, default=None),
                status=top.status,
                catalog_severity=top.catalog_severity,
                sre_action=action,
                boots=[b for b in ("current", "previous") if any(e.boot == b for e in evs)],
            )
        )
    out.sort(
        key=lambda s: (
            -SEVERITY_ORDER[s.catalog_severity],
            s.index if s.index is not None else 1 << 30,
            s.xid,
        )
    )
    return out


def _gpu_label(indexes: list[int | None], buses: list[str | None]) -> str:
    known = sorted({i for i in indexes if i is not None})
    unknown = sorted({b for i, b in zip(indexes, buses, strict=True) if i is None and b})
    parts = []
    if known:
        parts.append(("GPU " if len(known) == 1 else "GPUs ") + ", ".join(map(str, known)))
    if unknown:
        parts.append("PCI " + ", ".join(unknown))
    return " and ".join(parts) or "an unidentified GPU"


def _recommendation(summary: list[XidSummary]) -> str:
    if not summary:
        return "No XID errors in the window; no action needed."
    actionable = [s for s in summary if s.catalog_severity != "Info"] or summary
    by_action: dict[str, dict[int, list[XidSummary]]] = {}
    for s in actionable:
        by_action.setdefault(s.sre_action, {}).setdefault(s.xid, []).append(s)
    sentences = []
    for action, per_xid in by_action.items():
        clauses = []
        for xid, rows in per_xid.items():
            label = _gpu_label([r.index for r in rows], [r.pci_bus_id for r in rows])
            count = sum(r.count for r in rows)
            times = f" ({count} times)" if count > 1 else ""
            clauses.append(f"XID {xid} ({rows[0].name}) on {label}{times}")
        sentences.append(f"{action}: " + "; ".join(clauses) + ".")
    return " ".join(sentences)


def _sxid(s: RawSxid) -> SxidEvent:
    return SxidEvent(
        sxid=s.sxid,
        switch=s.switch,
        bus_id=s.bus_id,
        fatal=s.fatal,
        link=s.link,
        message=s.message,
        details=s.details,
        timestamp=s.timestamp,
        raw=s.raw,
    )
