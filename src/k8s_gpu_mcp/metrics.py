"""Prometheus metrics for tool calls: requests by tool and status, latency, in flight.

Each server owns a ``CollectorRegistry`` (not the process-global one) so that tests and the
gateway can build several servers in one process. ``/metrics`` renders that registry.
prometheus_client is imported on first use (first call or first scrape), not at start-up: the
stdio agent's cold start stays that of the SDK.
"""

from __future__ import annotations

import functools
import inspect
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Tool latencies span sub-millisecond NVML reads to multi-second cluster fan-outs.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


@dataclass
class _Series:
    """The Prometheus series of one registry."""

    registry: Any
    requests: Any
    latency: Any
    in_flight: Any


class ToolMetrics:
    """Counters for every tool a server registers (see ``instrument``)."""

    def __init__(self, namespace: str = "k8s_gpu_mcp"):
        self.namespace = namespace
        self.tools: list[str] = []
        self._series: _Series | None = None
        self._lock = threading.Lock()  # sync tools run in worker threads

    def _get(self) -> _Series:
        if self._series is not None:
            return self._series
        with self._lock:
            return self._series if self._series is not None else self._create()

    def _create(self) -> _Series:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        registry = CollectorRegistry()
        ns = self.namespace
        series = _Series(
            registry,
            Counter("tool_requests", "Tool calls by tool and status (ok, error).", ["tool", "status"],
                    namespace=ns, registry=registry),
            Histogram("tool_duration_seconds", "Tool call latency in seconds.", ["tool"], namespace=ns,
                      buckets=LATENCY_BUCKETS, registry=registry),
            Gauge("tool_in_flight", "Tool calls running now.", ["tool"], namespace=ns, registry=registry),
        )  # fmt: skip
        for tool in self.tools:  # zeros, so dashboards see every series before traffic
            self._publish(tool, series)
        self._series = series
        return series

    def _publish(self, tool: str, series: _Series | None = None) -> None:
        series = series or self._get()
        for status in ("ok", "error"):
            series.requests.labels(tool, status)
        series.latency.labels(tool)
        series.in_flight.labels(tool)

    @property
    def registry(self) -> Any:
        return self._get().registry

    @property
    def requests(self) -> Any:
        return self._get().requests

    @property
    def latency(self) -> Any:
        return self._get().latency

    @property
    def in_flight(self) -> Any:
        return self._get().in_flight

    def declare(self, tool: str) -> None:
        """Publish a tool's series (at zero) before its first call; instrument() declares too."""
        with self._lock:
            if tool in self.tools:
                return
            self.tools.append(tool)
        if self._series is not None:
            self._publish(tool)

    def instrument(self, fn: Callable[..., Any], name: str | None = None) -> Callable[..., Any]:
        """Wrap a tool function; the wrapper keeps its name, docstring and signature (the SDK reads them)."""
        tool = name or fn.__name__
        self.declare(tool)

        def begin() -> tuple[_Series, float]:
            series = self._get()
            series.in_flight.labels(tool).inc()
            return series, time.perf_counter()

        def done(series: _Series, start: float, status: str) -> None:
            series.latency.labels(tool).observe(time.perf_counter() - start)
            series.requests.labels(tool, status).inc()
            series.in_flight.labels(tool).dec()

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                series, start = begin()
                status = "error"
                try:
                    result = await fn(*args, **kwargs)
                    status = "ok"
                    return result
                finally:
                    done(series, start, status)

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            series, start = begin()
            status = "error"
            try:
                result = fn(*args, **kwargs)
                status = "ok"
                return result
            finally:
                done(series, start, status)

        return wrapper

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
