"""inspect_topology: NVLinks per GPU, the topo -m matrix, P2P status, CPU/NUMA affinity, findings."""

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, PrivateAttr

from k8s_gpu_mcp.diagnose import fabric as fabric_rules
from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.diagnose import topology as topo
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.fabric import FabricInfo, read_fabric
from k8s_gpu_mcp.gpu.links import links_unknown, read_affinity, read_nvlinks, read_pairs
from k8s_gpu_mcp.gpu.mig import read_mig
from k8s_gpu_mcp.gpu.nvml_constants import P2P_STATUS
from k8s_gpu_mcp.gpu.pci import kernel_bus_id
from k8s_gpu_mcp.gpu.readings import NvLinkReading
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuProblem,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    fold_unavailable,
    full_only,
    judge_each,
    node_answer,
    ranges,
    select_gpus,
    source,
    split_not_supported,
)
from k8s_gpu_mcp.vocabulary import Detail, DetailLevel, Status, is_by_design

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp
    from k8s_gpu_mcp.xid.models import SxidEvent

log = logging.getLogger(__name__)
# nvidia-smi nvlink -s on a GPU in MIG mode (the capture nvlink-s_h100-sxm5-80gb-mig-unsupported)
MIG_NVLINKS = "unknown in MIG mode: NVLink queries are not supported for devices in MIG mode"

TOOLSET = "core"


class NvLink(ToolModel):
    link: int
    state: Literal["up", "down"] | None = Field(description="null when NVML could not read the state")
    version: int | None = Field(description="NVML_NVLINK_VERSION_* (4 = NVLink 3.0, 6 = 4.0, 7 = 5.0)")
    remote_type: Literal["gpu", "switch", "ibmnpu", "unknown"] | None
    remote_bus_id: str | None = None
    remote_gpu: int | None = Field(
        None, description="index of the GPU at the other end, matched by PCI bus id"
    )
    capabilities: dict[str, bool] | None = Field(description="nvmlDeviceGetNvLinkCapability flags")
    errors: dict[str, int | None] = Field(
        description="replay, recovery, crc_flit, crc_data; null = unreadable"
    )
    unavailable: dict[str, str] = Field(default_factory=dict)


class GpuTopology(ToolModel):
    index: int
    uuid: str | None
    name: str | None
    pci_bus_id: str | None
    lost: bool = False
    numa_node: int | None = None
    cpu_affinity: str | None = Field(None, description="CPUs close to the GPU, e.g. 48-63,176-191")
    nvlinks: list[NvLink] = Field(default_factory=list, description="every link NVML reports")
    active_links: int = 0
    unavailable: dict[str, str] = Field(default_factory=dict)


class P2PMatrix(ToolModel):
    read: list[list[str | None]]
    write: list[list[str | None]]
    nvlink: list[list[str | None]]
    atomics: list[list[str | None]]


class TopologyFinding(ToolModel):
    kind: str
    severity: Literal["info", "warning", "degraded"]
    gpus: list[int]
    links: list[int] = Field(default_factory=list)
    message: str
    consequence: str


class FabricGpu(ToolModel):
    index: int
    supported: bool | None = Field(
        description="false: NVML has no fabric for this GPU (PCIe cards, pre-Hopper), by design; null: unreadable"
    )
    state: str | None = Field(description="not-supported, not-started, in-progress or completed")
    registration_status: str | None = Field(
        description="the registration's NVML status: Success or the error"
    )
    clique_id: int | None = None
    cluster_uuid: str | None = Field(None, description="the NVLink domain's cluster UUID")
    health_summary: str | None = Field(
        None, description="healthy, unhealthy or limited-capacity (NVML v3 struct)"
    )
    health: dict[str, Any] | None = Field(
        None, description="health-mask flags: degraded bandwidth, route recovery/unhealthy, GFM state, ..."
    )
    switch_links: int | None = Field(None, description="NVLinks ending at an NVSwitch; null when unknown")
    problems: list[str] = Field(default_factory=list, description="what is wrong, one line each")
    unavailable: dict[str, str] = Field(default_factory=dict)


class FabricSxid(ToolModel):
    sxid: int
    switch: int
    switch_bus_id: str | None
    fatal: bool | None
    link: int | None = Field(description="the switch's port (link), not a GPU link")
    message: str
    timestamp: datetime | None
    gpus: list[int] = Field(description="the GPUs it affects")
    tied_by: str = Field(description="how it was tied to them")


