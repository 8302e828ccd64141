"""GPU topology, pure: the ``nvidia-smi topo -m`` matrix, its text form and parser, and findings.

Inputs are plain data (NVML common-ancestor levels, per-GPU NVLink ends, P2P status codes), so the
matrix builder is tested directly against real ``topo -m`` captures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from k8s_gpu_mcp.gpu.nvml_constants import P2P_STATUS, TOPOLOGY_INTERNAL, TOPOLOGY_LEVELS

# NVML_TOPOLOGY_* level -> the topo -m word. INTERNAL (two GPUs on one board) is printed as PIX.
LEVEL_WORDS: dict[int, str] = {TOPOLOGY_INTERNAL: "PIX", **{v: k for k, v in TOPOLOGY_LEVELS.items()}}
UNKNOWN = "N/A"
LEGEND = (
    "X = Self; SYS = PCIe + the SMP interconnect between NUMA nodes (QPI/UPI); NODE = PCIe + the "
    "interconnect between host bridges within a NUMA node; PHB = PCIe + a host bridge (the CPU); "
    "PXB = several PCIe bridges, no host bridge; PIX = at most one PCIe bridge; NV# = # bonded NVLinks"
)
NCCL_CONSEQUENCE = "NCCL falls back to PCIe or shared memory; all-reduce slows and can hang"
# What a lost NVLink costs while others remain: that share of the GPU's NVLink bandwidth. NCCL keeps
# using NVLink as long as a path exists; the operational risk is the link flapping again (XID 74).
FLAP_RISK = "the risk is the link flapping again (XID 74) and taking running jobs down with it"


def lost_bandwidth(down: int, total: int, to_switch: bool) -> str:
    """The consequence of ``down`` of ``total`` links inactive, in words an SRE can weigh."""
    share = f"{down / total:.0%}" if total else "some"
    if to_switch:
        return (f"about {share} less NVLink bandwidth for this GPU ({total - down} of {total} links to the "
                f"NVSwitches still up); NCCL stays on NVLink; {FLAP_RISK}")  # fmt: skip
    return (f"{share} of this GPU's direct NVLinks are down: the peers they served get less NVLink bandwidth, "
            f"and a pair left with no NVLink at all goes over PCIe; {FLAP_RISK}")  # fmt: skip


Severity = Literal["info", "warning", "degraded"]


@dataclass(frozen=True)
class LinkEnd:
    """One NVLink as NVML reports it: up or not, and where it goes."""

    link: int
    active: bool | None  # None: state unreadable
    peer_gpu: int | None = None  # index of the GPU at the remote end (direct links)
    to_switch: bool = False
    replay: int | None = None
    recovery: int | None = None
    crc_flit: int | None = None
    crc_data: int | None = None


@dataclass(frozen=True)
class Finding:
    """A topology finding: its kind, severity, GPUs and links, and what it costs."""

    kind: str
    severity: Severity
    gpus: list[int]
    message: str
    consequence: str
    links: list[int] = field(default_factory=list)


def level_word(level: int | None) -> str:
    if level is None:
        return UNKNOWN
    return LEVEL_WORDS.get(level, f"L{level}")


def link_counts(links: list[list[LinkEnd]]) -> list[list[int]]:
    """Active NVLinks between each GPU pair, from each row GPU's own links.

    Direct links count toward their peer. Links to NVSwitches join every GPU that also reaches a
    switch: the pair gets the smaller of the two GPUs' switch-link counts (HGX H100: 18 -> NV18).
    """
    n = len(links)
    switch = [sum(1 for e in ends if e.active and e.to_switch) for ends in links]
    counts = [[0] * n for _ in range(n)]
    for i, ends in enumerate(links):
        for e in ends:
            if e.active and e.peer_gpu is not None and 0 <= e.peer_gpu < n and e.peer_gpu != i:
                counts[i][e.peer_gpu] += 1
        for j in range(n):
            if j != i and switch[i] and switch[j]:
                counts[i][j] += min(switch[i], switch[j])
    return counts


def build_matrix(levels: list[list[int | None]], nvlinks: list[list[int]]) -> list[list[str]]:
    """GPU-by-GPU cells in topo -m words: X on the diagonal, NV# where links join, else the PCIe level."""
    n = len(levels)
    return [
        [
            "X" if i == j else f"NV{nvlinks[i][j]}" if nvlinks[i][j] > 0 else level_word(levels[i][j])
            for j in range(n)
        ]
        for i in range(n)
    ]


