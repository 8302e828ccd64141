"""The GPU state a reset depends on and changes: MIG, persistence, processes, memory, ECC, pending fixes."""

from __future__ import annotations

from typing import Any

from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuLost, GpuRef
from k8s_gpu_mcp.gpu.processes import MIB, read_process_lists


def read_reset_state(nvml: Any, ref: GpuRef) -> dict[str, Any]:
    """Each field read on its own; a lost GPU gives ``lost: True`` and nothing else."""
    if ref.lost_reason:
        return {"lost": True, "unavailable": {"*": ref.lost_reason}}
    r = FieldReader(nvml, ref.handle)
    out: dict[str, Any] = {"lost": False}
    try:
        procs, why = read_process_lists(nvml, ref)
        mig = r.read("mig_mode", "nvmlDeviceGetMigMode")
        persistence = r.read("persistence_mode", "nvmlDeviceGetPersistenceMode")
        mem = r.read(
            "memory_used_mib", "nvmlDeviceGetMemoryInfo", version=getattr(nvml, "nvmlMemory_v2", None)
        )
        ecc = r.read(
            "ecc_volatile_uncorrected",
            "nvmlDeviceGetTotalEccErrors",
            getattr(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1),
            getattr(nvml, "NVML_VOLATILE_ECC", 0),
        )
        rows = r.read("remapped_rows_pending", "nvmlDeviceGetRemappedRows")
        pages = r.read("retired_pages_pending", "nvmlDeviceGetRetiredPagesPendingStatus")
    except GpuLost as lost:
        return {"lost": True, "unavailable": {"*": f"GpuIsLost: {lost}"}}
    r.unavailable.update(why)
    out["process_pids"] = sorted({p.pid for p in procs}) if procs is not None else None
    if procs is None:
        r.unavailable["process_pids"] = "; ".join(why.values()) or "the process lists could not be read"
    out["mig_mode_current"] = bool(mig[0]) if mig is not None else None
    out["mig_mode_pending"] = bool(mig[1]) if mig is not None else None
    if mig is None:
        r.unavailable["mig_mode_current"] = r.unavailable["mig_mode_pending"] = r.unavailable.pop("mig_mode")
    out["persistence_mode"] = bool(persistence) if persistence is not None else None
    out["memory_used_mib"] = mem.used // MIB if mem is not None else None
    out["ecc_volatile_uncorrected"] = ecc
    out["remapped_rows_pending"] = bool(rows[2]) if rows is not None else None
    out["retired_pages_pending"] = bool(pages) if pages is not None else None
    out["unavailable"] = r.unavailable
    return out
