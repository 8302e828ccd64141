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
]


@dataclass(frozen=True)
class Entry:
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
