"""The NVLink fabric verdict, pure: per GPU reasons, and whether the node can run multi-GPU jobs.

On NVSwitch systems (HGX, NVL) GPUs reach each other only through NVSwitches that Fabric Manager
trains. Until a GPU's fabric state is ``completed`` with status Success, CUDA on that GPU answers
cudaErrorSystemNotReady and no NCCL job spans it, however healthy the GPU is. A fatal NVSwitch SXid
takes the fabric down for the GPUs behind that switch. A GPU whose NVML has no fabric (PCIe cards,
pre-Hopper GPUs) is not an error: NotSupported is by design.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from k8s_gpu_mcp.diagnose.health import SEVERITY_RANK, Reason, Severity
from k8s_gpu_mcp.gpu.fabric import FabricInfo
from k8s_gpu_mcp.vocabulary import SEVERITY_STATUS, STATUS_RANK, Status

FM_ACTION = "Check and restart nvidia-fabricmanager (systemctl status nvidia-fabricmanager, /var/log/fabricmanager.log)"
TRAINING_ACTION = "Wait for Fabric Manager's training (after boot or a GPU reset), then check again"
FAILED_ACTION = (
    "Drain the node; restart Fabric Manager and reset the GPUs (or reboot the node) so the fabric retrains; "
    "if registration fails again, collect nvidia-bug-report.sh and contact NVIDIA support"
)
ROUTE_ACTION = (
    "Drain the GPU's multi-GPU jobs; the fabric reports unhealthy routes: check NVLink and NVSwitch state "
    "(inspect_topology, SXids) and reset the fabric (reboot the node) if it does not recover"
)
SXID_FATAL_ACTION = (
    "Drain the node: a fatal NVSwitch error needs the GPUs and NVSwitches reset (reboot the node); if the "
    "SXid comes back after the reset, collect nvidia-bug-report.sh and contact NVIDIA support"
)
SXID_WATCH_ACTION = (
    "Watch for more SXids on this NVSwitch; a fatal one or a rising count needs the node drained"
)
NO_SWITCH_BUS = "every GPU with NVLinks to an NVSwitch: the switches' PCI bus ids are unknown"
# What the registration assigns (nvml.h, nvmlGpuFabricInfo_t: the status "Must be checked only if state
# returns complete"; the clique and the cluster UUID come with it): no evidence before it completes.
REGISTRATION_READINGS = ("registration_status", "clique_id", "cluster_uuid")
REGISTRATION_PENDING = ("not-started", "in-progress")


@dataclass(frozen=True)
class SwitchError:
    """One NVSwitch SXid from the kernel log."""

    sxid: int
    switch: int
    bus_id: str | None
    fatal: bool | None
    link: int | None
    message: str
    timestamp: datetime | None = None


@dataclass(frozen=True)
class GpuFabric:
    """One GPU's fabric reading with what its NVLinks say about the switches."""

    index: int
    info: FabricInfo
    switch_links: int | None = None  # NVLinks ending at an NVSwitch; None when unknown
    switch_bus_ids: frozenset[str] = frozenset()  # the switches' PCI bus ids, where NVML gave them


@dataclass(frozen=True)
class TiedSxid:
    """An NVSwitch SXid event and the GPUs it was tied to, with how."""

    event: SwitchError
    gpus: tuple[int, ...]
    tied_by: str


@dataclass(frozen=True)
class Verdict:
    """The node's fabric verdict: NVSwitch or not, multi-GPU readiness, per-GPU reasons, SXids."""

    nvswitch_system: bool | None
    multi_gpu_ready: bool | None
    status: Status
    summary: str
    fabric_manager: str
    reasons: tuple[Reason, ...]  # node-level (cliques, unreadable GPUs), most severe first
    per_gpu: dict[int, tuple[Reason, ...]] = field(default_factory=dict)
    sxids: tuple[TiedSxid, ...] = ()


def _names(indexes: Iterable[int]) -> str:
    idx = sorted(set(indexes))
    if len(idx) == 1:
        return f"GPU {idx[0]}"
    return "GPUs " + ", ".join(map(str, idx[:-1])) + f" and {idx[-1]}"


def _evidence(g: GpuFabric) -> dict[str, Any]:
    i = g.info
    health = {k: v for k, v in (i.health or {}).items() if v is not None}
    out = {
        "state": i.state,
        "registration_status": i.status,  # NVML's return for the registration, not the health scale
        "clique_id": i.clique_id,
        "cluster_uuid": i.cluster_uuid,
        "health_summary": i.health_summary,
        "health": health or None,
    }
    return {k: v for k, v in out.items() if v is not None}


