"""Call one tool on many nodes: bounded concurrency, deadlines, jittered retries, breakers.

The one fan-out core of both cluster front ends. How a node is reached is a :class:`NodeTransport`:
the gateway's HTTP agents (:class:`HttpTransport`), or ``connect cluster``'s on-demand syringe
sessions (``launch/cluster_sessions.py``). Every node gets an answer: its result, or an error kind
and message. A node gets ``node_timeout`` once it is called; the whole fan-out ends by its
``deadline`` (default ``start + node_timeout``: a node still queued or still talking then is
reported as ``timeout``), so hung agents cost one timeout, not one timeout each. With more nodes
than ``concurrency`` the calls run in waves.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from k8s_gpu_mcp.gateway.breaker import BreakerBoard
from k8s_gpu_mcp.gateway.discovery import Agent
from k8s_gpu_mcp.gateway.rpc import AgentError, RpcClient, clip_text
from k8s_gpu_mcp.metrics import LATENCY_BUCKETS

if TYPE_CHECKING:  # prometheus_client is imported by FanoutMetrics only (connect cluster has none)
    from prometheus_client import CollectorRegistry, Counter, Histogram

log = logging.getLogger(__name__)

Progress = Callable[[int, int], Awaitable[None]]
MAX_FANOUT_REPLY_BYTES = 48 * 1024 * 1024  # kept per call; serialising it costs ~8x (tests/reliability)


class NodeTransport(Protocol):
    """Sends one ``tools/call`` to one node's agent: returns the JSON result and its size in bytes,
    or raises AgentError (its ``kind`` lands in the summary)."""

    async def call_tool(
        self, agent: Agent, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], int]: ...


class HttpTransport:
    """The DaemonSet agents over streamable HTTP (the gateway)."""

    def __init__(self, rpc: RpcClient) -> None:
        self.rpc = rpc

    async def call_tool(
        self, agent: Agent, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], int]:
        return await self.rpc.call_sized(agent.url, "tools/call", params, headers)


@dataclass(frozen=True)
class FanoutConfig:
    node_timeout_s: float = 5.0
    concurrency: int = 256
    retries: int = 2
    backoff_base_s: float = 0.05
    backoff_max_s: float = 1.0


@dataclass
class NodeCall:
    node: str
    ok: bool
    result: dict[str, Any] | None = None
    error_kind: str | None = None
    error: str | None = None
    attempts: int = 0
    duration_s: float = 0.0
    reply_bytes: int = 0


@dataclass
class FanoutMetrics:
    registry: CollectorRegistry
    calls: Counter = field(init=False)
    latency: Histogram = field(init=False)

    def __post_init__(self) -> None:
        from prometheus_client import Counter, Histogram

        ns = "k8s_gpu_mcp_gateway"
        self.calls = Counter(
            "node_calls", "Agent calls by outcome.", ["outcome"], namespace=ns, registry=self.registry
        )
        self.latency = Histogram(
            "node_call_duration_seconds",
            "Agent call latency, retries included.",
            namespace=ns,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def watch_breakers(self, board: BreakerBoard) -> None:
        from prometheus_client import Gauge

        gauge = Gauge(
            "breakers_open",
            "Nodes whose circuit breaker is open.",
            namespace="k8s_gpu_mcp_gateway",
            registry=self.registry,
        )
        gauge.set_function(lambda: sum(1 for b in board.breakers.values() if b.state != "closed"))


def tool_payload(result: dict[str, Any], who: str) -> dict[str, Any]:
    """A tools/call result's structured content; tool errors raise AgentError (not breaker failures)."""
    texts = [c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict)]
    if result.get("isError"):
        message = clip_text(" ".join(t for t in texts if t) or "the tool reported an error")
        kind = "tool_missing" if message.startswith("Unknown tool") else "tool_error"
        raise AgentError(kind, f"{who}: {message}", breaker=False)
    structured = result.get("structuredContent")
    if isinstance(structured, dict):
        return structured
    for text in texts:
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            return parsed
    if texts:
        return {"text": "\n".join(texts)}
    raise AgentError("bad_reply", f"{who}: tools/call result has neither structuredContent nor content")


