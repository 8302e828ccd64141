"""Run an ASGI app under uvicorn: TLS with reload, graceful SIGTERM, JSON logs; and the agent entry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Generator
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from k8s_gpu_mcp.http.app import HttpOptions, HttpState, Readiness, build_http_app
from k8s_gpu_mcp.http.auth import Token, TokenError
from k8s_gpu_mcp.http.limits import MAX_HEADER_BYTES, bounded_protocol, quiet_loop_errors, socket_budget
from k8s_gpu_mcp.http.security import HttpConfigError, require_auth_rule
from k8s_gpu_mcp.http.tls import ReloadingTls, TlsError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer
    from starlette.types import ASGIApp

    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.metrics import ToolMetrics
    from k8s_gpu_mcp.server import AgentApp

log = logging.getLogger(__name__)

GRACEFUL_SHUTDOWN_S = 20  # under Kubernetes' default 30 s terminationGracePeriodSeconds
TLS_CHECK_INTERVAL_S = 5.0
KEEP_ALIVE_S = 65  # idle keep-alive: the gateway reuses connections between sweeps (rpc.IDLE_KEEP_S)


class _Server(uvicorn.Server):
    """uvicorn, but SIGTERM/SIGINT flip readiness first and the process then exits 0 (no re-raise)."""

    def __init__(self, config: uvicorn.Config, state: HttpState):
        super().__init__(config)
        self.state = state

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if not self.state.draining:
            log.info("signal received: draining", extra={"signal": signal.Signals(sig).name})
        self.state.draining = True
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        signals = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def _keep_sse_replies_on_shutdown() -> None:
    """sse-starlette ends every SSE stream as soon as uvicorn sees SIGTERM, which would cut an
    in-flight gateway call (its reply is an SSE stream carrying progress). In stateless mode each
    stream is one request's reply and ends with it; uvicorn's grace period bounds the rest."""
    try:
        from sse_starlette.sse import AppStatus
    except ImportError:  # pragma: no cover - a dependency of the MCP SDK
        return
    AppStatus.disable_automatic_graceful_drain()


def load_token(settings: Settings) -> Token | None:
    """The serving token, after the bind-address rule; raises HttpConfigError/TokenError."""
    token = Token.from_settings(settings.token_file)
    require_auth_rule(settings.host, token is not None, settings.insecure_no_auth)
    return token


def load_tls(settings: Settings) -> ReloadingTls | None:
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise HttpConfigError("--tls-cert and --tls-key go together")
    return (
        ReloadingTls(settings.tls_cert, settings.tls_key) if settings.tls_cert and settings.tls_key else None
    )


def http_options(settings: Settings, json_response: bool = True) -> HttpOptions:
    return HttpOptions(settings.host, settings.allowed_hosts, settings.allowed_origins, json_response)


async def serve_async(
    asgi: ASGIApp, settings: Settings, state: HttpState, tls: ReloadingTls | None, **uvicorn_kw: Any
) -> None:
    """Serve until SIGTERM/SIGINT; on a signal stop accepting, finish in-flight requests, return."""
    cap, backlog = socket_budget()
    config = uvicorn.Config(
        asgi,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep our JSON-lines handler on the root logger
        log_level=settings.log_level.lower(),
        access_log=False,
        server_header=False,
        proxy_headers=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        timeout_keep_alive=KEEP_ALIVE_S,  # the idle timeout between requests
        # header/body read timeout and connection cap (http/limits.py); uvicorn's limit_concurrency
        # is not used: it answers 503 by connection count, where evicting an idle socket is better
        http=bounded_protocol(cap),
        backlog=backlog,
        h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        ssl_certfile=settings.tls_cert if tls else None,
        ssl_keyfile=settings.tls_key if tls else None,
        **uvicorn_kw,
    )
    config.load()
    quiet_loop_errors(asyncio.get_running_loop())
    _keep_sse_replies_on_shutdown()
    watcher: asyncio.Task[None] | None = None
    if tls is not None:
        config.ssl = tls.context  # the reloading context replaces the one uvicorn built
        watcher = asyncio.create_task(tls.watch(TLS_CHECK_INTERVAL_S))
    server = _Server(config, state)
    log.info(
        "serving streamable HTTP",
        extra={"host": settings.host, "port": settings.port, "tls": tls is not None, "path": "/mcp"},
    )
    try:
        await server.serve()
    finally:
        if watcher is not None:
            watcher.cancel()
    if not server.started:
        raise HttpConfigError(f"could not listen on {settings.host}:{settings.port}")


def _fail(message: str) -> int:
    sys.stderr.write(f"k8s-gpu-mcp: {message}\n")
    return 2


def agent_readiness(app: AgentApp) -> Any:
    def ready() -> tuple[bool, dict[str, Any]]:
        backend = app.backend
        details: dict[str, Any] = {"backend": backend.kind, "mock": backend.mock is not None}
        try:
            details["gpus"] = backend.nvml.nvmlDeviceGetCount()
        except Exception as exc:  # any NVML failure means not ready, with the reason
            details["reason"] = f"NVML not usable: {type(exc).__name__}: {exc}"
            return False, details
        return True, details

    return ready


def run_server(
    server: MCPServer,
    settings: Settings,
    metrics: ToolMetrics,
    readiness: Readiness,
    json_response: bool = True,
) -> int:
    """Serve ``server`` over streamable HTTP until SIGTERM; 2 with a message on bad options."""
    try:
        token, tls = load_token(settings), load_tls(settings)
    except (HttpConfigError, TokenError, TlsError) as exc:
        return _fail(str(exc))
    if settings.log_level.upper() != "DEBUG":
        for name in ("mcp.server.streamable_http", "mcp.server.streamable_http_manager"):
            logging.getLogger(name).setLevel(logging.WARNING)  # one INFO line per request otherwise
    asgi, state = build_http_app(
        server, http_options(settings, json_response), metrics=metrics, readiness=readiness, token=token
    )
    try:
        asyncio.run(serve_async(asgi, settings, state, tls))
    except HttpConfigError as exc:
        return _fail(str(exc))
    return 0


def run_agent(app: AgentApp) -> int:
    """``serve --transport http``: the agent's tools at /mcp (stateless, JSON responses)."""
    return run_server(app.server, app.settings, app.metrics, agent_readiness(app))