def tie_sxids(gpus: list[GpuFabric], sxids: list[SwitchError]) -> list[TiedSxid]:
    """Each SXid with the GPUs it affects: those whose NVLinks end at that switch's PCI bus id; where no
    bus id is known, every GPU with NVLinks to an NVSwitch (HGX boards wire every GPU to every switch)."""
    known = any(g.switch_bus_ids for g in gpus)
    behind_switches = [
        g.index for g in gpus if g.switch_links or (g.switch_links is None and g.info.supported)
    ]
    out = []
    for sx in sxids:
        by_bus = [
            g.index for g in gpus if sx.bus_id and sx.bus_id.lower() in {b.lower() for b in g.switch_bus_ids}
        ]
        if by_bus:
            out.append(TiedSxid(sx, tuple(by_bus), f"NVLinks ending at NVSwitch {sx.bus_id}"))
        elif not known:
            out.append(TiedSxid(sx, tuple(behind_switches), NO_SWITCH_BUS))
        else:
            out.append(TiedSxid(sx, (), f"no GPU lists an NVLink to NVSwitch {sx.bus_id}"))
    return out


def gpu_reasons(g: GpuFabric, sxids: list[TiedSxid] | None = None) -> list[Reason]:
    """A GPU's fabric reasons (component ``fabric``), most severe first."""
    i, ev = g.info, _evidence(g)
    out: list[Reason] = []
    if i.supported is None:
        why = i.unavailable.get("fabric", "not read")
        out.append(Reason("fabric", "unknown", f"fabric state unreadable: {why}", {"why": why},
                          "Read the Fabric section of nvidia-smi -q on the host"))  # fmt: skip
    elif i.supported is False:
        if g.switch_links:
            out.append(Reason("fabric", "info", "NVML reports no fabric state for this GPU generation "
                              "(GpuFabricInfo is Hopper and later); the NVLinks to the NVSwitches are the evidence",
                              {"switch_links": g.switch_links}))  # fmt: skip
    elif i.state == "not-started":
        out.append(Reason("fabric", "critical", f"fabric not-started{_status(i)}: Fabric Manager has not registered "
                          "this GPU; CUDA cannot use it", ev, FM_ACTION))  # fmt: skip
    elif i.state == "in-progress":
        out.append(Reason("fabric", "degraded", f"fabric in-progress{_status(i)}: still training; CUDA cannot use "
                          "the GPU until it completes", ev, TRAINING_ACTION))  # fmt: skip
    elif i.state != "completed":
        out.append(Reason("fabric", "unknown", f"fabric state {i.state}", ev))
    elif i.status != "Success":
        out.append(Reason("fabric", "critical", f"fabric registration failed: state completed, status {i.status}",
                          ev, FAILED_ACTION))  # fmt: skip
    else:
        out += _health(i.health or {}, i.health_summary, ev)
    for tied in sxids or []:
        sx = tied.event
        sev: Severity = "critical" if sx.fatal else "warning"
        kind = "fatal" if sx.fatal else "non-fatal" if sx.fatal is False else "severity unknown"
        link = f", switch link {sx.link}" if sx.link is not None else ""
        out.append(Reason("fabric", sev, f"NVSwitch {sx.switch} SXid {sx.sxid} ({kind}{link}): {sx.message}",
                          {"sxid": sx.sxid, "switch": sx.switch, "switch_bus_id": sx.bus_id, "fatal": sx.fatal,
                           "link": sx.link, "tied_by": tied.tied_by,
                           "timestamp": sx.timestamp.isoformat() if sx.timestamp else None},
                          SXID_FATAL_ACTION if sx.fatal else SXID_WATCH_ACTION))  # fmt: skip
    out.sort(key=lambda r: -SEVERITY_RANK[r.severity])
    return out


def _status(i: FabricInfo) -> str:
    return "" if i.status in (None, "Success") else f" (status {i.status})"


def _label(g: GpuFabric, reasons: tuple[Reason, ...]) -> str:
    """A GPU's blocking fabric problem in a few words, for the node's one-line verdict."""
    i = g.info
    if i.supported and i.state != "completed":
        return f"fabric {i.state}"
    if i.supported and i.status != "Success":
        return f"fabric registration failed ({i.status})"
    worst = next(r for r in reasons if r.severity in ("critical", "degraded"))
    if "sxid" in worst.evidence:
        return f"NVSwitch {worst.evidence['switch']} SXid {worst.evidence['sxid']}"
    return worst.message


def _health(h: dict[str, Any], summary: str | None, ev: dict[str, Any]) -> list[Reason]:
    out = []
    config = h.get("incorrect_configuration")
    if config not in (None, "none"):
        out.append(
            Reason("fabric", "critical", f"fabric configuration incorrect: {config}", ev, FAILED_ACTION)
        )
    if h.get("route_unhealthy") or summary == "unhealthy":
        what = "unhealthy routes" if h.get("route_unhealthy") else "health summary unhealthy"
        out.append(Reason("fabric", "degraded", f"fabric {what}", ev, ROUTE_ACTION))
    flags = [
        k for k in ("degraded_bandwidth", "route_recovery_in_progress", "access_timeout_recovery") if h.get(k)
    ]
    if flags or summary == "limited-capacity":
        words = ", ".join(k.replace("_", " ") for k in flags) or "limited capacity"
        out.append(Reason("fabric", "warning", f"fabric health: {words}", ev, SXID_WATCH_ACTION))
    if h.get("gfm_state") == "disconnected":
        out.append(Reason("fabric", "warning", "the global fabric manager (GFM) is disconnected from this GPU: "
                          "the fabric cannot be reconfigured until it reconnects", ev, FM_ACTION))  # fmt: skip
    return out