def render(
    cells: list[list[str]],
    cpu_affinity: list[str | None],
    numa: list[int | None],
    labels: list[str] | None = None,
) -> str:
    """The matrix as ``nvidia-smi topo -m`` prints it (tab separated), with affinity columns."""
    labels = labels or [f"GPU{i}" for i in range(len(cells))]
    lines = ["\t" + "\t".join([*labels, "CPU Affinity", "NUMA Affinity"])]
    for label, row, cpus, node in zip(labels, cells, cpu_affinity, numa, strict=True):
        shown = [" X " if c == "X" else c for c in row]
        lines.append("\t".join([label, *shown, cpus or UNKNOWN, UNKNOWN if node is None else str(node)]))
    return "\n".join(lines) + "\n\nLegend: " + LEGEND + "\n"


def findings(
    links: list[list[LinkEnd]],
    counts: list[list[int]],
    p2p: dict[str, list[list[int | None]]] | None,
    indexes: list[int] | None = None,
    unknown_sets: dict[int, str] | None = None,
) -> list[Finding]:
    """Inactive or unknown links, uneven link counts, link error counters, and P2P gaps.

    ``links`` holds only the links a GPU has (NVML's link count), so a PCIe card has none and none
    is ever called inactive. ``unknown_sets``: GPU index -> why its set of links is unknown."""
    idx = indexes or list(range(len(links)))
    out: list[Finding] = []
    for gpu, why in sorted((unknown_sets or {}).items()):
        out.append(Finding("unknown_links", "info", [gpu], f"GPU {gpu}: its NVLinks are unknown ({why})",
                           "Whether the GPU has NVLinks, and their state, cannot be verified; check them "
                           "with nvidia-smi nvlink -s on the host"))  # fmt: skip
    for i, ends in enumerate(links):
        out += _link_findings(idx[i], ends)
    out += _uneven(links, counts, idx)
    if p2p:
        out += _p2p_findings(p2p, counts, idx)
    return out


def _link_findings(gpu: int, ends: list[LinkEnd]) -> list[Finding]:
    out = []
    down = [e.link for e in ends if e.active is False]
    if down:
        out.append(
            Finding(
                "inactive_links",
                "degraded",
                [gpu],
                f"GPU {gpu}: {len(down)} of {len(ends)} NVLinks inactive (links {', '.join(map(str, down))})",
                lost_bandwidth(len(down), len(ends), any(e.to_switch for e in ends)),
                down,
            )
        )
    unknown = [e.link for e in ends if e.active is None]
    if unknown:
        out.append(
            Finding(
                "unknown_links",
                "info",
                [gpu],
                f"GPU {gpu}: state of {len(unknown)} NVLinks unreadable (links {', '.join(map(str, unknown))})",
                "Those links cannot be verified; check them with nvidia-smi nvlink -s on the host",
                unknown,
            )
        )
    for e in ends:
        retrains = {k: v for k, v in (("replay", e.replay), ("recovery", e.recovery)) if v}
        if retrains:
            counters = ", ".join(f"{k} {v}" for k, v in retrains.items())
            out.append(
                Finding(
                    "link_errors",
                    "warning",
                    [gpu],
                    f"GPU {gpu} NVLink {e.link}: {counters}",
                    "The link replays or retrains: lower effective bandwidth, and a link that keeps "
                    "recovering can go down (XID 74); NCCL jobs slow or hang",
                    [e.link],
                )
            )
        crc = {k: v for k, v in (("crc_flit", e.crc_flit), ("crc_data", e.crc_data)) if v}
        if crc:
            out.append(
                Finding(
                    "link_crc",
                    "info",
                    [gpu],
                    f"GPU {gpu} NVLink {e.link}: " + ", ".join(f"{k} {v}" for k, v in crc.items()),
                    "CRC errors are corrected by replay; a rising count points at signal integrity "
                    "(reseat or check the link)",
                    [e.link],
                )
            )
    return out


