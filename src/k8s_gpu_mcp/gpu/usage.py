"""Process usage and the default power limit, read for the health check (adapter style)."""

from __future__ import annotations

from typing import Any

from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter
from k8s_gpu_mcp.gpu.processes import MIB, read_process_lists


def read_usage(adapter: NvmlAdapter, ref: GpuRef) -> dict[str, Any]:
    """Running processes (count, GPU memory they hold) and the default power limit; raises ``GpuLost``."""
    procs, unavailable = read_process_lists(adapter.nvml, ref)
    r = FieldReader(adapter.nvml, ref.handle, unavailable)
    default = r.read("power_default_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit")
    used = [p.used_memory for p in procs or []]
    return {
        "process_count": len({p.pid for p in procs}) if procs is not None else None,
        "process_memory_mib": sum(u for u in used if u is not None) // MIB
        if procs is not None and None not in used
        else None,
        "power_default_limit_w": round(default / 1000, 2) if default is not None else None,
        "unavailable": r.unavailable,
    }
