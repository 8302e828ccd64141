"""FleetApp, the one cluster core: node targeting, fan-out (``fanout.py``), summaries, partial
results and progress, over one transport. The gateway (``server.py``) and ``connect cluster``
(``launch/cluster.py``) are its front ends; the tools they share are in ``tools.py``.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pydantic_core
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.audit import META_CORRELATION
from k8s_gpu_mcp.gateway.breaker import BreakerBoard
from k8s_gpu_mcp.gateway.discovery import Agent, Discovery, DiscoveryError, select_agents
from k8s_gpu_mcp.gateway.fanout import Fanout, FanoutConfig, FanoutMetrics, NodeCall, NodeTransport
from k8s_gpu_mcp.gateway.models import DESTRUCTIVE_TOOLS, Summary
from k8s_gpu_mcp.metrics import ToolMetrics

if TYPE_CHECKING:
    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.gateway.rpc import RpcClient

log = logging.getLogger(__name__)

TEXT_LIMIT_BYTES = 256 * 1024


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
        from k8s_gpu_mcp.server import AgentServer  # the agent's argument and missing-tool errors

        self.operator_flag = "--mode operator"
        self.server = AgentServer(
            self,
            name,
            version=__version__,
            instructions=instructions,
            log_level=settings.log_level.upper(),
        )
        self.tool_names: list[str] = []

    @property
    def dropped(self) -> list[str]:
        """The destructive tools this server does not serve (AgentServer names the flag that would)."""
        return [t for t in DESTRUCTIVE_TOOLS if t not in self.tool_names]

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


CLIP_PLAN = 4000


def clip_json(value: Any) -> str:
    text = pydantic_core.to_json(value, indent=1).decode()
    return text if len(text) <= CLIP_PLAN else text[:CLIP_PLAN] + " ..."
