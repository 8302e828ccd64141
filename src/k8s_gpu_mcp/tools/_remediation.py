"""kill_gpu_process and reset_gpu: operator-mode remediation, confirmed by a human and audited.

Registered only with ``--mode=operator``. Both tools re-check their target right before acting,
ask the user through MCP elicitation when the client supports it (else require ``confirm=true``),
support ``dry_run``, and write one audit line per attempt (see ``docs/security.md``).

No ``from __future__ import annotations`` here: the SDK resolves the ``Resolve(...)`` markers
in these signatures at registration, and closures are only visible to it as live objects.
"""

import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field, StrictInt, StrictStr

from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.processes import MIB, NvmlProcess, read_process_lists
from k8s_gpu_mcp.gpu.readings import ResetState
from k8s_gpu_mcp.gpu.reset_state import read_reset_state
from k8s_gpu_mcp.host import reset as host_reset
from k8s_gpu_mcp.host import signals
from k8s_gpu_mcp.host.procfs import (
    ProcInfo,
    boot_time,
    proc_root_problem,
    read_passwd,
    read_proc,
    start_ticks,
)
from k8s_gpu_mcp.k8s.pods import PodRef, lookup_pods
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import DESTRUCTIVE, Source, clip, select_gpus, source, valid_choices
from k8s_gpu_mcp.tools._confirm import (
    INVALID,
    NO_ELICITATION,
    NOT_NEEDED,
    Approval,
    Auditor,
    AuditRecord,
    Confirm,
    DryRun,
    Refusal,
    can_elicit,
    confirmation,
)
from k8s_gpu_mcp.tools.verify import ResetRecord

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

PID_MAX_LIMIT = 4194304  # the kernel's PID_MAX_LIMIT on 64-bit: no pid is larger
MAX_GRACE_S = 300
KILL_WAIT_S = 5.0  # after SIGKILL, how long to wait for the exit
RELEASE_WAIT_S = 5.0  # after the exit, how long to wait for NVML to drop the process
POLL_S = 0.1

OneGpu = Annotated[
    StrictInt | StrictStr | None,
    Field(description="GPU index, UUID or PCI bus id"),
]


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


class Precondition(ToolModel):
    name: str
    ok: bool | None = Field(description="null when it could not be checked")
    blocking: bool = Field(description="the reset is refused while this is not ok")
    detail: str


class ResetResult(ToolModel):
    source: Source
    outcome: str = Field(description="dry-run, done or failed")
    gpu: int
    uuid: str | None
    pci_bus_id: str | None
    preconditions: list[Precondition]
    method: str | None = Field(description="what runs: the nvidia-smi command line or the sysfs write")
    confirmation: str
    output: str | None = None
    state_before: dict[str, Any]
    state_after: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)
    audit: AuditRecord


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
                ProcessGpu(index=ref.index, uuid=ref.uuid, used_memory_mib=_mib(p.used_memory))
                for ref, p in self.holders
            ],
            signal=signal,
            grace_seconds=grace,
            then_kill=signal != "KILL",
        )


def _mib(value: int | None) -> int | None:
    return value // MIB if value is not None else None


def _one_gpu(app: "AgentApp", gpu: Any) -> GpuRef:
    if isinstance(gpu, list):
        raise Refusal(f"'gpu' names one GPU, not a list; {valid_choices(app.backend.adapter.gpus())}")
    try:
        refs = select_gpus(app, gpu)
    except ToolError as exc:
        raise Refusal(str(exc)) from None
    return refs[0]


def _holders(app: "AgentApp", pid: int) -> tuple[list[tuple[GpuRef, NvmlProcess]], list[int], list[str]]:
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


def plan_kill(app: "AgentApp", pid: Any, gpu: Any, signal: Any, grace_seconds: Any) -> KillTarget:
    """Validate a kill request against the node as it is now; raises Refusal."""
    check_kill_args(pid, signal, grace_seconds)
    wanted = _one_gpu(app, gpu) if gpu is not None else None
    holders, seen, unreadable = _holders(app, pid)
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


def kill_question(app: "AgentApp", target: KillTarget, signal: str, grace: int) -> str:
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


