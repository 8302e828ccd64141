"""A small MCP client for the fan-out: one JSON-RPC POST per call over HTTP/1.1 keep-alive.

Why not the SDK's client (or one shared httpx2 pool)? A cluster call is one ``tools/call`` to each of
up to ~1000 agents. The agents serve stateless streamable HTTP, so no ``initialize`` is needed: a
single POST with ``MCP-Protocol-Version`` is a complete exchange. Measured on 1000 local endpoints
(docs/gateway.md): a shared httpx2 ``AsyncClient`` took 7-13 s per round (its pool scans every
connection per request), one httpx2 client per agent ~1.0 s, and this client (asyncio streams +
h11, the parser uvicorn uses) ~0.4 s. The SDK client adds a discovery/initialize exchange per agent
on top of httpx2. Replies may be JSON or SSE (agents running with SSE responses).
"""

from __future__ import annotations

import asyncio
import json
import ssl
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import h11
import pydantic_core

from k8s_gpu_mcp.http.auth import Token

PROTOCOL_VERSION = "2025-06-18"
# Memory bounds (a gateway pod has 512Mi): one agent's reply; all replies being read at once, across
# concurrent fan-outs; and any text an agent sends that the gateway repeats (errors).
MAX_REPLY_BYTES = 16 * 1024 * 1024  # a node's full get_gpu_health is ~40 KB
MAX_BUFFERED_BYTES = 64 * 1024 * 1024
MAX_ERROR_CHARS = 1024
IDLE_KEEP_S = 50.0  # agents keep idle connections 65 s (serve.KEEP_ALIVE_S)
MAX_IDLE_PER_AGENT = 4


def clip_text(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """An agent's text cut to ``limit`` characters, saying how long it was."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars, cut)"


class AgentError(Exception):
    """A failed agent call. ``kind`` names the failure for the summary; ``retryable`` marks the
    ones a retry may fix (connection refused or reset, 502/503/504)."""

    def __init__(self, kind: str, message: str, retryable: bool = False, breaker: bool = True):
        super().__init__(message)
        self.kind, self.retryable, self.breaker = kind, retryable, breaker


@dataclass
class _Conn:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection = field(default_factory=lambda: h11.Connection(h11.CLIENT))
    idle_since: float = 0.0
    reused: bool = False

    def close(self) -> None:
        try:
            self.writer.close()
        except RuntimeError:  # the event loop is gone (process shutdown): the OS closes the socket
            pass


@dataclass(frozen=True)
class _Target:
    host: str
    port: int
    tls: bool
    path: str
    authority: str


def _target(url: str) -> _Target:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise AgentError("bad_url", f"not an http(s) URL: {url!r}", breaker=False)
    tls = parts.scheme == "https"
    port = parts.port or (443 if tls else 80)
    host = parts.hostname
    authority = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return _Target(host, port, tls, parts.path or "/mcp", authority)


class RpcClient:
    """Keeps a few idle connections per agent URL; every call is one POST, one reply."""

    def __init__(self, token: Token | None = None, ca_file: str | None = None):
        self.token = token
        self._ssl = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._idle: dict[str, list[_Conn]] = {}
        self._targets: dict[str, _Target] = {}
        self._next_id = 0
        self.buffered = 0  # bytes of replies being read right now, all calls together

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def _connect(self, url: str, target: _Target) -> _Conn:
        for conn in self._idle.get(url, [])[::-1]:
            self._idle[url].remove(conn)
            if time.monotonic() - conn.idle_since < IDLE_KEEP_S and not conn.reader.at_eof():
                conn.reused = True
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_connection(
                target.host,
                target.port,
                ssl=self._ssl_context() if target.tls else None,
                server_hostname=target.host if target.tls else None,
                limit=1 << 20,
            )
        except ssl.SSLError as exc:
            raise AgentError("tls", f"TLS handshake with {target.authority} failed: {exc}") from exc
        except OSError as exc:
            raise AgentError(
                "unreachable", f"cannot connect to {target.authority}: {exc}", retryable=True
            ) from exc
        return _Conn(reader, writer)

    def _release(self, url: str, conn: _Conn) -> None:
        if conn.h11.our_state is h11.DONE and conn.h11.their_state is h11.DONE:
            conn.h11.start_next_cycle()
            conn.idle_since = time.monotonic()
            pool = self._idle.setdefault(url, [])
            if len(pool) < MAX_IDLE_PER_AGENT:
                pool.append(conn)
                return
        conn.close()

    async def call(
        self, url: str, method: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        """POST one JSON-RPC request; return its ``result`` or raise AgentError."""
        return (await self.call_sized(url, method, params, headers))[0]

    async def call_sized(
        self, url: str, method: str, params: dict[str, Any], headers: dict[str, str] | None = None
    ) -> tuple[dict[str, Any], int]:
        """``call``, plus the reply's size in bytes."""
        target = self._targets.get(url) or self._targets.setdefault(url, _target(url))
        self._next_id += 1
        request_id = self._next_id
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}).encode()
        for attempt in (0, 1):
            conn = await self._connect(url, target)
            try:
                status, content_type, payload = await self._exchange(conn, target, body, headers)
            except _StaleConnection:
                conn.close()
                if attempt == 0:
                    continue  # a keep-alive connection the agent had closed: one fresh try
                raise AgentError(
                    "unreachable", f"{target.authority} closed the connection", retryable=True
                ) from None
            except BaseException:
                conn.close()
                raise
            self._release(url, conn)
            return _result(status, content_type, payload, request_id, target.authority), len(payload)
        raise AssertionError("unreachable")

    async def _exchange(
        self, conn: _Conn, target: _Target, body: bytes, extra: dict[str, str] | None
    ) -> tuple[int, str, bytearray]:
        headers = [
            ("host", target.authority),
            ("content-type", "application/json"),
            ("accept", "application/json, text/event-stream"),
            ("mcp-protocol-version", PROTOCOL_VERSION),
            ("content-length", str(len(body))),
        ]
        if self.token is not None:
            headers.append(("authorization", f"Bearer {self.token.value}"))
        headers += list((extra or {}).items())
        conn.writer.write(conn.h11.send(h11.Request(method="POST", target=target.path, headers=headers)))
        conn.writer.write(conn.h11.send(h11.Data(data=body)))
        conn.writer.write(conn.h11.send(h11.EndOfMessage()))
        got_bytes = False
        held = 0
        try:
            await conn.writer.drain()
            status, content_type, body_buf, size = 0, "", bytearray(), 0
            while True:
                event = conn.h11.next_event()
                if event is h11.NEED_DATA:
                    data = await conn.reader.read(1 << 16)
                    if not data:
                        if not got_bytes and conn.reused:
                            raise _StaleConnection
                        raise AgentError(
                            "unreachable", f"{target.authority} closed the connection mid-reply", True
                        )
                    got_bytes = got_bytes or bool(data)
                    conn.h11.receive_data(data)
                    continue
                if isinstance(event, h11.Response):
                    status = event.status_code
                    content_type = dict(event.headers).get(b"content-type", b"").decode("latin-1")
                elif isinstance(event, h11.Data):
                    size += len(event.data)
                    if size > MAX_REPLY_BYTES:
                        raise AgentError(
                            "bad_reply", f"{target.authority} sent more than {MAX_REPLY_BYTES} bytes"
                        )
                    if self.buffered + len(event.data) > MAX_BUFFERED_BYTES:
                        raise AgentError(
                            "reply_budget",
                            f"{target.authority}: the gateway is already holding {self.buffered >> 20} MiB "
                            f"of agent replies (limit {MAX_BUFFERED_BYTES >> 20} MiB); try fewer nodes",
                            breaker=False,
                        )
                    self.buffered += len(event.data)
                    held += len(event.data)
                    body_buf += event.data  # one growing buffer: no second full-size copy by a join
                elif isinstance(event, h11.EndOfMessage):
                    return status, content_type, body_buf
                elif isinstance(event, h11.ConnectionClosed):
                    raise AgentError(
                        "unreachable", f"{target.authority} closed the connection mid-reply", True
                    )
        except (ConnectionError, OSError) as exc:
            if conn.reused and not got_bytes:
                raise _StaleConnection from exc
            raise AgentError("unreachable", f"{target.authority}: {type(exc).__name__}: {exc}", True) from exc
        except h11.RemoteProtocolError as exc:
            raise AgentError("bad_reply", f"{target.authority} sent malformed HTTP: {exc}") from exc
        finally:
            self.buffered -= held  # the caller parses the payload at once, then it is garbage

    def close(self) -> None:
        for pool in self._idle.values():
            for conn in pool:
                conn.close()
        self._idle.clear()


