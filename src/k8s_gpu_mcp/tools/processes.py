"""list_gpu_processes: who holds each GPU, from NVML, /proc, cgroups and the Kubernetes API."""

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field

from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.mig import read_mig
from k8s_gpu_mcp.gpu.processes import MIB, GpuProcesses, NvmlProcess, read_gpu_processes
from k8s_gpu_mcp.host.procfs import ProcInfo, boot_time, proc_root_problem, read_passwd, read_proc
from k8s_gpu_mcp.k8s.pods import PodLookup, lookup_pods
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuSelector,
    NodeAnswer,
    Source,
    fold_unavailable,
    full_only,
    judge_each,
    node_answer,
    select_gpus,
    source,
    summary_only,
)
from k8s_gpu_mcp.vocabulary import Detail, DetailLevel

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "processes"


class GpuProcess(ToolModel):
    pid: int = Field(description="host PID, as NVML reports it")
    type: str = Field(description="compute, graphics or compute+graphics")
    used_memory_mib: int | None = Field(
        description="GPU memory this process holds; null when NVML has no figure"
    )
    gpu_instance_id: int | None = Field(None, description="MIG GPU instance, null outside MIG")
    compute_instance_id: int | None = Field(None, description="MIG compute instance, null outside MIG")
    mig_profile: str | None = Field(
        None, description="the MIG device's profile (1g.10gb ...), null outside MIG"
    )
    mig_device_uuid: str | None = Field(None, description="the MIG device's UUID (MIG-...), null outside MIG")
    mig_device_index: int | None = Field(None, description="the MIG device's index on its GPU")
    command: str | None = None
    user: str | None = Field(None, description="user name from the host's /etc/passwd, else the uid")
    uid: int | None = None
    state: str | None = Field(None, description="process state from /proc (running, sleeping, zombie, ...)")
    start_time: datetime | None = None
    container_id: str | None = None
    pod_uid: str | None = None
    pod_name: str | None = None
    pod_namespace: str | None = None
    zombie: bool | None = Field(
        description="holds GPU memory but the pid is gone, defunct, or its pod no longer exists; "
        "null when /proc cannot tell (pod existence is checked only when the Kubernetes API answered)"
    )
    zombie_reasons: list[str] = Field(default_factory=list)
    unavailable: dict[str, str] = Field(default_factory=dict, description="field -> why it is null")


class GpuProcessList(ToolModel):
    index: int
    uuid: str | None
    pci_bus_id: str | None = Field(None, description="NVML form, e.g. 00000000:3B:00.0")
    name: str | None
    lost: bool = False
    processes: list[GpuProcess] | None = Field(description="null when NVML could not list them")
    memory_used_mib: int | None = Field(None, description="NVML used memory, excluding driver-reserved")
    memory_reserved_mib: int | None = None
    memory_total_mib: int | None = None
    process_memory_mib: int | None = Field(None, description="sum of the listed processes' memory")
    orphan_memory_mib: int | None = Field(
        None, description="used memory no listed process accounts for; null (with the reason) when unknown"
    )
    unavailable: dict[str, str] = Field(default_factory=dict)


PROCESS_LINES = 32  # a summary names at most this many processes; detail=full lists every one


class ProcessesResult(NodeAnswer):
    proc_root: str
    findings: list[str] = Field(description="zombies and orphaned memory, one line each")
    processes: list[str] | None = summary_only(
        f"one line per process (at most {PROCESS_LINES}): GPU, pid, command, memory, state, pod"
    )
    gpus: list[GpuProcessList] | None = full_only("every process of every GPU with all it is known by")
    source: Source


def reasons(g: GpuProcessList) -> list[health.Reason]:
    """get_gpu_health's process rules on this GPU's list: zombies, memory no process accounts for;
    a list that could not be read is unknown."""
    procs = g.processes
    if procs is None:
        why = next(
            (g.unavailable[k] for k in ("compute_processes", "graphics_processes") if k in g.unavailable),
            None,
        )
        inputs = health.HealthInputs(
            index=g.index, failed_checks={"processes": f"process list unreadable: {why}"}
        )
        return health.checks(inputs)
    inputs = health.HealthInputs(
        index=g.index,
        process_count=len({p.pid for p in procs}),
        process_memory_mib=g.process_memory_mib,
        memory_total_mib=g.memory_total_mib,
        memory_used_mib=g.memory_used_mib,
        process_list_complete=g.orphan_memory_mib is not None,
        process_list_reason=g.unavailable.get("orphan_memory_mib"),
        zombies=[
            health.Zombie(p.pid, p.used_memory_mib, "; ".join(p.zombie_reasons)) for p in procs if p.zombie
        ],
    )
    return health.processes(inputs)


