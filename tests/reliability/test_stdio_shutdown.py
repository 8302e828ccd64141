"""The stdio wire at its edges: shutdown drains, unanswerable ids, a client that stops reading.

Each test runs a real ``k8s-gpu-mcp serve`` and talks raw JSON-RPC to it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

SERVE = [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", "--log-level", "ERROR"]
INIT: dict[str, Any] = {
    "jsonrpc": "2.0",
    "id": "init",
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "shutdown", "version": "0"},
    },
}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
RUNS = 3  # shutdown races show up only now and then: every run must deliver every reply


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}


def lines(*messages: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(m).encode() + b"\n" for m in messages)


def tool_calls(pairs: int) -> list[dict[str, Any]]:
    """get_gpu_health + get_gpu_inventory, ``pairs`` times: the calls that lost replies at EOF."""
    calls = []
    for _ in range(pairs):
        for tool in ("get_gpu_health", "get_gpu_inventory"):
            calls.append(
                {
                    "jsonrpc": "2.0",
                    "id": len(calls) + 1,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": {}},
                }
            )
    return calls


def replies(stdout: bytes) -> dict[Any, dict[str, Any]]:
    out = {}
    for line in stdout.splitlines():
        message = json.loads(line)
        assert message["jsonrpc"] == "2.0" and ("result" in message or "error" in message), line[:200]
        out[message["id"]] = message
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.mark.parametrize("run", range(RUNS))
def test_stdin_eof_answers_every_request_already_sent(run: int) -> None:
    calls = tool_calls(3)
    proc = subprocess.run(
        SERVE, input=lines(INIT, INITIALIZED, *calls), capture_output=True, env=env(), timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = replies(proc.stdout)
    assert set(got) == {"init", *(c["id"] for c in calls)}
    for call in calls:
        result = got[call["id"]]["result"]
        assert result.get("isError") is not True and result["structuredContent"]["source"]["mock"] is True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_answers_every_request_already_read_then_exits(signum: int) -> None:
    calls = tool_calls(2)
    proc = subprocess.Popen(
        SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env()
    )
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(lines(INIT, INITIALIZED, *calls))
        proc.stdin.flush()
        first = proc.stdout.readline()  # the initialize answer: the lines sent with it were read
        proc.send_signal(signum)  # stdin stays open: only the signal ends the session
        rest = proc.stdout.read()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
        proc.wait()
    got = replies(first + rest)
    assert set(got) == {"init", *(c["id"] for c in calls)}
    assert all("result" in got[c["id"]] for c in calls)


BAD_IDS: list[Any] = [1.5, 2.0, {"a": 1}, [1], True, None]


def test_a_request_with_an_id_json_rpc_cannot_answer_gets_an_error() -> None:
    """The SDK reads such a request as a notification and drops it; the wire answers it, id null."""
    pings = [{"jsonrpc": "2.0", "id": bad, "method": "ping"} for bad in BAD_IDS]
    proc = subprocess.run(
        SERVE,
        input=lines(INIT, INITIALIZED, *pings, {"jsonrpc": "2.0", "id": "after", "method": "ping"}),
        capture_output=True,
        env=env(),
        timeout=60,
    )
    assert proc.returncode == 0
    answers = [json.loads(line) for line in proc.stdout.splitlines()]
    errors = [a for a in answers if a["id"] is None]
    assert len(errors) == len(BAD_IDS) and {a["id"] for a in answers} == {"init", None, "after"}
    for error in errors:
        assert error["error"]["code"] == -32600
        assert "id must be a string or an integer" in error["error"]["message"]


def test_a_client_that_stops_reading_stops_the_agent_reading() -> None:
    """Replies are not read: the agent must stop reading requests (bounded RSS, the writer blocks),
    and once the client reads again every request it managed to send is answered."""
    proc = subprocess.Popen(SERVE, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env())
    assert proc.stdin and proc.stdout
    proc.stdin.write(lines(INIT, INITIALIZED))
    proc.stdin.flush()
    assert json.loads(proc.stdout.readline())["id"] == "init"
    sent: list[int] = []
    stop = threading.Event()

    def flood() -> None:  # blocks in write() once the agent stops reading
        assert proc.stdin
        n = 0
        while not stop.is_set() and n < 100_000:
            inventory = n % 20 == 0  # a few large replies fill the pipe sooner
            message = {"jsonrpc": "2.0", "id": n, "method": "ping"}
            if inventory:
                message.update(method="tools/call", params={"name": "get_gpu_inventory", "arguments": {}})
            proc.stdin.write(json.dumps(message).encode() + b"\n")
            proc.stdin.flush()
            sent.append(n)
            n += 1

    writer = threading.Thread(target=flood, daemon=True)
    try:
        writer.start()
        time.sleep(3)
        rss_early, sent_early = rss_kib(proc.pid), len(sent)
        time.sleep(4)
        rss_late, sent_late = rss_kib(proc.pid), len(sent)
        stop.set()
        assert sent_late < 20_000, f"the agent kept reading: {sent_late} requests taken"
        assert sent_late - sent_early < 200, (sent_early, sent_late)
        assert rss_late - rss_early < 16 * 1024, f"RSS grew {rss_early} -> {rss_late} KiB"
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.extend(proc.stdout or []), daemon=True)
        reader.start()
        writer.join(timeout=60)
        assert not writer.is_alive()
        proc.stdin.close()
        assert proc.wait(timeout=120) == 0
        reader.join(timeout=30)
    finally:
        proc.kill()
        proc.wait()
    assert set(replies(b"".join(out))) == set(sent)


def test_an_idle_session_answers_what_it_read_and_exits_without_eof() -> None:
    """Over kubectl debug the attach can end without an EOF reaching the agent: with --idle-exit
    it stops on its own once nothing arrived for that long and nothing is running (stdin stays open)."""
    proc = subprocess.Popen(
        [*SERVE, "--idle-exit", "2"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env()
    )
    try:
        assert proc.stdin and proc.stdout
        proc.stdin.write(lines(INIT, INITIALIZED, *tool_calls(1)))
        proc.stdin.flush()
        t0 = time.monotonic()
        out = proc.stdout.read()  # returns when the agent closes stdout: it exited
        assert proc.wait(timeout=60) == 0
        elapsed = time.monotonic() - t0
    finally:
        proc.kill()
        proc.wait()
    assert set(replies(out)) == {"init", 1, 2}
    assert elapsed >= 2, "stopped before the idle time"


def test_a_connect_session_pod_stops_when_idle_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """K8S_GPU_MCP_SESSION marks the pod connect node/... created: idle exit is on there by default."""
    from k8s_gpu_mcp.cli import SESSION_IDLE_EXIT_S, stdio_idle_exit
    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.launch.syringe import SESSION_ENV

    monkeypatch.delenv(SESSION_ENV, raising=False)
    assert stdio_idle_exit(Settings()) is None
    assert stdio_idle_exit(Settings(idle_exit=5)) == 5.0
    monkeypatch.setenv(SESSION_ENV, "abc")
    assert stdio_idle_exit(Settings()) == SESSION_IDLE_EXIT_S > 0
    assert stdio_idle_exit(Settings(idle_exit=5)) == 5.0