class Fabric(ToolModel):
    """The NVLink fabric (NVSwitch systems): per GPU registration, SXids, and the node's verdict."""

    nvswitch_system: bool | None = Field(description="the GPUs reach each other through NVSwitches")
    multi_gpu_ready: bool | None = Field(
        description="false: this node cannot run multi-GPU jobs (summary says why); null: not applicable or unknown"
    )
    status: Status = Field(description="on the one status scale")
    summary: str
    fabric_manager: str = Field(description="what NVML says about Fabric Manager (GFM state, registration)")
    # the lists below are left out when empty (an empty list says nothing)
    findings: list[str] = Field(
        default_factory=list, description="node-level findings (cliques)", exclude_if=lambda v: not v
    )
    gpus: list[FabricGpu] = Field(
        default_factory=list,
        description="every GPU's registration (detail=full; a summary has each GPU's fabric problem in problems)",
        exclude_if=lambda v: not v,
    )
    sxid_notes: list[str] = Field(
        default_factory=list,
        description="where the SXids were read from and how far back (the XID analysis)",
        exclude_if=lambda v: not v,
    )
    sxids: list[FabricSxid] = Field(
        default_factory=list,
        description="NVSwitch SXids with the GPUs they affect",
        exclude_if=lambda v: not v,
    )
    unavailable: dict[str, str] = Field(default_factory=dict, exclude_if=lambda v: not v)


class TopologyReading(ToolModel):
    """Everything read and found, before it is shaped into an answer (shared with get_gpu_health)."""

    source: Source
    gpus: list[GpuTopology]
    labels: list[str] = Field(description="matrix row/column labels, GPU<index>")
    matrix: list[list[str]] = Field(
        description="nvidia-smi topo -m words: X, NV#, PIX, PXB, PHB, NODE, SYS, N/A"
    )
    matrix_text: str = Field(description="the matrix rendered like nvidia-smi topo -m")
    p2p: P2PMatrix = Field(
        description="nvmlDeviceGetP2PStatus per ordered pair: OK or why not; null = unreadable"
    )
    findings: list[TopologyFinding]
    fabric: Fabric | None = None
    unavailable: dict[str, str] = Field(default_factory=dict)
    _fabric_verdict: Any = PrivateAttr(None)  # diagnose.fabric.Verdict, for get_gpu_health


class TopologyResult(NodeAnswer):
    matrix_text: str = Field(description="the GPU-by-GPU matrix rendered like nvidia-smi topo -m")
    findings: list[TopologyFinding] = Field(
        description="what the layout means, with its consequence; the summary lists those that are not "
        "info (notes such as corrected CRC counts and P2P limits of the layout are left to detail=full) and "
        "that no problem above carries as evidence"
    )
    fabric: Fabric | None = Field(
        None,
        description="the NVLink fabric: can the node run multi-GPU jobs, and why not (the summary has it only "
        "when jobs cannot run or it has a finding, each GPU's fabric problem being in problems; detail=full "
        "always, with every GPU's registration)",
    )
    labels: list[str] | None = full_only("matrix row/column labels, GPU<index>")
    matrix: list[list[str]] | None = full_only(
        "nvidia-smi topo -m words: X, NV#, PIX, PXB, PHB, NODE, SYS, N/A"
    )
    p2p: P2PMatrix | None = full_only(
        "nvmlDeviceGetP2PStatus per ordered pair: OK or why not; null = unreadable"
    )
    not_supported: NotSupported | None = full_only("fields this GPU model never has")
    gpus: list[GpuTopology] | None = full_only(
        "every NVLink of every GPU: state, version, remote end, capabilities, error counters"
    )
    source: Source


# Topology findings that are about a GPU's own links (P2P limits of the PCIe layout are not health).
LINK_FINDINGS = {
    "inactive_links",
    "unknown_links",
    "link_errors",
    "uneven_links",
    "uneven_pairs",
    "p2p_nvlink_unsupported",
}


