"""``k8s-gpu-mcp connect cluster``: one local MCP server for the whole cluster, agents on demand.

The MCP client runs ``{"command": "k8s-gpu-mcp", "args": ["connect", "cluster"]}`` on the SRE's
machine. It uses their kubeconfig and creates nothing on the cluster until a tool needs a node:
the API-only tools (launch/cluster_api.py) read the API server; a node tool with a target opens
an agent session on each target node through the syringe (launch/cluster_sessions.py), reuses it,
and closes it when idle or when the client goes away. The node tools, waves, deadlines, breakers,
partial results and progress are the gateway's own core (gateway/core.FleetApp + gateway/fanout),
over this other transport.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from typing import Any

import anyio
from mcp.server.mcpserver import Context

from k8s_gpu_mcp.audit import META_CALLER, META_CORRELATION
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gateway.core import FleetApp
from k8s_gpu_mcp.gateway.discovery import Agent, DiscoveryError
from k8s_gpu_mcp.gateway.fanout import FanoutConfig, NodeCall, tool_payload
from k8s_gpu_mcp.gateway.tools import register_destructive_tools, register_node_tools
from k8s_gpu_mcp.launch import syringe
from k8s_gpu_mcp.launch.cluster_cli import ClusterOptions
from k8s_gpu_mcp.launch.cluster_sessions import SessionPool, stderr_say

log = logging.getLogger(__name__)

DISCOVERY_TTL_S = 15.0
RBAC_WAIT_S = 15.0  # the start-up RBAC checks; past this the first session checks for itself
RBAC_HINT = (
    "bind ClusterRole k8s-gpu-mcp-connect-cluster (and, in the debugger pods' namespace, "
    "k8s-gpu-mcp-connect) from deploy/kubernetes/base; see docs/kubernetes.md"
)

INSTRUCTIONS = (
    "k8s-gpu-mcp connect cluster: the GPU tools for a whole Kubernetes cluster from one entry. "
    "list_gpu_nodes, describe_gpu_node, get_pod_gpu_allocation, find_workload_gpus and get_node_timeline "
    "(unless include_node=true) read the API server only. Node tools (get_gpu_health, analyze_xid_errors, ...) need a target (node, nodes or "
    "node_selector) and start a short-lived agent pod on each target node; results come per node, a node "
    "that failed carries error_kind and error. find_unhealthy_gpus sweeps a selection. Typical path: "
    "find_workload_gpus (job/pod -> node) -> get_gpu_health(node=...) -> analyze_xid_errors(node=...)."
)


def node_argv(opts: ClusterOptions, node: str, preflight: bool = True) -> list[str]:
    """The syringe command line for one node's session (the same launcher as `connect node/NAME`).
    ``preflight=False`` once a session has started: the node is known to exist (discovery) and the
    RBAC it checks is the same for every node of the namespace."""
    argv = [
        sys.executable,
        "-m",
        "k8s_gpu_mcp",
        "connect",
        f"node/{node}",
        "--image",
        opts.image,
        "--mode",
        opts.mode,
    ]
    argv += ["--timeout", f"{opts.timeout:g}", "--kubectl", opts.kubectl]
    for flag, value in (
        ("--namespace", opts.namespace),
        ("--context", opts.context),
        ("--kubeconfig", opts.kubeconfig),
    ):
        if value:
            argv += [flag, value]
    if not (opts.preflight and preflight):
        argv.append("--no-preflight")
    return [*argv, "--", *opts.serve_args] if opts.serve_args else argv  # fmt: skip


class ClusterDiscovery:
    """GPU nodes from the API server (cached briefly); also remembers every node name it saw."""

    def __init__(self, api: Any, ttl_s: float = DISCOVERY_TTL_S) -> None:
        self.api = api
        self.ttl_s = ttl_s
        self.all_nodes: set[str] = set()
        self._cached: tuple[float, list[Agent]] | None = None

    async def agents(self) -> list[Agent]:
        from k8s_gpu_mcp.k8s.client import K8sError
        from k8s_gpu_mcp.launch.cluster_api import is_gpu_node

        if self._cached and time.monotonic() - self._cached[0] < self.ttl_s:
            return list(self._cached[1])
        try:
            nodes = await anyio.to_thread.run_sync(self.api.list_nodes)
        except K8sError as exc:
            raise DiscoveryError(str(exc)) from None
        self.all_nodes = {n["metadata"]["name"] for n in nodes}
        agents = sorted(
            (
                Agent(
                    n["metadata"]["name"],
                    f"node/{n['metadata']['name']}",
                    dict(n["metadata"].get("labels") or {}),
                )
                for n in nodes
                if is_gpu_node(n)
            ),
            key=lambda a: a.node,
        )
        self._cached = (time.monotonic(), agents)
        return list(agents)

    def describe(self) -> str:
        return "GPU nodes from the Kubernetes API (kubeconfig)"


class ClusterApp(FleetApp):
    """``connect cluster``: the shared core over syringe sessions, plus the API-only tools."""

    kind = "cluster"
    require_target = True
    serves_metrics = False

    def __init__(
        self,
        opts: ClusterOptions,
        api: Any = None,
        pool: SessionPool | None = None,
    ) -> None:
        from k8s_gpu_mcp.k8s.client import KubeApi

        self.opts = opts
        self.own_pool = pool is None  # syringe sessions: serve() starts the RBAC checks
        self.rbac_checks: dict[str, subprocess.Popen[str]] | None = None  # read once, by the first node call
        self.rbac_settled = anyio.Lock()
        self.api = (
            api
            if api is not None
            else KubeApi(
                kubeconfig=opts.kubeconfig, context=opts.context, in_cluster=False, rbac_hint=RBAC_HINT
            )
        )
        self.outer_can_elicit = False
        self.preflight_passed = False
        self.pool = pool if pool is not None else SessionPool(
            lambda node: node_argv(opts, node, preflight=not self.preflight_passed),
            max_sessions=opts.max_sessions,
            idle_timeout_s=opts.idle_timeout,
            can_elicit=lambda: self.outer_can_elicit,
        )  # fmt: skip
        settings = Settings(
            mode="operator" if opts.mode == "operator" else "read-only", log_level=opts.log_level
        )
        config = FanoutConfig(node_timeout_s=opts.node_timeout, concurrency=opts.max_sessions, retries=0)
        super().__init__(settings, ClusterDiscovery(self.api), self.pool, config, name="k8s-gpu-mcp-cluster",
                         instructions=INSTRUCTIONS)  # fmt: skip
        from k8s_gpu_mcp.launch.cluster_api import register_api_tools

        register_api_tools(self)
        register_node_tools(self)
        if opts.mode == "operator":
            register_destructive_tools(self)

    async def destructive_call(
        self, tool: str, agent: Agent, arguments: dict[str, Any], meta: dict[str, Any], ctx: Context
    ) -> dict[str, Any]:
        """The agent on that node asks the user itself: its elicitation is forwarded to this client."""
        import mcp_types as types

        from k8s_gpu_mcp.tools._confirm import Approval

        self.note_client(ctx)
        await self.settle_preflight()

        async def ask_user(params: types.ElicitRequestParams) -> types.ElicitResult:
            from mcp.shared.exceptions import NoBackChannelError

            try:
                answer = await ctx.elicit(
                    getattr(params, "message", f"Run {tool} on {agent.node}?"), Approval
                )
            except NoBackChannelError:  # the question cannot reach this client: not a yes
                return types.ElicitResult(action="decline")
            if answer.action == "accept":
                return types.ElicitResult(action="accept", content=answer.data.model_dump())
            return types.ElicitResult(action=answer.action)

        params = {"name": tool, "arguments": arguments, "_meta": meta}
        with anyio.fail_after(self.opts.node_timeout):
            reply, _ = await self.pool.call_destructive(
                agent.node, params, ask_user if self.outer_can_elicit else None
            )
        return tool_payload(reply, agent.node)

    def call_timeout_s(self) -> float:
        return self.opts.call_timeout

    def caller(self, ctx: Context | None = None) -> str:
        """The kubeconfig identity the calls go out as (the API server knows who that is)."""
        try:
            info = self.api.info
        except Exception:  # noqa: BLE001 - the name is for the audit line only
            return "unknown kubeconfig user"
        return f"kubeconfig context {info.context or '(current)'} at {info.server}"

    def call_meta(self, correlation_id: str) -> dict[str, Any]:
        return {META_CORRELATION: correlation_id, META_CALLER: self.caller()}

    async def settle_preflight(self) -> None:
        """Read the RBAC checks serve() started. Once they pass, no session repeats them (the
        node is known from discovery); when they fail or cannot be read, the first session runs the
        syringe's own pre-flight, which names what is missing for that node."""
        async with self.rbac_settled:
            checks, self.rbac_checks = self.rbac_checks, None
            if not checks or self.preflight_passed:
                return
            try:
                warnings = await anyio.to_thread.run_sync(
                    lambda: syringe.finish_checks(checks, self.opts, timeout_s=RBAC_WAIT_S)
                )
            except syringe.LaunchError as exc:
                log.info("RBAC pre-flight did not pass", extra={"error": str(exc)})
                return
            for warning in warnings:
                stderr_say(f"warning: {warning}")
            self.preflight_passed = True

    async def fan_out(
        self, tool: str, arguments: dict[str, Any], target: Any, ctx: Context | None, **kw: Any
    ) -> Any:
        self.note_client(ctx)
        await self.settle_preflight()
        calls, summary = await super().fan_out(tool, arguments, target, ctx, **kw)
        self.preflight_passed = self.preflight_passed or any(c.ok for c in calls)
        return calls, summary

    def note_client(self, ctx: Context | None) -> None:
        """Sessions forward the agents' confirmation questions only to a client that can answer them."""
        from k8s_gpu_mcp.tools._confirm import can_elicit

        if ctx is not None:
            self.outer_can_elicit = can_elicit(ctx)

    async def missing(self, names: list[str]) -> list[NodeCall]:
        """Named nodes that are not GPU nodes: say whether they exist at all."""
        disc = self.discovery
        known = disc.all_nodes if isinstance(disc, ClusterDiscovery) else set()
        out = []
        for n in names:
            if n in known:
                why = "has no GPU (no nvidia.com/gpu or MIG capacity, no nvidia.com/gpu.present label)"
                out.append(NodeCall(n, False, error_kind="no_gpu", error=f"node {n!r} {why}"))
            else:
                out.append(NodeCall(n, False, error_kind="unknown_node", error=f"node {n!r} does not exist"))
        return out