def process_line(index: int, p: GpuProcess) -> str:
    memory = f"{p.used_memory_mib} MiB" if p.used_memory_mib is not None else "memory unknown"
    parts = [p.command[:80] if p.command else "command unknown", memory, p.state or "state unknown"]
    if p.gpu_instance_id is not None:
        uuid = f" {p.mig_device_uuid}" if p.mig_device_uuid else ""
        parts.append(
            f"MIG {p.mig_profile or 'profile unknown'} GI {p.gpu_instance_id}/CI {p.compute_instance_id}{uuid}"
        )
    if p.pod_name:
        parts.append(f"pod {p.pod_namespace}/{p.pod_name}")
    elif p.pod_uid:
        parts.append(f"pod uid {p.pod_uid}")
    if p.zombie:
        parts.append("ZOMBIE")
    return f"GPU {index} pid {p.pid}: " + ", ".join(parts)


def answer(
    app: "AgentApp", items: list[GpuProcessList], node_unavailable: dict[str, str], detail: DetailLevel
) -> ProcessesResult:
    judged = judge_each(items, reasons)
    head = node_answer(
        detail,
        judged,
        fold_unavailable(
            node_unavailable, {g.index: g.unavailable for g in items}, keep_not_supported=detail == "full"
        ),
        "No action: no zombie holds GPU memory and no memory is unaccounted for.",
    )
    result = ProcessesResult(
        **head, proc_root=app.settings.proc_root, findings=findings(items), source=source(app)
    )
    if detail == "full":
        result.gpus = items
    else:
        lines = [process_line(g.index, p) for g in items for p in g.processes or []]
        extra = len(lines) - PROCESS_LINES
        result.processes = lines[:PROCESS_LINES] + (
            [f"... and {extra} more (detail=full lists them)"] if extra > 0 else []
        )
    return result


def _mib(value: int | None) -> int | None:
    return value // MIB if value is not None else None


def enrich(p: NvmlProcess, info: ProcInfo | None, proc_problem: str | None, pods: PodLookup) -> GpuProcess:
    """Join NVML's view with /proc and the pod list, and judge zombie-ness."""
    out = GpuProcess(
        pid=p.pid,
        type=p.type,
        used_memory_mib=_mib(p.used_memory),
        gpu_instance_id=p.gpu_instance_id,
        compute_instance_id=p.compute_instance_id,
        zombie=None,
    )
    if p.used_memory is None:
        out.unavailable["used_memory_mib"] = "NVML reports no usedGpuMemory for this process"
    if proc_problem or info is None:
        out.unavailable["*"] = proc_problem or "not read"
        out.unavailable["zombie"] = proc_problem or "not read"
        return out
    held = f"{out.used_memory_mib} MiB" if out.used_memory_mib is not None else "GPU memory"
    if not info.exists:
        out.zombie = True
        out.zombie_reasons.append(f"pid {p.pid} holds {held} but no longer exists in /proc")
        out.unavailable.update(info.unavailable)
        return out
    out.command, out.user, out.uid = info.cmdline, info.user, info.uid
    out.state, out.start_time = info.state_name, info.start_time
    out.unavailable.update(info.unavailable)
    out.zombie = False
    if info.defunct:
        out.zombie = True
        out.zombie_reasons.append(
            f"pid {p.pid} is defunct (state {info.state}) and still holds {held}; "
            f"its parent (pid {info.ppid}) has not reaped it"
        )
    cg = info.cgroup
    if cg is not None:
        out.container_id, out.pod_uid = cg.container_id, cg.pod_uid
    if out.pod_uid:
        if pods.pods is None:
            out.unavailable["pod_name"] = pods.reason or "pod list unavailable"
        elif out.pod_uid in pods.pods:
            pod = pods.pods[out.pod_uid]
            out.pod_name, out.pod_namespace = pod.name, pod.namespace
        else:
            out.zombie = True
            out.zombie_reasons.append(f"pod {out.pod_uid} no longer exists on this node")
            out.unavailable["pod_name"] = "pod not found: deleted"
    return out


def proc_info(
    app: "AgentApp", ref: GpuRef, pid: int, users: dict[int, str], btime: int | None
) -> tuple[ProcInfo | None, str | None]:
    """(what is known about ``pid``, why /proc cannot tell). In mock mode a profile pid is what the
    profile says: this machine's /proc is read only for pids a test registered as real (``real:
    true``), and a /proc tree a test passes with ``--proc-root`` stands for the captured node's."""
    own_proc = Path(app.settings.proc_root).resolve() == Path("/proc")
    simulated = app.backend.simulated_proc(ref.index, pid) if own_proc else None
    if simulated is not None:
        return simulated, None
    problem = proc_root_problem(app.settings.proc_root)
    return (None if problem else read_proc(app.settings.proc_root, pid, users, btime)), problem


