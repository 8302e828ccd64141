"""Simulated agents: many light asyncio HTTP servers on 127.0.0.1 speaking the agent's wire format.

Each port answers ``tools/call`` POSTs exactly as ``serve --transport http`` does (stateless, JSON
reply, the same result bytes), without the SDK behind it, so 1000 of them fit in one process.
Payloads are captured from the real tools on the mock h100 profile (``capture_payloads``).

Behaviours per agent: ok, hang (accept, never answer), garbage (non-JSON body), badproto (not
HTTP), reset (close mid-reply), slow:<s>, missing (no such tool: the SDK's "Unknown tool" reply),
unauthorized (401).

Run standalone: ``python bench/sim_agents.py --count 1000 --hang 0.1 --garbage 0.05 --out agents.json``
writes the agent list and serves until killed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HEALTH_TOOLS = ("get_gpu_health",)


def capture_payloads(profile: str = "h100-sxm5-80gb-x8") -> dict[str, dict[str, Any]]:
    """Real tools/call results (wire form) from an in-process agent on the mock profile.

    get_gpu_health is synthesised until the health tool lands: per GPU a status and reasons plus
    the GPU's full telemetry entry, so its size is the real telemetry result's and then some.
    """
    import anyio
    from mcp.client import Client

    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.server import AgentApp

    os.environ.setdefault("NODE_NAME", "sim-node")
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    app = AgentApp(Settings(nvml_mode="mock", profile=profile, log_level="WARNING"))

    async def grab() -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        async with Client(app.server) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            for tool in ("get_gpu_telemetry", "get_gpu_inventory", *HEALTH_TOOLS):
                if tool in names:
                    # detail=full: the heaviest answer an agent gives, and every GPU in it for tests to edit
                    result = await client.call_tool(tool, {"detail": "full"})
                    out[tool] = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return out

    try:
        payloads = anyio.run(grab)
    finally:
        app.close()
    if "get_gpu_health" not in payloads:
        tel = payloads["get_gpu_telemetry"]["structuredContent"]
        gpus = [
            {
                "index": t["index"],
                "uuid": t["uuid"],
                "name": t["name"],
                "status": "healthy",
                "reasons": [],
                "telemetry": t,
            }
            for t in tel["gpus"]
        ]
        health = {"source": tel["source"], "status": "healthy", "gpus": gpus}
        payloads["get_gpu_health"] = {
            "content": [{"type": "text", "text": json.dumps(health, indent=2)}],
            "structuredContent": health,
            "isError": False,
        }
    return payloads


@dataclass
class SimAgent:
    node: str
    behaviour: str = "ok"
    port: int = 0
    calls: int = 0
    last_params: dict[str, Any] | None = None
    server: asyncio.base_events.Server | None = None
    writers: set[asyncio.StreamWriter] = field(default_factory=set)


class SimFleet:
    """N agents in this event loop; ``start()`` binds them, ``agents_file()`` lists them."""

    def __init__(self, payloads: dict[str, dict[str, Any]], behaviours: list[str], token: str | None = None):
        self.results = {tool: json.dumps(r, separators=(",", ":")).encode() for tool, r in payloads.items()}
        self.agents = [SimAgent(f"sim-{i:04d}", b) for i, b in enumerate(behaviours)]
        self.token = token

    async def start(self) -> None:
        for agent in self.agents:
            agent.server = await asyncio.start_server(
                lambda r, w, a=agent: self._serve(a, r, w), "127.0.0.1", 0, backlog=256
            )
            agent.port = agent.server.sockets[0].getsockname()[1]

    def agents_list(self) -> list[dict[str, Any]]:
        return [
            {
                "node": a.node,
                "url": f"http://127.0.0.1:{a.port}/mcp",
                "labels": {"sim/behaviour": a.behaviour.split(":")[0]},
            }
            for a in self.agents
        ]

    async def kill(self, agent: SimAgent) -> None:
        """Stop listening and cut every open connection (an agent pod dying mid-call)."""
        agent.behaviour = "dead"
        if agent.server is not None:
            agent.server.close()
        for writer in list(agent.writers):
            writer.transport.abort()

    async def stop(self) -> None:
        for agent in self.agents:
            if agent.server is not None:
                agent.server.close()
            for writer in list(agent.writers):
                writer.transport.abort()

    async def _serve(
        self, agent: SimAgent, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        agent.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length, auth = 0, None
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"authorization":
                        auth = value.strip().decode()
                body = await reader.readexactly(length)
                agent.calls += 1
                if not await self._answer(agent, writer, body, auth):
                    return
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.CancelledError,
        ):
            pass  # a dropped client, or the fleet stopping
        finally:
            agent.writers.discard(writer)
            writer.close()

    async def _answer(
        self, agent: SimAgent, writer: asyncio.StreamWriter, body: bytes, auth: str | None
    ) -> bool:
        kind, _, arg = agent.behaviour.partition(":")
        if kind == "hang" or kind == "dead":
            await asyncio.sleep(3600)
        if kind == "badproto":
            writer.write(b"\x00\x01 this is not HTTP \xff\r\n\r\n")
            return False
        if kind == "reset":
            writer.write(
                b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 5000\r\n\r\n{"jsonrpc"'
            )
            await writer.drain()
            writer.transport.abort()
            return False
        if kind == "slow":
            await asyncio.sleep(float(arg or 1))
        if self.token is not None and auth != f"Bearer {self.token}" or kind == "unauthorized":
            self._send(writer, 401, b'{"error":"invalid_token"}')
            return True
        request = json.loads(body)
        rid = json.dumps(request.get("id")).encode()
        agent.last_params = request.get("params") or {}
        tool = agent.last_params.get("name")
        if kind == "garbage":
            self._send(
                writer,
                200,
                random.choice([b"<html>502 Bad Gateway</html>", b'{"jsonrpc": "2.0", "id": ', b"[]"]),
            )
            return True
        if kind in ("bigerror", "bigrpcerror", "bigreply"):  # issue 20 item 5: a misbehaving agent
            self._send(writer, 200, self._big(kind, int(arg or 1 << 20), rid))
            return True
        result = self.results.get(tool) if kind != "missing" or tool not in HEALTH_TOOLS else None
        if result is None:
            text = json.dumps(f"Unknown tool: {tool}")
            result = b'{"content":[{"type":"text","text":' + text.encode() + b'}],"isError":true}'
        self._send(writer, 200, b'{"jsonrpc":"2.0","id":' + rid + b',"result":' + result + b"}")
        return True

    @staticmethod
    def _big(kind: str, size: int, rid: bytes) -> bytes:
        """A reply carrying ``size`` bytes of text: as a tool error, a JSON-RPC error, or a result."""
        text = b'"' + b"E" * size + b'"'
        if kind == "bigrpcerror":
            return b'{"jsonrpc":"2.0","id":' + rid + b',"error":{"code":-32603,"message":' + text + b"}}"
        if kind == "bigerror":
            result = b'{"content":[{"type":"text","text":' + text + b'}],"isError":true}'
        else:
            result = b'{"content":[{"type":"text","text":"{}"}],"structuredContent":{"blob":' + text + b"}}"
        return b'{"jsonrpc":"2.0","id":' + rid + b',"result":' + result + b"}"

    @staticmethod
    def _send(writer: asyncio.StreamWriter, status: int, payload: bytes) -> None:
        reason = {200: b"OK", 401: b"Unauthorized"}.get(status, b"Error")
        writer.write(
            b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
            % (status, reason, len(payload))
            + payload
        )


def behaviours(count: int, hang: float = 0.0, garbage: float = 0.0, seed: int = 7) -> list[str]:
    """``count`` behaviours with the given fractions hung and garbage (garbage split across kinds)."""
    rng = random.Random(seed)
    n_hang, n_garbage = round(count * hang), round(count * garbage)
    kinds = ["hang"] * n_hang + [rng.choice(["garbage", "badproto", "reset"]) for _ in range(n_garbage)]
    kinds += ["ok"] * (count - len(kinds))
    rng.shuffle(kinds)
    return kinds


async def _main(args: argparse.Namespace, payloads: dict[str, dict[str, Any]]) -> None:
    kinds = args.behaviours.split(",") if args.behaviours else behaviours(args.count, args.hang, args.garbage)
    fleet = SimFleet(payloads, kinds, args.token)
    await fleet.start()
    partial = Path(args.out + ".part")
    partial.write_text(json.dumps(fleet.agents_list()))
    partial.rename(args.out)  # atomically: readers never see half a list
    sys.stderr.write(f"sim: {len(fleet.agents)} agents up\n")
    sys.stderr.flush()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await fleet.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--hang", type=float, default=0.0)
    parser.add_argument("--garbage", type=float, default=0.0)
    parser.add_argument(
        "--behaviours", default=None, help="comma-separated, one per agent (overrides --count)"
    )
    parser.add_argument("--token", default=None)
    parser.add_argument("--out", required=True)
    asyncio.run(_main(parser.parse_args(), capture_payloads()))
