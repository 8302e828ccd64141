"""The cluster front ends' shared MCP tools, and the DaemonSet gateway built on them.

:class:`FleetApp` is the one core: targeting, fan-out (``gateway/fanout.py``), summaries, partial
results, progress and the node tools with a target. Two front ends use it over two transports:
:class:`GatewayApp` (HTTP agents of the DaemonSet, ``k8s-gpu-mcp gateway``) and ``connect cluster``
(syringe sessions opened on demand, ``launch/cluster.py``).

Target arguments on every node tool: ``node`` (one name), ``nodes`` (names), ``node_selector``
(a label selector over node labels). With none of them the gateway means every agent it knows;
``connect cluster`` refuses (it would inject into every node). Destructive tools take exactly one
``node``.
"""

from __future__ import annotations

import logging
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio
import pydantic_core
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, Field

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.audit import META_CALLER, META_CORRELATION, AuditLog
from k8s_gpu_mcp.gateway.breaker import BreakerBoard
from k8s_gpu_mcp.gateway.discovery import (
    Agent,
    Discovery,
    DiscoveryError,
    KubeDiscovery,
    StaticDiscovery,
    select_agents,
)
from k8s_gpu_mcp.gateway.fanout import (
    Fanout,
    FanoutConfig,
    FanoutMetrics,
    NodeCall,
    NodeTransport,
    tool_payload,
)
from k8s_gpu_mcp.gateway.health import UNHEALTHY, GpuVerdict, from_health
from k8s_gpu_mcp.gateway.rpc import AgentError, RpcClient
from k8s_gpu_mcp.http.auth import Token
from k8s_gpu_mcp.metrics import ToolMetrics
from k8s_gpu_mcp.tools._common import GpuSelector
from k8s_gpu_mcp.vocabulary import Detail

if TYPE_CHECKING:
    from k8s_gpu_mcp.config import Settings

log = logging.getLogger(__name__)

AGENT_TOKEN_ENV = "K8S_GPU_MCP_AGENT_TOKEN"
CLUSTER_READ = ToolAnnotations(
    readOnlyHint=True, idempotentHint=True, openWorldHint=True, destructiveHint=False
)
PASS_THROUGH = ToolAnnotations(
    readOnlyHint=False, idempotentHint=False, openWorldHint=True, destructiveHint=True
)

TEXT_LIMIT_BYTES = 256 * 1024
DESTRUCTIVE_TOOLS = ("kill_gpu_process", "reset_gpu")

INSTRUCTIONS = (
    "k8s-gpu-mcp gateway: the GPU node tools for a whole Kubernetes cluster. Every node tool takes a "
    "target (node, nodes, or node_selector; none means every GPU node) and returns one entry per node "
    "plus a summary; a node that failed carries error_kind and error and is never counted as healthy. "
    "Start with find_unhealthy_gpus or list_gpu_nodes."
)

NodeArg = Annotated[str | None, Field(description="one node name")]
NodesArg = Annotated[list[str] | None, Field(description="node names")]
SelectorArg = Annotated[
    str | None,
    Field(description="label selector over node labels, e.g. 'nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3'"),
]


class NodeResult(BaseModel):
    node: str
    ok: bool
    error_kind: str | None = Field(
        None,
        description="timeout, unreachable, circuit_open, unauthorized, bad_reply, http_error, rpc_error, "
        "tool_error, tool_missing, unknown_node, reply_budget (the gateway's memory bound for replies)",
    )
    error: str | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    result: dict[str, Any] | None = Field(None, description="the agent's structured result")


class Summary(BaseModel):
    correlation_id: str
    tool: str
    targeted: int
    succeeded: int
    failed: int
    partial: bool = Field(description="true when some nodes failed: the result covers only the others")
    errors_by_kind: dict[str, int]
    duration_ms: float
    node_timeout_s: float


class FanoutResult(BaseModel):
    summary: Summary
    nodes: list[NodeResult]


FanoutReply = Annotated[CallToolResult, FanoutResult]


class GpuNode(BaseModel):
    node: str
    url: str
    labels: dict[str, str]
    breaker: str = Field(description="circuit breaker: closed (calls go out), open, half_open")


class NodeList(BaseModel):
    discovery: str
    count: int
    nodes: list[GpuNode]


