"""get_gpu_health: one call per node; per GPU a status, a score and the reasons, plus the node's action."""

import logging
from typing import TYPE_CHECKING, Annotated, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from k8s_gpu_mcp.diagnose import health, node, pcie
from k8s_gpu_mcp.diagnose import mig as mig_rules
from k8s_gpu_mcp.diagnose.throttle import Throttling
from k8s_gpu_mcp.diagnose.topology import Finding
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.mig import read_mig
from k8s_gpu_mcp.gpu.processes import MIB, read_gpu_processes
from k8s_gpu_mcp.gpu.usage import read_usage
from k8s_gpu_mcp.k8s.pods import PodLookup
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools import ecc as ecc_tool
from k8s_gpu_mcp.tools import processes as processes_tool
from k8s_gpu_mcp.tools import topology as topology_tool
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuName,
    GpuProblem,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    evidence,
    fold_unavailable,
    full_only,
    headline,
    node_head,
    select_gpus,
    source,
    split_not_supported,
)
from k8s_gpu_mcp.tools.telemetry import build_telemetry
from k8s_gpu_mcp.vocabulary import SEVERITY_STATUS, Check, Detail, Status
from k8s_gpu_mcp.xid.models import SxidEvent, XidSummary

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"

LINK_FINDINGS = topology_tool.LINK_FINDINGS


log = logging.getLogger(__name__)


class HealthReason(ToolModel):
    component: Check
    severity: Literal["info", "unknown", "warning", "degraded", "critical"]
    message: str = Field(description="what was found, with the numbers")
    evidence: dict[str, Any] = Field(description="the readings behind the message")
    action: str | None = None


class GpuHealth(ToolModel):
    index: int
    uuid: str | None
    name: str | None
    pci_bus_id: str | None
    status: Status = Field(description="on the one status scale (docs/tools.md)")
    score: int = Field(ge=0, le=100, description="100 minus each component's worst penalty (docs/health.md)")
    summary: str
    reasons: list[HealthReason] = Field(description="most severe first")
    action: str
    unavailable: dict[str, str] = Field(default_factory=dict)


class FabricVerdict(ToolModel):
    """Whether the node can run multi-GPU jobs over its NVSwitch fabric (inspect_topology has the detail)."""

    multi_gpu_ready: bool | None = Field(description="false: it cannot, the summary says why; null: unknown")
    status: Status
    summary: str
    fabric_manager: str


class HealthResult(NodeAnswer):
    since: str = Field(description="window for recent XIDs")
    fabric: FabricVerdict | None = Field(
        None,
        description="NVSwitch systems: can the node run multi-GPU jobs, and why not (the summary has it only "
        "when multi-GPU jobs cannot run or the fabric has a finding)",
    )
    notes: list[str] = Field(default_factory=list)
    not_supported: NotSupported | None = full_only("fields this GPU model never has")
    gpus: list[GpuHealth] | None = full_only("every GPU's status, score and reasons with their evidence")
    source: Source


def problem(g: GpuHealth) -> GpuProblem:
    """A GPU that is not healthy, as the summary shows it: its lead reason and the evidence behind it."""
    shown = [r for r in g.reasons if r.severity != "info"] or g.reasons
    return GpuProblem(
        index=g.index,
        uuid=g.uuid,
        pci_bus_id=g.pci_bus_id,
        status=g.status,
        reason=headline(shown[0].message) if shown else g.summary,
        evidence=[
            evidence(r.component, SEVERITY_STATUS[r.severity], r.message, r.evidence, g.index) for r in shown
        ],
        action=g.action,
    )


