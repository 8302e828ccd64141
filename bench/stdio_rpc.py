"""Tiny raw JSON-RPC-over-stdio driver for benchmarks (no client library in the timed path)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

INIT = {
    "jsonrpc": "2.0",
    "id": 0,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "bench", "version": "0"},
    },
}


class StdioPeer:
    def __init__(self, argv: list[str], env: dict[str, str] | None = None):
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )
        self.next_id = 1

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def recv(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("server closed stdout")
            msg = json.loads(line)
            if "id" in msg:
                return msg

    def initialize(self) -> float:
        """Send initialize; return seconds from process start to the reply."""
        self.send(INIT)
        self.recv()
        elapsed = time.perf_counter() - self.t0
        self.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        return elapsed

    def elapsed(self) -> float:
        """Seconds since the process was started."""
        return time.perf_counter() - self.t0

    def call(self, tool: str, arguments: dict[str, Any]) -> float:
        req_id = self.next_id
        self.next_id += 1
        start = time.perf_counter()
        self.send(
            {
                "jsonrpc": "2.0",
                "id": req_id,
                "method": "tools/call",
                "params": {"name": tool, "arguments": arguments},
            }
        )
        reply = self.recv()
        elapsed = time.perf_counter() - start
        if reply.get("id") != req_id or reply.get("result", {}).get("isError"):
            raise RuntimeError(f"bad reply: {str(reply)[:300]}")
        return elapsed

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
