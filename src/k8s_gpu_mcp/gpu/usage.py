"""Process usage and the default power limit, read for the health check (adapter style)."""

from __future__ import annotations

from typing import Any

from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter


def read_usage(adapter: NvmlAdapter, ref: GpuRef) -> dict[str, Any]:
    """Running compute + graphics processes (count, GPU memory they hold) and the default power limit."""
    r = FieldReader(adapter.nvml, ref.handle)
    compute = r.read("processes", "nvmlDeviceGetComputeRunningProcesses")
    graphics = r.read("graphics_processes", "nvmlDeviceGetGraphicsRunningProcesses")
    procs = {p.pid: p for p in [*(compute or []), *(graphics or [])]}
    used = [p.usedGpuMemory for p in procs.values()]
    default = r.read("power_default_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit")
    return {
        "process_count": len(procs) if compute is not None else None,
        "process_memory_mib": sum(used) // 2**20 if compute is not None and None not in used else None,
        "power_default_limit_w": round(default / 1000, 2) if default is not None else None,
        "unavailable": r.unavailable,
    }