def topology_unavailable(gpu: GpuTopology) -> dict[str, str]:
    """A GPU's topology reasons, NVLink ones folded per field group (``nvlink.errors``: reason (links 0-3))."""
    out = {f"topology.{k}": v for k, v in gpu.unavailable.items()}
    folded: dict[tuple[str, str], list[int]] = {}
    for link in gpu.nvlinks:
        for key, why in link.unavailable.items():
            links = folded.setdefault((key.split(".")[0], why), [])
            if link.link not in links:  # one entry per link, not per counter or capability
                links.append(link.link)
    for (group, why), links in folded.items():
        out.setdefault(f"nvlink.{group}", f"{why} (links {ranges(links)})")
    return out


def nvlink_unchecked(unavailable: dict[str, str]) -> dict[str, str]:
    """The NVLink error check, when it could not run: NotSupported is by design (a driver or GPU that
    reports NVLink errors another way), so the check does not exist there; any other failure, NoData
    for a capture without counters too, means it could not run (unknown, never healthy)."""
    why = unavailable.get("nvlink.errors")
    if why is None or is_by_design(why):
        return {}
    return {"nvlink": f"NVLink error counters unreadable: {why}"}


def reasons(reading: TopologyReading, gpu: GpuTopology) -> list[health.Reason]:
    """This GPU's findings as reasons: NVLink ones through get_gpu_health's own rule (same severity,
    words and action), the others (P2P limits of the layout) as they are; a link check that could not
    run is unknown."""
    mine = [f for f in reading.findings if gpu.index in f.gpus]
    links = [topo.Finding(**f.model_dump()) for f in mine if f.kind in LINK_FINDINGS]
    inputs = health.HealthInputs(
        index=gpu.index, nvlink=links, failed_checks=nvlink_unchecked(topology_unavailable(gpu))
    )
    out = [*health.nvlink(inputs), *health.checks(inputs)]
    out += [
        health.Reason(
            "topology", f.severity, f"{f.message}: {f.consequence}", {"kind": f.kind, "links": f.links}
        )
        for f in mine
        if f.kind not in LINK_FINDINGS
    ]
    verdict = reading._fabric_verdict
    out += list(verdict.per_gpu.get(gpu.index, ())) if verdict is not None else []
    return sorted(out, key=lambda r: -health.SEVERITY_RANK[r.severity])


def short_legend(matrix_text: str, cells: list[list[str]]) -> str:
    """The legend naming only the words the matrix uses (the summary's; full keeps nvidia-smi's whole one)."""
    used = {"NV#" if c.startswith("NV") else c for row in cells for c in row}
    body, sep, legend = matrix_text.partition("\n\nLegend: ")
    if not sep:
        return matrix_text
    kept = [entry for entry in legend.strip().split("; ") if entry.split(" = ")[0] in used]
    return f"{body}\n\nLegend: {'; '.join(kept)}\n"


def restated(reading: TopologyReading) -> set[str]:
    """The findings (as "message: consequence", a reason's words) that only restate a GPU's own link
    findings: thin NVSwitch pairs (diagnose/topology.restates_link_findings)."""
    return {
        f"{f.message}: {f.consequence}"
        for f in reading.findings
        if topo.restates_link_findings(f, reading.findings)
    }


def summary_problems(problems: list[GpuProblem], reading: TopologyReading) -> list[GpuProblem]:
    """The problems as inspect_topology's and get_gpu_health's summaries say them; detail=full keeps
    every reading. Evidence that restates a GPU's own link findings is left out, as long as what is left
    still shows the GPU's status. A GPU whose fabric registration has not completed keeps its state
    (the finding) without the registration's status, clique and cluster UUID, which NVML defines only
    once it completes."""
    said = restated(reading)
    fabric = reading.fabric
    pending = {g.index for g in (fabric.gpus if fabric else [])
               if g.state in fabric_rules.REGISTRATION_PENDING}  # fmt: skip
    out = []
    for p in problems:
        kept = [e for e in p.evidence if e.finding not in said]
        evidence = kept if any(e.status == p.status for e in kept) else p.evidence
        if p.index in pending:
            evidence = [
                e.model_copy(update={"readings": {k: v for k, v in e.readings.items()
                                                  if k not in fabric_rules.REGISTRATION_READINGS}})
                if e.check == "fabric"
                else e
                for e in evidence
            ]  # fmt: skip
        out.append(p.model_copy(update={"evidence": evidence}) if evidence != p.evidence else p)
    return out


