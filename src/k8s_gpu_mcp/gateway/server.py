"""The DaemonSet gateway (``k8s-gpu-mcp gateway``): the cluster core over the agents' HTTP endpoints.

The core is :class:`~k8s_gpu_mcp.gateway.core.FleetApp` (targeting, fan-out, summaries, partial
results, progress); the tools every front end shares are in ``tools.py`` (the sweep in
``sweep.py``), the answer models in ``models.py``. Two front ends use the core over two transports:
:class:`GatewayApp` (HTTP agents of the DaemonSet) and ``connect cluster`` (syringe sessions opened
on demand, ``launch/cluster.py``).

Target arguments on every node tool: ``node`` (one name), ``nodes`` (names), ``node_selector``
(a label selector over node labels). With none of them the gateway means every agent it knows;
``connect cluster`` refuses (it would inject into every node). Destructive tools take exactly one
``node``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from k8s_gpu_mcp.audit import META_CORRELATION
from k8s_gpu_mcp.gateway.core import FleetApp, clip_json, node_results, respond
from k8s_gpu_mcp.gateway.discovery import Agent, Discovery, DiscoveryError, KubeDiscovery, StaticDiscovery
from k8s_gpu_mcp.gateway.fanout import FanoutConfig, tool_payload
from k8s_gpu_mcp.gateway.models import (
    CLUSTER_READ,
    DESTRUCTIVE_TOOLS,
    PASS_THROUGH,
    FanoutReply,
    GpuNode,
    NodeArg,
    NodeList,
    NodesArg,
    SelectorArg,
)
from k8s_gpu_mcp.gateway.rpc import RpcClient
from k8s_gpu_mcp.gateway.tools import register_destructive_tools, register_node_tools
from k8s_gpu_mcp.http.auth import Token

if TYPE_CHECKING:
    from k8s_gpu_mcp.config import Settings

AGENT_TOKEN_ENV = "K8S_GPU_MCP_AGENT_TOKEN"
INSTRUCTIONS = (
    "k8s-gpu-mcp gateway: the GPU node tools for a whole Kubernetes cluster. Every node tool takes a "
    "target (node, nodes, or node_selector; none means every GPU node) and returns one entry per node "
    "plus a summary; a node that failed carries error_kind and error and is never counted as healthy. "
    "Start with find_unhealthy_gpus or list_gpu_nodes."
)


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
        self.operator_flag = "--gateway-operator (and the agents in --mode operator)"
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
