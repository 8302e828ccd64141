"""The tools every cluster front end offers: the node tools with a target, the health sweep, and
the destructive tools that go to exactly one node."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult
from pydantic import Field

from k8s_gpu_mcp.audit import META_CALLER, META_CORRELATION, AuditLog
from k8s_gpu_mcp.gateway.core import FleetApp, node_results, respond
from k8s_gpu_mcp.gateway.models import (
    CLUSTER_READ,
    PASS_THROUGH,
    ArgumentsArg,
    DetailArg,
    FanoutReply,
    NodeArg,
    NodeName,
    NodesArg,
    SelectorArg,
    UnhealthyReport,
)
from k8s_gpu_mcp.gateway.rpc import AgentError
from k8s_gpu_mcp.gateway.sweep import sweep
from k8s_gpu_mcp.tools._common import GpuSelector


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
        get_gpu_health verdicts. Returns only the GPUs that are not healthy (node, GPU, status,
        reasons), GPUs of unknown health, and the nodes that could not be read (their health is
        unknown, not good), with counts."""
        return await sweep(app, await app.target(node, nodes, node_selector, sweep=True), ctx)

    app.add_tool(find_unhealthy_gpus, title="Unhealthy GPUs across the cluster", annotations=CLUSTER_READ)
    app.add_tool(get_gpu_health, title="GPU health (cluster)", annotations=CLUSTER_READ)


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
