"""Fixtures: real ``k8s-gpu-mcp serve --transport http`` subprocesses on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[2] / "src")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k != "KUBERNETES_SERVICE_HOST" and not k.startswith("K8S_GPU_MCP_")
    }
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env["NODE_NAME"] = "node-http"
    env.update(extra)
    return env


@dataclass
class Served:
    proc: subprocess.Popen[str]
    port: int
    scheme: str = "http"

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/mcp"

    def stop(self, timeout: float = 30) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.proc.returncode, self.proc.stderr.read() if self.proc.stderr else ""


def wait_healthy(served: Served, timeout: float = 60, context: object = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if served.proc.poll() is not None:
            raise RuntimeError(f"server exited {served.proc.returncode}: {served.proc.stderr.read()}")
        try:
            with urllib.request.urlopen(f"{served.base}/healthz", timeout=1, context=context) as r:  # type: ignore[arg-type]
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server did not become healthy")


def start(argv: list[str], env: dict[str, str], scheme: str = "http", context: object = None) -> Served:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "k8s_gpu_mcp", *argv, "--transport", "http", "--port", str(port)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    served = Served(proc, port, scheme)
    try:
        wait_healthy(served, context=context)
    except BaseException:
        served.stop()
        raise
    return served


@pytest.fixture
def serve_http() -> Iterator[Callable[..., Served]]:
    """Start an HTTP agent (mock h100) with extra args/env; stopped (SIGTERM) after the test."""
    started: list[Served] = []

    def run(
        *extra: str, env: dict[str, str] | None = None, scheme: str = "http", context: object = None
    ) -> Served:
        argv = ["serve", "--nvml-mode", "mock", "--log-level", "WARNING", *extra]
        served = start(argv, child_env(**(env or {})), scheme, context)
        started.append(served)
        return served

    yield run
    for served in started:
        served.stop()


TOKEN = "test-token-0123456789"
