"""Gateway scale: cluster-wide get_gpu_health over 100 and 1000 simulated agents, and with chaos.

The agents are bench/sim_agents.py (one process, one port each, real payloads from the h100
profile); the gateway is a real ``k8s-gpu-mcp gateway --transport http`` subprocess; this process
is the MCP client. Latency (``p50_s``...) is client-side, from POST to the parsed final result; ``fanout_*`` is the
gateway's own fan-out time (its summary.duration_ms), before the SDK serializes the result.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from k8s_gpu_mcp.gateway.rpc import RpcClient  # noqa: E402

PY = sys.executable
ENV = {**os.environ, "PYTHONPATH": str(REPO / "src")}
CHAOS_TIMEOUT_S = 2.0
HEALTHY_TIMEOUT_S = 5.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise RuntimeError(f"timed out waiting for {what}")


def _rss_mib(pid: int) -> tuple[float, float]:
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


class Fleet:
    """sim agents + gateway subprocesses; closed on exit."""

    def __init__(
        self, count: int, hang: float, garbage: float, node_timeout: float, tmp: Path, breaker: int = 3
    ):
        self.file = tmp / f"agents-{count}-{hang}-{garbage}.json"
        self.sim = subprocess.Popen(
            [PY, str(HERE / "sim_agents.py"), "--count", str(count), "--hang", str(hang), "--garbage", str(garbage),
             "--out", str(self.file)],
            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self.gateway: subprocess.Popen[bytes] | None = None
        self.port = 0
        try:
            _wait(self.file.exists, 120, "simulated agents")
            self.port = _free_port()  # after the sim has bound its ports, so none of them collides
            self.log = tmp / "gateway.log"
            self.gateway = subprocess.Popen(
                [PY, "-m", "k8s_gpu_mcp", "gateway", "--transport", "http", "--port", str(self.port),
                 "--agents", str(self.file), "--node-timeout", str(node_timeout), "--concurrency", "1024",
                 "--breaker-failures", str(breaker), "--log-level", "WARNING"],
                env=ENV, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"),
            )  # fmt: skip
            _wait(self._healthy, 60, "gateway")
        except BaseException:
            self.close()
            raise

    def _healthy(self) -> bool:
        import urllib.request

        if self.gateway is not None and self.gateway.poll() is not None:
            raise RuntimeError(f"gateway exited {self.gateway.returncode}: {self.log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def close(self) -> None:
        for proc in (self.gateway, self.sim):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


async def _sweep(client: RpcClient, url: str, tool: str) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    result = await client.call(url, "tools/call", {"name": tool, "arguments": {}})
    elapsed = time.perf_counter() - start
    if result.get("isError"):
        raise RuntimeError(f"gateway tool error: {str(result)[:300]}")
    return elapsed, result["structuredContent"]["summary"]


def scenario(
    count: int, calls: int, hang: float = 0.0, garbage: float = 0.0, budget_s: float = 90.0
) -> dict[str, Any]:
    """Chaos runs keep the breakers shut (threshold 10^6) so every measured call meets the hung
    agents (the worst case); with the default breakers later calls skip them (circuit_open)."""
    timeout = CHAOS_TIMEOUT_S if hang or garbage else HEALTHY_TIMEOUT_S
    breaker = 10**6 if hang or garbage else 3
    with tempfile.TemporaryDirectory(prefix="bench-gw-") as tmp:
        fleet = Fleet(count, hang, garbage, timeout, Path(tmp), breaker)
        try:
            assert fleet.gateway is not None
            url = f"http://127.0.0.1:{fleet.port}/mcp"

            async def drive() -> list[tuple[float, dict[str, Any]]]:
                client = RpcClient()
                out = [await _sweep(client, url, "get_gpu_health")]  # warm-up: connections, caches
                end = time.monotonic() + budget_s
                while len(out) <= calls and time.monotonic() < end:
                    out.append(await _sweep(client, url, "get_gpu_health"))
                client.close()
                return out[1:]

            runs = asyncio.run(drive())
            rss, hwm = _rss_mib(fleet.gateway.pid)
        finally:
            fleet.close()
    latencies = [r[0] for r in runs]
    fanouts = [r[1]["duration_ms"] / 1000 for r in runs]
    ordered = sorted(latencies)
    last = runs[-1][1]
    return {
        "agents": count,
        "hung": round(count * hang),
        "garbage": round(count * garbage),
        "node_timeout_s": timeout,
        "calls": len(runs),
        "p50_s": round(statistics.median(latencies), 3),
        "p99_s": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 3),
        "max_s": round(max(latencies), 3),
        "fanout_p50_s": round(statistics.median(fanouts), 3),
        "fanout_max_s": round(max(fanouts), 3),
        "succeeded_last": last["succeeded"],
        "failed_last": last["failed"],
        "errors_by_kind_last": last["errors_by_kind"],
        "gateway_rss_mib": round(rss, 1),
        "gateway_peak_rss_mib": round(hwm, 1),
    }


def run() -> dict[str, Any]:
    small = scenario(100, calls=20)
    large = scenario(1000, calls=10)
    chaos = scenario(1000, calls=3, hang=0.10, garbage=0.05)
    out: dict[str, Any] = {}
    for name, s in (("100", small), ("1000", large), ("1000_chaos", chaos)):
        for key, value in s.items():
            out[f"{name}_{key}"] = value
    out["verdict:gateway 1000 agents p50 <= 2 s"] = large["p50_s"] <= 2.0
    out["verdict:gateway 1000 agents all succeed"] = large["succeeded_last"] == 1000
    out["verdict:gateway chaos fan-out max <= node timeout + 0.5 s"] = (
        chaos["fanout_max_s"] <= CHAOS_TIMEOUT_S + 0.5
    )
    out["verdict:gateway chaos end-to-end max <= node timeout + 0.5 s"] = (
        chaos["max_s"] <= CHAOS_TIMEOUT_S + 0.5
    )
    out["verdict:gateway chaos partial result (850 ok)"] = chaos["succeeded_last"] == 850
    return out


if __name__ == "__main__":
    which = sys.argv[1:] or ["100"]
    for arg in which:
        count, _, mode = arg.partition("-")
        kw = {"hang": 0.1, "garbage": 0.05} if mode == "chaos" else {}
        print(json.dumps(scenario(int(count), calls=5, **kw), indent=2))  # noqa: T201