def recent_xids(
    app: "AgentApp", since: str
) -> tuple[list[health.XidFinding], list[str], dict[str, str], list[SxidEvent]]:
    """Recent XIDs per GPU from the XID analysis (kernel log + NVML events): findings, notes, unavailable,
    and the NVSwitch SXids."""
    from k8s_gpu_mcp.tools.xid import collect_xids

    try:  # a ToolError (such as a bad `since`) is the caller's to see; a crash only costs the XID part
        data, _ = collect_xids(app, since=since)
    except ToolError:
        raise
    except Exception as exc:
        log.warning("XID analysis crashed during get_gpu_health", exc_info=exc)
        return [], [], {"xids": f"XID analysis failed: {exc!r}"}, []
    findings = [xid_finding(s) for s in data.xids]
    unavailable = {f"xids.{k}": v for k, v in data.unavailable.items()}
    notes = [f"XID analysis: {n}" for n in data.notes]
    return findings, notes, unavailable, list(data.sxids)


def xid_finding(summary: XidSummary) -> health.XidFinding:
    """One XID analysis summary row (per XID and GPU) as a health input."""
    return health.XidFinding(
        code=summary.xid,
        gpu_index=summary.index,
        severity=summary.catalog_severity,
        action=summary.sre_action,
        name=summary.name or "",
        count=summary.count,
        last_seen=summary.last_seen.replace(microsecond=0)
        if summary.last_seen
        else None,  # said to the second
    )


def _pcie(app: "AgentApp", ref: GpuRef, utilization: int | None) -> tuple[pcie.PcieState, dict[str, str]]:
    p = app.backend.adapter.pcie(ref)
    now = (p.replay_at, p.replay_counter) if p.replay_counter is not None else None
    state = pcie.PcieState(
        curr_gen=p.link_gen,
        max_gen=p.max_link_gen,
        curr_width=p.link_width,
        max_width=p.max_link_width,
        replay=p.replay_counter,
        replay_rate_per_min=pcie.replay_rate(p.replay_previous, now) if now else None,
        busy=utilization > 0 if utilization is not None else None,
        unreadable=p.unavailable,
    )
    return state, {f"pcie.{k}": v for k, v in p.unavailable.items()}


# get_gpu_health does not ask the Kubernetes API (a health check must answer fast on a failing node):
# zombies are judged from /proc (or the profile), pod existence is list_gpu_processes' part.
NO_PODS = PodLookup(None, "get_gpu_health does not look pods up; list_gpu_processes does")


def _processes(app: "AgentApp", ref: GpuRef) -> dict[str, Any]:
    """The same reading list_gpu_processes makes: the lists, memory, and who is a zombie."""
    reading = read_gpu_processes(app.backend.adapter, ref)
    listed = reading.processes
    zombies = []
    for p in listed or []:
        info, problem = processes_tool.proc_info(app, ref, p.pid, {}, None)
        judged = processes_tool.enrich(p, info, problem, NO_PODS)
        if judged.zombie:
            zombies.append(health.Zombie(p.pid, judged.used_memory_mib, "; ".join(judged.zombie_reasons)))
    used = [p.used_memory for p in listed or []]
    known = [u for u in used if u is not None]
    return {
        "count": len({p.pid for p in listed}) if listed is not None else None,
        "memory_mib": sum(known) // MIB if listed is not None and len(known) == len(used) else None,
        "used_mib": reading.memory_used // MIB if reading.memory_used is not None else None,
        # Unaccounted memory is computed only where list_gpu_processes computes it (not under MIG,
        # not while memory use changed during the read, ...); diagnose adds the empty-list rule.
        "complete": listed is not None and reading.orphan_memory is not None,
        "reason": next(
            (
                reading.unavailable[k]
                for k in ("compute_processes", "graphics_processes", "orphan_memory_mib")
                if k in reading.unavailable
            ),
            None,
        ),  # fmt: skip
        "zombies": zombies,
        "unavailable": {f"processes.{k}": v for k, v in reading.unavailable.items()},
    }


