"""find_unhealthy_gpus: every target node's get_gpu_health, as per-GPU verdicts."""

from __future__ import annotations

import time
import uuid

from mcp.server.mcpserver import Context

from k8s_gpu_mcp.gateway.core import FleetApp, log_call, node_results, progress_reporter, summarize
from k8s_gpu_mcp.gateway.discovery import Agent
from k8s_gpu_mcp.gateway.health import UNHEALTHY, GpuVerdict, from_health
from k8s_gpu_mcp.gateway.models import NodeResult, UnhealthyReport


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
