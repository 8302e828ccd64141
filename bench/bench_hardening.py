"""make bench section: the worst cases of issue 20, each next to a benign reference run the same way.

- selector: a 4096-character selector of spaces with a bad term (the old regex's quadratic case)
  against a benign selector of the same length; a 4 MiB one is refused before parsing.
- scenario: ``call get_gpu_inventory`` with a YAML alias bomb against the same call with a bundled
  scenario (time and peak RSS of the process).
- http_flood: ``/healthz`` latency on an agent while 3x its connection cap of idle sockets are open,
  against the same agent idle; and the agent's stderr bytes during the flood.
- gateway_errors: the gateway's peak RSS after one call over 20 agents each sending a 16 MiB error
  text, against 20 healthy agents.

Run alone: ``cd bench && python -c 'import bench_hardening as b; print(b.run())'``.
"""

from __future__ import annotations

import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "src"))

from k8s_gpu_mcp.gateway.discovery import MAX_SELECTOR_CHARS, parse_selector  # noqa: E402
from k8s_gpu_mcp.http.limits import socket_budget  # noqa: E402

PY = sys.executable
ENV = {
    **{
        k: v
        for k, v in os.environ.items()
        if not k.startswith("K8S_GPU_MCP_") and k != "KUBERNETES_SERVICE_HOST"
    },
    "PYTHONPATH": str(REPO / "src"),
}
TOKEN = "bench-token-0123456789"
FD_LIMIT = 256


def _best_of(fn: Any, runs: int = 20) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        try:
            fn()
        except ValueError:
            pass
        best = min(best, time.perf_counter() - start)
    return best


