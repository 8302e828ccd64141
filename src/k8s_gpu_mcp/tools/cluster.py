"""Cluster-aware tools: describe_gpu_node and get_pod_gpu_allocation (Kubernetes API, read-only).

Node and pod objects come from the API server (k8s/client.py); the pure parts below turn them into
the models. When the agent runs on the node being described (NODE_NAME == node), the node's own
NVML view is added and compared with what Kubernetes believes.
"""

import os
import re
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import Source, source

if TYPE_CHECKING:
    from k8s_gpu_mcp.k8s.client import KubeApi
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "k8s"

GPU_RESOURCE_PREFIX = "nvidia.com/"
GPU_LABEL_PREFIX = "nvidia.com/"
MIG_RESOURCE_PREFIX = "nvidia.com/mig-"
MIG_API_ONLY = (
    "read from the API server only: the node's agent (connect node/NAME, get_pod_gpu_allocation) joins "
    "a pod's MIG UUIDs to its MIG devices"
)
MIG_JOIN_ELSEWHERE = (
    "the pod runs on another node: only that node's NVML can join its MIG UUIDs to instances "
    "(get_pod_gpu_allocation on that node's agent)"
)
UUID_RE = re.compile(
    r"\b(?:GPU|MIG)-[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}\b|\bMIG-GPU-[0-9a-fA-F-]+/\d+/\d+\b"
)
DEVICE_ENV = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")
TERMINAL_PHASES = ("Succeeded", "Failed")
NO_UUIDS = (
    "not in the pod spec or annotations: the device plugin assigns devices when the container starts "
    "(the kubelet's pod-resources API on the node has them)"
)


class ApiSource(ToolModel):
    """Which API server answered, and as whom."""

    server: str
    auth: str
    context: str | None = None


class ContainerGpus(ToolModel):
    name: str
    requests: dict[str, int] = Field(default_factory=dict, description="nvidia.com/* resource -> count")
    limits: dict[str, int] = Field(default_factory=dict, description="nvidia.com/* resource -> count")
    gpu_uuids: list[str] | None = Field(None, description="GPU/MIG UUIDs, when the pod spec names them")
    uuid_source: str | None = Field(None, description="where gpu_uuids came from")


class MigAssignment(ToolModel):
    """A MIG device a pod names, joined to this node's NVML view of it."""

    uuid: str
    index: int | None = Field(
        None, description="the parent GPU's index, when this node's NVML lists the device"
    )
    mig_device_index: int | None = None
    profile: str | None = None
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    unavailable: dict[str, str] = Field(default_factory=dict)


class PodGpuAllocation(ToolModel):
    namespace: str
    name: str
    node: str | None
    phase: str | None
    holds_gpus: bool = Field(description="false once the pod has Succeeded or Failed")
    gpus: dict[str, int] = Field(
        description="nvidia.com/* resource -> count, summed over containers (limits)"
    )
    containers: list[ContainerGpus]
    gpu_uuids: list[str] | None = Field(None, description="UUIDs from pod annotations, when present")
    uuid_source: str | None = None
    mig_profiles: dict[str, int] = Field(
        default_factory=dict, description="MIG profile -> count, from nvidia.com/mig-<profile> resources"
    )
    mig_devices: list[MigAssignment] | None = Field(
        None,
        description="the MIG UUIDs the pod names, joined to the node's MIG devices (profile, GPU, GI/CI)",
    )
    unavailable: dict[str, str] = Field(default_factory=dict)


class PodGpuAllocationResult(ToolModel):
    source: Source
    api: ApiSource
    node: str | None = Field(description="the node asked about; null means every node")
    namespace: str | None
    pods: list[PodGpuAllocation]
    allocated: dict[str, int] = Field(description="resource -> count held by non-terminated pods")


