"""Per-GPU statuses for find_unhealthy_gpus, from get_gpu_health or from telemetry + inventory.

get_gpu_health's summary (tools/health.py) has ``problems`` (each GPU that is not healthy: ``index``,
``uuid``, ``pci_bus_id``, ``status``, ``reason``) and ``healthy_gpus``; its ``status`` words are the
one scale (vocabulary.py) and pass through unchanged. A full answer's ``gpus`` and older or other
agents are read leniently (``verdict``, ``health``, ``overall``; ok/pass/fail/...; a boolean
``healthy``; string reasons). A status that cannot be read is ``unknown``, never healthy.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from k8s_gpu_mcp.vocabulary import STATUS_RANK, Status

UNHEALTHY: tuple[Status, ...] = tuple(s for s, rank in STATUS_RANK.items() if rank >= STATUS_RANK["warning"])  # type: ignore[misc]

_WORDS: dict[str, Status] = {
    "healthy": "healthy",
    "ok": "healthy",
    "pass": "healthy",
    "passed": "healthy",
    "good": "healthy",
    "warning": "warning",
    "warn": "warning",
    "degraded": "degraded",
    "lost": "lost",
    "critical": "critical",
    "unhealthy": "critical",
    "fail": "critical",
    "failed": "critical",
    "error": "critical",
    "bad": "critical",
    "unknown": "unknown",
}
_VERDICT_KEYS = ("status", "verdict", "health", "overall", "severity")
_REASON_KEYS = ("reasons", "issues", "findings", "problems")


class GpuVerdict(BaseModel):
    node: str
    index: int | None = None
    uuid: str | None = None
    pci_bus_id: str | None = None
    name: str | None = None
    status: Status
    reasons: list[str] = Field(default_factory=list)
    basis: Literal["get_gpu_health", "telemetry+inventory"]


def _status(entry: dict[str, Any]) -> Status:
    for key in _VERDICT_KEYS:
        value = entry.get(key)
        if isinstance(value, dict):  # e.g. {"status": {"level": "critical", ...}}
            value = value.get("level") or value.get("status") or value.get("severity")
        if isinstance(value, str) and value.strip().lower() in _WORDS:
            return _WORDS[value.strip().lower()]
    if isinstance(entry.get("healthy"), bool):
        return "healthy" if entry["healthy"] else "critical"
    return "unknown"


def _reasons(entry: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in _REASON_KEYS:
        for item in entry.get(key) or []:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                text = (
                    item.get("message")
                    or item.get("summary")
                    or item.get("detail")
                    or item.get("explanation")
                )
                out.append(str(text) if text else str(item))
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


# Throttle categories that mean the hardware is protecting itself (not load, not a set cap).
_BAD_THROTTLE = {"thermal", "hw_slowdown"}


def from_telemetry(
    node: str, telemetry: dict[str, Any], inventory: dict[str, Any] | None
) -> list[GpuVerdict]:
    """Fallback when a node has no get_gpu_health: lost GPUs, thermal/HW throttling, thermal headroom."""
    lost_in_inventory = {
        g.get("index") for g in (inventory or {}).get("gpus", []) if isinstance(g, dict) and g.get("lost")
    }
    verdicts = []
    for gpu in telemetry.get("gpus") or []:
        if not isinstance(gpu, dict):
            continue
        reasons: list[str] = []
        severity: Status = "healthy"
        if gpu.get("lost") or gpu.get("index") in lost_in_inventory:
            severity, reasons = (
                "critical",
                [f"GPU lost: {(gpu.get('unavailable') or {}).get('*', 'fallen off the bus')}"],
            )
        else:
            throttling = gpu.get("throttling") or {}
            temp = gpu.get("temperature") or {}
            if throttling.get("active") and throttling.get("category") in _BAD_THROTTLE:
                severity = "warning"
                reasons.append(throttling.get("explanation") or f"throttling: {throttling.get('category')}")
            shutdown = temp.get("headroom_to_shutdown_c")
            if isinstance(shutdown, int) and shutdown <= 5:
                severity = "critical"
                reasons.append(f"{shutdown} C from the shutdown temperature")
            if throttling.get("active") is None:
                severity = "unknown" if severity == "healthy" else severity
                reasons.append("throttle reasons unreadable")
        verdicts.append(
            GpuVerdict(
                node=node,
                index=gpu.get("index"),
                uuid=gpu.get("uuid"),
                pci_bus_id=gpu.get("pci_bus_id"),
                name=gpu.get("name"),
                status=severity,
                reasons=reasons,
                basis="telemetry+inventory",
            )
        )
    return verdicts