def verdict(gpus: list[GpuFabric], sxids: list[SwitchError] | None = None) -> Verdict:
    """The node's fabric verdict: is it an NVSwitch system, can it run multi-GPU jobs, and why not."""
    tied = tie_sxids(gpus, sxids or [])
    per_gpu = {g.index: tuple(gpu_reasons(g, [t for t in tied if g.index in t.gpus])) for g in gpus}
    supported = [g for g in gpus if g.info.supported]
    unreadable = [g.index for g in gpus if g.info.supported is None]
    switch_known = [g.switch_links for g in gpus if g.switch_links is not None]
    if supported or any(switch_known):
        nvswitch: bool | None = True
    elif not unreadable and len(switch_known) == len(gpus):
        nvswitch = False
    else:
        nvswitch = None
    node: list[Reason] = []
    cliques = {(g.info.cluster_uuid, g.info.clique_id) for g in supported if g.info.state == "completed"}
    if len(cliques) > 1:
        node.append(Reason("fabric", "warning", f"the node's GPUs are in {len(cliques)} NVLink cliques: only GPUs of "
                           "one clique reach each other over NVLink", {"cliques": sorted(map(str, cliques))}))  # fmt: skip
    blocking = {i: [r for r in rs if r.severity in ("critical", "degraded")] for i, rs in per_gpu.items()}
    blocking = {i: rs for i, rs in blocking.items() if rs}
    worst = [r for rs in per_gpu.values() for r in rs] + node
    status: Status = max(
        (SEVERITY_STATUS[r.severity] for r in worst), key=STATUS_RANK.__getitem__, default="healthy"
    )
    fm = _fabric_manager(gpus)
    if nvswitch is False:
        return Verdict(False, None, status, "no NVSwitch fabric: the GPUs use direct NVLink or PCIe, fabric checks "
                       "do not apply", fm, tuple(node), per_gpu, tuple(tied))  # fmt: skip
    if blocking:
        by_index = {g.index: g for g in gpus}
        labels: dict[str, list[int]] = {}
        for i in sorted(blocking):
            labels.setdefault(_label(by_index[i], per_gpu[i]), []).append(i)
        why = "; ".join(f"{_names(idx)} {label}" for label, idx in labels.items())
        return Verdict(nvswitch, False, status, f"this node cannot run multi-GPU jobs: {why}", fm, tuple(node),
                       per_gpu, tuple(tied))  # fmt: skip
    if unreadable:
        return Verdict(nvswitch, None, status, f"fabric state of {_names(unreadable)} could not be read: "
                       "multi-GPU readiness unknown", fm, tuple(node), per_gpu, tuple(tied))  # fmt: skip
    if not supported and nvswitch:
        return Verdict(nvswitch, None, status, "NVSwitch system whose NVML reports no fabric state (GpuFabricInfo is "
                       "Hopper and later): judge the fabric by the NVLink states (inspect_topology)", fm,
                       tuple(node), per_gpu, tuple(tied))  # fmt: skip
    if not supported:
        return Verdict(nvswitch, None, status, "NVML reports no fabric for these GPUs and their NVLinks are unknown: "
                       "whether they share an NVSwitch fabric cannot be told", fm, tuple(node), per_gpu,
                       tuple(tied))  # fmt: skip
    summary = f"fabric completed on {_names(g.index for g in supported)}"
    if len(cliques) == 1:
        cluster, clique = next(iter(cliques))
        summary += f" (clique {clique}, cluster {cluster})"
    return Verdict(nvswitch, True, status, summary, fm, tuple(node), per_gpu, tuple(tied))


def _fabric_manager(gpus: list[GpuFabric]) -> str:
    """What can be said about Fabric Manager: the GFM state where the health mask carries it, else what the
    registration states imply (Fabric Manager itself is not queried)."""
    gfm = {g.index: (g.info.health or {}).get("gfm_state") for g in gpus if g.info.supported}
    if any(v == "disconnected" for v in gfm.values()):
        return f"global fabric manager disconnected on {_names(i for i, v in gfm.items() if v == 'disconnected')}"
    if gfm and all(v == "connected" for v in gfm.values()):
        return "global fabric manager connected on every GPU"
    states = {g.index: g.info.state for g in gpus if g.info.supported}
    if not states:
        return "not applicable or not readable: NVML reports no fabric on this node"
    pending = [i for i, s in states.items() if s != "completed"]
    if pending:
        return f"has not registered {_names(pending)} (NVML reports no GFM state): is nvidia-fabricmanager running?"
    return "registered every GPU (state completed; NVML reports no GFM state)"
