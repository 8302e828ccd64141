"""snapshot_ecc: ECC counters, retired pages / remapped rows, and a memory verdict per GPU."""

import dataclasses
from dataclasses import asdict
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from k8s_gpu_mcp.diagnose import ecc as verdicts
from k8s_gpu_mcp.diagnose import mig as mig_rules
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.ecc import read_ecc
from k8s_gpu_mcp.gpu.mig import MigDevice, read_mig
from k8s_gpu_mcp.gpu.nvml_constants import ARCHITECTURES
from k8s_gpu_mcp.gpu.readings import EccReading
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    Evidence,
    GpuName,
    GpuProblem,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    fold_unavailable,
    full_only,
    node_head,
    select_gpus,
    source,
    split_not_supported,
)
from k8s_gpu_mcp.vocabulary import Detail, Status

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"

MemoryState = Literal["healthy", "monitor", "reset-required", "replace", "unknown", "lost"]
# The memory verdict's categories on the one status scale.
MEMORY_STATUS: dict[str, Status] = {
    "healthy": "healthy",
    "unknown": "unknown",
    "monitor": "warning",
    "reset-required": "degraded",
    "replace": "critical",
    "lost": "lost",
}


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
    status: Status = Field(description="memory_state on the one status scale")
    ecc_mode_current: bool | None = Field(None, description="ECC enabled now")
    ecc_mode_pending: bool | None = Field(None, description="ECC enabled after the next reset")
    volatile: Scope | None = Field(None, description="since the last driver load / GPU reset")
    aggregate: Scope | None = Field(None, description="over the board's life (InfoROM)")
    sram_threshold_exceeded: bool | None = None
    repair_mechanism: Literal["page_retirement", "row_remapping"] | None = None
    retired_pages: RetiredPages | None = None
    remapped_rows: RemappedRows | None = None
    memory_state: MemoryState = Field(
        description="healthy, monitor, reset-required (a repair completes on reset), replace (RMA), unknown, lost"
    )
    reasons: list[Reason] = Field(default_factory=list, description="why, most severe first")
    action: str
    mig_devices: "list[MigEcc] | None" = Field(
        None, description="each MIG device's volatile uncorrectable SRAM errors ([] when MIG is off)"
    )
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="field -> why it is null; verdict.* = signals the verdict could not use",
    )


class MigEcc(ToolModel):
    """A MIG device's one ECC counter: NVML keeps per instance only volatile uncorrectable SRAM errors."""

    index: int
    uuid: str | None
    profile: str | None
    gpu_instance_id: int | None
    compute_instance_id: int | None
    sram_uncorrected_volatile: int | None
    unavailable: dict[str, str] = Field(default_factory=dict)


def mig_ecc(d: MigDevice) -> MigEcc:
    why = {k: v for k, v in d.unavailable.items() if k == "sram_uncorrected_volatile"}
    return MigEcc(
        index=d.index,
        uuid=d.uuid,
        profile=d.profile,
        gpu_instance_id=d.gpu_instance_id,
        compute_instance_id=d.compute_instance_id,
        sram_uncorrected_volatile=d.sram_uncorrected_volatile,
        unavailable=why,
    )


class EccResult(NodeAnswer):
    not_supported: NotSupported | None = full_only("fields this GPU model never has")
    gpus: list[GpuEcc] | None = full_only("every counter of every GPU")
    source: Source


