"""The ASGI app: the SDK's streamable HTTP endpoint at ``/mcp`` plus probes and ``/metrics``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from k8s_gpu_mcp.http.auth import BearerAuthMiddleware, Token
from k8s_gpu_mcp.http.security import host_guard
from k8s_gpu_mcp.metrics import ToolMetrics

log = logging.getLogger(__name__)

Readiness = Callable[[], tuple[bool, dict[str, Any]]]


@dataclass
class HttpState:
    """Shared with the runner: ``draining`` flips on SIGTERM so /readyz answers 503 at once."""

    draining: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    last_ready: bool | None = None


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
    """Stateless streamable HTTP at /mcp; /healthz, /readyz open; /mcp and /metrics behind the token.

    /readyz is open (kubelet probes carry no token), so it says ready or not and nothing else; the
    reason goes to the log when readiness changes."""
    state = state if state is not None else HttpState()

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        ready, details = (False, {"reason": "shutting down"}) if state.draining else readiness()
        if ready != state.last_ready:
            state.last_ready = ready
            log.log(
                logging.INFO if ready else logging.WARNING,
                "readiness changed",
                extra={"ready": ready, **details},
            )
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    async def metrics_endpoint(_: Request) -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    starlette = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=options.json_response,
        # HostOriginGuard below matches exactly; the SDK's guard would match "name:*" by prefix
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        host=options.host,
    )
    starlette.router.routes.extend(
        [
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics_endpoint, methods=["GET"]),
        ]
    )
    guarded = host_guard(
        NoStandaloneStream(starlette), options.host, options.allowed_hosts, options.allowed_origins, ("/mcp",)
    )
    return BearerAuthMiddleware(guarded, token), state


class NoStandaloneStream:
    """``GET /mcp`` answers 405. In stateless mode the server never sends a message outside a
    request's own reply, so the standalone SSE stream would only hold a connection open forever;
    the MCP spec lets a server decline it with 405 (clients then carry on with POST alone)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].rstrip("/") == "/mcp":
            await send(
                {
                    "type": "http.response.start",
                    "status": 405,
                    "headers": [(b"allow", b"POST"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