def describe_gpu(
    app: "AgentApp", ref: GpuRef, pods: PodLookup, users: dict[int, str], btime: int | None
) -> GpuProcessList:
    base = {"index": ref.index, "uuid": ref.uuid, "pci_bus_id": ref.bus_id, "name": ref.name}
    if ref.lost_reason:
        return GpuProcessList(**base, lost=True, processes=None, unavailable={"*": ref.lost_reason})
    try:
        reading: GpuProcesses = read_gpu_processes(app.backend.adapter, ref)
    except GpuLost as lost:
        return GpuProcessList(**base, lost=True, processes=None, unavailable={"*": f"GpuIsLost: {lost}"})
    procs = None
    if reading.processes is not None:
        procs = [enrich(p, *proc_info(app, ref, p.pid, users, btime), pods) for p in reading.processes]
        if reading.mig_enabled and procs:
            _join_mig(app, ref, procs)
    owned = None
    if reading.processes is not None and all(p.used_memory is not None for p in reading.processes):
        owned = sum(p.used_memory or 0 for p in reading.processes) // MIB
    elif reading.processes is None:
        reading.unavailable.setdefault("process_memory_mib", "the GPU's process list could not be read")
    else:
        reading.unavailable.setdefault("process_memory_mib", "NVML reports no memory figure for some process")
    return GpuProcessList(
        **base,
        processes=procs,
        memory_used_mib=_mib(reading.memory_used),
        memory_reserved_mib=_mib(reading.memory_reserved),
        memory_total_mib=_mib(reading.memory_total),
        process_memory_mib=owned,
        orphan_memory_mib=_mib(reading.orphan_memory),
        unavailable=reading.unavailable,
    )


def _join_mig(app: "AgentApp", ref: GpuRef, procs: list[GpuProcess]) -> None:
    """Each process's MIG device (profile, UUID) by its GPU/compute instance ids."""
    state = read_mig(app.backend.adapter, ref)
    for p in procs:
        if p.gpu_instance_id is None:
            continue
        dev = state.device_for(p.gpu_instance_id, p.compute_instance_id)
        if dev is None:
            why = (
                state.unavailable.get("devices")
                or f"no MIG device lists GI {p.gpu_instance_id}/CI {p.compute_instance_id}"
            )
            p.unavailable["mig_profile"] = why
            continue
        p.mig_profile, p.mig_device_uuid, p.mig_device_index = dev.profile, dev.uuid, dev.index
        for key, field_name in (("mig_profile", "profile"), ("mig_device_uuid", "uuid")):
            if getattr(dev, field_name) is None and field_name in dev.unavailable:
                p.unavailable[key] = dev.unavailable[field_name]


def findings(gpus: list[GpuProcessList]) -> list[str]:
    lines = []
    for gpu in gpus:
        for p in gpu.processes or []:
            for reason in p.zombie_reasons:
                lines.append(f"GPU {gpu.index}: zombie: {reason}")
        if gpu.orphan_memory_mib:
            lines.append(
                f"GPU {gpu.index}: {gpu.orphan_memory_mib} MiB in use that no listed process accounts for"
            )
    return lines


def register(app: "AgentApp") -> None:
    def list_gpu_processes(gpus: GpuSelector = None, detail: Detail = "summary") -> ProcessesResult:
        """List the processes on each GPU (compute and graphics, with MIG instance ids and the MIG
        device's profile and UUID) and who they
        are: command line, user, state, start time, container id, pod UID and, when the Kubernetes API
        answers, pod name and namespace. Flags zombies (GPU memory held by a pid that is gone or
        defunct, or whose pod no longer exists) and orphaned memory (used memory no listed process
        accounts for). Use before kill_gpu_process or reset_gpu. The summary (default) gives the node's
        status and action, each GPU with a zombie or unaccounted memory with the evidence, and one line
        per process; detail="full" adds everything known about every process (user, uid, start time,
        container and pod ids, MIG instance ids, per-field reasons)."""
        refs = select_gpus(app, gpus)
        settings = app.settings
        pods = lookup_pods(app.backend.node_name, mock=app.backend.mock is not None)
        users = read_passwd(settings.host_root)
        btime = boot_time(settings.proc_root)
        items = [describe_gpu(app, ref, pods, users, btime) for ref in refs]
        node_unavailable = {}
        if pods.pods is None:
            node_unavailable["pod_name"] = pods.reason or "pod list unavailable"
        problem = proc_root_problem(settings.proc_root)
        if problem:
            node_unavailable["proc"] = problem
        return answer(app, items, node_unavailable, detail)

    app.add_tool(list_gpu_processes, title="GPU processes and zombies", annotations=READ_ONLY)
