"""One ordered account of what happened on a node: entries from the kernel log, NVML, the Kubernetes API
and the host, each with a time, a source, a GPU where there is one, and one line of meaning.

Pure: the callers read the sources; this module turns what they read into entries, drops duplicates,
and keeps the most recent ones in time order. An entry without a time (a pod evicted with no
recorded end) sorts after the dated ones, so nothing read is lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from k8s_gpu_mcp.k8s.drain import gpu_request

Source = Literal["kernel-log", "nvml", "kubernetes", "host"]
Kind = Literal[
    "xid",
    "gpu_lost",
    "sxid",
    "boot",
    "pod_started",
    "container_ended",
    "pod_evicted",
    "pod_disrupted",
    "ecc",
    "throttling",
    "boot_ended",
    "node_condition",
    "node_event",
    "cordoned",
    "uncordoned",
]
UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
_EVENT_KINDS: dict[str, Kind] = {
    "Rebooted": "boot",
    "NodeNotSchedulable": "cordoned",
    "NodeSchedulable": "uncordoned",
}
_BAD_WHEN_TRUE = ("MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable")


@dataclass(frozen=True)
class Entry:
    """One event on a node's timeline: when, from where, what it means, which GPU or pod."""

    time: datetime | None
    source: Source
    kind: Kind
    meaning: str
    gpu: int | None = None
    pod: str | None = None  # namespace/name, for the Kubernetes entries


def parse_time(value: Any) -> datetime | None:
    """An API timestamp (RFC 3339, ``Z`` suffix) as an aware datetime; None when absent or unreadable."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _within(time: datetime | None, since: datetime | None) -> bool:
    return time is None or since is None or time >= since


def _ended(container: str, pod: str, terminated: Mapping[str, Any], restarts: int) -> str:
    reason = terminated.get("reason") or "terminated"
    code = terminated.get("exitCode")
    text = f"container {container} of {pod} ended: {reason}" + (
        f" (exit code {code})" if code is not None else ""
    )
    return text + (f"; restarted {restarts} time{'s' if restarts != 1 else ''}" if restarts else "")


def pod_entries(pods: Iterable[Mapping[str, Any]], since: datetime | None) -> list[Entry]:
    """Starts, container ends (with restarts and reasons such as OOMKilled), evictions and disruption
    conditions of the pods on the node, as the API reports them in each pod's status."""
    out: list[Entry] = []
    for pod in pods:
        meta, status = pod.get("metadata") or {}, pod.get("status") or {}
        ref = f"{meta.get('namespace', 'default')}/{meta.get('name', '?')}"
        gpus = gpu_request(pod)
        started = parse_time(status.get("startTime"))
        if started is not None and _within(started, since):
            uses = f" using {gpus} GPU{'s' if gpus != 1 else ''}" if gpus else ""
            out.append(Entry(started, "kubernetes", "pod_started", f"pod {ref} started{uses}", pod=ref))
        latest_end: datetime | None = None
        for cs in status.get("containerStatuses") or []:
            restarts = int(cs.get("restartCount") or 0)
            for state in (cs.get("lastState") or {}, cs.get("state") or {}):
                terminated = state.get("terminated")
                if not terminated:
                    continue
                ended = parse_time(terminated.get("finishedAt"))
                latest_end = max(filter(None, (latest_end, ended)), default=None)
                if ended is not None and _within(ended, since):
                    meaning = _ended(cs.get("name", "?"), ref, terminated, restarts)
                    out.append(Entry(ended, "kubernetes", "container_ended", meaning, pod=ref))
        if status.get("reason") == "Evicted":
            why = status.get("message") or "no message"
            if _within(latest_end, since):
                out.append(
                    Entry(latest_end, "kubernetes", "pod_evicted", f"pod {ref} evicted: {why}", pod=ref)
                )
        for cond in status.get("conditions") or []:
            if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
                when = parse_time(cond.get("lastTransitionTime"))
                if _within(when, since):
                    why = cond.get("reason") or "disrupted"
                    text = f"pod {ref} marked for disruption: {why}" + (
                        f" ({cond['message']})" if cond.get("message") else ""
                    )
                    out.append(Entry(when, "kubernetes", "pod_disrupted", text, pod=ref))
    return out


