"""The ASGI app: the SDK's streamable HTTP endpoint at ``/mcp`` plus probes and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from k8s_gpu_mcp.http.auth import BearerAuthMiddleware, Token
from k8s_gpu_mcp.http.security import transport_security
from k8s_gpu_mcp.metrics import ToolMetrics

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class HttpState:
    """Shared with the runner: ``draining`` flips on SIGTERM so /readyz answers 503 at once."""

    draining: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HttpOptions:
    host: str = "127.0.0.1"
    allowed_hosts: str | None = None
    allowed_origins: str | None = None
    json_response: bool = True  # the agent answers plain JSON; the gateway streams SSE for progress


def build_http_app(
    server: MCPServer,
    options: HttpOptions,
    *,
    metrics: ToolMetrics,
    readiness: Readiness,
    token: Token | None,
    state: HttpState | None = None,
) -> tuple[ASGIApp, HttpState]:
    """Stateless streamable HTTP at /mcp; /healthz, /readyz open; /mcp and /metrics behind the token."""
    state = state if state is not None else HttpState()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        if state.draining:
            return JSONResponse({"ready": False, "reason": "shutting down"}, status_code=503)
        ready, details = readiness()
        return JSONResponse({"ready": ready, **details}, status_code=200 if ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    starlette = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=options.json_response,
        transport_security=transport_security(options.host, options.allowed_hosts, options.allowed_origins),
        host=options.host,
    )
    starlette.router.routes.extend(
        [
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
    return BearerAuthMiddleware(starlette, token), state
