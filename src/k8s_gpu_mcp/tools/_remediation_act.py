"""kill_gpu_process and reset_gpu, acting: re-verify the plan, signal or reset, read NVML back."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import Field

from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.processes import MIB
from k8s_gpu_mcp.gpu.reset_state import read_reset_state
from k8s_gpu_mcp.host import reset as host_reset
from k8s_gpu_mcp.host import signals
from k8s_gpu_mcp.host.procfs import start_ticks
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import Source
from k8s_gpu_mcp.tools._confirm import AuditRecord, Refusal
from k8s_gpu_mcp.tools._remediation_plan import (
    KillPlan,
    KillTarget,
    ProcessGpu,
    find_again,
    gpu_holders,
    to_mib,
)

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

KILL_WAIT_S = 5.0  # after SIGKILL, how long to wait for the exit
RELEASE_WAIT_S = 5.0  # after the exit, how long to wait for NVML to drop the process
POLL_S = 0.1


class KillResult(ToolModel):
    source: Source
    outcome: str = Field(description="dry-run, done (the process exited) or failed")
    plan: KillPlan
    confirmation: str
    signals_sent: list[str] = Field(default_factory=list)
    exited: bool | None = None
    still_listed_by_nvml: bool | None = Field(None, description="NVML still lists the pid on a GPU")
    memory_freed_mib: int | None = Field(
        None, description="drop in the GPUs' used memory, read back from NVML"
    )
    gpus_after: list[ProcessGpu] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    audit: AuditRecord


# ---- kill: acting ----------------------------------------------------------------------------
async def _wait_exit(pid: int, fd: int | None, proc_root: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while signals.alive(pid, fd, proc_root):
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(POLL_S)
    return True


def _memory_used(app: AgentApp, ref: GpuRef) -> int | None:
    adapter = app.backend.adapter
    try:
        mem = adapter.memory(adapter.reader(ref, identity=False))
    except GpuLost:
        return None
    return mem.used if mem is not None else None


async def execute_kill(
    app: AgentApp, target: KillTarget, signal: str, grace: int, result: KillResult
) -> None:
    """Re-verify, signal, escalate, and read NVML back into ``result``."""
    pid, proc_root = target.pid, app.settings.proc_root
    ticks = target.info.start_ticks if target.info else None
    if ticks is None:
        raise Refusal(f"pid {pid}: its start time is unreadable, so the approval cannot be bound to it")
    refs = [ref for ref, _ in target.holders]
    before = {ref.index: _memory_used(app, ref) for ref in refs}
    with signals.pidfd(pid) as fd:
        holders, _, _ = gpu_holders(app, pid)
        if {r.index for r, _ in holders} != {r.index for r in refs}:
            raise Refusal(f"pid {pid} is no longer on the same GPUs as when it was confirmed")
        if ticks is not None and start_ticks(proc_root, pid) != ticks:
            raise Refusal(f"pid {pid} now names a different process (its start time changed): pid reused")
        if not signals.alive(pid, fd, proc_root):
            raise Refusal(f"pid {pid} exited before it was signalled")
        try:
            signals.send(pid, signals.SIGNALS[signal], fd)
            result.signals_sent.append(signal)
            exited = await _wait_exit(pid, fd, proc_root, grace)
            if not exited and signal != "KILL":
                signals.send(pid, signals.SIGNALS["KILL"], fd)
                result.signals_sent.append("KILL")
                exited = await _wait_exit(pid, fd, proc_root, KILL_WAIT_S)
        except ProcessLookupError:
            exited = True
        except PermissionError as exc:
            result.notes.append(f"permission denied signalling pid {pid}: {exc}")
            exited = False
    result.exited = exited
    deadline = time.monotonic() + (RELEASE_WAIT_S if exited else 0)
    while True:
        still = bool(gpu_holders(app, pid)[0])
        if not still or time.monotonic() >= deadline:
            break
        await anyio.sleep(POLL_S)
    result.still_listed_by_nvml = still
    freed = 0
    known = True
    for ref in refs:
        after = _memory_used(app, ref)
        result.gpus_after.append(
            ProcessGpu(index=ref.index, uuid=ref.uuid, used_memory_mib=None, memory_used_mib=to_mib(after))
        )
        held = before.get(ref.index)
        if held is None or after is None:
            known = False
        else:
            freed += max(0, held - after)
    result.memory_freed_mib = freed // MIB if known else None
    if not known:
        result.notes.append("GPU memory could not be read back from NVML: memory_freed_mib is unknown")
    if exited and still:
        result.notes.append(
            f"pid {pid} exited but NVML still lists it after {RELEASE_WAIT_S:.0f}s: the driver has not released "
            "its memory; check list_gpu_processes again, then consider reset_gpu"
        )
    result.outcome = "done" if exited else "failed"


# ---- reset: acting ---------------------------------------------------------------------------
async def run_reset(app: AgentApp, ref: GpuRef, method: Any) -> tuple[bool, str, dict[str, Any]]:
    """Run the reset; (it worked, its output, the reset state read back from NVML afterwards)."""
    ok, output = await anyio.to_thread.run_sync(host_reset.run_reset, method)
    after = await anyio.to_thread.run_sync(read_reset_state, app.backend.adapter, find_again(app, ref))
    return ok, output, after.as_json()
