"""Process usage and the default power limit, read for the health check (adapter style)."""

from __future__ import annotations

from k8s_gpu_mcp.gpu.adapter import GpuRef, NvmlAdapter
from k8s_gpu_mcp.gpu.processes import MIB, read_process_lists
from k8s_gpu_mcp.gpu.readings import Usage


def read_usage(adapter: NvmlAdapter, ref: GpuRef) -> Usage:
    """Running processes (count, GPU memory they hold) and the default power limit; raises ``GpuLost``."""
    procs, unavailable = read_process_lists(adapter, ref)
    r = adapter.reader(ref, identity=False)
    r.unavailable.update(unavailable)
    default = r.read("power_default_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit")
    used = [p.used_memory for p in procs or []]
    return Usage(
        process_count=len({p.pid for p in procs}) if procs is not None else None,
        process_memory_mib=sum(u for u in used if u is not None) // MIB
        if procs is not None and None not in used
        else None,
        power_default_limit_w=round(default / 1000, 2) if default is not None else None,
        unavailable=r.unavailable,
    )
