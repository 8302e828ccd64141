"""Agent sessions opened on demand for ``connect cluster``: one syringe child per node, spoken to over MCP.

A node's first call spawns ``k8s-gpu-mcp connect node/NAME ...`` (launch/syringe.py: kubectl debug,
the relay, and the deletion of its debugger pod) in its own process group, and talks MCP to it with
the SDK's ``Client`` over the child's stdin/stdout. Later calls reuse the session. A session closes
after ``idle_timeout`` without calls, when ``max_sessions`` are open and another node needs a slot
(the least recently used idle one goes), when its child dies, and when the pool closes. Closing
sends the child SIGTERM, on which the syringe deletes its pod, and waits for it (then SIGKILL).

The pool is a fan-out transport (``gateway/fanout.NodeTransport``): the fan-out core's limiter,
deadlines and breakers apply to it unchanged.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from anyio.abc import Process, TaskGroup
from mcp.shared.message import SessionMessage

from k8s_gpu_mcp.gateway.discovery import Agent
from k8s_gpu_mcp.gateway.rpc import AgentError
from k8s_gpu_mcp.launch import syringe

log = logging.getLogger(__name__)

STOP_GRACE_S = 30.0  # the syringe deletes its pod on SIGTERM; give kubectl time for that
STDERR_TAIL = 30
REAP_EVERY_S = 5.0

# syringe exit code -> error kind in a node's result
EXIT_KINDS = {
    syringe.EXIT_NODE_NOT_FOUND: "unknown_node",
    syringe.EXIT_FORBIDDEN: "forbidden",
    syringe.EXIT_IMAGE_PULL: "image_pull",
    syringe.EXIT_TIMEOUT: "start_timeout",
    syringe.EXIT_UNREACHABLE: "unreachable",
}
ElicitForward = Callable[[types.ElicitRequestParams], Any]


@dataclass
class NodeSession:
    node: str
    started: float = field(default_factory=time.monotonic)
    last_used: float = field(default_factory=time.monotonic)
    in_use: int = 0
    client: Any = None
    process: Process | None = None
    error: AgentError | None = None
    ready: anyio.Event = field(default_factory=anyio.Event)
    close_requested: anyio.Event = field(default_factory=anyio.Event)
    closed: anyio.Event = field(default_factory=anyio.Event)
    stderr_tail: deque[str] = field(default_factory=lambda: deque(maxlen=STDERR_TAIL))
    elicit: ElicitForward | None = None  # set while a destructive call runs on this session
    lock: anyio.Lock = field(default_factory=anyio.Lock)  # one destructive call at a time

    @property
    def alive(self) -> bool:
        return self.error is None and not self.close_requested.is_set() and not self.closed.is_set()


def launch_failure(node: str, returncode: int | None, tail: list[str]) -> AgentError:
    """What the syringe said before it exited, as an error for that node."""
    said = [line.split("error: ", 1)[1] for line in tail if line.startswith("k8s-gpu-mcp connect: error: ")]
    kind = EXIT_KINDS.get(returncode or 0, "agent_exited")
    if said:
        message = said[-1]
    elif returncode is None:
        message = f"the agent session on node {node!r} closed its stream"
    else:
        last = next((line for line in reversed(tail) if line.strip()), "no output")
        message = f"the agent session on node {node!r} exited with code {returncode}: {last[:500]}"
    return AgentError(kind, f"{node}: {message}", breaker=kind != "unknown_node")


@asynccontextmanager
async def process_streams(process: Process) -> AsyncIterator[tuple[Any, Any]]:
    """MCP streams over a child's stdin/stdout, one JSON-RPC message per line (the stdio transport)."""
    assert process.stdin is not None and process.stdout is not None
    read_send, read_recv = anyio.create_memory_object_stream[SessionMessage | Exception](16)
    write_send, write_recv = anyio.create_memory_object_stream[SessionMessage](16)
    stdout, stdin = process.stdout, process.stdin

    async def reader() -> None:
        buffer = b""
        async with read_send:
            try:
                async for chunk in stdout:
                    lines = (buffer + chunk).split(b"\n")
                    buffer = lines.pop()
                    for line in lines:
                        if not line.strip():
                            continue
                        try:
                            message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                        except ValueError as exc:
                            await read_send.send(exc)
                            continue
                        await read_send.send(SessionMessage(message))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                pass

    async def writer() -> None:
        async with write_recv:
            try:
                async for item in write_recv:
                    data = item.message.model_dump_json(by_alias=True, exclude_unset=True)
                    await stdin.send(data.encode() + b"\n")
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
                pass

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_recv, write_send
        finally:
            tg.cancel_scope.cancel()


