"""snapshot_ecc: ECC counters, retired pages / remapped rows, and a memory verdict per GPU."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from k8s_gpu_mcp.diagnose import ecc as verdicts
from k8s_gpu_mcp.gpu.adapter import ARCHITECTURES, GpuLost, GpuRef
from k8s_gpu_mcp.gpu.ecc import read_ecc
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import READ_ONLY, GpuSelector, Source, select_gpus, source

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"

Verdict = Literal["healthy", "monitor", "reset-required", "replace", "unknown", "lost"]


class Counts(ToolModel):
    total: int | None
    by_location: dict[str, int | None] = Field(
        description="dram, sram, l1_cache, l2_cache, register_file, texture_memory, texture_shm, cbu; null = NotSupported"
    )


class Scope(ToolModel):
    corrected: Counts
    uncorrected: Counts


class RetiredPages(ToolModel):
    sbe: int | None = Field(description="pages retired after repeated single-bit errors")
    dbe: int | None = Field(description="pages retired after a double-bit error")
    pending: bool | None = Field(description="a retirement waits for the next GPU reset / driver reload")


class RemappedRows(ToolModel):
    correctable: int | None
    uncorrectable: int | None
    pending: bool | None = Field(description="a remap waits for the next GPU reset")
    failure: bool | None = Field(description="a remap failed: NVIDIA's RMA criterion")
    histogram: dict[str, int] | None = Field(
        description="banks by spare rows left: max, high, partial, low, none"
    )


class Reason(ToolModel):
    level: Literal["info", "monitor", "reset-required", "replace"]
    text: str


class GpuEcc(ToolModel):
    index: int
    uuid: str | None
    name: str | None
    pci_bus_id: str | None
    architecture: str | None = None
    lost: bool = False
    ecc_enabled: bool | None = None
    ecc_pending: bool | None = Field(None, description="ECC mode after the next reset")
    volatile: Scope | None = Field(None, description="since the last driver load / GPU reset")
    aggregate: Scope | None = Field(None, description="over the board's life (InfoROM)")
    sram_threshold_exceeded: bool | None = None
    repair_mechanism: Literal["page_retirement", "row_remapping"] | None = None
    retired_pages: RetiredPages | None = None
    remapped_rows: RemappedRows | None = None
    verdict: Verdict
    reasons: list[Reason] = Field(default_factory=list, description="why, most severe first")
    not_read: list[str] = Field(
        default_factory=list, description="signals the verdict could not use, and why"
    )
    action: str
    unavailable: dict[str, str] = Field(default_factory=dict)


class EccResult(ToolModel):
    source: Source
    gpus: list[GpuEcc]
    node_verdict: Verdict
    node_action: str


def _scope(raw: dict[str, dict[str, int | None]]) -> Scope:
    def counts(row: dict[str, int | None]) -> Counts:
        return Counts(total=row["total"], by_location={k: v for k, v in row.items() if k != "total"})

    return Scope(corrected=counts(raw["corrected"]), uncorrected=counts(raw["uncorrected"]))


def ecc_state(raw: dict[str, Any]) -> verdicts.EccState:
    """Adapter readings -> the pure verdict's input."""
    c = raw["counters"]
    pages, rows = raw["retired_pages"], raw["remapped_rows"]
    return verdicts.EccState(
        ecc_enabled=raw["mode_current"],
        ecc_pending=raw["mode_pending"],
        volatile_corrected=c["volatile"]["corrected"]["total"],
        volatile_uncorrected=c["volatile"]["uncorrected"]["total"],
        aggregate_corrected=c["aggregate"]["corrected"]["total"],
        aggregate_uncorrected=c["aggregate"]["uncorrected"]["total"],
        sram_threshold_exceeded=raw["sram_threshold_exceeded"],
        repair=verdicts.repair_mechanism(raw["architecture"]),
        retired_sbe=pages["sbe"],
        retired_dbe=pages["dbe"],
        retired_pending=pages["pending"],
        remap_correctable=rows["correctable"],
        remap_uncorrectable=rows["uncorrectable"],
        remap_pending=rows["pending"],
        remap_failure=rows["failure"],
        histogram=rows["histogram"],
        unreadable=raw["unavailable"],
    )