def merge(groups: Iterable[Iterable[Entry]], limit: int) -> tuple[list[Entry], int]:
    """Every entry once, oldest first, the ``limit`` most recent kept; also how many were dropped."""
    seen: set[tuple[Any, ...]] = set()
    unique: list[Entry] = []
    for group in groups:
        for e in group:
            key = (e.time, e.kind, e.gpu, e.meaning)
            if key not in seen:
                seen.add(key)
                unique.append(e)
    dated = sorted((e for e in unique if e.time is not None), key=_time)
    ordered = dated + [e for e in unique if e.time is None]
    dropped = max(0, len(ordered) - limit)
    return ordered[dropped:], dropped  # the oldest go first


def _time(entry: Entry) -> datetime:
    assert entry.time is not None
    return entry.time


def _event_time(event: Mapping[str, Any]) -> datetime | None:
    """The last time the API saw an Event happen (events.k8s.io series or core/v1 counters)."""
    series = event.get("series") or {}
    for value in (series.get("lastObservedTime"), event.get("lastTimestamp"), event.get("eventTime"),
                  event.get("firstTimestamp"), (event.get("metadata") or {}).get("creationTimestamp")):  # fmt: skip
        if (when := parse_time(value)) is not None:
            return when
    return None


def event_entries(events: Iterable[Mapping[str, Any]], since: datetime | None) -> list[Entry]:
    """The Events about a node (kubelet starts, reboots, NotReady, cordon, controller evictions), one
    entry each, with how many times it repeated and who reported it."""
    out: list[Entry] = []
    for ev in events:
        when = _event_time(ev)
        if not _within(when, since):
            continue
        reason = ev.get("reason") or "event"
        message = " ".join(str(ev.get("message") or "").split())[:300]
        count = int((ev.get("series") or {}).get("count") or ev.get("count") or 1)
        who = (ev.get("source") or {}).get("component") or ev.get("reportingComponent") or ""
        text = f"{'Warning ' if ev.get('type') == 'Warning' else ''}{reason}" + (
            f": {message}" if message else ""
        )
        text += (f" (x{count})" if count > 1 else "") + (f" [{who}]" if who else "")
        out.append(Entry(when, "kubernetes", _EVENT_KINDS.get(reason, "node_event"), text))
    return out


def _condition_meaning(cond: Mapping[str, Any]) -> str:
    kind, status = cond.get("type", "?"), cond.get("status", "Unknown")
    why = "; ".join(str(x) for x in (cond.get("reason"), cond.get("message")) if x)
    if kind == "Ready":
        state = {"True": "became Ready", "False": "became NotReady"}.get(status, "Ready became Unknown")
        text = f"node {state}"
    elif kind in _BAD_WHEN_TRUE:
        text = f"node {kind} {'began' if status == 'True' else 'cleared' if status == 'False' else 'unknown'}"
    else:  # node-problem-detector and other custom conditions
        text = f"node condition {kind} became {status}"
    return text + (f" ({why[:200]})" if why else "")


def node_entries(
    node: Mapping[str, Any], events: Iterable[Mapping[str, Any]], since: datetime | None
) -> list[Entry]:
    """The API's account of a node: condition transitions, its Events, and the cordon. A cordon with
    no Event dates from the unschedulable taint's timeAdded, else has no time (sorted last)."""
    events = list(events)
    out = event_entries(events, since)
    status = node.get("status") or {}
    for cond in status.get("conditions") or []:
        when = parse_time(cond.get("lastTransitionTime"))
        if when is not None and _within(when, since):
            out.append(Entry(when, "kubernetes", "node_condition", _condition_meaning(cond)))
    spec = node.get("spec") or {}
    if spec.get("unschedulable"):
        taint: Mapping[str, Any] = next(
            (t for t in spec.get("taints") or [] if t.get("key") == UNSCHEDULABLE_TAINT), {}
        )
        cordon_events = [e for e in events if e.get("reason") == "NodeNotSchedulable"]
        when = max(filter(None, map(_event_time, cordon_events)), default=None) or parse_time(
            taint.get("timeAdded")
        )
        text = "node cordoned (spec.unschedulable): no new pods are scheduled on it"
        if when is None:
            out.append(Entry(None, "kubernetes", "cordoned", text + "; when is not recorded"))
        elif not _within(when, since):  # cordoned before the window and still is: said as state now
            out.append(Entry(None, "kubernetes", "cordoned", f"{text}; cordoned since {when.isoformat()}"))
        elif not cordon_events:
            out.append(Entry(when, "kubernetes", "cordoned", text))
    return out
