"""inspect_topology: NVLinks per GPU, the topo -m matrix, P2P status, CPU/NUMA affinity, findings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.diagnose import topology as topo
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.links import links_unknown, read_affinity, read_nvlinks, read_pairs
from k8s_gpu_mcp.gpu.nvml_constants import P2P_STATUS
from k8s_gpu_mcp.gpu.readings import NvLinkReading
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuName,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    fold_unavailable,
    full_only,
    judge_gpu,
    node_answer,
    ranges,
    select_gpus,
    source,
    split_not_supported,
)
from k8s_gpu_mcp.vocabulary import Detail, DetailLevel, is_by_design

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

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
    unavailable: dict[str, str] = Field(default_factory=dict)


class TopologyResult(NodeAnswer):
    matrix_text: str = Field(description="the GPU-by-GPU matrix rendered like nvidia-smi topo -m")
    findings: list[TopologyFinding] = Field(
        description="what the layout means, with its consequence; the summary lists those no problem "
        "above carries as evidence (notes such as corrected CRC counts, P2P limits of the layout)"
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
    return sorted(out, key=lambda r: -health.SEVERITY_RANK[r.severity])


def short_legend(matrix_text: str, cells: list[list[str]]) -> str:
    """The legend naming only the words the matrix uses (the summary's; full keeps nvidia-smi's whole one)."""
    used = {"NV#" if c.startswith("NV") else c for row in cells for c in row}
    body, sep, legend = matrix_text.partition("\n\nLegend: ")
    if not sep:
        return matrix_text
    kept = [entry for entry in legend.strip().split("; ") if entry.split(" = ")[0] in used]
    return f"{body}\n\nLegend: {'; '.join(kept)}\n"


def answer(reading: TopologyReading, detail: DetailLevel) -> TopologyResult:
    judged = []
    per_gpu: dict[int, dict[str, str]] = {}
    for g in reading.gpus:
        name = GpuName(index=g.index, uuid=g.uuid, pci_bus_id=g.pci_bus_id)
        status, problem, assessment = judge_gpu(
            name, reasons(reading, g), g.unavailable.get("*") if g.lost else None
        )
        judged.append((name, status, problem, assessment))
        per_gpu[g.index] = g.unavailable if detail == "full" else topology_unavailable(g)
    head = node_answer(
        detail,
        judged,
        fold_unavailable(reading.unavailable, per_gpu, keep_not_supported=detail == "full"),
        "No action: every NVLink is up and error-free, and the layout has no gap.",
    )
    shown = {e.finding for p in head["problems"] for e in p.evidence}
    result = TopologyResult(
        **head,
        matrix_text=reading.matrix_text
        if detail == "full"
        else short_legend(reading.matrix_text, reading.matrix),
        # a finding a problem above already says (message and consequence) is not said twice
        findings=reading.findings
        if detail == "full"
        else [f for f in reading.findings if f"{f.message}: {f.consequence}" not in shown],
        source=reading.source,
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


def _gpu(app: AgentApp, ref: GpuRef, bus_ids: dict[str, int]) -> GpuTopology:
    base = {"index": ref.index, "uuid": ref.uuid, "name": ref.name, "pci_bus_id": ref.bus_id}
    if ref.lost_reason:
        return GpuTopology(**base, lost=True, unavailable={"*": ref.lost_reason})
    try:
        unknown = links_unknown(app.backend.adapter, ref)
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


def inspect(app: AgentApp, refs: list[GpuRef]) -> TopologyReading:
    """Read and interpret the topology of ``refs`` (shared with get_gpu_health)."""
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

    return TopologyReading(
        source=source(app),
        gpus=gpus,
        labels=labels,
        matrix=cells,
        matrix_text=topo.render(cells, [g.cpu_affinity for g in gpus], [g.numa_node for g in gpus], labels),
        p2p=P2PMatrix(**{cap: names(pairs.p2p[cap]) for cap in ("read", "write", "nvlink", "atomics")}),
        findings=[TopologyFinding(**vars(f)) for f in found],
        unavailable=pairs.unavailable,
    )


def register(app: AgentApp) -> None:
    def inspect_topology(gpus: GpuSelector = None, detail: Detail = "summary") -> TopologyResult:
        """Map how the node's GPUs connect: every NVLink per GPU (state, version, remote GPU or NVSwitch,
        capabilities, replay/recovery/CRC error counters), the GPU-by-GPU matrix in `nvidia-smi topo -m`
        words (X, NV#, PIX, PXB, PHB, NODE, SYS) also as text, the P2P read/write/NVLink/atomics status
        per pair, CPU and NUMA affinity, and findings with their consequence: inactive links, GPUs or
        pairs with fewer links than their peers, links that replay or recover, P2P gaps. The summary
        (default) gives the node's status and action, the topo -m matrix as text, the findings, and
        each GPU whose links are not healthy with the evidence; detail="full" adds every link of every
        GPU, the matrix as data and the P2P status per pair."""
        return answer(inspect(app, select_gpus(app, gpus)), detail)

    app.add_tool(inspect_topology, title="GPU topology (NVLink, P2P, topo -m)", annotations=READ_ONLY)
