"""stdio transport: the SDK's ``stdio_server`` fed with guarded streams.

- While serving, fd 0 reads /dev/null and fd 1 points at stderr, so a library or child process that
  prints cannot corrupt the wire; the wire itself uses private, non-inheritable duplicates.
- A line that is not a valid JSON-RPC message gets a JSON-RPC error reply (-32700 parse error, or
  -32600 invalid request carrying the request's id when it has one) instead of the SDK's silent drop,
  so a client is never left waiting on a request the server could not read. That includes a request
  whose id is not a string or an integer (the SDK would read it as a notification): id null.
- A line longer than ``MAX_LINE_BYTES`` is answered with an error and discarded, never held whole.
- Back-pressure: at most ``MAX_IN_FLIGHT`` requests are read and not yet answered. Past that the
  wire is not read, so a client that stops reading replies stops the agent reading requests, and
  the pipe, not the agent's memory, holds the rest.
- Graceful drain: on stdin EOF, SIGTERM or SIGINT the agent stops reading, answers every request it
  has read (for up to ``DRAIN_SECONDS``), and only then lets the SDK shut the session down. A second
  signal stops at once. With ``idle_exit``, so does a session that sent nothing for that long
  (``kubectl debug`` keeps stdin open after the attach ends: no EOF comes).
- Notifications the server would not act on (no handler, a second ``initialized``, a cancel for
  nothing in flight) stop at the wire: a flood of them costs a parse each, and a ping behind them
  waits for that, not for the SDK's dispatcher.
- Input is read in chunks by one daemon thread (one thread hop per chunk, not per line, so a flood
  of small notifications costs parsing, not scheduling; and a blocked read never holds up exit).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from anyio.from_thread import BlockingPortal
from mcp.server.stdio import stdio_server
from mcp_types import JSONRPCNotification, JSONRPCRequest, jsonrpc_message_adapter
from pydantic import ValidationError

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 2**20
MAX_IN_FLIGHT = 64  # requests read and not yet answered
DRAIN_SECONDS = 10.0  # how long shutdown waits for the answers to requests already read
CHUNK_BYTES = 64 * 1024
CHUNKS_QUEUED = 4  # chunks read ahead of the parser: with MAX_LINE_BYTES, the input bound
PARSE_ERROR = -32700
INVALID_REQUEST = -32600
DROP: dict[str, Any] = {}  # invalid, but JSON-RPC forbids a reply (notifications, responses)

RequestKey = tuple[str, str | int]


def key(request_id: str | int) -> RequestKey:
    """Request ids as the answer tracker keys them: 7 and "7" are different requests."""
    return (type(request_id).__name__, request_id)


def error_reply(line: str) -> dict[str, Any] | None:
    """None for a valid message; else the JSON-RPC error to send, or DROP when none is due."""
    return classify(line)[1]


def classify(line: str) -> tuple[Any, dict[str, Any] | None]:
    """(the parsed message, None) for a valid line; (None, the error reply or DROP) otherwise."""
    try:
        message = jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValidationError as exc:
        detail = exc.errors()[0].get("msg", "invalid") if exc.errors() else "invalid"
    else:
        # A request whose id is a float, bool, null, object or array validates as a notification
        # (the id is an ignored extra field): the client waits for an answer that would never come.
        if isinstance(message, JSONRPCNotification) and '"id"' in line:
            data = json.loads(line)
            if isinstance(data, dict) and "id" in data:
                bad = type(data["id"]).__name__ if data["id"] is not None else "null"
                return None, _error(
                    None, INVALID_REQUEST, f"Invalid Request: id must be a string or an integer, not {bad}"
                )
        return message, None
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        return None, _error(None, PARSE_ERROR, "Parse error: the line is not valid JSON")
    if isinstance(data, list):
        return None, _error(
            None, INVALID_REQUEST, "Invalid Request: JSON-RPC batches are not supported by MCP"
        )
    if not isinstance(data, dict):
        return None, _error(None, INVALID_REQUEST, "Invalid Request: a message must be a JSON object")
    request_id = data.get("id")
    if isinstance(request_id, bool) or not isinstance(request_id, str | int):
        request_id = None
    if "method" in data and "id" not in data:
        log.warning("dropped an invalid notification", extra={"method": str(data.get("method"))[:64]})
        return None, DROP
    if "method" not in data and ("result" in data or "error" in data):
        log.warning("dropped an invalid response from the client", extra={"id": request_id})
        return None, DROP
    return None, _error(request_id, INVALID_REQUEST, f"Invalid Request: {detail[:200]}")


def _error(request_id: str | int | None, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


_REPLY_PREFIX = '{"jsonrpc":"2.0","id":'
_decoder = json.JSONDecoder()


def answered_id(text: str) -> str | int | None:
    """The id a server message answers (a result or an error), else None.

    Fast path for the SDK's own serialisation (``jsonrpc``, ``id``, then ``result``/``error``/
    ``method``); anything else is parsed whole."""
    if text.startswith(_REPLY_PREFIX):
        try:
            value, end = _decoder.raw_decode(text, len(_REPLY_PREFIX))
        except ValueError:
            value, end = None, 0
        rest = text[end : end + 9]
        if rest.startswith((',"result"', ',"error"')):
            return value if isinstance(value, str | int) and not isinstance(value, bool) else None
        if rest.startswith(',"method"'):
            return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict) or "method" in data or not ("result" in data or "error" in data):
        return None
    value = data.get("id")
    return value if isinstance(value, str | int) and not isinstance(value, bool) else None


class InFlight:
    """Requests read from the client and not yet answered (a multiset: ids may repeat)."""

    def __init__(self) -> None:
        self._ids: Counter[RequestKey] = Counter()
        self._count = 0
        self._changed = anyio.Event()

    def __len__(self) -> int:
        return self._count

    def __contains__(self, request_id: str | int) -> bool:
        return self._ids[key(request_id)] > 0

    def add(self, request_id: str | int) -> None:
        self._ids[key(request_id)] += 1
        self._count += 1

    def done(self, request_id: str | int) -> None:
        k = key(request_id)
        if self._ids[k] <= 0:
            del self._ids[k]
            return
        self._ids[k] -= 1
        if not self._ids[k]:
            del self._ids[k]
        self._count -= 1
        self._changed.set()
        self._changed = anyio.Event()

    async def wait_below(self, limit: int) -> None:
        while self._count >= limit:
            await self._changed.wait()


class WireOut:
    """Writes whole lines to the wire; a lock keeps replies from two tasks from interleaving."""

    def __init__(self, fd: int, in_flight: InFlight | None = None):
        self._fd = fd
        self._lock = anyio.Lock()
        self._in_flight = in_flight if in_flight is not None else InFlight()

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    async def write(self, text: str) -> None:
        async with self._lock:
            await anyio.to_thread.run_sync(self._write_all, text.encode("utf-8"))
        request_id = answered_id(text)
        if request_id is not None:
            self._in_flight.done(request_id)

    async def flush(self) -> None:  # writes are unbuffered
        return None

    async def send(self, message: dict[str, Any]) -> None:
        await self.write(json.dumps(message, separators=(",", ":")) + "\n")


class WireIn:
    """Async iterator of valid message lines; answers the invalid ones itself.

    Ends (for the SDK: EOF) once the input has ended or :meth:`stop` was called, every complete
    line already read has been handed on, and every request handed on has been answered or
    ``DRAIN_SECONDS`` have passed."""

    def __init__(
        self, fd: int, out: WireOut, in_flight: InFlight, wants: Callable[[str], bool] = lambda method: True
    ):
        self._fd = fd
        self._out = out
        self.in_flight = in_flight
        self._wants = wants  # notification method -> does the server handle it
        self._initialized = False
        self.last_input = anyio.current_time()  # when the client last sent anything (idle exit)
        # chunks read from the wire: b"" is EOF, None is the stop marker (stop() was called)
        self._send, self._chunks = anyio.create_memory_object_stream[bytes | None](CHUNKS_QUEUED)
        self._buffer = bytearray()
        self._discarding = False  # inside a line longer than MAX_LINE_BYTES
        self._ended = False  # no more input: EOF, or stopped
        self._stop_reason: str | None = None
        self.drain_started: float | None = None

    # ---- the reader thread ----
    def start(self, portal: BlockingPortal) -> None:
        threading.Thread(target=self._pump, args=(portal,), name="stdio-reader", daemon=True).start()

    def _pump(self, portal: BlockingPortal) -> None:
        """Blocking reads, handed to the event loop; blocks (stops reading) while the queue is full."""
        try:
            while True:
                try:
                    chunk = os.read(self._fd, CHUNK_BYTES)
                except OSError as exc:
                    log.warning("stdin read failed; treating it as EOF", extra={"error": repr(exc)})
                    chunk = b""
                portal.call(self._send.send, chunk)
                if not chunk:
                    return
        except Exception:  # the loop is gone or the stream closed: the session is over
            return

    def stop(self, reason: str) -> None:
        """Stop reading: answer what was read, then end (signal handlers call this)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            try:
                self._send.send_nowait(None)
            except (anyio.WouldBlock, anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # the queue holds chunks: the parser sees the stop when it takes the next one

    # ---- the parser ----
    def __aiter__(self) -> WireIn:
        return self

    async def __anext__(self) -> str:
        while True:
            line = await self._next_line()
            if line is None:
                await self._drain()
                raise StopAsyncIteration
            text = line.decode("utf-8", errors="replace")
            if not text.strip():
                continue
            message, reply = classify(text)
            if reply is DROP:
                continue
            if reply is not None:
                log.info(
                    "answered an unreadable message",
                    extra={"code": reply["error"]["code"], "id": reply["id"]},
                )
                await self._out.send(reply)
                continue
            if isinstance(message, JSONRPCRequest):
                await self.in_flight.wait_below(MAX_IN_FLIGHT)
                self.in_flight.add(message.id)
            elif isinstance(message, JSONRPCNotification) and not self._passes(message):
                continue
            return text

    def _passes(self, note: JSONRPCNotification) -> bool:
        """Whether the session would act on a notification; the rest stop here, so a flood of them
        costs one parse each, not a trip through the SDK's dispatcher (about 0.6 ms a message)."""
        if note.method == "notifications/cancelled":
            cancelled = (note.params or {}).get("requestId")
            if isinstance(cancelled, str | int) and cancelled in self.in_flight:
                self.in_flight.done(cancelled)  # a cancelled request is never answered (spec)
                return True
            return False  # nothing in flight to cancel
        if note.method == "notifications/initialized":
            first, self._initialized = not self._initialized, True
            return first
        return self._wants(note.method)

    async def _next_line(self) -> bytes | None:
        """The next complete line (a too-long one is answered here and skipped); None at the end."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line = bytes(self._buffer[: newline + 1])
                del self._buffer[: newline + 1]
                if self._discarding:
                    self._discarding = False
                    continue
                if len(line) > MAX_LINE_BYTES + 1:
                    await self._too_long()
                    continue
                return line
            if len(self._buffer) > MAX_LINE_BYTES:
                self._buffer.clear()
                if not self._discarding:
                    self._discarding = True
                    await self._too_long()
            if self._ended:
                return None
            await self._read_more()

    async def _too_long(self) -> None:
        await self._out.send(
            _error(None, INVALID_REQUEST, f"Invalid Request: line longer than {MAX_LINE_BYTES} bytes")
        )

    async def _read_more(self) -> None:
        if self._stop_reason is not None:  # keep only what was already read
            while True:
                try:
                    chunk = self._chunks.receive_nowait()
                except (anyio.WouldBlock, anyio.EndOfStream, anyio.ClosedResourceError):
                    break
                if chunk:
                    self._buffer += chunk
            self._end(keep_partial=False)
            return
        chunk = await self._chunks.receive()
        self.last_input = anyio.current_time()
        if chunk is None:
            return  # the next call sees the stop reason
        if not chunk:  # EOF: a last line without its newline is still a message
            self._end(keep_partial=True)
            return
        self._buffer += chunk

    def _end(self, keep_partial: bool) -> None:
        self._ended = True
        if self._buffer and not self._buffer.endswith(b"\n"):
            if keep_partial and not self._discarding:
                self._buffer += b"\n"
            else:
                del self._buffer[self._buffer.rfind(b"\n") + 1 :]

    async def _drain(self) -> None:
        pending = len(self.in_flight)
        log.info("stdio input ended; answering the requests already read",
                 extra={"reason": self._stop_reason or "eof", "pending": pending})  # fmt: skip
        if pending:
            with anyio.move_on_after(DRAIN_SECONDS) as scope:
                await self.in_flight.wait_below(1)
            if scope.cancelled_caught:
                log.warning("drain timed out; unanswered requests are cancelled",
                            extra={"pending": len(self.in_flight), "seconds": DRAIN_SECONDS})  # fmt: skip

    def close(self) -> None:
        self._send.close()
        self._chunks.close()


@asynccontextmanager
async def guarded_stdio(
    wants: Callable[[str], bool] = lambda method: True,
) -> AsyncIterator[tuple[WireIn, WireOut]]:
    """Move the wire to private fds and divert fd 0/1 for everything else in the process.

    ``wants(method)``: whether a client notification is passed on to the server."""
    wire_in_fd, wire_out_fd = os.dup(0), os.dup(1)  # os.dup fds are not inherited by children
    saved_in, saved_out = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    in_flight = InFlight()
    out = WireOut(wire_out_fd, in_flight)
    wire_in = WireIn(wire_in_fd, out, in_flight, wants)
    try:
        async with BlockingPortal() as portal:
            wire_in.start(portal)
            try:
                yield wire_in, out
            finally:
                wire_in.close()
                await portal.stop(cancel_remaining=True)
    finally:
        # The reader thread may still be blocked in read() on wire_in_fd: that fd is left open
        # (closing it under the thread could hand the number to a new file); exit reclaims it.
        os.close(wire_out_fd)
        os.dup2(saved_in, 0)
        os.dup2(saved_out, 1)
        os.close(saved_in)
        os.close(saved_out)


async def _stop_on_signals(wire_in: WireIn, scope: anyio.CancelScope) -> None:
    """First SIGTERM/SIGINT: drain (stop reading, answer what was read). Second: stop now."""
    try:
        receiver = anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT)
        with receiver as signals:
            async for signum in signals:
                name = signal.Signals(signum).name
                if wire_in.drain_started is None:
                    wire_in.drain_started = anyio.current_time()
                    log.info("signal received; draining", extra={"signal": name})
                    wire_in.stop(name)
                else:
                    log.warning("second signal; stopping without waiting", extra={"signal": name})
                    scope.cancel()
    except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
        log.debug("no signal handling for this stdio session")


async def _stop_when_idle(wire_in: WireIn, in_flight: InFlight, idle_exit: float) -> None:
    """Drain and end the session once the client sent nothing for ``idle_exit`` seconds and no
    request is running: over ``kubectl debug`` the attach can end without an EOF reaching us."""
    while True:
        idle = anyio.current_time() - wire_in.last_input
        if idle >= idle_exit and not len(in_flight):
            log.info("stdio session idle; stopping", extra={"idle_s": round(idle, 1)})
            wire_in.stop("idle")
            return
        await anyio.sleep(max(0.2, min(idle_exit - idle, 5.0)))


async def serve_stdio(server: Any, idle_exit: float | None = None) -> None:
    """Run an MCPServer over the guarded stdio wire until EOF, a signal or ``idle_exit`` seconds
    without a message, then drain."""
    lowlevel = server._lowlevel_server  # MCPServer has no public run-with-streams

    def wants(method: str) -> bool:  # the SDK drops a notification it has no handler for
        return lowlevel.get_notification_handler(method) is not None

    async with guarded_stdio(wants) as (wire_in, wire_out):
        async with anyio.create_task_group() as tg:
            tg.start_soon(_stop_on_signals, wire_in, tg.cancel_scope)
            if idle_exit:
                tg.start_soon(_stop_when_idle, wire_in, wire_in.in_flight, idle_exit)
            async with stdio_server(stdin=wire_in, stdout=wire_out) as (read_stream, write_stream):  # type: ignore[arg-type]
                await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()
