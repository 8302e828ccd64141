"""Prometheus metrics for tool calls: requests by tool and status, latency, in flight.

Each server owns a ``CollectorRegistry`` (not the process-global one) so that tests and the
gateway can build several servers in one process. ``/metrics`` renders that registry.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Tool latencies span sub-millisecond NVML reads to multi-second cluster fan-outs.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "ToolMetrics"]


class ToolMetrics:
    """Counters for every tool a server registers (see ``instrument``)."""

    def __init__(self, namespace: str = "k8s_gpu_mcp", registry: CollectorRegistry | None = None):
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "tool_requests",
            "Tool calls by tool and status (ok, error).",
            ["tool", "status"],
            namespace=namespace,
            registry=self.registry,
        )
        self.latency = Histogram(
            "tool_duration_seconds",
            "Tool call latency in seconds.",
            ["tool"],
            namespace=namespace,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "tool_in_flight", "Tool calls running now.", ["tool"], namespace=namespace, registry=self.registry
        )

    def instrument(self, fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
        """Wrap a tool function; the wrapper keeps its name, docstring and signature (the SDK reads them)."""
        tool = name or fn.__name__
        requests, latency, in_flight = self.requests, self.latency.labels(tool), self.in_flight.labels(tool)
        for status in ("ok", "error"):
            requests.labels(tool, status)  # publish zeros so dashboards see the series before traffic

        def done(start: float, status: str) -> None:
            latency.observe(time.perf_counter() - start)
            requests.labels(tool, status).inc()
            in_flight.dec()

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                in_flight.inc()
                start, status = time.perf_counter(), "error"
                try:
                    result = await fn(*args, **kwargs)
                    status = "ok"
                    return result
                finally:
                    done(start, status)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            in_flight.inc()
            start, status = time.perf_counter(), "error"
            try:
                result = fn(*args, **kwargs)
                status = "ok"
                return result
            finally:
                done(start, status)

        return wrapper

    def render(self) -> bytes:
        return generate_latest(self.registry)
