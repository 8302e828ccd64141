"""kill_gpu_process and reset_gpu, planning: what a request would do to the node as it is now.

A kill is planned against NVML's process lists and /proc (``plan_kill`` raises ``Refusal``); a reset
against the GPU's reset state and the host's reset paths, judged by the pure rules in
``diagnose/reset.py``. Nothing here acts (``_remediation_act.py`` does).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from k8s_gpu_mcp.diagnose import reset as reset_rules
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.processes import MIB, NvmlProcess, read_process_lists
from k8s_gpu_mcp.gpu.readings import ResetState
from k8s_gpu_mcp.host import reset as host_reset
from k8s_gpu_mcp.host import signals
from k8s_gpu_mcp.host.procfs import ProcInfo, boot_time, proc_root_problem, read_passwd, read_proc
from k8s_gpu_mcp.k8s.pods import PodRef, lookup_pods
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import clip, select_gpus, valid_choices
from k8s_gpu_mcp.tools._confirm import Refusal

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

PID_MAX_LIMIT = 4194304  # the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger
MAX_GRACE_S = 300
REAL_HOST_PATHS = ("/", "/sys", "/host")  # a mock backend pointed at one of these would touch hardware


# ---- models ----------------------------------------------------------------------------------
class ProcessGpu(ToolModel):
    index: int
    uuid: str | None
    used_memory_mib: int | None
    memory_used_mib: int | None = Field(None, description="the GPU's used memory (NVML)")


class KillPlan(ToolModel):
    pid: int
    start_time: str | None = Field(
        description="when the process started (UTC): with the pid, the process the approval covers"
    )
    start_ticks: int | None = Field(description="its start time in clock ticks after boot (/proc/PID/stat)")
    command: str | None
    user: str | None
    state: str | None
    container_id: str | None
    pod: str | None = Field(description="namespace/name, when the Kubernetes API answered")
    pod_uid: str | None
    gpus: list[ProcessGpu]
    signal: str
    grace_seconds: int
    then_kill: bool = Field(description="SIGKILL follows if the process outlives the grace period")


class Precondition(ToolModel):
    name: str
    ok: bool | None = Field(description="null when it could not be checked")
    blocking: bool = Field(description="the reset is refused while this is not ok")
    detail: str


# ---- kill: planning --------------------------------------------------------------------------
@dataclass
class KillTarget:
    pid: int
    holders: list[tuple[GpuRef, NvmlProcess]]
    info: ProcInfo | None
    pod: PodRef | None

    def plan(self, signal: str, grace: int) -> KillPlan:
        info, pod = self.info, self.pod
        cg = info.cgroup if info else None
        return KillPlan(
            pid=self.pid,
            start_time=info.start_time.isoformat(timespec="seconds") if info and info.start_time else None,
            start_ticks=info.start_ticks if info else None,
            command=info.cmdline if info else None,
            user=info.user if info else None,
            state=info.state_name if info else None,
            container_id=cg.container_id if cg else None,
            pod=f"{pod.namespace}/{pod.name}" if pod else None,
            pod_uid=cg.pod_uid if cg else None,
            gpus=[
                ProcessGpu(index=ref.index, uuid=ref.uuid, used_memory_mib=to_mib(p.used_memory))
                for ref, p in self.holders
            ],
            signal=signal,
            grace_seconds=grace,
            then_kill=signal != "KILL",
        )


def to_mib(value: int | None) -> int | None:
    return value // MIB if value is not None else None


def one_gpu(app: AgentApp, gpu: Any) -> GpuRef:
    if isinstance(gpu, list):
        raise Refusal(f"'gpu' names one GPU, not a list; {valid_choices(app.backend.adapter.gpus())}")
    try:
        refs = select_gpus(app, gpu)
    except ToolError as exc:
        raise Refusal(str(exc)) from None
    return refs[0]


def gpu_holders(app: AgentApp, pid: int) -> tuple[list[tuple[GpuRef, NvmlProcess]], list[int], list[str]]:
    """GPUs whose NVML process list has ``pid``; every pid seen; GPUs whose list could not be read."""
    holders, seen, unreadable = [], [], []
    for ref in app.backend.adapter.gpus():
        if ref.lost_reason:
            unreadable.append(f"GPU {ref.index}: {ref.lost_reason}")
            continue
        try:
            procs, why = read_process_lists(app.backend.adapter, ref)
        except GpuLost as lost:
            unreadable.append(f"GPU {ref.index}: GpuIsLost: {lost}")
            continue
        if procs is None:
            unreadable.append(f"GPU {ref.index}: {'; '.join(why.values())}")
            continue
        for p in procs:
            seen.append(p.pid)
            if p.pid == pid:
                holders.append((ref, p))
    return holders, sorted(set(seen)), unreadable


def check_kill_args(pid: Any, signal: Any, grace_seconds: Any) -> None:
    if isinstance(pid, bool) or not isinstance(pid, int):
        raise Refusal(f"pid must be an integer, got {clip(pid)}")
    if pid <= 1:
        raise Refusal(
            f"pid {pid}: must be greater than 1 (1 is init; 0 and negatives address process groups)"
        )
    if pid >= PID_MAX_LIMIT:
        raise Refusal(f"pid {pid}: not a Linux pid (they are below {PID_MAX_LIMIT})")
    if pid == os.getpid():
        raise Refusal(f"pid {pid} is this agent itself")
    if pid == os.getppid():
        raise Refusal(f"pid {pid} is this agent's parent")
    if signal not in signals.SIGNALS:
        raise Refusal(f"signal {clip(signal)}: valid signals: {', '.join(signals.SIGNALS)}")
    if (
        isinstance(grace_seconds, bool)
        or not isinstance(grace_seconds, int)
        or not 0 <= grace_seconds <= MAX_GRACE_S
    ):
        raise Refusal(f"grace_seconds {clip(grace_seconds)}: must be an integer from 0 to {MAX_GRACE_S}")


def plan_kill(app: AgentApp, pid: Any, gpu: Any, signal: Any, grace_seconds: Any) -> KillTarget:
    """Validate a kill request against the node as it is now; raises Refusal."""
    check_kill_args(pid, signal, grace_seconds)
    wanted = one_gpu(app, gpu) if gpu is not None else None
    holders, seen, unreadable = gpu_holders(app, pid)
    if not holders:
        also = f"; could not read: {'; '.join(unreadable)}" if unreadable else ""
        raise Refusal(
            f"pid {pid} is not a GPU process on this node (NVML lists pids {seen or 'none'}){also}; "
            "see list_gpu_processes"
        )
    if wanted is not None and wanted.index not in {ref.index for ref, _ in holders}:
        where = ", ".join(f"GPU {ref.index} ({ref.uuid})" for ref, _ in holders)
        raise Refusal(f"pid {pid} runs on {where}, not on GPU {wanted.index} ({wanted.uuid})")
    mock = app.backend.mock is not None
    if mock:
        if app.backend.simulated_pid(pid):
            raise Refusal(
                f"pid {pid} is a simulated GPU process (mock backend); only processes registered with "
                "real: true are signalled, so a host process that happens to share the pid is never hit"
            )
    else:
        own = proc_root_problem("/proc")
        if own:
            raise Refusal(
                f"the agent is not in the host PID namespace, so host pid {pid} cannot be signalled: {own}"
            )
    settings = app.settings
    problem = proc_root_problem(settings.proc_root) if not mock else None
    if problem:
        raise Refusal(f"cannot verify pid {pid}: {problem}")
    info = read_proc(settings.proc_root, pid, read_passwd(settings.host_root), boot_time(settings.proc_root))
    held = sum(p.used_memory or 0 for _, p in holders) // MIB
    if not info.exists:
        raise Refusal(
            f"pid {pid} no longer exists, but NVML still charges {held} MiB to it: no signal can free that "
            "memory; once other work is moved off the GPU, reset_gpu releases it"
        )
    if info.defunct:
        raise Refusal(
            f"pid {pid} is defunct (zombie): signals do nothing to it; its parent pid {info.ppid} must reap it "
            "(signal or restart the parent, or delete its pod)"
        )
    pod = None
    uid = info.cgroup.pod_uid if info.cgroup else None
    if uid:
        lookup = lookup_pods(app.backend.node_name, mock=mock)
        pod = (lookup.pods or {}).get(uid)
    return KillTarget(pid, holders, info, pod)


def kill_question(app: AgentApp, target: KillTarget, signal: str, grace: int) -> str:
    plan = target.plan(signal, grace)
    gpus = ", ".join(f"GPU {g.index} ({g.uuid}, {g.used_memory_mib} MiB)" for g in plan.gpus)
    then = f", then SIGKILL if it is still running after {grace}s" if plan.then_kill else ""
    started = f"started {plan.start_time or 'at an unknown time'}, start ticks {plan.start_ticks}"
    return (
        f"Send SIG{signal} to pid {plan.pid} ({started}) on node {app.backend.node_name}{then}?\n"
        f"This approval covers only that process: if pid {plan.pid} now names another one (a "
        "different start time), nothing is sent.\n"
        f"command: {plan.command}\nuser: {plan.user}\npod: {plan.pod or plan.pod_uid or 'not in a pod'}\n"
        f"GPU memory: {gpus}"
    )


# ---- reset: planning -------------------------------------------------------------------------
def reset_preconditions(app: AgentApp, ref: GpuRef, state: ResetState) -> tuple[list[Precondition], Any]:
    """The reset's preconditions (diagnose/reset.py over the state and the host) and the method found."""
    method, looked = (None, ["no PCI bus id"])
    if ref.bus_id:
        method, looked = host_reset.find_method(app.settings.host_root, app.settings.sys_root, ref.bus_id)
    settings = app.settings
    real = None
    if app.backend.mock is not None:
        real = [p for p in (settings.sys_root, settings.host_root) if os.path.realpath(p) in REAL_HOST_PATHS]
    checks = reset_rules.preconditions(state, method.describe() if method else None, looked, real)
    return [Precondition(**vars(c)) for c in checks], method


def blocking(checks: list[Precondition]) -> list[Precondition]:
    """The preconditions that refuse the reset: blocking and not proven ok."""
    return [c for c in checks if c.blocking and c.ok is not True]


def reset_question(app: AgentApp, ref: GpuRef, method: Any, state: ResetState) -> str:
    return (
        f"Reset GPU {ref.index} ({ref.uuid}, {ref.bus_id}) on node {app.backend.node_name}?\n"
        f"method: {method.describe() if method else 'none'}\n"
        f"GPU memory in use: {state.memory_used_mib} MiB; every context on this GPU is destroyed."
    )


def find_again(app: AgentApp, ref: GpuRef) -> GpuRef:
    for new in app.backend.adapter.gpus(refresh=True):
        if new.bus_id == ref.bus_id or new.index == ref.index:
            return new
    return ref