def _inputs(
    app: "AgentApp",
    ref: GpuRef,
    xids: list[health.XidFinding],
    links: list[Finding],
    failed: dict[str, str],
    fabric: tuple[health.Reason, ...] = (),
) -> tuple[health.HealthInputs, dict[str, str]]:
    adapter = app.backend.adapter
    mig_state = read_mig(adapter, ref)
    t = adapter.telemetry(ref)
    tele = build_telemetry(ref.index, ref.uuid, ref.name, t)
    usage = read_usage(adapter, ref)
    procs = _processes(app, ref)
    link, pcie_unavailable = _pcie(app, ref, t.utilization_gpu_percent)
    if procs["count"] is None:  # the zombie and unaccounted-memory checks could not run
        failed = {**failed, "processes": f"process list unreadable: {procs['reason']}"}
    ecc_gpu, ecc = ecc_tool.snapshot(app, ref)
    if ecc is None:
        raise GpuLost(ecc_gpu.unavailable.get("*", "nvmlDeviceGetEccMode"))
    unavailable = {
        **t.unavailable,
        **usage.unavailable,
        **pcie_unavailable,
        **procs["unavailable"],
        **{f"ecc.{k}": v for k, v in ecc_gpu.unavailable.items()},
        **{f"mig.{k}": v for k, v in mig_state.unavailable.items() if k != "mig_mode"},
    }
    th = tele.throttling
    inputs = health.HealthInputs(
        index=ref.index,
        temperature_c=t.temperature_c,
        slowdown_c=t.slowdown_c,
        shutdown_c=t.shutdown_c,
        max_operating_c=t.max_operating_c,
        power_draw_w=t.power_draw_w,
        power_limit_w=t.power_limit_w,
        power_default_limit_w=usage.power_default_limit_w,
        throttling=Throttling(th.active, th.causes, th.category, th.explanation, th.expected),
        ecc=ecc,
        xids=xids,
        nvlink=links,
        pcie=link,
        process_count=procs["count"],
        process_memory_mib=procs["memory_mib"],
        memory_total_mib=t.memory_total_mib,
        memory_used_mib=procs["used_mib"],
        process_list_complete=procs["complete"],
        process_list_reason=procs["reason"],
        zombies=procs["zombies"],
        failed_checks=failed,
        unreadable=unavailable,
        mig=tuple(mig_rules.reasons(mig_state)),
        fabric=fabric,
    )
    return inputs, unavailable


def failed_checks(xid_unavailable: dict[str, str], topo: dict[str, str]) -> dict[str, str]:
    """Sub-checks that could not run for a GPU: the XID analysis, the NVLink error counters."""
    out = {}
    if "xids" in xid_unavailable:
        out["xid"] = xid_unavailable["xids"]
    out.update(topology_tool.nvlink_unchecked(topo))
    return out


def _gpu(
    app: "AgentApp",
    ref: GpuRef,
    xids: list[health.XidFinding],
    topo: topology_tool.TopologyReading,
    xid_unavailable: dict[str, str],
) -> tuple[GpuHealth, health.Assessment]:
    base = {"index": ref.index, "uuid": ref.uuid, "name": ref.name, "pci_bus_id": ref.bus_id}
    mine = next((g for g in topo.gpus if g.index == ref.index), None)
    links = [
        Finding(**f.model_dump()) for f in topo.findings if ref.index in f.gpus and f.kind in LINK_FINDINGS
    ]
    topo_unavailable = topology_tool.topology_unavailable(mine) if mine is not None else {}
    failed = failed_checks(xid_unavailable, topo_unavailable)
    unavailable: dict[str, str] = {}
    lost = ref.lost_reason or (mine.unavailable.get("*") if mine is not None and mine.lost else None)
    if not lost:
        try:
            verdict = topo._fabric_verdict
            fabric = verdict.per_gpu.get(ref.index, ()) if verdict is not None else ()
            inputs, unavailable = _inputs(app, ref, xids, links, failed, fabric)
        except GpuLost as exc:
            lost = str(exc) if str(exc).startswith("GpuIsLost") else f"GpuIsLost: {exc}"
    if lost:
        inputs = health.HealthInputs(index=ref.index, lost_reason=lost, xids=xids)
        unavailable = {"*": lost}
    else:
        unavailable.update(topo_unavailable)
        fab = next((f for f in topo.fabric.gpus if f.index == ref.index), None) if topo.fabric else None
        for key in ("fabric", "health"):  # the call's own reasons (NotSupported: by design)
            if fab is not None and key in fab.unavailable:
                unavailable["fabric" if key == "fabric" else f"fabric.{key}"] = fab.unavailable[key]
    a = health.assess(inputs)
    gpu = GpuHealth(
        **base,
        status=a.status,
        score=a.score,
        summary=a.summary,
        reasons=[HealthReason(**vars(r)) for r in a.reasons],
        action=a.action,
        unavailable=unavailable,
    )
    return gpu, a


