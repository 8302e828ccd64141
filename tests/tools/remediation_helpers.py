"""Shared pieces for the remediation tests: operator agents on fake host trees, real child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from mcp_types import ElicitResult

BUS = "0000:64:00.0"  # GPU 1 of the H100 profile, sysfs form
GIB = 2**30


def host_trees(tmp_path: Path) -> dict[str, str]:
    """A sysfs tree with GPU 1's reset file and an empty host root; nothing real is touched."""
    dev = tmp_path / "sys" / "bus" / "pci" / "devices" / BUS
    dev.mkdir(parents=True, exist_ok=True)
    (dev / "reset").write_text("")
    (tmp_path / "host").mkdir(exist_ok=True)
    return {"sys_root": str(tmp_path / "sys"), "host_root": str(tmp_path / "host")}


def audit_lines(path: str | Path) -> list[dict[str, Any]]:
    p = Path(path)
    return [json.loads(line) for line in p.read_text().splitlines()] if p.exists() else []


def spawn(ignore_term: bool = False) -> subprocess.Popen[bytes]:
    """A real child (stdout never inherited). ``ignore_term`` makes it shrug off SIGTERM."""
    if not ignore_term:
        return subprocess.Popen(["sleep", "300"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    code = "import signal,sys,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(300)"
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    return child


def reap(child: subprocess.Popen[bytes]) -> None:
    if child.poll() is None:
        child.kill()
    child.wait(timeout=10)


def alive(child: subprocess.Popen[bytes]) -> bool:
    if child.poll() is not None:
        return False
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        return False
    return True


def answering(action: str = "accept", approve: bool = True, asked: list[str] | None = None):
    async def callback(ctx: Any, params: Any) -> ElicitResult:
        if asked is not None:
            asked.append(params.message)
        content = {"approve": approve} if action == "accept" else None
        return ElicitResult(action=action, content=content)

    return callback