async def serve(app: ClusterApp) -> None:
    """Serve stdio until the client goes away (EOF) or a signal comes; then close every session.

    On SIGINT, SIGTERM or SIGHUP the sessions are closed (each syringe deletes its pod) and the
    process exits right away: the stdin reader is a thread blocked in read(), which no cancellation
    reaches, and nothing is left to do once the pods are gone."""
    from k8s_gpu_mcp.transport.stdio import serve_stdio

    if app.own_pool:
        app.rbac_checks = start_rbac_checks(app.opts)
    async with app.pool.running():
        async with anyio.create_task_group() as tg:

            async def on_signals() -> None:
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
                    async for signum in signals:
                        log.info("signal: closing every agent session", extra={"signal": int(signum)})
                        with anyio.CancelScope(shield=True):
                            await app.pool.close_all()
                        sys.stderr.flush()
                        os._exit(128 + int(signum))

            async def wire() -> None:
                await serve_stdio(app.server)
                tg.cancel_scope.cancel()  # EOF: the client went away

            tg.start_soon(on_signals)
            tg.start_soon(wire)


def start_rbac_checks(opts: ClusterOptions) -> dict[str, subprocess.Popen[str]] | None:
    """The debugger-pod RBAC checks (``kubectl auth can-i``: they ask, nothing is stored), started as
    the server starts serving (after its imports, so its initialize reply does not wait for them) and
    read when the first node needs a session. None when there is nothing to start: then the first
    session runs the syringe's own pre-flight and says what is wrong for that node."""
    if not opts.preflight:
        return None
    try:
        return syringe.start_checks(syringe.Kubectl(opts), None)
    except (syringe.LaunchError, OSError):
        return None
