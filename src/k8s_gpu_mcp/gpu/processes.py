"""GPU processes as NVML reports them, and the memory no listed process accounts for.

Read adapter-style (``FieldReader``): a list NVML cannot read is ``None`` with its reason, never an
empty list, because "no processes" is exactly the claim a reset or a zombie verdict rests on. For
the same reason an empty list the library cannot back with a count of 0 is ``None`` ("unproven").
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from k8s_gpu_mcp.gpu import nvml_lib
from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter

NO_INSTANCE = 0xFFFFFFFF
MIB = 2**20
PROCESS_LISTS = (
    ("compute", "nvmlDeviceGetComputeRunningProcesses"),
    ("graphics", "nvmlDeviceGetGraphicsRunningProcesses"),
)


@dataclass(frozen=True)
class NvmlProcess:
    """One process on one GPU (or MIG instance). ``used_memory`` is bytes, None when NVML has no value."""

    pid: int
    type: str  # compute | graphics | compute+graphics
    used_memory: int | None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None


@dataclass(frozen=True)
class GpuProcesses:
    """A GPU's processes and memory use, with the memory no process accounts for."""

    processes: list[NvmlProcess] | None  # None when a process list could not be read
    memory_used: int | None = None  # bytes; nvmlMemory_v2 "used", which excludes driver-reserved memory
    memory_reserved: int | None = None
    memory_total: int | None = None
    mig_enabled: bool | None = None
    orphan_memory: int | None = None  # bytes used beyond what the listed processes account for
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def pids(self) -> set[int]:
        return {p.pid for p in self.processes or []}


def _instance(value: Any) -> int | None:
    return None if value is None or value == NO_INSTANCE else int(value)


def read_process_lists(adapter: NvmlAdapter, ref: GpuRef) -> tuple[list[NvmlProcess] | None, dict[str, str]]:
    """Compute and graphics lists merged per (pid, MIG instance); raises ``GpuLost``."""
    reader = adapter.reader(ref, identity=False)
    merged: dict[tuple[int, int | None, int | None], NvmlProcess] = {}
    complete = True
    for kind, fn in PROCESS_LISTS:
        listed = reader.read(f"{kind}_processes", fn)
        if listed is not None and not listed:
            unproven = _unproven_empty(adapter, ref, fn)
            if unproven:
                reader.unavailable[f"{kind}_processes"] = unproven
                listed = None
        if listed is None:
            complete = False
            continue
        for info in listed:
            gi, ci = (
                _instance(getattr(info, "gpuInstanceId", None)),
                _instance(getattr(info, "computeInstanceId", None)),
            )
            used = getattr(info, "usedGpuMemory", None)
            key = (int(info.pid), gi, ci)
            if key in merged:
                seen = merged[key]
                if used is not None and (seen.used_memory is None or used > seen.used_memory):
                    seen = replace(seen, used_memory=used)
                merged[key] = replace(seen, type="compute+graphics")
            else:
                merged[key] = NvmlProcess(int(info.pid), kind, used, gi, ci)
    return (list(merged.values()) if complete else None), reader.unavailable


def _unproven_empty(adapter: NvmlAdapter, ref: GpuRef, fn: str) -> str | None:
    """Why an empty list from ``fn`` does not prove the GPU has no such process; None when it does.

    The fake's lists are its profile's, so empty is empty. On real pynvml an empty list only says
    NVML's size query answered SUCCESS: proof when it also counted 0 (see ``running_process_count``)."""
    if not nvml_lib.is_real_binding(adapter.nvml):
        return None
    count = nvml_lib.running_process_count(adapter.nvml, ref.handle, fn)
    if count == 0:
        return None
    if count is None:
        return f"Unproven: {fn} listed no process and NVML's own count could not be read"
    return (
        f"Unproven: {fn} listed no process but NVML's size query counts {count}: this library "
        "answers SUCCESS where NVML answers INSUFFICIENT_SIZE, so the binding returned an empty list"
    )


def _memory(adapter: NvmlAdapter, reader: FieldReader) -> Any:
    if getattr(adapter.nvml, "nvmlMemory_v2", None) is None:
        reader.unavailable["memory"] = (
            "this NVML binding has no nvmlMemory_v2: v1 folds driver-reserved memory into 'used', "
            "so process-owned memory cannot be separated"
        )
        return None
    return adapter.memory(reader)


def read_gpu_processes(adapter: NvmlAdapter, ref: GpuRef) -> GpuProcesses:
    """Processes plus memory, and ``orphan_memory`` when it can be computed honestly; raises ``GpuLost``."""
    reader = adapter.reader(ref, identity=False)
    before = _memory(adapter, reader)
    processes, why = read_process_lists(adapter, ref)
    after = _memory(adapter, reader) if before is not None else None
    mig = reader.read("mig_mode", "nvmlDeviceGetMigMode")
    unavailable = {**ref.unavailable, **reader.unavailable, **why}
    mig_enabled = bool(mig[0]) if mig is not None else None
    orphan = _orphan(processes, mig_enabled, before, after, unavailable)
    return GpuProcesses(
        processes,
        memory_used=after.used if after is not None else None,
        memory_reserved=after.reserved if after is not None else None,
        memory_total=after.total if after is not None else None,
        mig_enabled=mig_enabled,
        orphan_memory=orphan,
        unavailable=unavailable,
    )


def _orphan(
    processes: list[NvmlProcess] | None,
    mig_enabled: bool | None,
    before: Any,
    after: Any,
    unavailable: dict[str, str],
) -> int | None:
    """Bytes used beyond what the listed processes account for; None (reason in ``unavailable``)
    where that cannot be computed honestly."""
    reason = None
    if processes is None:
        reason = "the GPU's process list could not be read"
    elif before is None or after is None:
        reason = unavailable.get("memory", "memory use could not be read")
    elif before.used != after.used:
        reason = (
            f"memory use changed while the process list was read ({before.used // MIB} -> "
            f"{after.used // MIB} MiB): an allocation is in progress; read again"
        )
    elif mig_enabled:
        reason = (
            "MIG mode: device memory includes GPU-instance overhead that no process owns; "
            "per-instance accounting is not available here"
        )
    else:
        unknown = [p.pid for p in processes if p.used_memory is None]
        if unknown:
            reason = f"NVML reports no memory figure (usedGpuMemory) for pid(s) {unknown}"
    if reason is not None:
        unavailable["orphan_memory_mib"] = reason
        return None
    owned = sum(p.used_memory or 0 for p in processes or [])
    return max(0, int(after.used) - owned)