def selector() -> dict[str, Any]:
    n = MAX_SELECTOR_CHARS
    worst = " " * (n - 2) + "a!"
    benign = ",".join(["zone=a"] * (n // 7))[:n].rstrip(",=")
    worst_s, benign_s = _best_of(lambda: parse_selector(worst)), _best_of(lambda: parse_selector(benign))
    huge_s = _best_of(lambda: parse_selector(" " * (4 << 20)), runs=5)
    return {
        "selector_chars": n,
        "selector_worst_ms": round(worst_s * 1000, 3),
        "selector_benign_ms": round(benign_s * 1000, 3),
        "selector_worst_vs_benign": round(worst_s / benign_s, 2),
        "selector_4mib_refusal_ms": round(huge_s * 1000, 3),
    }


def _measured_call(argv: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS MiB, exit code) of one child process."""
    probe = (
        "import resource, subprocess, sys, time, json; t = time.monotonic(); "
        "rc = subprocess.run(json.loads(sys.argv[1]), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode; "
        "print(json.dumps([time.monotonic() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc]))"
    )
    out = subprocess.run(
        [PY, "-c", probe, json.dumps(argv)], capture_output=True, text=True, env=ENV, check=True
    )
    seconds, rss_kib, rc = json.loads(out.stdout)
    return seconds, rss_kib / 1024, rc


def scenario() -> dict[str, Any]:
    bomb = "a: &a [x,x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 10)}]\n" for i in range(9)
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bomb.yaml"
        path.write_text(bomb)
        base = [PY, "-m", "k8s_gpu_mcp", "call", "get_gpu_inventory", "--scenario"]
        bomb_s, bomb_mib, bomb_rc = _measured_call([*base, str(path)])
        ref_s, ref_mib, ref_rc = _measured_call([*base, "thermal-slowdown"])
    return {
        "alias_bomb_exit": bomb_rc,
        "alias_bomb_s": round(bomb_s, 2),
        "alias_bomb_peak_rss_mib": round(bomb_mib, 1),
        "bundled_scenario_s": round(ref_s, 2),
        "bundled_scenario_peak_rss_mib": round(ref_mib, 1),
        "alias_bomb_rss_vs_bundled": round(bomb_mib / ref_mib, 2),
        "verdict:alias bomb refused (exit 2) at <= 1.2x a bundled scenario's RSS": bomb_rc == 2
        and bomb_mib <= 1.2 * ref_mib,
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthz_ms(base: str, samples: int = 30) -> float:
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        with urllib.request.urlopen(base + "/healthz", timeout=10) as r:
            r.read()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def http_flood() -> dict[str, Any]:
    cap, _ = socket_budget(FD_LIMIT)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as stderr:
        proc = subprocess.Popen(
            [
                PY,
                "-m",
                "k8s_gpu_mcp",
                "serve",
                "--nvml-mode",
                "mock",
                "--transport",
                "http",
                "--port",
                str(port),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env={**ENV, "K8S_GPU_MCP_TOKEN": TOKEN},
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT)),
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    _healthz_ms(base, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            idle_ms = _healthz_ms(base)
            before = os.fstat(stderr.fileno()).st_size
            sockets = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(3 * cap)]
            try:
                flood_ms = _healthz_ms(base)
            finally:
                for s in sockets:
                    s.close()
            logged = os.fstat(stderr.fileno()).st_size - before
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "connection_cap": cap,
        "idle_sockets": 3 * cap,
        "healthz_idle_p50_ms": round(idle_ms, 2),
        "healthz_flood_p50_ms": round(flood_ms, 2),
        "healthz_flood_vs_idle": round(flood_ms / idle_ms, 2),
        "stderr_bytes_during_flood": logged,
        "verdict:healthz under an idle-socket flood <= 5x idle": flood_ms <= 5 * idle_ms,
    }


def _gateway_peak(behaviour: str, count: int = 20) -> tuple[float, int]:
    """Peak RSS (MiB) of a gateway after one call_node_tool over ``count`` sim agents; reply bytes."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "agents.json"
        sim = subprocess.Popen(
            [
                PY,
                str(HERE / "sim_agents.py"),
                "--behaviours",
                ",".join([behaviour] * count),
                "--out",
                str(out),
            ],
            env=ENV,
            stderr=subprocess.DEVNULL,
        )
        port = _free_port()
        gw = None
        try:
            while not out.exists():
                time.sleep(0.05)
            gw = subprocess.Popen(
                [PY, "-m", "k8s_gpu_mcp", "gateway", "--agents", str(out), "--transport", "http"]
                + ["--port", str(port), "--node-timeout", "20", "--log-level", "WARNING"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**ENV, "K8S_GPU_MCP_TOKEN": TOKEN},
            )
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                try:
                    _healthz_ms(base, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            body = {
                "jsonrpc": "2.0",
                "id": 1,
                "method": "tools/call",
                "params": {"name": "call_node_tool", "arguments": {"tool": "get_gpu_inventory"}},
            }
            headers = {
                "content-type": "application/json",
                "accept": "application/json, text/event-stream",
                "mcp-protocol-version": "2025-06-18",
                "authorization": f"Bearer {TOKEN}",
            }
            request = urllib.request.Request(base + "/mcp", json.dumps(body).encode(), headers, method="POST")
            with urllib.request.urlopen(request, timeout=120) as r:
                size = len(r.read())
            status = Path(f"/proc/{gw.pid}/status").read_text()
            peak_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:"))
            return peak_kib / 1024, size
        finally:
            if gw is not None:
                gw.terminate()
                gw.wait(timeout=30)
            sim.terminate()
            sim.wait(timeout=30)


def gateway_errors() -> dict[str, Any]:
    bad_mib, bad_bytes = _gateway_peak(f"bigerror:{16 * 1024 * 1024 - 4096}")
    ok_mib, ok_bytes = _gateway_peak("ok")
    return {
        "agents": 20,
        "error_text_bytes_each": 16 * 1024 * 1024 - 4096,
        "gateway_peak_rss_mib": round(bad_mib, 1),
        "reply_bytes": bad_bytes,
        "healthy_gateway_peak_rss_mib": round(ok_mib, 1),
        "healthy_reply_bytes": ok_bytes,
        "peak_rss_vs_healthy": round(bad_mib / ok_mib, 2),
        "verdict:gateway under 20 x 16 MiB agent errors stays < 400 MiB": bad_mib < 400,
    }


def run() -> dict[str, Any]:
    result: dict[str, Any] = {}
    for part in (selector, scenario, http_flood, gateway_errors):
        result.update(part())
    return result