def answer(reading: TopologyReading, detail: DetailLevel) -> TopologyResult:
    judged = judge_each(reading.gpus, lambda g: reasons(reading, g))
    per_gpu = {g.index: g.unavailable if detail == "full" else topology_unavailable(g) for g in reading.gpus}
    head = node_answer(
        detail,
        judged,
        fold_unavailable(reading.unavailable, per_gpu, keep_not_supported=detail == "full"),
        "No action: every NVLink is up and error-free, and the layout has no gap.",
        drop_stated_actions=True,  # get_gpu_health keeps them: the sweep and the gateway read them
    )
    findings = reading.findings
    if detail != "full":
        # left out of a summary: info findings (as get_gpu_health's info reasons), thin GPU pairs that
        # follow from a GPU's own link findings, and a finding a problem already says word for word
        head["problems"] = summary_problems(head["problems"], reading)
        shown = {e.finding for p in head["problems"] for e in p.evidence} | restated(reading)
        findings = [
            f for f in findings if f.severity != "info" and f"{f.message}: {f.consequence}" not in shown
        ]
    result = TopologyResult(
        **head,
        matrix_text=reading.matrix_text
        if detail == "full"
        else short_legend(reading.matrix_text, reading.matrix),
        findings=findings,
        fabric=reading.fabric,
        source=reading.source,
    )
    if detail != "full" and reading.fabric is not None:  # the summary: only a fabric with a finding
        noteworthy = fabric_noteworthy(reading.fabric)
        result.fabric = (
            reading.fabric.model_copy(update={"gpus": [], "sxid_notes": []})  # GPU problems are in problems
            if noteworthy
            else None
        )
    if detail == "full":
        result.labels, result.matrix, result.p2p = reading.labels, reading.matrix, reading.p2p
        result.gpus = reading.gpus
        result.not_supported = split_not_supported(result)
    return result


def _link(raw: NvLinkReading) -> NvLink:
    state = raw.state
    return NvLink(
        link=raw.link,
        state=None if state is None else "up" if state else "down",
        version=raw.version,
        remote_type=raw.remote_type,
        remote_bus_id=raw.remote_bus_id,
        remote_gpu=raw.remote_gpu,
        capabilities=raw.capabilities,
        errors=raw.errors,
        unavailable=raw.unavailable,
    )


def _gpu(app: "AgentApp", ref: GpuRef, bus_ids: dict[str, int]) -> GpuTopology:
    base = {"index": ref.index, "uuid": ref.uuid, "name": ref.name, "pci_bus_id": ref.bus_id}
    if ref.lost_reason:
        return GpuTopology(**base, lost=True, unavailable={"*": ref.lost_reason})
    try:
        unknown = links_unknown(app.backend.adapter, ref)
        if unknown and read_mig(app.backend.adapter, ref).enabled:
            unknown = f"{MIG_NVLINKS}: {unknown}"
        links = [] if unknown else [_link(raw) for raw in read_nvlinks(app.backend.adapter, ref, bus_ids)]
        affinity = read_affinity(app.backend.adapter, ref)
        _, why = app.backend.adapter.nvlink_field_count(ref.handle)
    except GpuLost as lost:
        return GpuTopology(**base, lost=True, unavailable={"*": f"GpuIsLost: {lost}"})
    unavailable = dict(affinity.unavailable)
    if unknown:
        unavailable["nvlinks"] = unknown
    elif why:  # read_nvlinks fell back to probing every link index
        unavailable["nvlink_link_count_field"] = f"{why}; links probed by index"
    return GpuTopology(
        **base,
        numa_node=affinity.numa_node,
        cpu_affinity=affinity.cpu_affinity,
        nvlinks=links,
        active_links=sum(1 for link in links if link.state == "up"),
        unavailable=unavailable,
    )


def link_ends(gpu: GpuTopology, positions: dict[int, int]) -> list[topo.LinkEnd]:
    """A GPU's links as the pure topology module sees them (peer as a matrix position)."""
    return [
        topo.LinkEnd(
            link=link.link,
            active=None if link.state is None else link.state == "up",
            peer_gpu=positions.get(link.remote_gpu) if link.remote_gpu is not None else None,
            to_switch=link.remote_type == "switch",
            replay=link.errors.get("replay"),
            recovery=link.errors.get("recovery"),
            crc_flit=link.errors.get("crc_flit"),
            crc_data=link.errors.get("crc_data"),
        )
        for link in gpu.nvlinks
    ]


