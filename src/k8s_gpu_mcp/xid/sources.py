"""Kernel log sources: /dev/kmsg, journalctl, dmesg, a file, or lines supplied directly.

``auto`` tries /dev/kmsg (read from the start of the ring, non-blocking, until EAGAIN), then
``journalctl -k``, then ``dmesg``. Uptime stamps are converted to wall clock with the boot time
from ``/proc/stat`` (``btime``). Roots, paths, boot time and the PATH are injectable for tests.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from k8s_gpu_mcp.host.procfs import boot_time

from .parse import LineParser
from .scan import scan_bytes, scan_file

KERNEL_SOURCES = ("auto", "kmsg", "journal", "dmesg", "scenario")
_KMSG_RECORD = 16384  # larger than any printk record (the kernel caps them at 1 KiB of text + dict)


@dataclass(slots=True)
class KernelLog:
    source: str | None  # kmsg | journal | dmesg | file | scenario; None when no source worked
    parser: LineParser
    unavailable: dict[str, str] = field(default_factory=dict)
    boot_time: datetime | None = None


def read_boot_time(proc_root: str | Path = "/proc") -> datetime | None:
    """Boot time from ``btime`` in ``<proc_root>/stat``; None when unreadable."""
    seconds = boot_time(proc_root)
    return datetime.fromtimestamp(seconds, UTC) if seconds is not None else None


def read_kmsg(
    path: str | Path = "/dev/kmsg", *, max_records: int = 2_000_000, deadline_s: float = 10.0
) -> list[str]:
    """All records in the kernel ring buffer, oldest first. Never blocks: stops at EAGAIN or EOF.

    EPIPE (a record was overwritten while reading) is skipped; EINVAL (record larger than the read
    buffer) skips that record. Dictionary lines (starting with a space) are dropped.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    records: list[str] = []
    pending = b""
    stop_at = time.monotonic() + deadline_s
    try:
        try:
            os.lseek(fd, 0, os.SEEK_SET)  # start of the ring (not all kmsg-like files support it)
        except OSError:
            pass
        while len(records) < max_records and time.monotonic() < stop_at:
            try:
                chunk = os.read(fd, _KMSG_RECORD)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EPIPE, errno.EINVAL):
                    continue
                if exc.errno == errno.EAGAIN:
                    break
                raise
            if not chunk:
                break
            pending += chunk
            *complete, pending = pending.split(b"\n")
            records.extend(r.decode("utf-8", "replace") for r in complete if r and not r.startswith(b" "))
    finally:
        os.close(fd)
    if pending and not pending.startswith(b" "):
        records.append(pending.decode("utf-8", "replace"))
    return records


def _run(argv: Sequence[str], timeout: float, env: dict[str, str] | None) -> bytes:
    exe = shutil.which(argv[0], path=(env or os.environ).get("PATH"))
    if exe is None:
        raise FileNotFoundError(f"{argv[0]} not found on PATH")
    proc = subprocess.run(
        [exe, *argv[1:]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        timeout=timeout,
        env=env,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with status {proc.returncode}")
    return proc.stdout


def journal_argv(since: datetime | None, journal_dir: str | None = None) -> list[str]:
    argv = ["journalctl", "-k", "-o", "short-iso", "--no-pager", "-q"]
    if journal_dir:
        argv += ["-D", journal_dir]
    if since is not None:
        argv.append(f"--since=@{int(since.timestamp())}")
    return argv


def read_kernel_log(
    source: str = "auto",
    *,
    since: datetime | None = None,
    lines: Iterable[str] | None = None,
    kmsg_path: str | Path = "/dev/kmsg",
    proc_root: str | Path = "/proc",
    journal_dir: str | None = None,
    boot_time: datetime | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    now: datetime | None = None,
) -> KernelLog:
    """Read and parse the kernel log from ``source`` (see KERNEL_SOURCES, or a file path)."""
    boot = boot_time or read_boot_time(proc_root)
    opts = {"boot_time": boot, "now": now}
    unavailable: dict[str, str] = {}
    if source == "scenario":
        parser = LineParser(**opts)  # type: ignore[arg-type]
        for line in lines or ():
            parser.feed(line)
        return KernelLog("scenario", parser, unavailable, boot)
    if source not in KERNEL_SOURCES:
        path = Path(source)
        if not path.is_file():
            raise ValueError(
                f"invalid source {source!r}: use one of {', '.join(KERNEL_SOURCES)}, 'nvml' or a file path"
            )
        return KernelLog("file", scan_file(path, **opts), unavailable, boot)
    order = ("kmsg", "journal", "dmesg") if source == "auto" else (source,)
    for name in order:
        try:
            if name == "kmsg":
                parser = LineParser(**opts)  # type: ignore[arg-type]
                for record in read_kmsg(kmsg_path):
                    parser.feed(record)
            elif name == "journal":
                parser = scan_bytes(_run(journal_argv(since, journal_dir), timeout, env), **opts)
            else:
                parser = scan_bytes(_run(["dmesg"], timeout, env), **opts)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        return KernelLog(name, parser, unavailable, boot)
    return KernelLog(None, LineParser(**opts), unavailable, boot)  # type: ignore[arg-type]
