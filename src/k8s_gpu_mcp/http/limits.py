"""Connection bounds uvicorn lacks: a request-read timeout, a connection cap, quiet accept errors.

uvicorn's ``timeout_keep_alive`` closes a connection idle *after* a response, and
``limit_concurrency`` answers 503 once a request has arrived, but nothing bounds a connection that
never finishes sending its request: idle sockets and slow headers are held forever, and at the fd
limit the event loop logs every failed ``accept()`` with a traceback. Here:

- ``BoundedH11Protocol`` closes a connection whose request (head and body) is not complete within
  ``REQUEST_READ_TIMEOUT_S`` of its first byte (or of the connect);
- past the cap, a new connection evicts the oldest one that is waiting for a request (never one
  whose request is being served), so idle sockets cannot lock out the probes; when every slot is
  serving a request, the newcomer is closed;
- the cap plus the listen backlog stay under the process's fd limit, and ``quiet_loop_errors`` logs one line a minute per
  kind of event-loop error instead of one per failed ``accept()``.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

REQUEST_READ_TIMEOUT_S = 10.0
MAX_CONNECTIONS = 512
MAX_BACKLOG = 128
FD_RESERVE = 64  # fds kept for everything else: logs, the audit file, NVML, /proc reads, the gateway's pool
MAX_HEADER_BYTES = 16 * 1024  # h11_max_incomplete_event_size: a request head larger than this is a 400
LOOP_ERROR_INTERVAL_S = 60.0


def socket_budget(soft_limit: int | None = None) -> tuple[int, int]:
    """(connection cap, listen backlog) that fit under the soft RLIMIT_NOFILE with FD_RESERVE left.

    asyncio accepts up to ``backlog`` queued connections in one go before any of them can be
    evicted, so the cap and one such burst must both fit, or ``accept()`` hits EMFILE and the
    listener pauses for a second each time."""
    if soft_limit is None:
        soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_limit == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS, MAX_BACKLOG
    usable = max(16, soft_limit - FD_RESERVE)
    backlog = max(8, min(MAX_BACKLOG, usable // 4))
    return max(8, min(MAX_CONNECTIONS, usable - backlog)), backlog


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-read deadline and a connection cap (``cap``)."""

    cap = MAX_CONNECTIONS
    read_timeout_s = REQUEST_READ_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._read_deadline: asyncio.TimerHandle | None = None
        self._opened = time.monotonic()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()
        # closed transports stay in ``connections`` until their connection_lost, which runs after
        # this burst of accepts: count and evict only the live ones
        live = sum(1 for c in self.connections if c.transport is not None and not c.transport.is_closing())
        if live > self.cap:
            victim = self._oldest_waiting()
            (victim or self).transport.close()
            if victim is None:
                log.debug("connection refused: every slot is serving a request", extra={"cap": self.cap})

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state in (h11.IDLE, h11.SEND_BODY) and not self.transport.is_closing():
            self._arm()  # a request has started (or is still to come): it must end in time
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # the keep-alive timer takes over until the next request's first byte
        super().on_response_complete()

    def _waiting(self) -> bool:
        """No request of this connection is being served: idle, or its request is incomplete."""
        return self.cycle is None or self.cycle.response_complete

    def _oldest_waiting(self) -> BoundedH11Protocol | None:
        waiting = [
            c
            for c in self.connections
            if c is not self
            and isinstance(c, BoundedH11Protocol)
            and c._waiting()
            and not c.transport.is_closing()
        ]
        return min(waiting, key=lambda c: c._opened, default=None)

    def _arm(self) -> None:
        if self._read_deadline is None:
            self._read_deadline = self.loop.call_later(self.read_timeout_s, self._read_timed_out)

    def _disarm(self) -> None:
        if self._read_deadline is not None:
            self._read_deadline.cancel()
            self._read_deadline = None

    def _read_timed_out(self) -> None:
        self._read_deadline = None
        if self._waiting() and not self.transport.is_closing():
            self.transport.close()


def bounded_protocol(cap: int, read_timeout_s: float = REQUEST_READ_TIMEOUT_S) -> type[BoundedH11Protocol]:
    """A protocol class with these bounds (uvicorn's ``http=`` takes a class)."""
    return type("BoundedH11", (BoundedH11Protocol,), {"cap": cap, "read_timeout_s": read_timeout_s})


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, interval_s: float = LOOP_ERROR_INTERVAL_S) -> None:
    """Log each kind of event-loop error at most once per ``interval_s``, without a traceback,
    with the count of the ones left out (at the fd limit asyncio reports every failed accept)."""
    last: dict[str, float] = {}
    dropped: dict[str, int] = {}

    def handler(_: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        message = str(context.get("message", "event loop error"))[:200]
        now = time.monotonic()
        if now - last.get(message, -interval_s) < interval_s:
            dropped[message] = dropped.get(message, 0) + 1
            return
        last[message] = now
        exc = context.get("exception")
        log.error(
            message,
            extra={
                "error": f"{type(exc).__name__}: {exc}"[:300] if exc else None,
                "suppressed_since_last": dropped.pop(message, 0),
            },
        )

    loop.set_exception_handler(handler)