def _fabric(topology: topology_tool.TopologyReading, detail: str) -> FabricVerdict | None:
    """The fabric verdict: in full on every NVSwitch system; in the summary only when it finds something."""
    f = topology.fabric
    if f is None or (f.nvswitch_system is not True and f.multi_gpu_ready is not False):
        return None
    if detail != "full" and not topology_tool.fabric_noteworthy(f):
        return None
    return FabricVerdict(
        multi_gpu_ready=f.multi_gpu_ready,
        status=f.status,
        summary=f.summary,
        fabric_manager=f.fabric_manager,
    )


def register(app: "AgentApp") -> None:
    def get_gpu_health(
        gpus: GpuSelector = None,
        since: Annotated[
            str, Field(description='window for recent XIDs: "30m", "24h", "7d" or RFC 3339')
        ] = "24h",
        detail: Detail = "summary",
    ) -> HealthResult:
        """Start here: one health check of the node's GPUs. The node's status and SRE action first (e.g.
        drain and reset GPU 3, or cordon and RMA), then each GPU that is not healthy with its reason and
        the evidence: temperature against NVML's own thresholds, power against the limit, throttling,
        ECC / row remapping / retired pages, recent XIDs, NVLink state and errors, PCIe link
        width/generation and replays, running processes (zombies, memory no process accounts for), MIG
        devices (per-instance ECC), and on NVSwitch systems the fabric: Fabric Manager registration per
        GPU, NVSwitch SXids, and whether the node can run multi-GPU jobs (`fabric`).
        Ends with the counts and the checks that could not be made (never assumed fine).
        detail="full" adds every GPU's 0-100 score and all its reasons."""
        refs = select_gpus(app, gpus)
        xids, notes, unavailable, sxids = recent_xids(app, since)
        topology = topology_tool.inspect(app, app.backend.adapter.gpus(), sxids, unavailable.get("xids"))
        unavailable.update({f"topology.{k}": v for k, v in topology.unavailable.items()})
        judged = [
            _gpu(app, ref, [x for x in xids if x.gpu_index == ref.index], topology, unavailable)
            for ref in refs
        ]
        items = [gpu for gpu, _ in judged]
        action = node.verdict([a for _, a in judged]).action
        stray = [x for x in xids if x.gpu_index is None]
        if stray:
            notes.append("XIDs on no GPU NVML lists: " + ", ".join(f"XID {x.code} x{x.count}" for x in stray))
        statuses: list[tuple[GpuName, Status]] = [
            (GpuName(index=g.index, uuid=g.uuid, pci_bus_id=g.pci_bus_id), g.status) for g in items
        ]
        head = node_head(
            detail,
            statuses,
            [problem(g) for g in items if g.status != "healthy"],
            action,
            fold_unavailable(
                unavailable, {g.index: g.unavailable for g in items}, keep_not_supported=detail == "full"
            ),
        )
        if detail != "full":  # the same evidence inspect_topology's summary leaves to full
            head["problems"] = topology_tool.summary_problems(head["problems"], topology)
        result = HealthResult(
            **head, since=since, notes=notes, fabric=_fabric(topology, detail), source=source(app)
        )
        if detail == "full":
            result.gpus = items
            result.not_supported = split_not_supported(result)
        return result

    app.add_tool(get_gpu_health, title="GPU health (node verdict and action)", annotations=READ_ONLY)