def fabric_noteworthy(f: Fabric) -> bool:
    """Whether a summary says the fabric: multi-GPU jobs cannot run, or it has a finding (a warning or
    worse). A ready fabric, or one that is unknown only because a GPU is (said per GPU), is left to full."""
    return f.multi_gpu_ready is False or f.status in ("warning", "degraded", "critical")


def _fabric_info(app: "AgentApp", ref: GpuRef) -> FabricInfo:
    if ref.lost_reason:
        return FabricInfo(None, unavailable={"fabric": ref.lost_reason})
    try:
        return read_fabric(app.backend.adapter, ref)
    except GpuLost as lost:
        return FabricInfo(None, unavailable={"fabric": f"GpuIsLost: {lost}"})


def fabric_view(
    app: "AgentApp",
    refs: list[GpuRef],
    gpus: list[GpuTopology],
    sxids: "list[SxidEvent]",
    sxid_why: str | None,
) -> tuple[Fabric, fabric_rules.Verdict]:
    """Each GPU's fabric registration with its switch links, the SXids tied to GPUs, and the verdict."""
    readings = []
    for ref, g in zip(refs, gpus, strict=True):
        links = None if "nvlinks" in g.unavailable else sum(1 for x in g.nvlinks if x.remote_type == "switch")
        buses = frozenset(
            b
            for x in g.nvlinks
            if x.remote_type == "switch" and (b := kernel_bus_id(x.remote_bus_id)) is not None
        )
        readings.append(fabric_rules.GpuFabric(ref.index, _fabric_info(app, ref), links, buses))
    events = [
        fabric_rules.SwitchError(sx.sxid, sx.switch, kernel_bus_id(sx.bus_id), sx.fatal, sx.link, sx.message,
                                 sx.timestamp)
        for sx in sxids
    ]  # fmt: skip
    v = fabric_rules.verdict(readings, events)
    view = Fabric(
        nvswitch_system=v.nvswitch_system,
        multi_gpu_ready=v.multi_gpu_ready,
        status=v.status,
        summary=v.summary,
        fabric_manager=v.fabric_manager,
        findings=[r.message for r in v.reasons],
        gpus=[
            FabricGpu(
                index=r.index,
                supported=r.info.supported,
                state=r.info.state,
                registration_status=r.info.status,
                clique_id=r.info.clique_id,
                cluster_uuid=r.info.cluster_uuid,
                health_summary=r.info.health_summary,
                health=r.info.health,
                switch_links=r.switch_links,
                problems=[x.message for x in v.per_gpu[r.index] if x.severity != "info"],
                unavailable=_fabric_reasons(r),
            )
            for r in readings
        ],
        sxids=[
            FabricSxid(
                sxid=t.event.sxid,
                switch=t.event.switch,
                switch_bus_id=t.event.bus_id,
                fatal=t.event.fatal,
                link=t.event.link,
                message=t.event.message,
                timestamp=t.event.timestamp,
                gpus=list(t.gpus),
                tied_by=t.tied_by,
            )
            for t in v.sxids
        ],  # fmt: skip
        unavailable={"sxids": sxid_why} if sxid_why else {},
    )
    if v.multi_gpu_ready is None:
        view.unavailable["multi_gpu_ready"] = v.summary
    return view, v


def _fabric_reasons(r: fabric_rules.GpuFabric) -> dict[str, str]:
    """Why each null field of a GPU's fabric reading is null."""
    i, out = r.info, dict(r.info.unavailable)
    base = out.get("fabric") or f"the fabric state is {i.state}"
    for key, field in (("supported", "supported"), ("state", "state"), ("registration_status", "status"),
                       ("clique_id", "clique_id"), ("cluster_uuid", "cluster_uuid")):  # fmt: skip
        if getattr(i, field) is None:
            out.setdefault(key, base)
    if i.health is None:
        out.setdefault("health", base)
    if i.health_summary is None:
        out.setdefault(
            "health_summary", base if i.supported is not True else "NOT_SUPPORTED in NVML's fabric info"
        )
    if r.switch_links is None:
        out["switch_links"] = "the GPU's NVLinks are unknown"
    return out