class Fanout:
    def __init__(
        self,
        transport: NodeTransport | RpcClient,
        config: FanoutConfig,
        board: BreakerBoard,
        metrics: FanoutMetrics | None = None,
        rand: Callable[[], float] = random.random,
    ):
        if isinstance(transport, RpcClient):
            transport = HttpTransport(transport)
        self.transport: NodeTransport = transport
        self.config, self.board, self.metrics, self.rand = config, board, metrics, rand
        self.limiter = anyio.CapacityLimiter(config.concurrency)  # app-wide, across concurrent calls

    async def call_all(
        self,
        agents: list[Agent],
        tool: str,
        arguments: dict[str, Any],
        *,
        idempotent: bool = True,
        correlation_id: str = "",
        deadline: float | None = None,
        on_progress: Progress | None = None,
        meta: dict[str, Any] | None = None,
    ) -> list[NodeCall]:
        """``tools/call`` on every agent; results in the agents' order. ``meta`` goes out as the
        request's ``_meta`` (who asked, correlation id)."""
        deadline = deadline if deadline is not None else time.monotonic() + self.config.node_timeout_s
        results: list[NodeCall | None] = [None] * len(agents)
        done = 0
        headers = {"x-correlation-id": correlation_id} if correlation_id else {}

        retained = 0

        async def one(i: int, agent: Agent) -> None:
            nonlocal done, retained
            call = await self.call_node(agent, tool, arguments, deadline, idempotent, headers, meta)
            retained += call.reply_bytes
            if call.ok and retained > MAX_FANOUT_REPLY_BYTES:  # the answers kept for one reply: bounded
                call = NodeCall(agent.node, False, error_kind="reply_budget", attempts=call.attempts,
                                error=f"answered, but this call's replies passed {MAX_FANOUT_REPLY_BYTES >> 20} "
                                "MiB: target fewer nodes")  # fmt: skip
            results[i] = call
            done += 1
            if on_progress is not None:
                await on_progress(done, len(agents))

        async with anyio.create_task_group() as tg:
            for i, agent in enumerate(agents):
                tg.start_soon(one, i, agent)
        return [r for r in results if r is not None]

    async def call_node(
        self,
        agent: Agent,
        tool: str,
        arguments: dict[str, Any],
        deadline: float,
        idempotent: bool = True,
        headers: dict[str, str] | None = None,
        meta: dict[str, Any] | None = None,
    ) -> NodeCall:
        start = time.monotonic()
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        if meta:
            params["_meta"] = meta
        call = await self._call_node(agent, params, deadline, idempotent, headers or {})
        call.duration_s = time.monotonic() - start
        if self.metrics is not None:
            self.metrics.calls.labels("ok" if call.ok else call.error_kind or "error").inc()
            self.metrics.latency.observe(call.duration_s)
        return call

    async def _call_node(
        self,
        agent: Agent,
        params: dict[str, Any],
        deadline: float,
        idempotent: bool,
        headers: dict[str, str],
    ) -> NodeCall:
        breaker = self.board.get(agent.node)
        permit = breaker.allow()
        if permit is None:
            return NodeCall(
                agent.node,
                False,
                error_kind="circuit_open",
                error=f"circuit breaker open after {breaker.failures} consecutive failures; "
                f"next probe in {breaker.retry_in_s:.1f} s",
            )
        attempts, calling = 0, False
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                async with self.limiter:
                    calling = True
                    node_deadline = min(deadline, time.monotonic() + self.config.node_timeout_s)
                    with anyio.fail_after(max(0.0, node_deadline - time.monotonic())):
                        while True:
                            attempts += 1
                            try:
                                reply, size = await self.transport.call_tool(agent, params, headers)
                                payload = tool_payload(reply, agent.node)
                            except AgentError as exc:
                                if exc.retryable and idempotent and attempts <= self.config.retries:
                                    delay = self._backoff(attempts)
                                    if time.monotonic() + delay < node_deadline:
                                        await anyio.sleep(delay)
                                        continue
                                breaker.record(permit, success=not exc.breaker)
                                return NodeCall(
                                    agent.node, False, error_kind=exc.kind, error=str(exc), attempts=attempts
                                )
                            breaker.record(permit, success=True)
                            return NodeCall(
                                agent.node, True, result=payload, attempts=attempts, reply_bytes=size
                            )
        except TimeoutError:
            if calling:
                breaker.record(permit, success=False)
                message = f"no answer within the {self.config.node_timeout_s:g} s node timeout"
            else:
                breaker.release(permit)
                message = (
                    "deadline passed while queued behind other nodes (raise --concurrency/--max-sessions)"
                )
            return NodeCall(agent.node, False, error_kind="timeout", error=message, attempts=attempts)
        except BaseException:
            breaker.release(permit)
            raise

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter in [0.5, 1.5) of the step."""
        step = min(self.config.backoff_max_s, self.config.backoff_base_s * 2 ** (attempt - 1))
        return step * (0.5 + self.rand())