class SessionPool:
    """At most ``max_sessions`` node sessions; a NodeTransport for the fan-out core."""

    def __init__(
        self,
        argv_for: Callable[[str], list[str]],
        *,
        max_sessions: int = 16,
        idle_timeout_s: float = 600.0,
        env: dict[str, str] | None = None,
        can_elicit: Callable[[], bool] = lambda: False,
    ) -> None:
        if max_sessions < 1:
            raise ValueError("--max-sessions must be at least 1")
        self.argv_for = argv_for
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.env = env
        self.can_elicit = can_elicit
        self.sessions: dict[str, NodeSession] = {}
        self.changed = anyio.Event()
        self.opened_total = 0  # sessions ever started (tests, bench)
        self.peak = 0
        self._tg: TaskGroup | None = None
        self._closing = False

    # lifecycle ---------------------------------------------------------------------------------
    @asynccontextmanager
    async def running(self) -> AsyncIterator[SessionPool]:
        """The pool's task group; on exit every session is closed and waited for (shielded)."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            tg.start_soon(self._reap_idle)
            try:
                yield self
            finally:
                with anyio.CancelScope(shield=True):
                    await self.close_all()
                tg.cancel_scope.cancel()

    async def close_all(self) -> None:
        """SIGTERM every child at once (each deletes its pod in parallel), then wait for them. The
        signal goes first, before the MCP sessions wind down: a client that gave us EOF may kill us
        a few seconds later, and a child that already has its SIGTERM finishes the deletion alone."""
        self._closing = True
        sessions = list(self.sessions.values())
        for s in sessions:
            if s.process is not None and s.process.returncode is None:
                try:
                    s.process.send_signal(signal.SIGTERM)
                except ProcessLookupError:
                    pass
            s.close_requested.set()
        with anyio.move_on_after(STOP_GRACE_S + 5):
            for s in sessions:
                await s.closed.wait()

    def _notify(self) -> None:
        self.changed.set()
        self.changed = anyio.Event()

    async def _reap_idle(self) -> None:
        while True:
            await anyio.sleep(min(REAP_EVERY_S, self.idle_timeout_s))
            now = time.monotonic()
            for s in list(self.sessions.values()):
                if s.in_use == 0 and s.alive and now - s.last_used >= self.idle_timeout_s:
                    log.info("closing idle agent session", extra={"node": s.node})
                    s.close_requested.set()

    # one session -------------------------------------------------------------------------------
    async def _run(self, s: NodeSession) -> None:
        from mcp.client import Client

        argv = self.argv_for(s.node)
        try:
            s.process = await anyio.open_process(
                argv,
                stdin=-1,
                stdout=-1,
                stderr=-1,
                env=self.env,
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop the children ourselves
            )
        except OSError as exc:
            s.error = AgentError("agent_exited", f"{s.node}: cannot start {argv[0]}: {exc}")
            s.ready.set()
            s.closed.set()
            return
        process = s.process
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._read_stderr, s)
                callback = self._elicitation_for(s) if self.can_elicit() else None
                try:
                    async with Client(process_streams(process), elicitation_callback=callback) as client:
                        s.client = client
                        s.ready.set()
                        await self._until_closed(s)
                except Exception as exc:  # the child died during start-up or mid-session
                    if s.error is None and not s.close_requested.is_set():
                        await self._wait_exit(process, 5.0)
                        s.error = launch_failure(s.node, process.returncode, list(s.stderr_tail))
                        log.info("agent session failed", extra={"node": s.node, "error": str(s.error)})
                        log.debug("agent session failure", exc_info=exc)
                finally:
                    with anyio.CancelScope(shield=True):
                        await self._stop(process)
                    tg.cancel_scope.cancel()
        finally:
            if s.error is None:
                s.error = AgentError("session_closed", f"{s.node}: the agent session was closed")
            s.ready.set()
            s.closed.set()
            if self.sessions.get(s.node) is s:
                del self.sessions[s.node]
            self._notify()

    async def _until_closed(self, s: NodeSession) -> None:
        """Return when the session is asked to close or its child exits."""
        assert s.process is not None
        while not s.close_requested.is_set():
            if s.process.returncode is not None:
                raise ConnectionError("agent child exited")
            with anyio.move_on_after(0.5):
                await s.close_requested.wait()

    async def _read_stderr(self, s: NodeSession) -> None:
        """Keep the tail (for error messages); pass the launcher's own lines on as log lines."""
        assert s.process is not None and s.process.stderr is not None
        buffer = b""
        try:
            async for chunk in s.process.stderr:
                lines = (buffer + chunk).split(b"\n")
                buffer = lines.pop()[-65536:]
                for raw in lines:
                    line = raw.decode(errors="replace")[:2000]
                    s.stderr_tail.append(line)
                    if line.startswith("k8s-gpu-mcp connect:"):
                        log.info("agent launcher", extra={"node": s.node, "line": line})
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            pass

    @staticmethod
    async def _wait_exit(process: Process, timeout: float) -> bool:
        with anyio.move_on_after(timeout):
            await process.wait()
            return True
        return False

    async def _stop(self, process: Process) -> None:
        """SIGTERM the child (the syringe deletes its debugger pod), wait, then SIGKILL its group."""
        if process.returncode is None:
            try:
                process.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
            if not await self._wait_exit(process, STOP_GRACE_S):
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                await self._wait_exit(process, 5.0)
        for stream in (process.stdin, process.stdout, process.stderr):
            if stream is not None:
                try:
                    await stream.aclose()
                except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    pass

    def _elicitation_for(self, s: NodeSession) -> Any:
        async def forward(_context: Any, params: types.ElicitRequestParams) -> Any:
            if s.elicit is None:  # only destructive calls elicit, and they set the forwarder
                return types.ElicitResult(action="decline")
            return await s.elicit(params)

        return forward

    # acquiring ---------------------------------------------------------------------------------
    async def acquire(self, node: str) -> NodeSession:
        """The node's live session, opening one (and closing an idle one for room) when needed."""
        while True:
            if self._closing or self._tg is None:
                raise AgentError("session_closed", f"{node}: connect cluster is shutting down", breaker=False)
            s = self.sessions.get(node)
            if s is not None and s.alive:
                s.in_use += 1
                break
            if s is not None:  # closing: wait until it is gone, then open a fresh one
                await s.closed.wait()
                continue
            if len(self.sessions) < self.max_sessions:
                s = NodeSession(node)
                s.in_use = 1
                self.sessions[node] = s
                self.opened_total += 1
                self.peak = max(self.peak, len(self.sessions))
                self._tg.start_soon(self._run, s)
                break
            idle = [x for x in self.sessions.values() if x.in_use == 0 and x.alive]
            changed = self.changed
            if idle:  # make room: the least recently used idle session goes, and we wait for it
                victim = min(idle, key=lambda x: x.last_used)
                log.info("closing agent session for room", extra={"node": victim.node, "for": node})
                victim.close_requested.set()
                await victim.closed.wait()
                continue
            await changed.wait()
        try:
            await s.ready.wait()
        except BaseException:
            self.release(s)
            raise
        if s.error is not None:
            self.release(s)
            raise s.error
        return s

    def release(self, s: NodeSession) -> None:
        s.in_use -= 1
        s.last_used = time.monotonic()
        self._notify()

    # NodeTransport -------------------------------------------------------------------------------
    async def call_tool(
        self, agent: Agent, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[dict[str, Any], int]:
        s = await self.acquire(agent.node)
        try:
            return await self._call(s, params)
        finally:
            self.release(s)

    async def call_destructive(
        self, node: str, params: dict[str, Any], elicit: ElicitForward | None
    ) -> tuple[dict[str, Any], int]:
        """One destructive call on one node; the agent's confirmation question goes to ``elicit``."""
        s = await self.acquire(node)
        try:
            async with s.lock:
                s.elicit = elicit
                try:
                    return await self._call(s, params, read_only=False)
                finally:
                    s.elicit = None
        finally:
            self.release(s)

    async def _call(
        self, s: NodeSession, params: dict[str, Any], read_only: bool = True
    ) -> tuple[dict[str, Any], int]:
        from mcp.shared.exceptions import MCPError

        try:
            if read_only:
                # send_request, not Client.call_tool: that re-validates the agent's structured result
                # against its output schema with jsonschema (about 3 ms a call here, measured with
                # cProfile), which the agent's own pydantic model has already done, and this server's
                # output model checks what it returns again. Destructive calls keep the Client's
                # driver: the agent's confirmation can come back as an input-required round trip.
                request = types.CallToolRequest(
                    params=types.CallToolRequestParams(
                        name=params["name"], arguments=params.get("arguments"), _meta=params.get("_meta")
                    )
                )
                result = await s.client.session.send_request(request, types.CallToolResult)
            else:
                result = await s.client.call_tool(
                    params["name"], params.get("arguments"), meta=params.get("_meta")
                )
        except MCPError as exc:
            raise AgentError("rpc_error", f"{s.node}: {exc}", breaker=False) from None
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream, OSError) as exc:
            s.close_requested.set()
            raise AgentError("agent_exited", f"{s.node}: the agent session ended: {exc}") from None
        reply = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        # the text block is the JSON copy of the structured result: its length is the reply's size
        size = sum(len(getattr(c, "text", "") or "") for c in result.content)
        return reply, size


def stderr_say(message: str) -> None:
    try:
        sys.stderr.write(f"k8s-gpu-mcp connect cluster: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
