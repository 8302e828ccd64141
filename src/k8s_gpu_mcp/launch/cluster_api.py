"""``connect cluster`` tools that read only the API server: nothing is injected into any node.

list_gpu_nodes, describe_gpu_node, get_pod_gpu_allocation, find_workload_gpus (a pod, job,
deployment, statefulset or label selector -> its pods, their nodes, GPU requests and, where the pod
spec tells, GPU UUIDs), and get_node_timeline's API half (its node half, on request, comes from the
node's agent through the session pool). The node and pod shapes come from ``tools/cluster.py``'s pure helpers, the
same the agents' own describe_gpu_node uses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from k8s_gpu_mcp.diagnose import timeline
from k8s_gpu_mcp.gateway.discovery import parse_selector, selector_matches
from k8s_gpu_mcp.gateway.models import CLUSTER_READ, SelectorArg
from k8s_gpu_mcp.tools.cluster import (
    MIG_API_ONLY,
    ApiSource,
    NodeCondition,
    PodGpuAllocation,
    Taint,
    allocated,
    describe,
    findings,
    mig_unjoined,
    pod_allocation,
)
from k8s_gpu_mcp.tools.timeline import TimelineEntry

if TYPE_CHECKING:
    from k8s_gpu_mcp.k8s.client import KubeApi
    from k8s_gpu_mcp.launch.cluster import ClusterApp

GPU_LABEL = "nvidia.com/gpu.present"


def is_gpu_node(node: dict[str, Any]) -> bool:
    """nvidia.com/gpu or MIG capacity, or the GPU Feature Discovery label."""
    capacity = (node.get("status") or {}).get("capacity") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    has_capacity = any(k == "nvidia.com/gpu" or k.startswith("nvidia.com/mig-") for k in capacity)
    return has_capacity or labels.get(GPU_LABEL) == "true"


class GpuNodeInfo(BaseModel):
    node: str
    product: str | None = Field(None, description="label nvidia.com/gpu.product")
    gpu_count: int | None = Field(
        None, description="capacity nvidia.com/gpu, else label nvidia.com/gpu.count"
    )
    capacity: dict[str, int]
    allocatable: dict[str, int]
    requested: dict[str, int] = Field(description="held by the node's non-terminated GPU pods")
    unhealthy_by_device_plugin: int | None = Field(
        None, description="nvidia.com/gpu capacity minus allocatable: GPUs the device plugin marked unhealthy"
    )
    ready: bool | None = Field(description="Ready condition; null when Unknown or missing")
    conditions: list[NodeCondition] = Field(description="conditions other than Ready that are True")
    unschedulable: bool = Field(description="cordoned")
    taints: list[Taint]
    gpu_pods: int
    labels: dict[str, str] = Field(description="nvidia.com/* labels")
    findings: list[str]


class GpuNodeList(BaseModel):
    api: ApiSource
    count: int
    nodes: list[GpuNodeInfo]
    nodes_without_gpus: int = Field(description="nodes in the cluster (matching the selector) with no GPU")
    unavailable: dict[str, str] = Field(default_factory=dict)


class NodeDetail(BaseModel):
    node: str
    gpu_labels: dict[str, str]
    product: str | None
    capacity: dict[str, int]
    allocatable: dict[str, int]
    allocated: dict[str, int]
    ready: bool | None
    unschedulable: bool
    conditions: list[NodeCondition]
    taints: list[Taint]
    gpu_pods: list[PodGpuAllocation]
    findings: list[str]

    @property
    def local(self) -> None:
        """No NVML view here (``findings`` asks): connect cluster reads the API server only."""
        return None


class NodeDescriptions(BaseModel):
    api: ApiSource
    nodes: list[NodeDetail]


class ClusterAllocation(BaseModel):
    api: ApiSource
    node: str | None = Field(description="the node asked about; null means every node")
    namespace: str | None
    pods: list[PodGpuAllocation]
    allocated: dict[str, int] = Field(description="resource -> count held by non-terminated pods")
    by_node: dict[str, dict[str, int]]


class WorkloadGpus(BaseModel):
    api: ApiSource
    workload: str = Field(description="what was resolved, e.g. job ml/trainer")
    selector: str | None = Field(None, description="the label selector that found the pods")
    pods: list[PodGpuAllocation] = Field(description="the workload's pods that request GPUs")
    pods_without_gpus: list[str]
    nodes: dict[str, list[str]] = Field(description="node -> the workload's GPU pods on it")
    gpus: dict[str, int]
    next_step: str | None = Field(None, description="the node tool call that looks at those GPUs")


class ClusterTimeline(BaseModel):
    api: ApiSource
    node: str
    since: datetime | None
    entries: list[TimelineEntry] = Field(
        description="oldest first, de-duplicated, the most recent `limit` kept; source says which half "
        "(kubernetes: this server's API reads; kernel-log, nvml, host: the node's agent)"
    )
    dropped: int = Field(description="older entries left out by `limit`")
    node_half: bool = Field(description="the node agent's entries are in (include_node=true and it answered)")
    node_source: dict[str, Any] | None = Field(
        None, description="the agent's `source` stamp (backend, profile, scenario: mock data says so)"
    )
    notes: list[str] = Field(default_factory=list)
    unavailable: dict[str, str] = Field(default_factory=dict, description="what could not be read, and why")


def api_timeline(
    api: KubeApi, node: str, lower: datetime | None
) -> tuple[list[timeline.Entry], dict[str, str]]:
    """The API half of a node's timeline: its condition transitions, Events (reboots, NotReady,
    cordon ...), cordon state, and its pods' starts, container ends, restarts and evictions. A read
    that fails is named in the second value; the node itself must exist (K8sError otherwise)."""
    from k8s_gpu_mcp.k8s.client import K8sError

    obj = api.get_node(node)
    unavailable: dict[str, str] = {}
    try:
        events = api.list_node_events(node)
    except K8sError as exc:
        events, unavailable["kubernetes.events"] = [], str(exc)
    entries = timeline.node_entries(obj, events, lower)
    try:
        entries += timeline.pod_entries(api.list_pods(node=node), lower)
    except K8sError as exc:
        unavailable["kubernetes.pods"] = str(exc)
    return entries, unavailable


def _api_source(api: KubeApi) -> ApiSource:
    info = api.info
    return ApiSource(server=info.server, auth=info.auth, context=info.context)


def node_detail(node: dict[str, Any], pods: list[dict[str, Any]]) -> NodeDetail:
    detail = NodeDetail(**describe(node, pods), findings=[])
    detail.findings = findings(detail)  # type: ignore[arg-type]  # reads the same fields
    return detail


def node_info(node: dict[str, Any], pods: list[dict[str, Any]]) -> GpuNodeInfo:
    d = node_detail(node, pods)
    cap, alloc = d.capacity.get("nvidia.com/gpu"), d.allocatable.get("nvidia.com/gpu")
    label_count = d.gpu_labels.get("nvidia.com/gpu.count") or ""
    return GpuNodeInfo(
        node=d.node,
        product=d.product,
        gpu_count=cap if cap is not None else (int(label_count) if label_count.isdigit() else None),
        capacity=d.capacity,
        allocatable=d.allocatable,
        requested=d.allocated,
        unhealthy_by_device_plugin=cap - alloc if cap is not None and alloc is not None else None,
        ready=d.ready,
        conditions=[c for c in d.conditions if c.type != "Ready" and c.status == "True"],
        unschedulable=d.unschedulable,
        taints=d.taints,
        gpu_pods=sum(1 for p in d.gpu_pods if p.holds_gpus),
        labels=d.gpu_labels,
        findings=d.findings,
    )


def pods_by_node(pods: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for p in pods:
        out.setdefault((p.get("spec") or {}).get("nodeName") or "", []).append(p)
    return out


def match_labels_selector(selector: dict[str, Any] | None) -> str:
    """A workload's spec.selector as a label selector string (matchLabels and matchExpressions)."""
    selector = selector or {}
    terms = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op, key, values = expr.get("operator"), expr.get("key"), expr.get("values") or []
        terms.append(
            {"In": f"{key} in ({','.join(values)})", "NotIn": f"{key} notin ({','.join(values)})",
             "Exists": f"{key}", "DoesNotExist": f"!{key}"}.get(op, f"{key}")
        )  # fmt: skip
    return ",".join(terms)


