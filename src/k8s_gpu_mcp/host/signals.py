"""Signals to host processes, through a pidfd when the kernel has them (no pid-reuse race).

A pidfd opened while the target is verified keeps naming that process: if it exits and its pid
is reused, signals sent through the pidfd fail with ESRCH instead of hitting the newcomer.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from k8s_gpu_mcp.host.procfs import proc_state

SIGNALS: dict[str, int] = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "INT": signal.SIGINT}


@contextlib.contextmanager
def pidfd(pid: int) -> Iterator[int | None]:
    """A pidfd for ``pid``, or None where the kernel or Python lacks them (then ``os.kill`` is used)."""
    fd: int | None
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    try:
        yield fd
    finally:
        if fd is not None:
            os.close(fd)


def send(pid: int, sig: int, fd: int | None) -> None:
    """Send ``sig``; raises ProcessLookupError when the process is gone, PermissionError when denied."""
    if fd is not None:
        signal.pidfd_send_signal(fd, sig)
    else:
        os.kill(pid, sig)


def alive(pid: int, fd: int | None, proc_root: str | Path = "/proc") -> bool:
    """Still running: exists (signal 0) and is not a zombie waiting to be reaped."""
    try:
        send(pid, 0, fd)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone we may not signal-probe
    except OSError:
        return False
    return proc_state(proc_root, pid) not in ("Z", "X", "x")