class NodeCondition(ToolModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition: str | None = None


class Taint(ToolModel):
    key: str
    value: str | None = None
    effect: str


class LocalGpuView(ToolModel):
    """What NVML on this node sees, when the agent runs on the described node."""

    gpu_count: int
    products: dict[str, int]
    uuids: list[str | None]
    lost_gpus: list[int]
    driver_version: str | None
    backend: str


class GpuNodeDescription(ToolModel):
    source: Source
    api: ApiSource
    node: str
    gpu_labels: dict[str, str] = Field(description="nvidia.com/* labels (GPU Feature Discovery)")
    product: str | None = Field(None, description="label nvidia.com/gpu.product")
    capacity: dict[str, int] = Field(description="nvidia.com/* capacity (gpu and mig-* resources)")
    allocatable: dict[str, int]
    allocated: dict[str, int] = Field(description="requested by the node's non-terminated pods")
    ready: bool | None = Field(None, description="Ready condition; null when the node reports none")
    unschedulable: bool
    conditions: list[NodeCondition]
    taints: list[Taint]
    gpu_pods: list[PodGpuAllocation]
    local: LocalGpuView | None = Field(None, description="the agent's own NVML view, on this node only")
    findings: list[str] = Field(description="things an SRE should look at, in plain words")
    unavailable: dict[str, str] = Field(default_factory=dict, description="field -> why it is null")


# pure helpers ------------------------------------------------------------------------------------


def _count(value: Any) -> int | None:
    try:
        return int(str(value))
    except (TypeError, ValueError):
        return None


def gpu_resources(resources: dict[str, Any] | None) -> dict[str, int]:
    """nvidia.com/* entries of a resource list, as integers."""
    out: dict[str, int] = {}
    for key, value in (resources or {}).items():
        if key.startswith(GPU_RESOURCE_PREFIX) and (n := _count(value)) is not None:
            out[key] = n
    return out


def _uuids(text: str | None) -> list[str]:
    return UUID_RE.findall(text or "")


def container_gpus(c: dict[str, Any]) -> ContainerGpus:
    res = c.get("resources") or {}
    limits, requests = gpu_resources(res.get("limits")), gpu_resources(res.get("requests"))
    requests = {**limits, **requests}  # extended resources: requests default to limits
    out = ContainerGpus(name=c.get("name", "?"), requests=requests, limits=limits)
    for env in c.get("env") or []:
        if env.get("name") in DEVICE_ENV and (found := _uuids(env.get("value"))):
            out.gpu_uuids, out.uuid_source = found, f"env {env['name']}"
            break
    return out


def pod_allocation(pod: dict[str, Any]) -> PodGpuAllocation | None:
    """The pod's GPU allocation, or None if no container asks for an nvidia.com/* resource."""
    meta, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status") or {}
    containers = [container_gpus(c) for c in spec.get("containers") or []]
    gpu_containers = [c for c in containers if c.requests or c.limits]
    if not gpu_containers:
        return None
    totals: dict[str, int] = {}
    for c in gpu_containers:
        for key, n in (c.limits or c.requests).items():
            totals[key] = totals.get(key, 0) + n
    phase = status.get("phase")
    alloc = PodGpuAllocation(
        namespace=meta.get("namespace", ""),
        name=meta.get("name", ""),
        node=spec.get("nodeName"),
        phase=phase,
        holds_gpus=phase not in TERMINAL_PHASES,
        gpus=totals,
        containers=gpu_containers,
    )
    alloc.mig_profiles = {
        key.removeprefix(MIG_RESOURCE_PREFIX): n
        for key, n in totals.items()
        if key.startswith(MIG_RESOURCE_PREFIX)
    }
    for key, value in sorted((meta.get("annotations") or {}).items()):
        if found := _uuids(value):
            alloc.gpu_uuids, alloc.uuid_source = found, f"annotation {key}"
            break
    if alloc.gpu_uuids is None and all(c.gpu_uuids is None for c in gpu_containers):
        alloc.unavailable["gpu_uuids"] = NO_UUIDS
    return alloc


def uses_mig(a: PodGpuAllocation) -> bool:
    return bool(a.mig_profiles) or any(u.startswith("MIG-") for u in _all_uuids(a))


def mig_unjoined(allocs: list[PodGpuAllocation], why: str) -> None:
    """Say why the MIG pods' devices are not joined (``connect cluster``: the API server alone)."""
    for a in allocs:
        if uses_mig(a):
            a.unavailable["mig_devices"] = why


def join_mig(app: "AgentApp", allocs: list[PodGpuAllocation]) -> None:
    """The MIG UUIDs each pod names, joined to this node's MIG devices (only for pods on this node)."""
    from k8s_gpu_mcp.gpu.adapter import GpuLost
    from k8s_gpu_mcp.gpu.mig import read_mig

    wanted = [a for a in allocs if uses_mig(a)]
    if not wanted:
        return
    here = _this_node(app)
    local: dict[str, tuple[int, Any]] = {}
    why_not: str | None = None
    if app.backend.adapter is not None:
        for ref in app.backend.adapter.gpus():
            try:
                state = read_mig(app.backend.adapter, ref)
            except GpuLost as lost:
                why_not = f"GPU {ref.index} lost: {lost}"
                continue
            if state.devices is None:
                why_not = f"GPU {ref.index}: {state.unavailable.get('devices', 'MIG devices unreadable')}"
            for dev in state.devices or ():
                if dev.uuid:
                    local[dev.uuid.lower()] = (ref.index, dev)
    for a in wanted:
        uuids = [u for u in _all_uuids(a) if u.startswith("MIG-")]
        if not uuids:
            a.unavailable["mig_devices"] = a.unavailable.get("gpu_uuids", NO_UUIDS)
            continue
        if here is None or a.node != here:
            a.unavailable["mig_devices"] = MIG_JOIN_ELSEWHERE
            continue
        out = []
        for u in uuids:
            hit = local.get(u.lower())
            if hit is None:
                out.append(
                    MigAssignment(
                        uuid=u, unavailable={"*": why_not or "no MIG device on this node has this UUID"}
                    )
                )
                continue
            index, dev = hit
            out.append(MigAssignment(uuid=u, index=index, mig_device_index=dev.index, profile=dev.profile,
                                     gpu_instance_id=dev.gpu_instance_id, compute_instance_id=dev.compute_instance_id))  # fmt: skip
        a.mig_devices = out


def _all_uuids(a: PodGpuAllocation) -> list[str]:
    found = list(a.gpu_uuids or [])
    for c in a.containers:
        found += [u for u in c.gpu_uuids or [] if u not in found]
    return found


def allocated(pods: list[PodGpuAllocation]) -> dict[str, int]:
    totals: dict[str, int] = {}
    for p in pods:
        if p.holds_gpus:
            for key, n in p.gpus.items():
                totals[key] = totals.get(key, 0) + n
    return totals


def findings(desc: GpuNodeDescription) -> list[str]:
    """Plain-words observations from the node object (and the local NVML view)."""
    out: list[str] = []
    if desc.ready is False:
        out.append("node is NotReady: the kubelet is not healthy or not reporting")
    elif desc.ready is None:
        out.append("node Ready status is Unknown: the kubelet stopped posting status")
    if desc.unschedulable:
        out.append("node is cordoned (spec.unschedulable): no new pods are scheduled")
    for t in desc.taints:
        if t.effect in ("NoSchedule", "NoExecute"):
            out.append(f"taint {t.key}={t.value or ''}:{t.effect} keeps pods without a toleration away")
    for c in desc.conditions:
        if c.type != "Ready" and c.status == "True":
            out.append(f"condition {c.type} is True: {c.message or c.reason or ''}".rstrip(": "))
    label_count = _count(desc.gpu_labels.get("nvidia.com/gpu.count"))
    cap, alloc = desc.capacity.get("nvidia.com/gpu"), desc.allocatable.get("nvidia.com/gpu")
    if (
        desc.gpu_labels
        and "nvidia.com/gpu" not in desc.capacity
        and not any(k.startswith("nvidia.com/mig-") for k in desc.capacity)
    ):
        out.append("GPU labels present but no nvidia.com/gpu capacity: is the NVIDIA device plugin running?")
    if cap is not None and alloc is not None and alloc < cap:
        out.append(
            f"allocatable nvidia.com/gpu ({alloc}) < capacity ({cap}): the device plugin marked {cap - alloc} GPU(s) unhealthy"
        )
    if label_count is not None and cap is not None and cap and label_count != cap:
        out.append(f"GFD label nvidia.com/gpu.count={label_count} but capacity nvidia.com/gpu={cap}")
    for key, n in desc.allocated.items():
        if n > desc.allocatable.get(key, 0):
            out.append(f"pods request {n} {key} but only {desc.allocatable.get(key, 0)} are allocatable")
    if desc.local is not None:
        if (
            cap is not None
            and desc.local.gpu_count != cap
            and not any(k.startswith("nvidia.com/mig-") for k in desc.capacity)
        ):
            out.append(
                f"NVML sees {desc.local.gpu_count} GPU(s) on this node but Kubernetes has capacity {cap}"
            )
        if desc.local.lost_gpus:
            out.append(f"NVML reports GPU(s) {desc.local.lost_gpus} lost (fallen off the bus)")
    return out  # fmt: skip


def _conditions(status: dict[str, Any]) -> list[NodeCondition]:
    return [
        NodeCondition(
            type=c.get("type", "?"),
            status=c.get("status", "Unknown"),
            reason=c.get("reason"),
            message=c.get("message"),
            last_transition=c.get("lastTransitionTime"),
        )
        for c in status.get("conditions") or []
    ]


def describe(node: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, Any]:
    """Fields of GpuNodeDescription from the node object and its pods (no source/api/local/findings)."""
    meta, spec, status = node.get("metadata", {}), node.get("spec") or {}, node.get("status") or {}
    labels = meta.get("labels") or {}
    conditions = _conditions(status)
    ready_cond = next((c for c in conditions if c.type == "Ready"), None)
    ready = None if ready_cond is None or ready_cond.status == "Unknown" else ready_cond.status == "True"
    gpu_pods = [a for p in pods if (a := pod_allocation(p)) is not None]
    return {
        "node": meta.get("name", ""),
        "gpu_labels": {k: v for k, v in sorted(labels.items()) if k.startswith(GPU_LABEL_PREFIX)},
        "product": labels.get("nvidia.com/gpu.product"),
        "capacity": gpu_resources(status.get("capacity")),
        "allocatable": gpu_resources(status.get("allocatable")),
        "allocated": allocated(gpu_pods),
        "ready": ready,
        "unschedulable": bool(spec.get("unschedulable")),
        "conditions": conditions,
        "taints": [Taint(key=t.get("key", ""), value=t.get("value"), effect=t.get("effect", "")) for t in spec.get("taints") or []],
        "gpu_pods": gpu_pods,
    }  # fmt: skip


# tool plumbing -----------------------------------------------------------------------------------


def _api() -> "KubeApi":
    from k8s_gpu_mcp.k8s.client import default_api

    return default_api()


def _api_source(api: "KubeApi") -> ApiSource:
    info = api.info
    return ApiSource(server=info.server, auth=info.auth, context=info.context)


def _tool_error(exc: Exception) -> ToolError:
    return ToolError(str(exc))


def _unknown_node(api: "KubeApi", name: str) -> ToolError:
    from k8s_gpu_mcp.k8s.client import K8sError

    try:
        gpu_nodes = [n["metadata"]["name"] for n in api.list_nodes(labels={"nvidia.com/gpu.present": "true"})]
    except K8sError:
        gpu_nodes = []
    hint = f"; GPU nodes (label nvidia.com/gpu.present=true): {', '.join(gpu_nodes)}" if gpu_nodes else ""
    return ToolError(f"node {name!r} not found{hint}")


def local_view(app: "AgentApp") -> LocalGpuView:
    refs = app.backend.adapter.gpus()
    products: dict[str, int] = {}
    for r in refs:
        products[r.name or "unknown"] = products.get(r.name or "unknown", 0) + 1
    return LocalGpuView(
        gpu_count=len(refs),
        products=products,
        uuids=[r.uuid for r in refs],
        lost_gpus=[r.index for r in refs if r.lost_reason],
        driver_version=app.backend.system.driver_version,
        backend=app.backend.kind,
    )


def _this_node(app: "AgentApp") -> str | None:
    return os.environ.get("NODE_NAME") or None


def register(app: "AgentApp") -> None:
    from k8s_gpu_mcp.tools._common import READ_ONLY

    annotations = READ_ONLY.model_copy(update={"openWorldHint": True})

    def describe_gpu_node(
        node: Annotated[str, Field(description="Kubernetes node name (this agent's is in source.node)")],
    ) -> GpuNodeDescription:
        """Describe a GPU node as Kubernetes sees it, from the API server.

        GPU Feature Discovery labels (nvidia.com/*), nvidia.com/gpu and nvidia.com/mig-* capacity,
        allocatable and what pods request, conditions, taints, cordon state, and the GPU pods on it.
        On the agent's own node it adds the local NVML view and flags where the two disagree (e.g. a
        GPU the device plugin marked unhealthy, or one NVML no longer sees)."""
        from k8s_gpu_mcp.k8s.client import K8sError

        api = _api()
        try:
            obj = api.get_node(node)
        except K8sError as exc:
            if "not found" in str(exc):
                raise _unknown_node(api, node) from None
            raise _tool_error(exc) from None
        unavailable: dict[str, str] = {}
        try:
            pods = api.list_pods(node=node)
        except K8sError as exc:
            pods = []
            unavailable["gpu_pods"] = str(exc)
        fields = describe(obj, pods)
        if "gpu_pods" in unavailable:
            fields["allocated"] = {}
        local = None
        if _this_node(app) == node:
            local = local_view(app)
        else:
            unavailable["local"] = f"the agent runs on {_this_node(app) or 'an unknown node'}, not {node}"
        desc = GpuNodeDescription(
            source=source(app),
            api=_api_source(api),
            **fields,
            local=local,
            findings=[],
            unavailable=unavailable,
        )
        desc.findings = findings(desc)
        return desc

    def get_pod_gpu_allocation(
        node: Annotated[
            str, Field(description="node name (this agent's is in source.node), or '*' for every node")
        ],
        namespace: Annotated[str | None, Field(description="only this namespace; omit for all")] = None,
    ) -> PodGpuAllocationResult:
        """List the pods that request NVIDIA GPUs on a node (or the cluster), from the API server.

        Per container: nvidia.com/gpu and nvidia.com/mig-* requests and limits; per pod: phase, whether
        it still holds its GPUs, and the GPU UUIDs where the pod spec names them (NVIDIA_VISIBLE_DEVICES
        env or an annotation; otherwise `unavailable` says why). MIG: the profiles a pod holds
        (nvidia.com/mig-<profile>) and, for pods on this node, its MIG UUIDs joined to the MIG devices
        (parent GPU, profile, GPU/compute instance)."""
        from k8s_gpu_mcp.k8s.client import K8sError

        api = _api()
        where = None if node.strip() in ("*", "") else node.strip()
        try:
            pods = api.list_pods(node=where, namespace=namespace)
        except K8sError as exc:
            raise _tool_error(exc) from None
        allocs = [a for p in pods if (a := pod_allocation(p)) is not None]
        allocs.sort(key=lambda a: (a.node or "", a.namespace, a.name))
        join_mig(app, allocs)
        return PodGpuAllocationResult(
            source=source(app), api=_api_source(api), node=where, namespace=namespace, pods=allocs,
            allocated=allocated(allocs),
        )  # fmt: skip

    app.add_tool(describe_gpu_node, title="Describe GPU node (Kubernetes)", annotations=annotations)
    app.add_tool(get_pod_gpu_allocation, title="Pod GPU allocation (Kubernetes)", annotations=annotations)