def register_api_tools(app: ClusterApp) -> None:
    from k8s_gpu_mcp.k8s.client import K8sError

    async def run(fn: Callable[[], Any]) -> Any:
        try:
            return await anyio.to_thread.run_sync(fn)
        except K8sError as exc:
            raise ToolError(str(exc)) from None

    def gpu_nodes(node_selector: str | None) -> tuple[list[dict[str, Any]], int]:
        try:
            requirements = parse_selector(node_selector)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        nodes = [
            n for n in app.api.list_nodes()
            if selector_matches(requirements, (n.get("metadata") or {}).get("labels") or {})
        ]  # fmt: skip
        gpu = [n for n in nodes if is_gpu_node(n)]
        return gpu, len(nodes) - len(gpu)

    async def list_gpu_nodes(node_selector: SelectorArg = None) -> GpuNodeList:
        """Every GPU node, from the API server only (nothing runs on the nodes): product, GPU count,
        capacity, allocatable and requested GPUs, Ready and other conditions, cordon, taints, GPUs the
        device plugin marked unhealthy, the number of GPU pods, and findings. Optionally filtered by a
        node label selector. Use the names with the node tools (node=..., nodes=[...])."""

        def work() -> GpuNodeList:
            nodes, without = gpu_nodes(node_selector)
            unavailable: dict[str, str] = {}
            try:
                by_node = pods_by_node(app.api.list_pods())
            except K8sError as exc:
                by_node, unavailable["requested"] = {}, str(exc)
            infos = [node_info(n, by_node.get(n["metadata"]["name"], [])) for n in nodes]
            infos.sort(key=lambda i: i.node)
            return GpuNodeList(
                api=_api_source(app.api), count=len(infos), nodes=infos, nodes_without_gpus=without,
                unavailable=unavailable,
            )  # fmt: skip

        return await run(work)

    async def describe_gpu_node(
        node: Annotated[str | None, Field(description="node name; omit for every GPU node")] = None,
    ) -> NodeDescriptions:
        """Describe GPU nodes as Kubernetes sees them (API server only): nvidia.com/* labels, GPU and MIG
        capacity, allocatable and what pods request, conditions, taints, cordon state, the GPU pods on
        each, and plain-words findings (device plugin marked GPUs unhealthy, NotReady, cordoned...)."""

        def work() -> NodeDescriptions:
            if node:
                obj = app.api.get_node(node)
                if not is_gpu_node(obj):
                    raise ToolError(
                        f"node {node!r} has no GPU (no nvidia.com/gpu or MIG capacity, no {GPU_LABEL})"
                    )
                details = [node_detail(obj, app.api.list_pods(node=node))]
            else:
                nodes, _ = gpu_nodes(None)
                by_node = pods_by_node(app.api.list_pods())
                details = [node_detail(n, by_node.get(n["metadata"]["name"], [])) for n in nodes]
            return NodeDescriptions(api=_api_source(app.api), nodes=details)

        return await run(work)

    async def get_pod_gpu_allocation(
        node: Annotated[str | None, Field(description="node name; omit for every node")] = None,
        namespace: Annotated[str | None, Field(description="only this namespace; omit for all")] = None,
    ) -> ClusterAllocation:
        """The pods that request NVIDIA GPUs (API server only), per container requests and limits,
        phase, whether they still hold their GPUs, and GPU UUIDs where the pod spec names them
        (NVIDIA_VISIBLE_DEVICES or an annotation; otherwise `unavailable` says why)."""

        def work() -> ClusterAllocation:
            allocs = [
                a for p in app.api.list_pods(node=node, namespace=namespace) if (a := pod_allocation(p))
            ]
            allocs.sort(key=lambda a: (a.node or "", a.namespace, a.name))
            mig_unjoined(allocs, MIG_API_ONLY)
            by_node: dict[str, dict[str, int]] = {}
            for a in allocs:
                if a.holds_gpus and a.node:
                    for k, n in a.gpus.items():
                        by_node.setdefault(a.node, {})[k] = by_node.get(a.node, {}).get(k, 0) + n
            return ClusterAllocation(
                api=_api_source(app.api), node=node, namespace=namespace, pods=allocs,
                allocated=allocated(allocs), by_node=by_node,
            )  # fmt: skip

        return await run(work)

    async def find_workload_gpus(
        namespace: Annotated[str, Field(description="the workload's namespace")],
        kind: Annotated[
            Literal["pod", "job", "deployment", "statefulset", "replicaset", "daemonset", "selector"],
            Field(description="what `name` is; selector: `name` is a label selector over pods"),
        ] = "pod",
        name: Annotated[str, Field(description="the pod/job/deployment name, or the label selector")] = "",
    ) -> WorkloadGpus:
        """From a workload to its GPUs (API server only): a pod, or a job/deployment/statefulset/
        replicaset/daemonset (its pods through its selector), or a pod label selector -> the pods,
        their nodes, their GPU requests and, where the pod spec tells (NVIDIA_VISIBLE_DEVICES, an
        annotation), the GPU UUIDs. Then call a node tool on those nodes, e.g. get_gpu_health."""
        if not name:
            raise ToolError(
                "name is required: the pod/job/deployment name, or a label selector with kind=selector"
            )

        def work() -> WorkloadGpus:
            selector: str | None = None
            if kind == "pod":
                pods = [app.api.get_pod(namespace, name)]
            else:
                if kind == "selector":
                    selector = name
                else:
                    obj = app.api.get_object(kind, namespace, name)
                    selector = match_labels_selector((obj.get("spec") or {}).get("selector"))
                    if not selector:
                        raise ToolError(f"{kind} {namespace}/{name} has no pod selector")
                try:
                    requirements = parse_selector(selector)
                except ValueError as exc:
                    raise ToolError(str(exc)) from None
                pods = [
                    p for p in app.api.list_pods(namespace=namespace)
                    if selector_matches(requirements, (p.get("metadata") or {}).get("labels") or {})
                ]  # fmt: skip
            allocs, without = [], []
            for p in pods:
                a = pod_allocation(p)
                if a is None:
                    without.append(p["metadata"]["name"])
                else:
                    allocs.append(a)
            nodes: dict[str, list[str]] = {}
            for a in allocs:
                if a.node and a.holds_gpus:
                    nodes.setdefault(a.node, []).append(a.name)
            step = None
            if nodes:
                names = sorted(nodes)
                target = f"node={names[0]!r}" if len(names) == 1 else f"nodes={names!r}"
                step = f"get_gpu_health({target}) or analyze_xid_errors({target})"
            return WorkloadGpus(
                api=_api_source(app.api), workload=f"{kind} {namespace}/{name}", selector=selector, pods=allocs,
                pods_without_gpus=without, nodes=nodes, gpus=allocated(allocs), next_step=step,
            )  # fmt: skip

        return await run(work)

    async def get_node_timeline(
        ctx: Context,
        node: Annotated[str, Field(description="the node name")],
        since: Annotated[str, Field(description='window: "30m", "24h", "7d" or an RFC 3339 time')] = "24h",
        limit: Annotated[int, Field(ge=1, le=500, description="most recent entries to return")] = 50,
        include_node: Annotated[
            bool,
            Field(
                description="also ask the node's agent for its half (XIDs and SXids across boots, reboots, "
                "ECC and remap state, throttling): starts a debugger pod on that node"
            ),
        ] = False,
    ) -> ClusterTimeline:
        """What happened on one node, as one ordered, de-duplicated list. From the API server alone
        (nothing runs on the node): node condition transitions (Ready, pressure, node-problem-detector),
        node Events (reboots, NotReady, cordon), the cordon state, pod starts, container ends and
        restarts (OOMKilled, exit codes), evictions and disruptions. With include_node=true the node's
        agent adds its half: XIDs, lost GPUs and SXids from the kernel log, earlier boots from the
        journal and rotated kern.log, and ECC, remap and throttling state now. Each entry has a time, a
        source, the GPU or pod it is about, and one line of meaning."""
        from k8s_gpu_mcp.tools._common import window_start
        from k8s_gpu_mcp.tools.timeline import entries_of

        now = datetime.now(UTC)
        lower = window_start(since, now)
        entries, unavailable = await run(lambda: api_timeline(app.api, node, lower))
        groups = [entries]
        notes: list[str] = []
        node_source: dict[str, Any] | None = None
        half = False
        if include_node:
            calls, _ = await app.fan_out(
                "get_node_timeline", {"since": since, "limit": 500}, await app.target(node, None, None), ctx
            )
            call = calls[0] if calls else None
            if call is not None and call.ok and isinstance(call.result, dict):
                theirs, bad = entries_of(call.result)
                groups.append([e for e in theirs if e.source != "kubernetes"])  # the API half is ours
                half = True
                node_source = (
                    call.result.get("source") if isinstance(call.result.get("source"), dict) else None
                )
                notes += [f"node: {n}" for n in call.result.get("notes") or []]
                theirs_unavailable = call.result.get("unavailable") or {}
                unavailable.update(
                    {f"node.{k}": str(v) for k, v in theirs_unavailable.items() if k != "kubernetes"}
                )
                if bad:
                    notes.append(
                        f"node: {bad} entr{'y' if bad == 1 else 'ies'} of an unknown shape were left out"
                    )
                if call.result.get("dropped"):
                    notes.append(f"node: its {call.result['dropped']} oldest entries were over its limit")
            else:
                kind = call.error_kind if call is not None else "no_agent"
                unavailable["node"] = f"{kind}: {call.error if call is not None else 'no agent on the node'}"
        else:
            notes.append(
                f"The node half (XIDs across boots, ECC and remap state, throttling, the kernel's boots) "
                f"needs the agent on {node}: call again with include_node=true (it starts a debugger pod)."
            )
        merged, dropped = timeline.merge(groups, limit)
        return ClusterTimeline(
            api=_api_source(app.api), node=node, since=lower, entries=[TimelineEntry(**vars(e)) for e in merged],
            dropped=dropped, node_half=half, node_source=node_source, notes=notes, unavailable=unavailable,
        )  # fmt: skip

    app.add_tool(list_gpu_nodes, title="GPU nodes in the cluster", annotations=CLUSTER_READ)
    app.add_tool(get_node_timeline, title="Node timeline (cluster)", annotations=CLUSTER_READ)
    app.add_tool(describe_gpu_node, title="Describe GPU nodes (Kubernetes)", annotations=CLUSTER_READ)
    app.add_tool(get_pod_gpu_allocation, title="Pod GPU allocation (Kubernetes)", annotations=CLUSTER_READ)
    app.add_tool(find_workload_gpus, title="Workload to nodes and GPUs", annotations=CLUSTER_READ)
