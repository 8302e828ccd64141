"""GPU health, pure: one component per concern (thermal, power, throttling, memory, XID, NVLink,
PCIe, processes, and the checks that could not run), each turning readings into reasons with
evidence; the GPU status, score and action follow from the reasons. The node's verdict is in
``diagnose/node.py``. Scoring and thresholds are documented in docs/health.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from k8s_gpu_mcp.diagnose import pcie as pcie_rules
from k8s_gpu_mcp.diagnose.ecc import Verdict as EccVerdict
from k8s_gpu_mcp.diagnose.throttle import Throttling
from k8s_gpu_mcp.diagnose.topology import Finding
from k8s_gpu_mcp.vocabulary import SEVERITY_STATUS, STATUS_RANK, XID_STATUS, Status

# Statuses are the one scale of vocabulary.py. "unknown": nothing wrong was found, but a check could
# not run or a signal could not be read, so the GPU is not known to be healthy; a found fault wins.
Severity = Literal["info", "unknown", "warning", "degraded", "critical"]
XidSeverity = Literal["Info", "Warning", "Critical", "Fatal"]
PENALTY: dict[str, int] = {"info": 0, "unknown": 5, "warning": 10, "degraded": 25, "critical": 50}
SEVERITY_RANK: dict[str, int] = {"info": 0, "unknown": 1, "warning": 2, "degraded": 3, "critical": 4}
# Memory held with no process to account for it: below this share of the GPU's memory (or 256 MiB)
# it is CUDA/driver bookkeeping, above it the next job can run out of memory.
ORPHAN_MIN_MIB = 256
ORPHAN_MIN_SHARE = 0.01
THERMAL_MARGIN_C = 5  # "close to slowdown" margin below NVML's own slowdown threshold
# NVIDIA's catalog severities as reason severities: the one table in vocabulary.XID_STATUS.
XID_SEVERITY: dict[str, Severity] = {
    catalog: "info" if status == "healthy" else status  # type: ignore[misc]
    for catalog, status in XID_STATUS.items()
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
UNKNOWN_ACTION = "Verify what could not be read (see the unknown reasons) before trusting this GPU"
COOLING_ACTION = "Check chassis airflow, fans and inlet temperature; the GPU throttles until it cools"
NVLINK_ACTION = (
    "Drain the GPU's NCCL jobs, reset the GPU (nvidia-smi -r -i <gpu>, or reboot the node) to retrain "
    "the links; reseat or replace the GPU/baseboard if the links stay down"
)
NVLINK_WATCH_ACTION = (
    "Watch the link's replay/recovery counters; if they keep rising or the link drops (XID 74), drain "
    "the GPU's jobs and reset it to retrain the link"
)
ZOMBIE_ACTION = (
    "Free the memory before scheduling onto this GPU: stop the holder (list_gpu_processes names it); "
    "if the memory stays held, drain the GPU and reset it (nvidia-smi -r -i <gpu>)"
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
class Zombie:
    """A listed GPU process whose owner is gone or defunct (the process tool's judgement)."""

    pid: int
    memory_mib: int | None
    reason: str


@dataclass(frozen=True)
class Reason:
    """One component's finding for a GPU: severity, message, evidence, action."""

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
    pcie: pcie_rules.PcieState | None = None
    process_count: int | None = None
    process_memory_mib: int | None = None  # None when a listed process has no memory figure
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None  # read with the process list (nvmlMemory_v2 "used")
    process_list_complete: bool | None = None  # both NVML lists read and their emptiness proven
    process_list_reason: str | None = None  # why the list is not known to be complete
    zombies: list[Zombie] = field(default_factory=list)
    failed_checks: dict[str, str] = field(default_factory=dict)  # component -> why it could not run
    unreadable: dict[str, str] = field(default_factory=dict)
    mig: tuple[Reason, ...] = ()  # diagnose/mig.py's reasons for this GPU
    fabric: tuple[Reason, ...] = ()  # diagnose/fabric.py's reasons for this GPU


@dataclass(frozen=True)
class Assessment:
    """A GPU's health: status, score, summary, reasons and next step, and what was not verified."""

    index: int
    status: Status
    score: int
    summary: str
    reasons: list[Reason]
    action: str
    unverified: dict[str, str] = field(default_factory=dict)  # component -> why it could not be checked


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
    ev = {"causes": th.causes, "category": th.category, "expected": th.expected}
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
    if th.expected:  # power capping at the limit under load, an idle artifact, a clock setting
        return [Reason("throttling", "info", th.explanation, ev)]
    if {"reliability", "board_limit"} & set(th.causes):
        return [Reason("throttling", "warning", th.explanation, ev,
                       "Compare the clocks with the board's maximum under a known load; if they stay low, "
                       "run NVIDIA field diagnostics")]  # fmt: skip
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
        action = {"degraded": NVLINK_ACTION, "warning": NVLINK_WATCH_ACTION}.get(sev)
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


def pcie(i: HealthInputs) -> list[Reason]:
    if i.pcie is None:
        return []
    return [Reason("pcie", f.severity, f.message, f.evidence, f.action) for f in pcie_rules.judge(i.pcie)]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}es" if word.endswith("s") else f"{n} {word}s"


