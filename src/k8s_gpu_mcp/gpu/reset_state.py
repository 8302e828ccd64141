"""The GPU state a reset depends on and changes: MIG, persistence, processes, memory, ECC, pending fixes."""

from __future__ import annotations

from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef, NvmlAdapter
from k8s_gpu_mcp.gpu.nvml_constants import ECC_ERROR_TYPES, ECC_SCOPES
from k8s_gpu_mcp.gpu.processes import MIB, read_process_lists
from k8s_gpu_mcp.gpu.readings import ResetState


def read_reset_state(adapter: NvmlAdapter, ref: GpuRef) -> ResetState:
    """Each field read on its own; a lost GPU gives ``lost=True`` and its reason under ``"*"``."""
    if ref.lost_reason:
        return ResetState(lost=True, unavailable={"*": ref.lost_reason})
    r = adapter.reader(ref, identity=False)
    try:
        procs, why = read_process_lists(adapter, ref)
        mig = r.read("mig_mode", "nvmlDeviceGetMigMode")
        persistence = r.read("persistence_mode", "nvmlDeviceGetPersistenceMode")
        mem = adapter.memory(r, "memory_used_mib")
        ecc = r.read(
            "ecc_volatile_uncorrected",
            "nvmlDeviceGetTotalEccErrors",
            ECC_ERROR_TYPES["uncorrected"],
            ECC_SCOPES["volatile"],
        )
        rows = r.read("remapped_rows_pending", "nvmlDeviceGetRemappedRows")
        pages = r.read("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus")
    except GpuLost as lost:
        return ResetState(lost=True, unavailable={"*": f"GpuIsLost: {lost}"})
    r.unavailable.update(why)
    if procs is None:
        r.unavailable["process_pids"] = "; ".join(why.values()) or "the process lists could not be read"
    if mig is None:
        r.unavailable["mig_mode_current"] = r.unavailable["mig_mode_pending"] = r.unavailable.pop("mig_mode")
    return ResetState(
        lost=False,
        process_pids=sorted({p.pid for p in procs}) if procs is not None else None,
        mig_mode_current=bool(mig[0]) if mig is not None else None,
        mig_mode_pending=bool(mig[1]) if mig is not None else None,
        persistence_mode=bool(persistence) if persistence is not None else None,
        memory_used_mib=mem.used // MIB if mem is not None else None,
        ecc_volatile_uncorrected=ecc,
        remapped_rows_pending=bool(rows[2]) if rows is not None else None,
        retired_pages_pending=bool(pages) if pages is not None else None,
        unavailable=r.unavailable,
    )
