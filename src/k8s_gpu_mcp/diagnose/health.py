"""GPU health, pure: one component per concern (thermal, power, throttling, memory, XID, NVLink,
processes), each turning readings into reasons with evidence; the GPU status, score and action follow
from the reasons. Scoring is documented in docs/health.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from k8s_gpu_mcp.diagnose.ecc import Verdict as EccVerdict
from k8s_gpu_mcp.diagnose.throttle import Throttling
from k8s_gpu_mcp.diagnose.topology import Finding

Status = Literal["healthy", "warning", "degraded", "critical", "lost"]
Severity = Literal["info", "unknown", "warning", "degraded", "critical"]
XidSeverity = Literal["Info", "Warning", "Critical", "Fatal"]
PENALTY: dict[str, int] = {"info": 0, "unknown": 5, "warning": 10, "degraded": 25, "critical": 50}
STATUS_RANK: dict[str, int] = {"healthy": 0, "warning": 1, "degraded": 2, "critical": 3, "lost": 4}
SEVERITY_STATUS: dict[str, Status] = {
    "info": "healthy",
    "unknown": "warning",
    "warning": "warning",
    "degraded": "degraded",
    "critical": "critical",
}
THERMAL_MARGIN_C = 5  # "close to slowdown" margin below NVML's own slowdown threshold
XID_SEVERITY: dict[str, Severity] = {
    "Info": "info",
    "Warning": "warning",
    "Critical": "degraded",
    "Fatal": "critical",
}
ECC_SEVERITY: dict[str, Severity] = {
    "healthy": "info",
    "unknown": "unknown",
    "monitor": "warning",
    "reset-required": "degraded",
    "replace": "critical",
}
LOST_ACTION = (
    "Cordon and drain the node, then reboot it (XID 79 bucket RESTART_BM); if the GPU falls off the bus "
    "again, check PCIe seating, power and thermals and contact NVIDIA support"
)
COOLING_ACTION = "Check chassis airflow, fans and inlet temperature; the GPU throttles until it cools"
NVLINK_ACTION = (
    "Drain the GPU's NCCL jobs, reset the GPU (or reboot the node) to retrain the links; reseat or "
    "replace the GPU/baseboard if the links stay down"
)


@dataclass(frozen=True)
class XidFinding:
    """One recent XID on one GPU, as the XID analysis reports it (code, severity, SRE action)."""

    code: int
    gpu_index: int | None
    severity: XidSeverity
    action: str
    name: str = ""
    count: int = 1
    last_seen: datetime | None = None


@dataclass(frozen=True)
class Reason:
    component: str
    severity: Severity
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    action: str | None = None


@dataclass(frozen=True)
class HealthInputs:
    """Everything known about one GPU; ``None`` is unknown, never healthy."""

    index: int
    lost_reason: str | None = None
    temperature_c: int | None = None
    slowdown_c: int | None = None
    shutdown_c: int | None = None
    max_operating_c: int | None = None
    power_draw_w: float | None = None
    power_limit_w: float | None = None
    power_default_limit_w: float | None = None
    throttling: Throttling | None = None
    ecc: EccVerdict | None = None
    xids: list[XidFinding] = field(default_factory=list)
    nvlink: list[Finding] = field(default_factory=list)
    process_count: int | None = None
    process_memory_mib: int | None = None
    memory_total_mib: int | None = None
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Assessment:
    index: int
    status: Status
    score: int
    summary: str
    reasons: list[Reason]
    action: str


def thermal(i: HealthInputs) -> list[Reason]:
    t = i.temperature_c
    ev = {
        "temperature_c": t,
        "slowdown_c": i.slowdown_c,
        "shutdown_c": i.shutdown_c,
        "max_operating_c": i.max_operating_c,
    }
    if t is None:
        why = i.unreadable.get("temperature_c", "unreadable")
        return [Reason("thermal", "unknown", f"Temperature unknown ({why})", ev)]
    ladder: tuple[tuple[float | None, Severity, str], ...] = (
        (i.shutdown_c, "critical", "NVML's shutdown threshold"),
        (i.slowdown_c, "degraded", "NVML's slowdown threshold"),
        (i.max_operating_c, "warning", "the max operating temperature"),
    )
    for threshold, level, name in ladder:
        if threshold is not None and t >= threshold:
            return [Reason("thermal", level, f"{t} C at or above {name} {threshold} C", ev, COOLING_ACTION)]
    if i.slowdown_c is not None and i.slowdown_c - t <= THERMAL_MARGIN_C:
        return [
            Reason(
                "thermal",
                "warning",
                f"{t} C, within {THERMAL_MARGIN_C} C of slowdown at {i.slowdown_c} C",
                ev,
                COOLING_ACTION,
            )
        ]
    if i.slowdown_c is None:
        return [Reason("thermal", "info", f"{t} C; NVML gives no slowdown threshold to compare with", ev)]
    return []


def power(i: HealthInputs) -> list[Reason]:
    draw, limit, default = i.power_draw_w, i.power_limit_w, i.power_default_limit_w
    ev = {"draw_w": draw, "limit_w": limit, "default_limit_w": default}
    out = []
    if draw is not None and limit and draw > limit:
        out.append(Reason("power", "warning", f"Drawing {draw:.0f} W over the enforced {limit:.0f} W limit", ev,
                          "Check the power limit and the PSU; sustained over-limit draw triggers power capping"))  # fmt: skip
    if limit is not None and default is not None and limit < default:
        out.append(
            Reason(
                "power",
                "info",
                f"Enforced power limit {limit:.0f} W is below the default {default:.0f} W",
                ev,
            )
        )
    return out


def throttle(i: HealthInputs) -> list[Reason]:
    th = i.throttling
    if th is None:
        return []
    ev = {"causes": th.causes, "category": th.category}
    if th.active is None:
        return [Reason("throttling", "unknown", th.explanation, ev)]
    if not th.active:
        return []
    severe = {"hw_thermal_slowdown", "hw_power_brake_slowdown", "hw_slowdown", "sw_thermal_slowdown"}
    if severe & set(th.causes):
        action = COOLING_ACTION
        if "hw_power_brake_slowdown" in th.causes:
            action = "Check the PSU and the BMC: an external power brake is asserted (power supply or facility power)"
        elif th.category == "hw_slowdown":
            action = "Check power delivery and cooling: the hardware cut clocks by half or more"
        return [Reason("throttling", "degraded", th.explanation, ev, action)]
    if {"sw_power_cap", "reliability", "board_limit"} & set(th.causes):
        return [Reason("throttling", "warning", th.explanation, ev,
                       "Expected under heavy load at the power limit; raise the limit only within the board's maximum")]  # fmt: skip
    return [Reason("throttling", "info", th.explanation, ev)]


def memory(i: HealthInputs) -> list[Reason]:
    if i.ecc is None:
        return []
    v = i.ecc
    severity = ECC_SEVERITY[v.verdict]
    detail = "; ".join(r.text for r in v.reasons if r.level != "info") or "no memory errors that need action"
    if v.unknown:
        detail += f" (not read: {'; '.join(v.unknown)})"
    ev = {"verdict": v.verdict, "reasons": [r.text for r in v.reasons], "unknown": v.unknown}
    if severity == "info" and not v.reasons:
        return []
    return [
        Reason("memory", severity, f"ECC {v.verdict}: {detail}", ev, None if severity == "info" else v.action)
    ]


def xids(i: HealthInputs) -> list[Reason]:
    out = []
    for x in i.xids:
        sev = XID_SEVERITY[x.severity]
        if x.code == 79 and sev != "critical":
            sev = "critical"
        seen = f", last {x.last_seen.isoformat()}" if x.last_seen else ""
        name = f" {x.name}" if x.name else ""
        ev = {
            "xid": x.code,
            "count": x.count,
            "severity": x.severity,
            "last_seen": x.last_seen.isoformat() if x.last_seen else None,
        }
        out.append(Reason("xid", sev, f"XID {x.code}{name} x{x.count}{seen}", ev, x.action))
    return out


def nvlink(i: HealthInputs) -> list[Reason]:
    out = []
    for f in i.nvlink:
        sev: Severity = "unknown" if f.kind == "unknown_links" else f.severity
        action = NVLINK_ACTION if sev in ("degraded", "warning") else None
        out.append(
            Reason(
                "nvlink",
                sev,
                f"{f.message}: {f.consequence}",
                {"kind": f.kind, "links": f.links, "gpus": f.gpus},
                action,
            )
        )
    return out


def processes(i: HealthInputs) -> list[Reason]:
    if i.process_count is None:
        return []
    ev = {
        "count": i.process_count,
        "memory_used_mib": i.process_memory_mib,
        "memory_total_mib": i.memory_total_mib,
    }
    if not i.process_count:
        return []
    mem = f" using {i.process_memory_mib} MiB" if i.process_memory_mib is not None else ""
    return [
        Reason(
            "processes",
            "info",
            f"{i.process_count} processes{mem}: they are interrupted by a reset or drain",
            ev,
        )
    ]


COMPONENTS = (thermal, power, throttle, memory, xids, nvlink, processes)


def assess(i: HealthInputs) -> Assessment:
    """Reasons from every component; status is the worst, score is 100 minus each component's worst penalty."""
    if i.lost_reason:
        reasons = [
            Reason(
                "lost",
                "critical",
                f"NVML reports the GPU lost: {i.lost_reason}",
                {"nvml": i.lost_reason},
                LOST_ACTION,
            )
        ]
        reasons += [r for r in xids(i) if r.evidence.get("xid") == 79]
        return Assessment(i.index, "lost", 0, f"GPU {i.index}: lost (fell off the bus)", reasons, LOST_ACTION)
    reasons = [r for component in COMPONENTS for r in component(i)]
    order = ["critical", "degraded", "warning", "unknown", "info"]
    reasons.sort(key=lambda r: order.index(r.severity))
    worst: dict[str, int] = {}
    for r in reasons:
        worst[r.component] = max(worst.get(r.component, 0), PENALTY[r.severity])
    score = max(0, 100 - sum(worst.values()))
    status: Status = max(
        (SEVERITY_STATUS[r.severity] for r in reasons), key=STATUS_RANK.__getitem__, default="healthy"
    )
    action = next((r.action for r in reasons if r.action and r.severity != "info"), None)
    if action is None and status == "warning":
        action = "Verify what could not be read (see the unknown reasons) before trusting this GPU"
    lead = next((r.message for r in reasons if r.severity != "info"), "all checks passed")
    return Assessment(
        i.index,
        status,
        score,
        f"GPU {i.index}: {status} ({score}/100): {lead}",
        reasons,
        action or "No action.",
    )


def node_verdict(gpus: list[Assessment]) -> tuple[Status, str]:
    """The node's status (its worst GPU) and the SRE's next step."""
    status: Status = max((g.status for g in gpus), key=STATUS_RANK.__getitem__, default="healthy")
    if status == "healthy":
        return status, "No action: every GPU passed."
    hit = [g for g in gpus if g.status == status]
    which = ", ".join(str(g.index) for g in hit)
    first = hit[0].action
    if status == "lost":
        return status, f"GPU {which} lost: {LOST_ACTION}."
    if status == "critical":
        return status, f"Cordon the node and drain the workloads on GPU {which}; then: {first}"
    if status == "degraded":
        return status, f"Move workloads off GPU {which} (or drain the node); then: {first}"
    return status, f"No drain needed; GPU {which}: {first}"
