"""make bench section: the stdio wire under a notification flood and under a client that stops reading.

- flood: a ping sent behind ``FLOOD`` notifications, time to its answer; the reference is the same
  flood on the minimal SDK server (bench/minimal_server.py: the SDK's own stdio transport).
- stalled client: requests written for ``STALL_S`` seconds while no reply is read; the agent's peak
  RSS next to its own RSS before the stall, and how many requests it took before it stopped reading.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
AGENT = [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", "--log-level", "ERROR"]
MINIMAL = [sys.executable, str(HERE / "minimal_server.py")]
FLOOD = 20_000
STALL_S = 6.0
INIT = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "b", "version": "0"},
    },
}


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert proc.stdin and proc.stdout
    proc.stdin.write(
        json.dumps(INIT).encode() + b'\n{"jsonrpc":"2.0","method":"notifications/initialized"}\n'
    )
    proc.stdin.flush()
    proc.stdout.readline()
    return proc


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait()


def ping_behind_flood(argv: list[str], count: int = FLOOD) -> float:
    proc = _start(argv)
    assert proc.stdin and proc.stdout
    note = json.dumps(
        {"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": 1, "progress": 1}}
    )
    payload = (note + "\n").encode() * count + b'{"jsonrpc":"2.0","id":"ping","method":"ping"}\n'
    t0 = time.perf_counter()
    threading.Thread(target=lambda: (proc.stdin.write(payload), proc.stdin.flush()), daemon=True).start()  # type: ignore[union-attr]
    while json.loads(proc.stdout.readline()).get("id") != "ping":
        pass
    elapsed = time.perf_counter() - t0
    _stop(proc)
    return elapsed


def stalled_client() -> dict[str, Any]:
    proc = _start(AGENT)
    assert proc.stdin
    before = _status_kib(proc.pid, "VmRSS")
    sent = [0]

    def flood() -> None:
        n = 0
        try:
            while True:
                message: dict[str, Any] = {"jsonrpc": "2.0", "id": n, "method": "ping"}
                if n % 20 == 0:
                    message.update(method="tools/call", params={"name": "get_gpu_inventory", "arguments": {}})
                proc.stdin.write(json.dumps(message).encode() + b"\n")  # type: ignore[union-attr]
                proc.stdin.flush()  # type: ignore[union-attr]
                n += 1
                sent[0] = n
        except (BrokenPipeError, ValueError, OSError):
            return

    threading.Thread(target=flood, daemon=True).start()
    time.sleep(STALL_S)
    peak = _status_kib(proc.pid, "VmHWM")
    taken = sent[0]
    _stop(proc)
    return {"rss_before_kib": before, "peak_rss_kib": peak, "requests_taken": taken}


def run() -> dict[str, Any]:
    agent = ping_behind_flood(AGENT)
    minimal = ping_behind_flood(MINIMAL)
    stall = stalled_client()
    peak_ratio = stall["peak_rss_kib"] / stall["rss_before_kib"]
    return {
        "flood_notifications": FLOOD,
        "agent_ping_behind_flood_s": round(agent, 3),
        "minimal_sdk_server_ping_behind_flood_s": round(minimal, 3),
        "flood_ratio": round(agent / minimal, 3),
        "agent_us_per_notification": round(agent / FLOOD * 1e6, 1),
        "target_flood_ratio_max": 0.1,
        "verdict:ping behind a notification flood <= 0.1x the SDK's stdio transport": agent / minimal <= 0.1,
        "stalled_client_s": STALL_S,
        **stall,
        "stalled_peak_rss_ratio": round(peak_ratio, 3),
        "target_stalled_peak_rss_ratio_max": 1.5,
        "verdict:client not reading: peak RSS <= 1.5x the agent's RSS before": peak_ratio <= 1.5,
    }


if __name__ == "__main__":
    sys.stderr.write(json.dumps(run(), indent=2) + "\n")