def _uneven(links: list[list[LinkEnd]], counts: list[list[int]], idx: list[int]) -> list[Finding]:
    """A GPU with fewer active links than most of its peers, or NV pairs below the node's usual count."""
    active = [sum(1 for e in ends if e.active) for ends in links]
    reported = [len(ends) for ends in links]
    if len(links) < 2 or not any(reported):
        return []
    usual = Counter(active).most_common(1)[0][0]
    out = []
    for i, n in enumerate(active):
        down = sum(1 for e in links[i] if e.active is not True)  # already reported per link
        if reported[i] and n + down < usual:
            out.append(
                Finding(
                    "uneven_links",
                    "degraded",
                    [idx[i]],
                    f"GPU {idx[i]} reports {n} active NVLinks where most GPUs here have {usual}",
                    f"Collectives run at the pace of the slowest GPU: {n} of {usual} links is about "
                    f"{1 - n / usual:.0%} less NVLink bandwidth; NCCL stays on NVLink while links remain",
                )
            )
    present = [i for i, ends in enumerate(links) if ends]  # a lost GPU reports no links: not a pair problem
    if present and all(any(e.to_switch for e in links[i]) for i in present):
        switch = [sum(1 for e in links[i] if e.active and e.to_switch) for i in range(len(links))]
        usual_switch = Counter(switch[i] for i in present).most_common(1)[0][0]
        pairs = [(i, j, counts[i][j]) for i in present for j in present if i < j]
        low = [(i, j, c) for i, j, c in pairs if c < usual_switch]
        short = [idx[i] for i in present if switch[i] < usual_switch]
        if low:
            text = ", ".join(f"GPU{idx[i]}-GPU{idx[j]} NV{c}" for i, j, c in low[:8])
            out.append(
                Finding(
                    "uneven_pairs",
                    "degraded",
                    short or sorted({idx[i] for i, _, _ in low} | {idx[j] for _, j, _ in low}),
                    f"{len(low)} GPU pairs reach each other over fewer NVLinks through the NVSwitches than "
                    f"the usual NV{usual_switch}: {text}",
                    "All-to-all traffic between these pairs has the bandwidth of their link count "
                    f"(of NV{usual_switch}); NCCL stays on NVLink; {FLAP_RISK}",
                )
            )
    return out


PER_GPU_LINK_KINDS = ("inactive_links", "unknown_links", "uneven_links")


class KindOfFinding(Protocol):
    """A finding as the rules and the tool's model both have it (diagnose Finding, TopologyFinding)."""

    @property
    def kind(self) -> str: ...
    @property
    def gpus(self) -> list[int]: ...


def restates_link_findings(finding: KindOfFinding, every: Sequence[KindOfFinding]) -> bool:
    """An uneven_pairs finding whose every short GPU has a per-GPU link finding of its own (links
    down, unknown or missing): the thin pairs follow from those links and say nothing new. A summary
    leaves it out; the full answer keeps it."""
    if finding.kind != "uneven_pairs" or not finding.gpus:
        return False
    explained = {g for f in every if f.kind in PER_GPU_LINK_KINDS for g in f.gpus}
    return all(g in explained for g in finding.gpus)


def _p2p_findings(
    p2p: dict[str, list[list[int | None]]], counts: list[list[int]], idx: list[int]
) -> list[Finding]:
    out = []
    n = len(counts)
    pcie_gaps = []
    for i in range(n):
        for j in range(i + 1, n):
            read = (p2p.get("read") or [[None] * n] * n)[i][j]
            write = (p2p.get("write") or [[None] * n] * n)[i][j]
            nvlink = (p2p.get("nvlink") or [[None] * n] * n)[i][j]
            if counts[i][j] > 0 and nvlink not in (None, 0):
                out.append(
                    Finding(
                        "p2p_nvlink_unsupported",
                        "warning",
                        [idx[i], idx[j]],
                        f"GPU{idx[i]}-GPU{idx[j]}: NV{counts[i][j]} but NVLink P2P is "
                        f"{P2P_STATUS.get(nvlink, nvlink)}",
                        "CUDA cannot use the NVLinks for peer copies; " + NCCL_CONSEQUENCE,
                    )
                )
            elif counts[i][j] == 0 and (read not in (None, 0) or write not in (None, 0)):
                code = read if read not in (None, 0) else write
                status = P2P_STATUS.get(code, "?") if code is not None else "?"
                pcie_gaps.append((idx[i], idx[j], status))
    if pcie_gaps:
        text = ", ".join(f"GPU{a}-GPU{b} ({status})" for a, b, status in pcie_gaps[:8])
        out.append(
            Finding(
                "p2p_unsupported",
                "info",
                sorted({a for a, _, _ in pcie_gaps} | {b for _, b, _ in pcie_gaps}),
                f"P2P unsupported between {len(pcie_gaps)} GPU pairs without NVLink: {text}",
                "Peer copies between them are staged through host memory; "
                + NCCL_CONSEQUENCE
                + " for those pairs",
            )
        )
    return out