def _lost(base: dict[str, Any], reason: str) -> GpuEcc:
    return GpuEcc(
        **base, lost=True, verdict="lost", action="GPU lost: see get_gpu_health", unavailable={"*": reason}
    )


def snapshot(app: AgentApp, ref: GpuRef) -> tuple[GpuEcc, verdicts.Verdict | None]:
    """One GPU's ECC snapshot and its verdict (shared with get_gpu_health); verdict None when lost."""
    base = {"index": ref.index, "uuid": ref.uuid, "name": ref.name, "pci_bus_id": ref.bus_id}
    if ref.lost_reason:
        return _lost(base, ref.lost_reason), None
    try:
        raw = read_ecc(app.backend.adapter, ref)
    except GpuLost as lost:
        return _lost(base, f"GpuIsLost: {lost}"), None
    state = ecc_state(raw)
    v = verdicts.judge(state)
    arch = raw["architecture"]
    counters = raw["counters"]
    gpu = GpuEcc(
        **base,
        architecture=ARCHITECTURES.get(arch, f"unknown ({arch})") if arch is not None else None,
        ecc_enabled=state.ecc_enabled,
        ecc_pending=state.ecc_pending,
        volatile=_scope(counters["volatile"]),
        aggregate=_scope(counters["aggregate"]),
        sram_threshold_exceeded=state.sram_threshold_exceeded,
        repair_mechanism=state.repair,
        retired_pages=RetiredPages(**raw["retired_pages"]),
        remapped_rows=RemappedRows(**raw["remapped_rows"]),
        verdict=v.verdict,
        reasons=[Reason(level=r.level, text=r.text) for r in v.reasons],
        not_read=v.unknown,
        action=v.action,
        unavailable=raw["unavailable"],
    )
    return gpu, v


RANK = {**verdicts.RANK, "lost": 5}


def node_summary(gpus: list[GpuEcc]) -> tuple[Verdict, str]:
    worst: Verdict = max((g.verdict for g in gpus), key=RANK.__getitem__, default="healthy")
    hit = ", ".join(str(g.index) for g in gpus if g.verdict == worst)
    actions = {
        "healthy": "No action: no GPU memory errors that need one.",
        "unknown": f"GPU {hit}: memory health could not be read; check nvidia-smi -q -d ECC on the host.",
        "monitor": f"No drain needed; watch GPU {hit} for growing uncorrectable errors or remaps.",
        "reset-required": f"Drain GPU {hit} (or the node) and reset it so the pending memory repair takes effect.",
        "replace": f"Cordon and drain the node; GPU {hit} meets an RMA criterion: run field diagnostics and RMA it.",
        "lost": f"GPU {hit} is lost: cordon and drain the node and reboot it (see get_gpu_health).",
    }
    return worst, actions[worst]


def register(app: AgentApp) -> None:
    def snapshot_ecc(gpus: GpuSelector = None) -> EccResult:
        """Snapshot GPU memory health: ECC mode (current/pending), corrected and uncorrected error counts
        (volatile since reset and aggregate for the board's life) per memory location, the SRAM
        threshold flag, retired pages (pre-Ampere: SBE, DBE, pending) or remapped rows (Ampere+:
        correctable, uncorrectable, pending, failure, spare-row histogram), and a verdict with its
        reasons: healthy, monitor, reset-required (a pending remap/retirement completes on reset),
        replace (an RMA criterion), or unknown (a deciding counter could not be read)."""
        items = [snapshot(app, ref)[0] for ref in select_gpus(app, gpus)]
        verdict, action = node_summary(items)
        return EccResult(source=source(app), gpus=items, node_verdict=verdict, node_action=action)

    app.add_tool(snapshot_ecc, title="GPU ECC and memory repair snapshot", annotations=READ_ONLY)