def processes(i: HealthInputs) -> list[Reason]:
    """Zombies (a listed pid that is gone or defunct) and memory no listed process accounts for.

    A zombie is proof by itself. Unaccounted memory is claimed only when the list is proven complete:
    an empty list can also mean the driver or a mock did not report the processes, and then the
    memory is unknown, not orphaned."""
    out = []
    ev = {
        "count": i.process_count,
        "memory_used_mib": i.process_memory_mib,
        "gpu_memory_used_mib": i.memory_used_mib,
        "memory_total_mib": i.memory_total_mib,
        "list_complete": i.process_list_complete,
    }
    if i.zombies:
        held = sum(z.memory_mib or 0 for z in i.zombies)
        pids = ", ".join(str(z.pid) for z in i.zombies)
        out.append(Reason("processes", "warning", f"{held} MiB held by {_plural(len(i.zombies), 'zombie process')} "
                          f"(pid {pids}): {'; '.join(z.reason for z in i.zombies)}",
                          {**ev, "zombies": [vars(z) for z in i.zombies]}, ZOMBIE_ACTION))  # fmt: skip
    orphan, unproven = _orphan_mib(i)
    if orphan is not None and orphan >= _orphan_floor(i):
        out.append(Reason("processes", "warning", f"{orphan} MiB of GPU memory in use that no listed process "
                          f"accounts for ({i.memory_used_mib} MiB used, {i.process_memory_mib} MiB held by "
                          f"{_plural(i.process_count or 0, 'process')}): the next job can run out of memory",
                          {**ev, "unaccounted_mib": orphan}, ZOMBIE_ACTION))  # fmt: skip
    elif unproven and (i.memory_used_mib or 0) >= _orphan_floor(i):
        out.append(Reason("processes", "info", f"{i.memory_used_mib} MiB in use; whether a process holds it is "
                          f"unknown: {unproven}", ev))  # fmt: skip
    if i.process_count and not out:
        mem = f" using {i.process_memory_mib} MiB" if i.process_memory_mib is not None else ""
        out.append(Reason("processes", "info",
                          f"{_plural(i.process_count, 'process')}{mem}: a reset or drain interrupts them", ev))  # fmt: skip
    return out


def _orphan_floor(i: HealthInputs) -> int:
    total = i.memory_total_mib or 0
    return max(ORPHAN_MIN_MIB, int(total * ORPHAN_MIN_SHARE))


def _orphan_mib(i: HealthInputs) -> tuple[int | None, str | None]:
    """(MiB no listed process accounts for, None) or (None, why that cannot be said)."""
    if not i.process_list_complete:
        return None, i.process_list_reason or "the process list could not be read"
    if not i.process_count:  # NVML answers an empty list also when it cannot list (mock NVML, some VMs)
        return None, "NVML lists no process, which can also mean it could not list them"
    if i.memory_used_mib is None or i.process_memory_mib is None:
        return None, "a process or the GPU's memory use has no figure"
    return max(0, i.memory_used_mib - i.process_memory_mib), None  # zombies are listed: counted


def checks(i: HealthInputs) -> list[Reason]:
    """A check that could not run (the XID analysis crashed, link counters unreadable) is unknown:
    it never counts as passed."""
    return [
        Reason(
            component,
            "unknown",
            f"{component} check did not run: {why}",
            {"check": component, "why": why},
            "Re-run the check; until it passes this GPU is not verified",
        )  # fmt: skip
        for component, why in i.failed_checks.items()
    ]


def mig(i: HealthInputs) -> list[Reason]:
    """MIG mode and per-instance reasons, judged in diagnose/mig.py."""
    return list(i.mig)


def fabric(i: HealthInputs) -> list[Reason]:
    """NVLink fabric reasons (registration, health, SXids), judged in diagnose/fabric.py."""
    return list(i.fabric)


COMPONENTS = (thermal, power, throttle, memory, xids, nvlink, pcie, processes, mig, fabric, checks)


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
    reasons = [_filled(r, i.index) for component in COMPONENTS for r in component(i)]
    reasons.sort(key=lambda r: -SEVERITY_RANK[r.severity])
    worst: dict[str, int] = {}
    for r in reasons:
        worst[r.component] = max(worst.get(r.component, 0), PENALTY[r.severity])
    score = max(0, 100 - sum(worst.values()))
    status: Status = max(
        (SEVERITY_STATUS[r.severity] for r in reasons), key=STATUS_RANK.__getitem__, default="healthy"
    )
    unverified = {r.component: r.message for r in reasons if r.severity == "unknown"}
    action = next((r.action for r in reasons if r.action and r.severity not in ("info", "unknown")), None)
    if action is None and status == "unknown":
        action = "Verify what could not be read (see the unknown reasons) before trusting this GPU"
    lead = next((r.message for r in reasons if r.severity != "info"), "all checks passed")
    tail = ""
    if unverified and status != "unknown":
        tail = f" (not verified: {', '.join(sorted(unverified))})"
    return Assessment(
        i.index,
        status,
        score,
        f"GPU {i.index}: {status} ({score}/100): {lead}{tail}",
        reasons,
        action or "No action.",
        unverified,
    )


def _filled(r: Reason, index: int) -> Reason:
    """Actions name the GPU they are about: ``<gpu>`` in an action becomes the index."""
    if r.action and "<gpu>" in r.action:
        return Reason(r.component, r.severity, r.message, r.evidence, r.action.replace("<gpu>", str(index)))
    return r
