"""Per-GPU statuses for find_unhealthy_gpus, from get_gpu_health.

get_gpu_health's summary (tools/health.py) has ``problems`` (each GPU that is not healthy: ``index``,
``uuid``, ``pci_bus_id``, ``status``, ``reason``) and ``healthy_gpus``; a full answer has ``gpus``
(``status``, ``reasons: [{message}]``). Its ``status`` words are the one scale (vocabulary.py) and
pass through unchanged. A status that is not one of them is ``unknown``, never healthy.
"""

from __future__ import annotations

from typing import Any, Literal, cast

from pydantic import BaseModel, Field

from k8s_gpu_mcp.vocabulary import STATUS_RANK, Status

UNHEALTHY: tuple[Status, ...] = tuple(s for s, rank in STATUS_RANK.items() if rank >= STATUS_RANK["warning"])  # type: ignore[misc]


class GpuVerdict(BaseModel):
    node: str
    index: int | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    name: str | None = None
    status: Status
    reasons: list[str] = Field(default_factory=list)
    basis: Literal["get_gpu_health"] = "get_gpu_health"


def _status(entry: dict[str, Any]) -> Status:
    value = entry.get("status")
    return cast(Status, value) if isinstance(value, str) and value in STATUS_RANK else "unknown"


def _reasons(entry: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for item in entry.get("reasons") or []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.append(str(item.get("message") or item))
    return out


def from_summary(node: str, result: dict[str, Any]) -> list[GpuVerdict]:
    """get_gpu_health's summary: its problems, and one healthy verdict per healthy GPU."""
    out = []
    for p in result.get("problems") or []:
        if isinstance(p, dict):
            reason = p.get("reason")
            out.append(
                GpuVerdict(
                    node=node,
                    index=p.get("index") if isinstance(p.get("index"), int) else None,
                    uuid=p.get("uuid"),
                    pci_bus_id=p.get("pci_bus_id"),
                    status=_status(p),
                    reasons=[str(reason)] if reason else ["no reason in the get_gpu_health problem"],
                    basis="get_gpu_health",
                )
            )
    for g in result.get("healthy_gpus") or []:
        if isinstance(g, dict):
            index = g.get("index")
            out.append(
                GpuVerdict(
                    node=node,
                    index=index if isinstance(index, int) else None,
                    uuid=g.get("uuid"),
                    pci_bus_id=g.get("pci_bus_id"),
                    status="healthy",
                    basis="get_gpu_health",
                )
            )
    return out


def from_health(node: str, result: dict[str, Any]) -> list[GpuVerdict]:
    gpus = result.get("gpus")
    if not isinstance(gpus, list) and isinstance(result.get("problems"), list):
        return from_summary(node, result)
    if not isinstance(gpus, list):
        severity = _status(result)
        reasons = _reasons(result) or (
            [] if severity == "healthy" else ["get_gpu_health returned no per-GPU list"]
        )
        return [GpuVerdict(node=node, status=severity, reasons=reasons, basis="get_gpu_health")]
    verdicts = []
    for entry in gpus:
        if not isinstance(entry, dict):
            continue
        severity = _status(entry)
        reasons = _reasons(entry)
        if severity == "unknown" and not reasons:
            reasons = ["no verdict field in the get_gpu_health entry"]
        verdicts.append(
            GpuVerdict(
                node=node,
                index=entry.get("index") if isinstance(entry.get("index"), int) else None,
                uuid=entry.get("uuid"),
                pci_bus_id=entry.get("pci_bus_id"),
                name=entry.get("name"),
                status=severity,
                reasons=reasons,
                basis="get_gpu_health",
            )
        )
    return verdicts
