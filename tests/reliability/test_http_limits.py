"""Issue 20 items 4 and 12 as attacks on a real HTTP agent on 127.0.0.1: idle and slow sockets,
a connection flood at a low fd limit, the standalone SSE stream, /readyz and Host matching."""

from __future__ import annotations

import resource
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from k8s_gpu_mcp.http.limits import REQUEST_READ_TIMEOUT_S, socket_budget
from tests.http.conftest import TOKEN, Served, child_env, free_port, wait_healthy

FD_LIMIT = 160  # the agent's RLIMIT_NOFILE in this test
CAP, _ = socket_budget(FD_LIMIT)
FLOOD = 3 * CAP
LOG_BOUND_BYTES = 64 * 1024


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


@pytest.fixture
def agent(tmp_path: Path):
    port = free_port()
    log = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", "--transport", "http"]
        + ["--port", str(port), "--log-level", "INFO"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=log,
        env=child_env(K8S_GPU_MCP_TOKEN=TOKEN),
        preexec_fn=_low_fd_limit,
    )
    served = Served(proc, port)
    try:
        wait_healthy(served)
        yield served, tmp_path / "stderr"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _healthz(served: Served, timeout: float = 5.0) -> float:
    start = time.monotonic()
    with urllib.request.urlopen(served.base + "/healthz", timeout=timeout) as r:
        assert r.status == 200
    return time.monotonic() - start


def _closed_by_peer(sock: socket.socket) -> bool:
    try:
        return sock.recv(1) == b""
    except (BlockingIOError, TimeoutError):
        return False
    except OSError:
        return True


def test_an_idle_socket_flood_neither_locks_out_the_probes_nor_floods_the_log(agent):
    served, stderr = agent
    sockets: list[socket.socket] = []
    try:
        for _ in range(FLOOD):  # three times the cap of idle, never-speaking connections
            sockets.append(socket.create_connection(("127.0.0.1", served.port), timeout=5))
        time.sleep(0.5)
        # the newest connections evicted the oldest idle ones: the probe still gets a slot, fast
        assert _healthz(served) < 5.0
        for s in sockets:
            s.setblocking(False)
        open_now = sum(1 for s in sockets if not _closed_by_peer(s))
        assert open_now <= CAP, f"{open_now} idle connections held, cap {CAP}"
    finally:
        for s in sockets:
            s.close()
    assert stderr.stat().st_size < LOG_BOUND_BYTES


def test_a_slow_request_head_is_cut_after_the_read_timeout(agent):
    served, _ = agent
    idle = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    slow = socket.create_connection(("127.0.0.1", served.port), timeout=5)
    try:
        slow.sendall(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        start = time.monotonic()
        deadline = start + REQUEST_READ_TIMEOUT_S + 10
        closed = {"idle": False, "slow": False}
        while not all(closed.values()) and time.monotonic() < deadline:
            slow.sendall(b"X-Drip: 1\r\n")  # slowloris: a header line a second, never the end
            for name, s in (("idle", idle), ("slow", slow)):
                s.settimeout(1.0 if name == "idle" else 0.01)
                closed[name] = closed[name] or _closed_by_peer(s)
        elapsed = time.monotonic() - start
        assert all(closed.values()), f"still open after {elapsed:.1f} s: {closed}"
        assert elapsed < REQUEST_READ_TIMEOUT_S + 10
    except BrokenPipeError:
        pass  # the agent closed the dripping socket: that is the bound
    finally:
        idle.close()
        slow.close()
    assert _healthz(served) < 5.0


def test_get_mcp_declines_the_standalone_stream_and_readyz_tells_nothing(agent):
    served, _ = agent
    request = urllib.request.Request(
        served.url, headers={"authorization": f"Bearer {TOKEN}", "accept": "text/event-stream"}
    )
    start = time.monotonic()
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 405 and time.monotonic() - start < 5
    with urllib.request.urlopen(served.base + "/readyz", timeout=5) as r:
        assert r.read() == b'{"ready":true}'
