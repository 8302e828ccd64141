"""ECC, retired-page and row-remapper readings through NVML (adapter style).

A counter NVML cannot read is ``None`` with its reason in ``unavailable``, never 0.
"""

from __future__ import annotations

import ctypes

from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter
from k8s_gpu_mcp.gpu.nvml_constants import ECC_ERROR_TYPES, ECC_SCOPES, MEMORY_LOCATIONS
from k8s_gpu_mcp.gpu.readings import EccCounters, EccReading, RemappedRows, RetiredPages

HISTOGRAM = ("max", "high", "partial", "low", "none")


def read_ecc(adapter: NvmlAdapter, ref: GpuRef) -> EccReading:
    """ECC mode, counters per scope/type/location, SRAM threshold flag, retired pages, remapped rows."""
    r = adapter.reader(ref)
    architecture = r.read("architecture", "nvmlDeviceGetArchitecture")
    mode = r.read("mode", "nvmlDeviceGetEccMode")
    counters: EccCounters = {}
    for scope, scope_value in ECC_SCOPES.items():
        counters[scope] = {}
        for kind, type_value in ECC_ERROR_TYPES.items():
            args = (type_value, scope_value)
            row: dict[str, int | None] = {
                "total": r.read(f"{scope}.{kind}.total", "nvmlDeviceGetTotalEccErrors", *args)
            }
            for loc, location in MEMORY_LOCATIONS.items():
                row[loc] = r.read(f"{scope}.{kind}.{loc}", "nvmlDeviceGetMemoryErrorCounter", *args, location)
            counters[scope][kind] = row
    sram = _sram_threshold(r)
    pages = _retired_pages(r)
    rows = _remapped_rows(r)
    return EccReading(
        architecture=architecture,
        mode_current=bool(mode[0]) if mode is not None else None,
        mode_pending=bool(mode[1]) if mode is not None else None,
        counters=counters,
        sram_threshold_exceeded=sram,
        retired_pages=pages,
        remapped_rows=rows,
        unavailable=r.unavailable,
    )


def _sram_threshold(r: FieldReader) -> bool | None:
    """``bThresholdExceeded`` of nvmlDeviceGetSramEccErrorStatus (R550+); None where unsupported."""
    factory = getattr(r.nvml, "c_nvmlEccSramErrorStatus_v1_t", None)
    if factory is None:
        r.unavailable["sram_threshold_exceeded"] = (
            "FunctionNotFound: c_nvmlEccSramErrorStatus_v1_t is not in this NVML binding"
        )
        return None
    status = factory()
    arg = ctypes.byref(status) if isinstance(status, ctypes.Structure) else status
    if r.read("sram_threshold_exceeded", "nvmlDeviceGetSramEccErrorStatus", arg) is None:
        return None
    return bool(status.bThresholdExceeded)


def _retired_pages(r: FieldReader) -> RetiredPages:
    nvml = r.nvml
    sbe = r.read(
        "retired_pages.sbe",
        "nvmlDeviceGetRetiredPages_v2",
        nvml.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
    )
    dbe = r.read(
        "retired_pages.dbe",
        "nvmlDeviceGetRetiredPages_v2",
        nvml.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
    )
    pending = r.read("retired_pages.pending", "nvmlDeviceGetRetiredPagesPendingStatus")
    return RetiredPages(
        sbe=len(sbe) if sbe is not None else None,
        dbe=len(dbe) if dbe is not None else None,
        pending=bool(pending) if pending is not None else None,
    )


def _remapped_rows(r: FieldReader) -> RemappedRows:
    rows = r.read("remapped_rows", "nvmlDeviceGetRemappedRows")
    hist = r.read("remapped_rows.histogram", "nvmlDeviceGetRowRemapperHistogram")
    corr, unc, pending, failure = rows if rows is not None else (None, None, None, None)
    return RemappedRows(
        correctable=corr,
        uncorrectable=unc,
        pending=bool(pending) if pending is not None else None,
        failure=bool(failure) if failure is not None else None,
        histogram={k: getattr(hist, k) for k in HISTOGRAM} if hist is not None else None,
    )
