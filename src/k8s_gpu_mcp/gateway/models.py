"""The cluster front ends' vocabulary: tool annotations, target arguments and answer models."""

from __future__ import annotations

from typing import Annotated, Any

from mcp_types import CallToolResult, ToolAnnotations
from pydantic import BaseModel, Field

from k8s_gpu_mcp.gateway.health import GpuVerdict
from k8s_gpu_mcp.vocabulary import Detail

CLUSTER_READ = ToolAnnotations(
    readOnlyHint=True, idempotentHint=True, openWorldHint=True, destructiveHint=False
)
PASS_THROUGH = ToolAnnotations(
    readOnlyHint=False, idempotentHint=False, openWorldHint=True, destructiveHint=True
)

DESTRUCTIVE_TOOLS = ("kill_gpu_process", "reset_gpu")

NodeArg = Annotated[str | None, Field(description="one node name")]
NodesArg = Annotated[list[str] | None, Field(description="node names")]
SelectorArg = Annotated[
    str | None,
    Field(description="label selector over node labels, e.g. 'nvidia.com/gpu.product=NVIDIA-H100-80GB-HBM3'"),
]


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

NodeName = Annotated[str, Field(description="the one node to act on (destructive tools never fan out)")]


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