def recent_sxids(app: "AgentApp", since: str = "24h") -> "tuple[list[SxidEvent], str | None, list[str]]":
    """NVSwitch SXids from the XID analysis (kernel log), or why they (or part of the analysis) could not
    be read."""
    from k8s_gpu_mcp.tools.xid import collect_xids

    try:
        data, _ = collect_xids(app, since=since)
    except ToolError:
        raise
    except Exception as exc:
        log.warning("XID analysis crashed while reading SXids", exc_info=exc)
        return [], f"XID analysis failed: {exc!r}", []
    why = "; ".join(f"{k}: {v}" for k, v in sorted(data.unavailable.items()))
    return list(data.sxids), (f"XID analysis: {why}" if why else None), list(data.notes)


def inspect(
    app: "AgentApp",
    refs: list[GpuRef],
    sxids: "list[SxidEvent] | None" = None,
    sxid_why: str | None = None,
) -> TopologyReading:
    """Read and interpret the topology of ``refs`` (shared with get_gpu_health); ``sxids``: the NVSwitch
    SXids already read (None: read the last 24 hours')."""
    all_refs = app.backend.adapter.gpus()
    bus_ids = {r.short_bus_id: r.index for r in all_refs if r.short_bus_id}
    gpus = [_gpu(app, ref, bus_ids) for ref in refs]
    positions = {ref.index: pos for pos, ref in enumerate(refs)}
    ends = [link_ends(g, positions) for g in gpus]
    pairs = read_pairs(app.backend.adapter, refs)
    counts = topo.link_counts(ends)
    cells = topo.build_matrix(pairs.levels, counts)
    labels = [f"GPU{ref.index}" for ref in refs]
    unknown_sets = {g.index: g.unavailable["nvlinks"] for g in gpus if "nvlinks" in g.unavailable}
    found = topo.findings(ends, counts, pairs.p2p, [ref.index for ref in refs], unknown_sets)

    def names(matrix: list[list[int | None]]) -> list[list[str | None]]:
        return [[None if v is None else P2P_STATUS.get(v, str(v)) for v in row] for row in matrix]

    notes: list[str] = []
    if sxids is None:
        sxids, sxid_why, notes = recent_sxids(app)
    fabric, verdict = fabric_view(app, refs, gpus, sxids, sxid_why)
    fabric.sxid_notes = notes
    reading = TopologyReading(
        source=source(app),
        gpus=gpus,
        labels=labels,
        matrix=cells,
        matrix_text=topo.render(cells, [g.cpu_affinity for g in gpus], [g.numa_node for g in gpus], labels),
        p2p=P2PMatrix(**{cap: names(pairs.p2p[cap]) for cap in ("read", "write", "nvlink", "atomics")}),
        findings=[TopologyFinding(**vars(f)) for f in found],
        fabric=fabric,
        unavailable=pairs.unavailable,
    )
    reading._fabric_verdict = verdict
    return reading


def register(app: "AgentApp") -> None:
    def inspect_topology(gpus: GpuSelector = None, detail: Detail = "summary") -> TopologyResult:
        """Map how the node's GPUs connect: every NVLink per GPU (state, version, remote GPU or NVSwitch,
        capabilities, replay/recovery/CRC error counters), the GPU-by-GPU matrix in `nvidia-smi topo -m`
        words (X, NV#, PIX, PXB, PHB, NODE, SYS) also as text, the P2P read/write/NVLink/atomics status
        per pair, CPU and NUMA affinity, and findings with their consequence: inactive links, GPUs or
        pairs with fewer links than their peers, links that replay or recover, P2P gaps. The summary
        (default) gives the node's status and action, the topo -m matrix as text, the findings that
        are not info, and each GPU whose links are not healthy with the evidence (not repeating what the
        node's action or another finding already says); detail="full" adds every link of every
        GPU, the matrix as data and the P2P status per pair. On NVSwitch systems, `fabric`: each GPU's
        Fabric Manager registration (state, status, clique, cluster UUID, health), NVSwitch SXids of the
        last 24 h tied to the GPUs they affect, and whether the node can run multi-GPU jobs, and why not."""
        return answer(inspect(app, select_gpus(app, gpus)), detail)

    app.add_tool(inspect_topology, title="GPU topology (NVLink, P2P, topo -m)", annotations=READ_ONLY)