class UnhealthyReport(BaseModel):
    summary: Summary
    unhealthy: list[GpuVerdict] = Field(description="GPUs with a warning or critical verdict")
    unknown: list[GpuVerdict] = Field(description="GPUs whose health could not be read")
    unreachable: list[NodeResult] = Field(description="nodes that gave no usable answer: health unknown")
    healthy_gpus: int
    nodes_checked: int


class FleetApp:
    """The shared core: node targeting + fan-out + the MCP server, over one transport.

    ``require_target``: a node tool called with no target is refused (``connect cluster``: every
    node would get a debugger pod) instead of meaning every known agent (the gateway).
    """

    kind = "gateway"
    require_target = False
    serves_metrics = True  # /metrics over HTTP; a stdio-only front end skips prometheus at start-up

    def __init__(
        self,
        settings: Settings,
        discovery: Discovery,
        transport: NodeTransport | RpcClient,
        config: FanoutConfig,
        *,
        name: str,
        instructions: str,
    ):
        self.settings = settings
        self.discovery = discovery
        self.board = BreakerBoard(settings.breaker_failures, settings.breaker_reset)
        self.metrics = ToolMetrics(namespace="k8s_gpu_mcp_gateway")
        fanout_metrics = None
        if self.serves_metrics:
            fanout_metrics = FanoutMetrics(self.metrics.registry)
            fanout_metrics.watch_breakers(self.board)
        self.config = config
        self.fanout = Fanout(transport, self.config, self.board, fanout_metrics)
        self.last_discovery_error: str | None = None
        self.agents_known = 0
        self.server = MCPServer(
            name,
            version=__version__,
            instructions=instructions,
            log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        )
        self.tool_names: list[str] = []

    def add_tool(self, fn: Callable[..., Any], *, title: str, annotations: ToolAnnotations) -> None:
        tool = self.metrics.instrument(fn) if self.serves_metrics else fn
        self.server.add_tool(tool, title=title, annotations=annotations, structured_output=True)
        self.tool_names.append(fn.__name__)

    async def agents(self) -> list[Agent]:
        try:
            agents = await self.discovery.agents()
        except DiscoveryError as exc:
            self.last_discovery_error = str(exc)
            raise ToolError(f"cannot list the GPU nodes ({self.discovery.describe()}): {exc}") from exc
        self.last_discovery_error, self.agents_known = None, len(agents)
        return agents

    async def target(
        self, node: str | None, nodes: list[str] | None, node_selector: str | None, *, sweep: bool = False
    ) -> tuple[list[Agent], list[str]]:
        """The agents a call reaches, and the named nodes that have none. ``sweep``: a tool whose
        purpose is to cover the selection (find_unhealthy_gpus) may go without a target."""
        if self.require_target and not sweep and not (node or nodes or node_selector):
            raise ToolError(
                "choose the nodes: pass node='NAME', nodes=[...] or node_selector='label=value' "
                "(list_gpu_nodes shows the GPU nodes and their labels; find_workload_gpus maps a pod, job "
                "or deployment to its nodes; find_unhealthy_gpus sweeps a selection). A node tool never "
                "starts agents on every node by itself."
            )
        try:
            return select_agents(await self.agents(), node, nodes, node_selector)
        except ValueError as exc:
            raise ToolError(str(exc)) from exc

    async def missing(self, names: list[str]) -> list[NodeCall]:
        """The calls for named nodes that have no agent (the cluster front end says why)."""
        return [
            NodeCall(n, False, error_kind="unknown_node", error=f"no ready agent on node {n!r}")
            for n in names
        ]

    def call_meta(self, correlation_id: str) -> dict[str, Any]:
        """``_meta`` sent with each node call: the correlation id (and, where known, who asked)."""
        return {META_CORRELATION: correlation_id}

    def caller(self, ctx: Context | None = None) -> str:
        """Who asked, for audit lines: the MCP client's name as it introduced itself."""
        try:
            info = ctx.session.client_params.client_info if ctx is not None else None
        except Exception:  # no session (in-process call) or no initialize (2026 protocol)
            info = None
        return f"MCP client {info.name} {info.version}" if info is not None else "unknown MCP client"

    async def destructive_call(
        self, tool: str, agent: Agent, arguments: dict[str, Any], meta: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """Send one destructive call to one agent after the user confirmed it (per front end)."""
        raise NotImplementedError

    async def fan_out(
        self,
        tool: str,
        arguments: dict[str, Any],
        target: tuple[list[Agent], list[str]],
        ctx: Context | None,
        *,
        idempotent: bool = True,
        correlation_id: str | None = None,
    ) -> tuple[list[NodeCall], Summary]:
        """Run one tool on the target; log one line with the correlation id; return calls + summary."""
        agents, missing = target
        correlation_id = correlation_id or uuid.uuid4().hex[:16]
        start = time.monotonic()
        calls = await self.fanout.call_all(
            agents,
            tool,
            arguments,
            idempotent=idempotent,
            correlation_id=correlation_id,
            deadline=start + self.call_timeout_s(),
            on_progress=progress_reporter(ctx, tool),
            meta=self.call_meta(correlation_id),
        )
        calls += await self.missing(missing)
        summary = summarize(calls, tool, correlation_id, start, self.config.node_timeout_s)
        log_call(summary)
        return calls, summary

    def call_timeout_s(self) -> float:
        """The bound on one whole fan-out (the gateway: one node timeout; its agents are up)."""
        return self.config.node_timeout_s

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        details: dict[str, Any] = {"discovery": self.discovery.describe(), "agents_known": self.agents_known}
        if self.last_discovery_error:
            details["reason"] = self.last_discovery_error
            return False, details
        return True, details

    def close(self) -> None:
        """Release the transport (subclasses)."""


class GatewayApp(FleetApp):
    """The DaemonSet gateway: discovery of agent pods + the shared tools over HTTP agents."""

    def __init__(self, settings: Settings, discovery: Discovery | None = None, rpc: RpcClient | None = None):
        self.rpc = rpc if rpc is not None else RpcClient(agent_token(settings), settings.agent_ca_file)
        super().__init__(
            settings,
            discovery if discovery is not None else make_discovery(settings),
            self.rpc,
            FanoutConfig(settings.node_timeout, settings.concurrency, settings.retries),
            name="k8s-gpu-mcp-gateway",
            instructions=INSTRUCTIONS,
        )
        register_tools(self)
        if settings.gateway_operator:
            register_destructive_tools(self)

    async def destructive_call(
        self, tool: str, agent: Agent, arguments: dict[str, Any], meta: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """The agents' HTTP sessions cannot ask the user, so the gateway does: the agent's dry run is
        the question, the user's answer (elicitation) the only thing that sends ``confirm=true``."""
        from k8s_gpu_mcp.tools._confirm import Approval, can_elicit

        async def call(args: dict[str, Any]) -> dict[str, Any]:
            params = {"name": tool, "arguments": args, "_meta": meta}
            headers = {"x-correlation-id": meta.get(META_CORRELATION, "")}
            with anyio.fail_after(self.config.node_timeout_s):
                reply, _ = await self.fanout.transport.call_tool(agent, params, headers)
            return tool_payload(reply, agent.node)

        from mcp.shared.exceptions import NoBackChannelError

        cannot_ask = ToolError(
            f"{tool} on {agent.node}: this client cannot ask the user (no MCP elicitation); repeat the "
            "call with confirm=true once the user has agreed (dry_run=true shows the plan)"
        )
        if arguments.get("dry_run"):
            return await call(arguments)
        if not can_elicit(ctx):
            if not arguments.get("confirm"):
                raise cannot_ask
            return await call(arguments)
        plan = await call({**arguments, "dry_run": True, "confirm": False})
        question = f"{tool} on node {agent.node} ({self.caller(ctx)}). The agent's plan:\n" + clip_json(plan)
        try:
            answer = await ctx.elicit(question, Approval)
        except NoBackChannelError:  # declared elicitation, but this transport cannot carry the request
            if not arguments.get("confirm"):
                raise cannot_ask from None
            return await call(arguments)
        if answer.action != "accept" or not answer.data.approve:
            raise ToolError(f"refused: the user did not approve {tool} on {agent.node} ({answer.action})")
        return await call({**arguments, "confirm": True})


def agent_token(settings: Settings) -> Token | None:
    return Token.from_settings(settings.agent_token_file, env=AGENT_TOKEN_ENV)


def make_discovery(settings: Settings) -> Discovery:
    if settings.agents:
        return StaticDiscovery(settings.agents)
    return KubeDiscovery(
        settings.agent_namespace,
        settings.agent_selector,
        settings.agent_port,
        settings.agent_scheme,
        daemonset=settings.agent_daemonset,
    )


def progress_reporter(ctx: Context | None, tool: str) -> Callable[[int, int], Awaitable[None]] | None:
    """Progress notifications, at most ~20 per fan-out and 4 a second (plus the last one)."""
    if ctx is None:
        return None
    last = {"t": 0.0, "n": 0}

    async def report(done: int, total: int) -> None:
        now = time.monotonic()
        step = max(1, total // 20)
        if done == total or (done - last["n"] >= step and now - last["t"] >= 0.25):
            last["t"], last["n"] = now, done
            try:
                await ctx.report_progress(done, total, f"{tool}: {done}/{total} nodes answered")
            except Exception:  # a client that cannot take progress must not fail the call
                log.debug("progress notification failed", exc_info=True)

    return report


def summarize(
    calls: list[NodeCall], tool: str, correlation_id: str, start: float, timeout_s: float
) -> Summary:
    errors = Counter(c.error_kind or "error" for c in calls if not c.ok)
    ok = sum(1 for c in calls if c.ok)
    return Summary(
        correlation_id=correlation_id,
        tool=tool,
        targeted=len(calls),
        succeeded=ok,
        failed=len(calls) - ok,
        partial=0 < ok < len(calls),
        errors_by_kind=dict(errors),
        duration_ms=round((time.monotonic() - start) * 1000, 1),
        node_timeout_s=timeout_s,
    )


def log_call(summary: Summary) -> None:
    log.info(
        "gateway call",
        extra={
            "correlation_id": summary.correlation_id,
            "tool": summary.tool,
            "targeted": summary.targeted,
            "succeeded": summary.succeeded,
            "failed": summary.failed,
            "errors_by_kind": summary.errors_by_kind,
            "duration_ms": summary.duration_ms,
        },
    )


def health_summary(result: dict[str, Any]) -> dict[str, Any]:
    """One node's get_gpu_health, condensed to its verdicts (what a cluster-wide answer needs)."""
    keep = ("index", "uuid", "pci_bus_id", "status", "reason", "action")
    problems = result.get("problems")
    return {
        "status": result.get("status"),
        "action": result.get("action"),
        "mock": (result.get("source") or {}).get("mock"),
        "problems": [{k: p.get(k) for k in keep} for p in problems if isinstance(p, dict)]
        if isinstance(problems, list)
        else None,
        "counts": result.get("counts"),
        "unavailable": result.get("unavailable") or {},
    }


def node_results(calls: list[NodeCall], keep_result: bool = True) -> list[dict[str, Any]]:
    """NodeResult-shaped dicts (built directly: a 1000-node result is ~10 MB, no model round trip)."""
    return [
        {
            "node": c.node,
            "ok": c.ok,
            "error_kind": c.error_kind,
            "error": c.error,
            "attempts": c.attempts,
            "duration_ms": round(c.duration_s * 1000, 1),
            "result": c.result if keep_result else None,
        }
        for c in calls
    ]


def respond(structured: dict[str, Any], calls: list[NodeCall]) -> CallToolResult:
    """structuredContent in full; the text block is the same JSON, compact, unless the agents'
    replies add up to more than TEXT_LIMIT_BYTES: then it carries the summary and per-node status
    only (a 1000-node result would otherwise go out twice, and megabytes of text help no model)."""
    received = sum(c.reply_bytes + len(c.error or "") for c in calls)
    if received > TEXT_LIMIT_BYTES and isinstance(structured.get("nodes"), list):
        brief = {
            **structured,
            "nodes": [{k: v for k, v in n.items() if k != "result"} for n in structured["nodes"]],
            "note": f"per-node results ({received // 1024} KiB from the agents) are in structuredContent only",
        }
        text = pydantic_core.to_json(brief)
    else:
        text = pydantic_core.to_json(structured)
    return CallToolResult(
        content=[TextContent(type="text", text=text.decode())], structured_content=structured
    )


ArgumentsArg = Annotated[
    dict[str, Any] | None,
    Field(description='the node tool\'s other arguments, e.g. {"since": "1h"} (docs/tools.md)'),
]
DetailArg = Annotated[
    Detail,
    Field(
        description="summary: each node's status and action, its GPUs that are not healthy (status, "
        "reason, action) and the counts; full: each agent's whole get_gpu_health(detail=full) result"
    ),
]

# (agent tool, title, what it returns): the read-only node tools every front end offers with a target.
NODE_TOOLS: list[tuple[str, str, str]] = [
    ("get_gpu_inventory", "GPU inventory",
     "models, UUIDs, serials, PCI ids, VBIOS, memory, limits, MIG/persistence mode, driver/CUDA versions"),
    ("get_gpu_telemetry", "GPU telemetry",
     "temperature against NVML thresholds, power, clocks, utilization, decoded throttle reasons"),
    ("analyze_xid_errors", "XID errors",
     "XID events from the kernel log and NVML with their meaning, the GPU they hit and what to do"),
    ("snapshot_ecc", "ECC snapshot",
     "volatile and aggregate ECC counts, retired pages / remapped rows and their verdicts"),
    ("inspect_topology", "GPU topology", "NVLink state and errors, PCIe links, the GPU-to-GPU matrix"),
    ("list_gpu_processes", "GPU processes", "the processes on each GPU, their memory and their pods"),
]  # fmt: skip


def _merge_args(gpus: Any, arguments: dict[str, Any] | None) -> dict[str, Any]:
    out = dict(arguments or {})
    if gpus is not None:
        out["gpus"] = gpus
    return out


def _node_tool(app: FleetApp, tool: str, title: str, what: str) -> None:
    async def run(
        ctx: Context,
        node: NodeArg = None,
        nodes: NodesArg = None,
        node_selector: SelectorArg = None,
        gpus: GpuSelector = None,
        arguments: ArgumentsArg = None,
    ) -> FanoutReply:
        return await per_node(app, tool, _merge_args(gpus, arguments), node, nodes, node_selector, ctx)

    scope = (
        "the target nodes (required)" if app.require_target else "each target node (default: every GPU node)"
    )
    run.__name__ = tool
    run.__doc__ = f"{tool} on {scope}: {what}. One entry per node, plus a summary."
    app.add_tool(run, title=f"{title} (cluster)", annotations=CLUSTER_READ)


async def per_node(
    app: FleetApp,
    tool: str,
    arguments: dict[str, Any],
    node: str | None,
    nodes: list[str] | None,
    node_selector: str | None,
    ctx: Context,
    condense: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> CallToolResult:
    """Run one agent tool on the target nodes; optionally condense each node's answer."""
    calls, summary = await app.fan_out(tool, arguments, await app.target(node, nodes, node_selector), ctx)
    if condense is not None:
        for call in calls:
            if call.ok and isinstance(call.result, dict):
                call.result = condense(call.result)
    return respond({"summary": summary.model_dump(), "nodes": node_results(calls)}, calls)


def register_node_tools(app: FleetApp) -> None:
    """The node tools with a target and the health sweep: the same on every front end."""
    for tool, title, what in NODE_TOOLS:
        _node_tool(app, tool, title, what)
    scope = (
        "the target nodes (required)" if app.require_target else "each target node (default: every GPU node)"
    )

    async def get_gpu_health(
        ctx: Context,
        node: NodeArg = None,
        nodes: NodesArg = None,
        node_selector: SelectorArg = None,
        gpus: GpuSelector = None,
        detail: DetailArg = "summary",
        arguments: ArgumentsArg = None,
    ) -> FanoutReply:
        condense = health_summary if detail == "summary" else None
        args = _merge_args(gpus, arguments)
        if detail == "full":  # sent only when full: an agent from before the summaries knows no `detail`
            args["detail"] = "full"
        return await per_node(app, "get_gpu_health", args, node, nodes, node_selector, ctx, condense)

    get_gpu_health.__doc__ = (
        f"get_gpu_health on {scope}. By default each node's answer is condensed to its verdicts; ask "
        'detail="full" (best with node= or nodes=) for the reasons and evidence. A node whose agent does not '
        "list get_gpu_health (its --toolsets) answers error_kind=tool_missing."
    )

    async def find_unhealthy_gpus(
        ctx: Context, node: NodeArg = None, nodes: NodesArg = None, node_selector: SelectorArg = None
    ) -> UnhealthyReport:
        """Health sweep over the selected nodes (default: every GPU node), in waves: each node's
        get_gpu_health verdicts. Returns only the GPUs that are not healthy (node, GPU, status, reasons), GPUs of unknown health, and the nodes
        that could not be read (their health is unknown, not good), with counts."""
        return await sweep(app, await app.target(node, nodes, node_selector, sweep=True), ctx)

    app.add_tool(find_unhealthy_gpus, title="Unhealthy GPUs across the cluster", annotations=CLUSTER_READ)
    app.add_tool(get_gpu_health, title="GPU health (cluster)", annotations=CLUSTER_READ)


NodeName = Annotated[str, Field(description="the one node to act on (destructive tools never fan out)")]
CLIP_PLAN = 4000


def clip_json(value: Any) -> str:
    text = pydantic_core.to_json(value, indent=1).decode()
    return text if len(text) <= CLIP_PLAN else text[:CLIP_PLAN] + " ..."


def register_destructive_tools(app: FleetApp) -> None:
    """kill_gpu_process / reset_gpu on exactly ONE named node, confirmed by the user, audited here with
    the caller and the correlation id (which also reach the agent in ``_meta``)."""
    audit = AuditLog(None)

    async def run(tool: str, node: str, arguments: dict[str, Any], ctx: Context) -> dict[str, Any]:
        if not isinstance(node, str) or not node.strip():
            raise ToolError(f"{tool} needs exactly one node: pass node='NAME'")
        agents, missing = await app.target(node, None, None)
        if missing or not agents:
            raise ToolError((await app.missing([node]))[0].error or f"node {node!r} has no agent")
        correlation_id = uuid.uuid4().hex[:16]
        caller = app.caller(ctx)
        where = {"node": node, "caller": caller, "correlation_id": correlation_id, "front_end": app.kind}
        audit.write(tool, "requested", args=arguments, **where)
        meta = {META_CORRELATION: correlation_id, META_CALLER: caller}
        try:
            result = await app.destructive_call(tool, agents[0], arguments, meta, ctx)
        except AgentError as exc:
            audit.write(tool, "failed", error=str(exc)[:2000], **where)
            raise ToolError(str(exc)) from None
        except TimeoutError:
            audit.write(tool, "failed", error="timeout", **where)
            raise ToolError(f"{node}: no answer within the node timeout") from None
        except ToolError as exc:
            audit.write(tool, "refused", error=str(exc)[:2000], **where)
            raise
        audit.write(tool, "answered", agent_outcome=result.get("outcome"), **where)
        return {"node": node, "correlation_id": correlation_id, "result": result}

    async def kill_gpu_process(
        ctx: Context,
        node: NodeName,
        pid: Annotated[int, Field(description="host pid, as list_gpu_processes shows it")],
        gpu: Annotated[int | str | None, Field(description="GPU index, UUID or PCI bus id")] = None,
        signal: Annotated[str, Field(description="TERM, KILL or INT")] = "TERM",
        grace_seconds: Annotated[int, Field(description="0 to 300")] = 10,
        dry_run: Annotated[bool, Field(description="return the plan and do nothing")] = False,
        confirm: Annotated[
            bool, Field(description="the user agreed; only for a client that cannot elicit")
        ] = False,
    ) -> dict[str, Any]:
        """kill_gpu_process on ONE node: the agent there checks that the pid is a GPU process of that
        node; the user confirms through elicitation (confirm=true only for clients that cannot ask);
        audited with the caller and a correlation id."""
        args = {"pid": pid, "gpu": gpu, "signal": signal, "grace_seconds": grace_seconds, "dry_run": dry_run,
                "confirm": confirm}  # fmt: skip
        return await run("kill_gpu_process", node, args, ctx)

    async def reset_gpu(
        ctx: Context,
        node: NodeName,
        gpu: Annotated[int | str, Field(description="GPU index, UUID or PCI bus id")],
        dry_run: Annotated[bool, Field(description="return the checks and do nothing")] = False,
        confirm: Annotated[
            bool, Field(description="the user agreed; only for a client that cannot elicit")
        ] = False,
    ) -> dict[str, Any]:
        """reset_gpu on ONE node: the agent there runs its pre-checks; the user confirms through
        elicitation (confirm=true only for clients that cannot ask); audited with the caller and a
        correlation id."""
        return await run("reset_gpu", node, {"gpu": gpu, "dry_run": dry_run, "confirm": confirm}, ctx)

    app.add_tool(kill_gpu_process, title="Kill a GPU process on one node", annotations=PASS_THROUGH)
    app.add_tool(reset_gpu, title="Reset a GPU on one node", annotations=PASS_THROUGH)


def register_tools(gw: GatewayApp) -> None:
    """The gateway: its agent list, the shared node tools, and call_node_tool."""

    async def list_gpu_nodes(node_selector: SelectorArg = None) -> NodeList:
        """List the GPU nodes that have a ready agent: node name, agent URL, node labels, and the
        gateway's circuit-breaker state for it. Optionally filtered by a node label selector."""
        agents, _ = await gw.target(None, None, node_selector)
        nodes = [
            GpuNode(node=a.node, url=a.url, labels=a.labels, breaker=gw.board.state(a.node)) for a in agents
        ]
        return NodeList(discovery=gw.discovery.describe(), count=len(nodes), nodes=nodes)

    async def call_node_tool(
        ctx: Context,
        tool: Annotated[str, Field(description="the agent tool to run, e.g. analyze_xid_errors")],
        arguments: Annotated[dict[str, Any] | None, Field(description="its arguments")] = None,
        node: NodeArg = None,
        nodes: NodesArg = None,
        node_selector: SelectorArg = None,
    ) -> FanoutReply:
        """Run any read-only agent tool on the target nodes (default: every GPU node) and collect the
        answers. Not retried (the tool may not be idempotent). Destructive tools are refused here: they
        go to one node at a time through kill_gpu_process / reset_gpu (gateway operator mode)."""
        if tool in DESTRUCTIVE_TOOLS:
            raise ToolError(
                f"{tool} is destructive and never fans out: call the gateway's {tool} tool with one node "
                "(it exists when the gateway runs with --gateway-operator)"
            )
        calls, summary = await gw.fan_out(
            tool, arguments or {}, await gw.target(node, nodes, node_selector), ctx, idempotent=False
        )
        return respond({"summary": summary.model_dump(), "nodes": node_results(calls)}, calls)

    gw.add_tool(list_gpu_nodes, title="GPU nodes in the cluster", annotations=CLUSTER_READ)
    register_node_tools(gw)
    gw.add_tool(call_node_tool, title="Run an agent tool on nodes", annotations=PASS_THROUGH)


async def sweep(gw: FleetApp, target: tuple[list[Agent], list[str]], ctx: Context | None) -> UnhealthyReport:
    """find_unhealthy_gpus: every node's get_gpu_health, as per-GPU verdicts."""
    agents, missing = target
    correlation_id = uuid.uuid4().hex[:16]
    start = time.monotonic()
    deadline = start + gw.call_timeout_s()
    progress = progress_reporter(ctx, "find_unhealthy_gpus")
    meta = gw.call_meta(correlation_id)
    calls = await gw.fanout.call_all(
        agents,
        "get_gpu_health",
        {},
        correlation_id=correlation_id,
        deadline=deadline,
        on_progress=progress,
        meta=meta,
    )
    verdicts: list[GpuVerdict] = []
    for call in calls:
        if call.ok and call.result is not None:
            verdicts += from_health(call.node, call.result)
    final = list(calls)  # an agent without get_gpu_health is reported (tool_missing), not guessed from others
    final += await gw.missing(missing)
    summary = summarize(final, "find_unhealthy_gpus", correlation_id, start, gw.config.node_timeout_s)
    log_call(summary)
    return UnhealthyReport(
        summary=summary,
        unhealthy=[v for v in verdicts if v.status in UNHEALTHY],
        unknown=[v for v in verdicts if v.status == "unknown"],
        unreachable=[NodeResult(**r) for r in node_results(final, keep_result=False) if not r["ok"]],
        healthy_gpus=sum(1 for v in verdicts if v.status == "healthy"),
        nodes_checked=len(final),
    )


def run_gateway(settings: Settings) -> int:
    """``k8s-gpu-mcp gateway``: stdio, or streamable HTTP (stateless, SSE so progress reaches the client)."""
    try:
        gw = GatewayApp(settings)
    except (DiscoveryError, ValueError) as exc:
        sys.stderr.write(f"k8s-gpu-mcp: {exc}\n")
        return 2
    try:
        if settings.transport == "http":
            from k8s_gpu_mcp.http.serve import run_server

            return run_server(gw.server, settings, gw.metrics, gw.readiness, json_response=False)
        import anyio

        from k8s_gpu_mcp.transport.stdio import serve_stdio

        anyio.run(serve_stdio, gw.server)
    except KeyboardInterrupt:
        pass
    finally:
        gw.close()
    return 0