def problem(g: GpuEcc) -> GpuProblem:
    """A GPU whose memory is not healthy: the verdict's reason and the counters that decide it."""
    shown = [r.text for r in g.reasons if r.level != "info"]
    unknown = {
        k.removeprefix("verdict."): v.removeprefix("the verdict needs it: ")
        for k, v in g.unavailable.items()
        if k.startswith("verdict.")
    }
    if g.lost:
        reason = f"GPU lost: {g.unavailable.get('*', 'GpuIsLost')}"
    elif shown:
        reason = shown[0]
    else:
        reason = "memory health could not be decided: " + "; ".join(f"{k}: {v}" for k, v in unknown.items())
    readings: dict[str, Any] = {
        "ecc_mode_current": g.ecc_mode_current,
        "ecc_mode_pending": g.ecc_mode_pending,
    }
    for scope in ("volatile", "aggregate"):
        counts = getattr(g, scope)
        if counts is not None:
            readings[f"{scope}_corrected"] = counts.corrected.total
            readings[f"{scope}_uncorrected"] = counts.uncorrected.total
    readings["sram_threshold_exceeded"] = g.sram_threshold_exceeded
    if g.remapped_rows is not None and g.repair_mechanism == "row_remapping":
        readings["remapped_rows"] = g.remapped_rows.model_dump(exclude={"histogram"})
    if g.retired_pages is not None and g.repair_mechanism == "page_retirement":
        readings["retired_pages"] = g.retired_pages.model_dump()
    finding = "; ".join(shown) or reason
    return GpuProblem(
        index=g.index,
        uuid=g.uuid,
        pci_bus_id=g.pci_bus_id,
        status=g.status,
        reason=reason,
        evidence=[Evidence(check="memory", status=g.status, finding=finding, readings=readings)],
        action=g.action,
    )


def _scope(raw: dict[str, dict[str, int | None]]) -> Scope:
    def counts(row: dict[str, int | None]) -> Counts:
        return Counts(total=row["total"], by_location={k: v for k, v in row.items() if k != "total"})

    return Scope(corrected=counts(raw["corrected"]), uncorrected=counts(raw["uncorrected"]))


def ecc_state(raw: EccReading) -> verdicts.EccState:
    """Adapter readings -> the pure verdict's input."""
    c = raw.counters
    pages, rows = raw.retired_pages, raw.remapped_rows
    return verdicts.EccState(
        ecc_enabled=raw.mode_current,
        ecc_pending=raw.mode_pending,
        volatile_corrected=c["volatile"]["corrected"]["total"],
        volatile_uncorrected=c["volatile"]["uncorrected"]["total"],
        aggregate_corrected=c["aggregate"]["corrected"]["total"],
        aggregate_uncorrected=c["aggregate"]["uncorrected"]["total"],
        sram_threshold_exceeded=raw.sram_threshold_exceeded,
        repair=verdicts.repair_mechanism(raw.architecture),
        retired_sbe=pages.sbe,
        retired_dbe=pages.dbe,
        retired_pending=pages.pending,
        remap_correctable=rows.correctable,
        remap_uncorrectable=rows.uncorrectable,
        remap_pending=rows.pending,
        remap_failure=rows.failure,
        histogram=rows.histogram,
        unreadable=raw.unavailable,
    )


def _lost(base: dict[str, Any], reason: str) -> GpuEcc:
    return GpuEcc(
        **base,
        lost=True,
        status="lost",
        memory_state="lost",
        action="GPU lost: see get_gpu_health",
        unavailable={"*": reason},
    )


def snapshot(app: "AgentApp", ref: GpuRef) -> tuple[GpuEcc, verdicts.Verdict | None]:
    """One GPU's ECC snapshot and its verdict (shared with get_gpu_health); verdict None when lost."""
    base = {"index": ref.index, "uuid": ref.uuid, "name": ref.name, "pci_bus_id": ref.bus_id}
    if ref.lost_reason:
        return _lost(base, ref.lost_reason), None
    try:
        raw = read_ecc(app.backend.adapter, ref)
        mig = read_mig(app.backend.adapter, ref)
    except GpuLost as lost:
        return _lost(base, f"GpuIsLost: {lost}"), None
    state = ecc_state(raw)
    if mig.enabled and "remapped_rows" in state.unreadable:  # not answered under MIG: unknown, not absent
        why = f"{mig_rules.REMAP_IN_MIG}: {state.unreadable['remapped_rows']}"
        state = dataclasses.replace(state, unreadable={**state.unreadable, "remapped_rows": why})
    v = verdicts.judge(state)
    arch = raw.architecture
    counters = raw.counters
    gpu = GpuEcc(
        **base,
        architecture=ARCHITECTURES.get(arch, f"unknown ({arch})") if arch is not None else None,
        status=MEMORY_STATUS[v.verdict],
        ecc_mode_current=state.ecc_enabled,
        ecc_mode_pending=state.ecc_pending,
        volatile=_scope(counters["volatile"]),
        aggregate=_scope(counters["aggregate"]),
        sram_threshold_exceeded=state.sram_threshold_exceeded,
        repair_mechanism=state.repair,
        retired_pages=RetiredPages(**asdict(raw.retired_pages)),
        remapped_rows=RemappedRows(**asdict(raw.remapped_rows)),
        memory_state=v.verdict,
        reasons=[Reason(level=r.level, text=r.text) for r in v.reasons],
        action=v.action,
        mig_devices=None if mig.devices is None else [mig_ecc(d) for d in mig.devices],
        unavailable={
            **state.unreadable,
            **_undecided(v.unknown),
            **({"mig_devices": mig.unavailable.get("devices", "not read")} if mig.devices is None else {}),
            **({"mig_mode": mig.unavailable["mig_mode"]} if "mig_mode" in mig.unavailable else {}),
        },
    )
    return gpu, v