# ---- kill: acting ----------------------------------------------------------------------------
async def _wait_exit(pid: int, fd: int | None, proc_root: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while signals.alive(pid, fd, proc_root):
        if time.monotonic() >= deadline:
            return False
        await anyio.sleep(POLL_S)
    return True


def _memory_used(app: "AgentApp", ref: GpuRef) -> int | None:
    adapter = app.backend.adapter
    try:
        mem = adapter.memory(adapter.reader(ref, identity=False))
    except GpuLost:
        return None
    return mem.used if mem is not None else None


async def execute_kill(
    app: "AgentApp", target: KillTarget, signal: str, grace: int, result: KillResult
) -> None:
    """Re-verify, signal, escalate, and read NVML back into ``result``."""
    pid, proc_root = target.pid, app.settings.proc_root
    ticks = target.info.start_ticks if target.info else None
    if ticks is None:
        raise Refusal(f"pid {pid}: its start time is unreadable, so the approval cannot be bound to it")
    refs = [ref for ref, _ in target.holders]
    before = {ref.index: _memory_used(app, ref) for ref in refs}
    with signals.pidfd(pid) as fd:
        holders, _, _ = _holders(app, pid)
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
        still = bool(_holders(app, pid)[0])
        if not still or time.monotonic() >= deadline:
            break
        await anyio.sleep(POLL_S)
    result.still_listed_by_nvml = still
    freed = 0
    known = True
    for ref in refs:
        after = _memory_used(app, ref)
        result.gpus_after.append(
            ProcessGpu(index=ref.index, uuid=ref.uuid, used_memory_mib=None, memory_used_mib=_mib(after))
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


# ---- reset -----------------------------------------------------------------------------------
def reset_preconditions(app: "AgentApp", ref: GpuRef, state: ResetState) -> tuple[list[Precondition], Any]:
    out: list[Precondition] = []
    why = state.unavailable
    pids = state.process_pids
    if state.lost:
        out.append(
            Precondition(name="gpu_reachable", ok=False, blocking=True, detail=f"NVML: {why.get('*')}")
        )
    if pids is None:
        detail = "; ".join(v for k, v in why.items() if "processes" in k or k == "*") or "unreadable"
        out.append(
            Precondition(
                name="no_processes", ok=None, blocking=True, detail=f"cannot list processes: {detail}"
            )
        )
    else:
        out.append(
            Precondition(
                name="no_processes",
                ok=not pids,
                blocking=True,
                detail=f"NVML lists pids {pids}: kill them first (kill_gpu_process)"
                if pids
                else "none listed",
            )
        )
    mig = state.mig_mode_current
    mig_why = why.get("mig_mode_current", "")
    if mig is None and mig_why.startswith("NotSupported"):
        out.append(Precondition(name="mig", ok=True, blocking=True, detail="this GPU has no MIG"))
    elif mig is None:
        out.append(Precondition(name="mig", ok=None, blocking=True, detail=f"MIG mode unreadable: {mig_why}"))
    else:
        pending = state.mig_mode_pending
        detail = (
            "MIG enabled: destroy its compute and GPU instances first (nvidia-smi mig -dci; -dgi)"
            if mig
            else "MIG disabled"
        )
        if pending is not None and pending != mig:
            detail += (
                f"; pending MIG mode {'enabled' if pending else 'disabled'} takes effect with this reset"
            )
        out.append(Precondition(name="mig", ok=not mig, blocking=True, detail=detail))
    persistence = state.persistence_mode
    out.append(
        Precondition(
            name="persistence_mode",
            ok=True if persistence is not None else None,
            blocking=False,
            detail=(
                f"persistence mode {'on' if persistence else 'off'}: reported only; nvidia-smi refuses, with a "
                "message shown in 'output', when the driver needs it changed"
                if persistence is not None
                else f"unreadable: {why.get('persistence_mode')}"
            ),
        )
    )
    method, looked = (None, ["no PCI bus id"])
    if ref.bus_id:
        method, looked = host_reset.find_method(app.settings.host_root, app.settings.sys_root, ref.bus_id)
    out.append(
        Precondition(
            name="reset_method",
            ok=method is not None,
            blocking=True,
            detail=method.describe() if method else f"no reset method: {'; '.join(looked)}",
        )
    )
    if method is not None and app.backend.mock is not None:
        real = [
            p
            for p in (app.settings.sys_root, app.settings.host_root)
            if os.path.realpath(p) in ("/", "/sys", "/host")
        ]
        out.append(
            Precondition(
                name="mock_safety",
                ok=not real,
                blocking=True,
                detail=(
                    f"mock backend with real host paths {real}: the reset would touch real hardware; point "
                    "--sys-root and --host-root at a test tree"
                    if real
                    else "mock backend on a test tree"
                ),
            )
        )
    out.append(
        Precondition(
            name="peers",
            ok=None,
            blocking=False,
            detail=(
                "not checked (out of scope): processes on other GPUs using this GPU's memory over NVLink/P2P, and "
                "NVSwitch/Fabric Manager requirements on HGX systems; nvidia-smi refuses when it sees them, the "
                "sysfs reset does not"
            ),
        )
    )
    return out, method


def reset_question(app: "AgentApp", ref: GpuRef, method: Any, state: ResetState) -> str:
    return (
        f"Reset GPU {ref.index} ({ref.uuid}, {ref.bus_id}) on node {app.backend.node_name}?\n"
        f"method: {method.describe() if method else 'none'}\n"
        f"GPU memory in use: {state.memory_used_mib} MiB; every context on this GPU is destroyed."
    )


def _find(app: "AgentApp", ref: GpuRef) -> GpuRef:
    for new in app.backend.adapter.gpus(refresh=True):
        if new.bus_id == ref.bus_id or new.index == ref.index:
            return new
    return ref


# ---- registration ----------------------------------------------------------------------------
def register(app: "AgentApp") -> None:
    def identify_kill(pid: int, gpu: Any, signal: str, grace_seconds: int) -> Any:
        """The one plan per call: the question names its pid and start time, and the tool acts on
        that same plan (re-verified right before the signal), so an approval never carries over to
        a process that reused the pid. A Refusal is returned, for the tool to audit and raise."""
        try:
            return plan_kill(app, pid, gpu, signal, grace_seconds)
        except Refusal as exc:
            return exc

    def ask_kill(
        target: Annotated[Any, Resolve(identify_kill)],
        signal: str,
        grace_seconds: int,
        dry_run: bool,
        ctx: Context,
    ) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        if isinstance(target, Refusal):
            return INVALID
        return Elicit(kill_question(app, target, signal, grace_seconds), Approval)

    async def kill_gpu_process(
        pid: Annotated[StrictInt, Field(description="host pid, as list_gpu_processes shows it")],
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_kill)],
        asked: Annotated[Any, Resolve(identify_kill)],
        gpu: OneGpu = None,
        signal: Annotated[
            StrictStr,
            Field(description="TERM, KILL or INT", json_schema_extra={"enum": ["TERM", "KILL", "INT"]}),
        ] = "TERM",
        grace_seconds: Annotated[StrictInt, Field(description=f"0 to {MAX_GRACE_S}")] = 10,
        dry_run: DryRun = False,
        confirm: Confirm = False,
    ) -> KillResult:
        """Stop a process that holds a GPU: send SIGTERM (or INT/KILL), wait grace_seconds, then SIGKILL
        if it is still running, and report the GPU memory freed as NVML reads it back. The pid must be
        on NVML's process list for a GPU of this node (checked again right before signalling); pass
        'gpu' to insist on which GPU. The user confirms through an elicitation prompt when the client
        supports it, else the call needs confirm=true, passed only after the user agreed; dry_run=true
        returns the plan without acting. Every attempt is audited."""
        args = {
            "pid": pid,
            "gpu": gpu,
            "signal": signal,
            "grace_seconds": grace_seconds,
            "dry_run": dry_run,
            "confirm": confirm,
        }
        auditor = Auditor(app, "kill_gpu_process", args)
        with auditor.deciding():
            if isinstance(asked, Refusal):
                raise asked
            target: KillTarget = asked
            plan = target.plan(signal, grace_seconds)
            if dry_run:
                record = auditor.record("dry-run", plan=plan.model_dump(mode="json"))
                return KillResult(
                    source=source(app),
                    outcome="dry-run",
                    plan=plan,
                    confirmation="not needed (dry run)",
                    audit=record,
                )
            how = confirmation(approval, confirm)
            auditor.record("approved", plan=plan.model_dump(mode="json"), confirmation=how)
        result = KillResult(
            source=source(app),
            outcome="failed",
            plan=plan,
            confirmation=how,
            audit=AuditRecord(written=False),
        )
        try:
            await execute_kill(app, target, signal, grace_seconds, result)
        except Refusal as exc:
            raise auditor.refuse(str(exc), plan=plan.model_dump(mode="json")) from None
        result.audit = auditor.final(
            result.outcome,
            plan=plan.model_dump(mode="json"),
            confirmation=how,
            signals_sent=result.signals_sent,
            exited=result.exited,
            memory_freed_mib=result.memory_freed_mib,
        )
        return result

    def ask_reset(gpu: Any, dry_run: bool, ctx: Context) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        try:
            ref = _one_gpu(app, gpu)
        except Refusal:
            return INVALID
        state = read_reset_state(app.backend.adapter, ref)
        checks, method = reset_preconditions(app, ref, state)
        if any(c.blocking and c.ok is not True for c in checks):
            return INVALID
        return Elicit(reset_question(app, ref, method, state), Approval)

    async def reset_gpu(
        gpu: Annotated[StrictInt | StrictStr, Field(description="GPU index, UUID or PCI bus id")],
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_reset)],
        dry_run: DryRun = False,
        confirm: Confirm = False,
    ) -> ResetResult:
        """Reset one GPU (clears its contexts and volatile ECC counters, applies pending row remaps, page
        retirements and MIG mode) after checking and reporting each precondition: no processes on it, MIG
        disabled, a reset method available (the host's nvidia-smi --gpu-reset, else a sysfs PCI reset),
        and persistence mode (reported). Peer GPUs using its memory over NVLink are not checked. The user
        confirms through elicitation when the client supports it, else the call needs confirm=true, passed
        only after the user agreed; dry_run=true returns the checks and the method without acting. NVML
        state is read back afterwards. Every attempt is audited."""
        auditor = Auditor(app, "reset_gpu", {"gpu": gpu, "dry_run": dry_run, "confirm": confirm})
        with auditor.deciding():
            ref = _one_gpu(app, gpu)
            state = await anyio.to_thread.run_sync(read_reset_state, app.backend.adapter, ref)
            checks, method = reset_preconditions(app, ref, state)
            base = {
                "source": source(app),
                "gpu": ref.index,
                "uuid": ref.uuid,
                "pci_bus_id": ref.bus_id,
                "preconditions": checks,
                "method": method.describe() if method else None,
                "state_before": state.as_json(),
            }
            target = {"gpu": ref.index, "uuid": ref.uuid, "pci_bus_id": ref.bus_id, "method": base["method"]}
            if dry_run:
                record = auditor.record(
                    "dry-run", target=target, preconditions=[c.model_dump() for c in checks]
                )
                return ResetResult(
                    **base, outcome="dry-run", confirmation="not needed (dry run)", audit=record
                )
            failed = [c for c in checks if c.blocking and c.ok is not True]
            if failed:
                raise Refusal("; ".join(f"{c.name}: {c.detail}" for c in failed))
            how = confirmation(approval, confirm)
            # Re-check right before acting: a process may have started since the question was asked.
            again = read_reset_state(app.backend.adapter, ref)
            if again.process_pids != []:
                raise Refusal(f"processes appeared on GPU {ref.index}: {again.process_pids}")
            auditor.record("approved", target=target, confirmation=how)
        assert method is not None
        reset_at = datetime.now(UTC)
        ok, output = await anyio.to_thread.run_sync(host_reset.run_reset, method)
        if ok:  # verify_gpu_after_reset compares with the state before and checks XIDs since then
            app.resets[ref.index] = ResetRecord(reset_at, state)
        after = (
            await anyio.to_thread.run_sync(read_reset_state, app.backend.adapter, _find(app, ref))
        ).as_json()
        notes = []
        if app.backend.mock is not None:
            notes.append(
                "mock backend: the fake NVML state does not change on reset; state_after is the simulated GPU as it was"
            )
        result = ResetResult(
            **base, outcome="done" if ok else "failed", confirmation=how, output=output, state_after=after,
            notes=notes, audit=AuditRecord(written=False),
        )  # fmt: skip
        result.audit = auditor.final(
            result.outcome, target=target, confirmation=how, output=output, state_after=after
        )
        return result

    app.add_tool(kill_gpu_process, title="Kill a GPU process", annotations=DESTRUCTIVE)
    app.add_tool(reset_gpu, title="Reset a GPU", annotations=DESTRUCTIVE)