class _StaleConnection(Exception):
    pass


def _sse_messages(payload: bytes | bytearray) -> list[Any]:
    messages = []
    for event in payload.replace(b"\r\n", b"\n").split(b"\n\n"):
        data = b"\n".join(line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:"))
        if data:
            messages.append(pydantic_core.from_json(data))
    return messages


def _result(
    status: int, content_type: str, payload: bytes | bytearray, request_id: int, who: str
) -> dict[str, Any]:
    if status != 200:
        text = bytes(payload[:200]).decode("utf-8", "replace")
        if status in (401, 403):
            raise AgentError("unauthorized", f"{who} answered HTTP {status}: {text}", breaker=False)
        retryable = status in (502, 503, 504)
        raise AgentError("http_error", f"{who} answered HTTP {status}: {text}", retryable=retryable)
    try:
        if content_type.startswith("text/event-stream"):
            candidates = _sse_messages(payload)
        else:
            candidates = [pydantic_core.from_json(payload)]  # ~2x json.loads on 20-40 KB replies
    except (ValueError, UnicodeDecodeError) as exc:
        raise AgentError("bad_reply", f"{who} sent a reply that is not JSON: {exc}") from exc
    for message in candidates:
        if isinstance(message, dict) and message.get("id") == request_id:
            if isinstance(message.get("result"), dict):
                return message["result"]
            error = message.get("error")
            if isinstance(error, dict):
                raise AgentError(
                    "rpc_error",
                    f"{who}: JSON-RPC error {clip_text(str(error.get('code')), 32)}: "
                    f"{clip_text(str(error.get('message')))}",
                    breaker=False,
                )
    raise AgentError("bad_reply", f"{who} sent no JSON-RPC reply for request {request_id}")