def _undecided(unknown: list[str]) -> dict[str, str]:
    """The verdict's "signal: why" lines as ``unavailable`` entries (``verdict.volatile_uncorrected``)."""
    out = {}
    for line in unknown:
        name, _, why = line.partition(": ")
        # worded so a NotSupported the verdict depends on is not dropped as by-design
        out[f"verdict.{name.replace(' ', '_')}"] = f"the verdict needs it: {why or line}"
    return out


RANK = {**verdicts.RANK, "lost": 5}


def node_summary(gpus: list[GpuEcc]) -> tuple[MemoryState, str]:
    worst: MemoryState = max((g.memory_state for g in gpus), key=RANK.__getitem__, default="healthy")
    hit = ", ".join(str(g.index) for g in gpus if g.memory_state == worst)
    actions = {
        "healthy": "No action: no GPU memory errors that need one.",
        "unknown": f"GPU {hit}: memory health could not be read; check nvidia-smi -q -d ECC on the host.",
        "monitor": f"No drain needed; watch GPU {hit} for growing uncorrectable errors or remaps.",
        "reset-required": f"Drain GPU {hit} (or the node) and reset it so the pending memory repair takes effect.",
        "replace": f"Cordon and drain the node; GPU {hit} meets an RMA criterion: run field diagnostics and RMA it.",
        "lost": f"GPU {hit} is lost: cordon and drain the node and reboot it (see get_gpu_health).",
    }
    return worst, actions[worst]


def register(app: "AgentApp") -> None:
    def snapshot_ecc(gpus: GpuSelector = None, detail: Detail = "summary") -> EccResult:
        """Snapshot GPU memory health. The node's status and action first, then each GPU whose memory
        is not healthy with its memory_state (monitor, reset-required: a pending remap/retirement
        completes on reset, replace: an RMA criterion, unknown: a deciding counter could not be read)
        and the counters behind it: ECC mode (current/pending), corrected/uncorrected totals (volatile
        since reset, aggregate for the board's life), the SRAM threshold flag, remapped rows (Ampere+)
        or retired pages (pre-Ampere). detail="full" adds every counter per memory location and the
        spare-row histogram for every GPU."""
        items = [snapshot(app, ref)[0] for ref in select_gpus(app, gpus)]
        _, action = node_summary(items)
        statuses = [(GpuName(index=g.index, uuid=g.uuid, pci_bus_id=g.pci_bus_id), g.status) for g in items]
        head = node_head(
            detail,
            statuses,
            [problem(g) for g in items if g.status != "healthy"],
            action,
            fold_unavailable({}, {g.index: g.unavailable for g in items}),
        )
        result = EccResult(**head, source=source(app))
        if detail == "full":
            result.gpus = items
            result.not_supported = split_not_supported(result)
        return result

    app.add_tool(snapshot_ecc, title="GPU ECC and memory repair snapshot", annotations=READ_ONLY)
