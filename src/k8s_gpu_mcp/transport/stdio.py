"""stdio transport: the SDK's ``stdio_server`` fed with guarded streams.

- While serving, fd 0 reads /dev/null and fd 1 points at stderr, so a library or child process that
  prints cannot corrupt the wire; the wire itself uses private, non-inheritable duplicates.
- A line that is not a valid JSON-RPC message gets a JSON-RPC error reply (-32700 parse error, or
  -32600 invalid request carrying the request's id when it has one) instead of the SDK's silent drop,
  so a client is never left waiting on a request the server could not read.
- A line longer than ``MAX_LINE_BYTES`` is answered with an error and discarded, never held whole.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from mcp.server.stdio import stdio_server
from mcp_types import jsonrpc_message_adapter
from pydantic import ValidationError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 2**20
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
_TOO_LONG = object()
DROP: dict[str, Any] = {}  # invalid, but JSON-RPC forbids a reply (notifications, responses)


def error_reply(line: str) -> dict[str, Any] | None:
    """None for a valid message; else the JSON-RPC error to send, or DROP when none is due."""
    try:
        jsonrpc_message_adapter.validate_json(line, by_name=False)
        return None
    except ValidationError as exc:
        detail = exc.errors()[0].get("msg", "invalid") if exc.errors() else "invalid"
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return _error(None, PARSE_ERROR, "Parse error: the line is not valid JSON")
    if isinstance(data, list):
        return _error(None, INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported by MCP")
    if not isinstance(data, dict):
        return _error(None, INVALID_REQUEST, "Invalid Request: a message must be a JSON object")
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    if "method" in data and "id" not in data:
        log.warning("dropped an invalid notification", extra={"method": str(data.get("method"))[:64]})
        return DROP
    if "method" not in data and ("result" in data or "error" in data):
        log.warning("dropped an invalid response from the client", extra={"id": request_id})
        return DROP
    return _error(request_id, INVALID_REQUEST, f"Invalid Request: {detail[:200]}")


def _error(request_id: str | int | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


class WireOut:
    """Writes whole lines to the wire; a lock keeps replies from two tasks from interleaving."""

    def __init__(self, fd: int):
        self._fd = fd
        self._lock = anyio.Lock()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def write(self, text: str) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._write_all, text.encode("utf-8"))

    async def flush(self) -> None:  # writes are unbuffered
        return None

    async def send(self, message: dict[str, Any]) -> None:
        await self.write(json.dumps(message, separators=(",", ":")) + "\n")


class WireIn:
    """Async iterator of valid message lines; answers the invalid ones itself."""

    def __init__(self, fd: int, out: WireOut):
        self._file = os.fdopen(fd, "rb", closefd=True)
        self._out = out

    def _read_line(self) -> bytes | object | None:
        line = self._file.readline(MAX_LINE_BYTES + 1)
        if not line:
            return None
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while (rest := self._file.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                pass
            return _TOO_LONG
        return line

    def __aiter__(self) -> WireIn:
        return self

    async def __anext__(self) -> str:
        while True:
            raw = await anyio.to_thread.run_sync(self._read_line)
            if raw is None:
                raise StopAsyncIteration
            if raw is _TOO_LONG:
                await self._out.send(
                    _error(None, INVALID_REQUEST, f"Invalid Request: line longer than {MAX_LINE_BYTES} bytes")
                )
                continue
            assert isinstance(raw, bytes)
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            reply = error_reply(line)
            if reply is DROP:
                continue
            if reply is not None:
                log.info(
                    "answered an unreadable message",
                    extra={"code": reply["error"]["code"], "id": reply["id"]},
                )
                await self._out.send(reply)
                continue
            return line

    def close(self) -> None:
        self._file.close()


@asynccontextmanager
async def guarded_stdio() -> AsyncIterator[tuple[WireIn, WireOut]]:
    """Move the wire to private fds and divert fd 0/1 for everything else in the process."""
    wire_in_fd, wire_out_fd = os.dup(0), os.dup(1)  # os.dup fds are not inherited by children
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    out = WireOut(wire_out_fd)
    wire_in = WireIn(wire_in_fd, out)
    try:
        yield wire_in, out
    finally:
        wire_in.close()
        os.close(wire_out_fd)
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


async def serve_stdio(server: Any) -> None:
    """Run an MCPServer over the guarded stdio wire."""
    lowlevel = server._lowlevel_server  # MCPServer has no public run-with-streams
    async with guarded_stdio() as (wire_in, wire_out):
        async with stdio_server(stdin=wire_in, stdout=wire_out) as (read_stream, write_stream):  # type: ignore[arg-type]
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
