"""Kernel log sources: /dev/kmsg, journalctl, dmesg, a file, or lines supplied directly.

``auto`` tries /dev/kmsg (read from the start of the ring, non-blocking, until EAGAIN), then
``journalctl -k``, then ``dmesg``. Uptime stamps of this boot's live log are converted to wall
clock with the boot time from ``/proc/stat`` (``btime``). A file may come from another host or an
earlier boot: its uptime stamps are dated only with the boot time the operator gave for it, or
from the file's own wall-clock lines; otherwise they stay uptime, with a null time and a note.
Roots, paths, boot time and the PATH are injectable for tests.
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

from .parse import LineParser, parse_prefix
from .scan import scan_file, scan_stream

KERNEL_SOURCES = ("auto", "kmsg", "journal", "dmesg", "scenario")
_KMSG_RECORD = 16384  # larger than any printk record (the kernel caps them at 1 KiB of text + dict)


@dataclass(slots=True)
class KernelLog:
    """Where the kernel log came from, its parser, and how far back it covers."""

    source: str | None  # kmsg | journal | dmesg | file | scenario; None when no source worked
    parser: LineParser
    unavailable: dict[str, str] = field(default_factory=dict)
    boot_time: datetime | None = None
    covered_since: datetime | None = None  # the earliest time this log covers, when known


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


def _run(argv: Sequence[str], timeout: float, env: dict[str, str] | None, **opts: object) -> LineParser:
    """Scan a command's output as it streams (bounded like a file), within ``timeout`` seconds."""
    exe = shutil.which(argv[0], path=(env or os.environ).get("PATH"))
    if exe is None:
        raise FileNotFoundError(f"{argv[0]} not found on PATH")
    with subprocess.Popen(
        [exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    ) as proc:
        assert proc.stdout is not None
        try:
            parser = scan_stream(proc.stdout, deadline_s=timeout, **opts)  # type: ignore[arg-type]
        finally:
            if proc.poll() is None:
                proc.kill()
        status = proc.wait()
    if status != 0 and not parser.events and not parser.notes:
        raise RuntimeError(f"{argv[0]} exited with status {status}")
    return parser


def parse_boot_time(text: str) -> datetime:
    """``--boot-time``: RFC 3339 (``2026-11-21T09:00:00Z``) or epoch seconds. Raises ValueError."""
    value = text.strip()
    try:
        if value.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(value), UTC)
        stamp = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except (ValueError, OverflowError, OSError):
        raise ValueError("invalid boot time: use RFC 3339 (2026-11-21T09:00:00Z) or epoch seconds") from None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)


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
    log_boot_time: datetime | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 20.0,
    now: datetime | None = None,
) -> KernelLog:
    """Read and parse the kernel log from ``source`` (see KERNEL_SOURCES, or a file path the caller
    has already checked against the operator's list). ``boot_time``: of this boot's live log
    (default: ``/proc/stat``); ``log_boot_time``: of the host and boot that wrote a file. Raises
    OSError when a file cannot be read."""
    unavailable: dict[str, str] = {}
    if source == "scenario":
        parser = LineParser(boot_time=boot_time, now=now)
        for line in lines or ():
            parser.feed(line)
        return KernelLog("scenario", parser.finish(), unavailable, boot_time)
    if source not in KERNEL_SOURCES:
        path = Path(source)
        if path.is_char_device():  # /dev/kmsg given as --kernel-log: this boot's live log
            source, kmsg_path = "kmsg", path
        else:
            parser = scan_file(path, boot_time=log_boot_time, now=now, derive_boot=True)
            return KernelLog("file", parser, unavailable, log_boot_time)
    boot = boot_time or read_boot_time(proc_root)
    opts = {"boot_time": boot, "now": now}
    order = ("kmsg", "journal", "dmesg") if source == "auto" else (source,)
    for name in order:
        try:
            covered = boot if name == "journal" else None  # journald keeps the boot from its start
            if name == "kmsg":
                parser = LineParser(boot_time=boot, now=now)
                records = read_kmsg(kmsg_path)
                for record in records:
                    parser.feed(record)
                parser.finish()
                if records:  # the ring's oldest record: earlier ones of this boot were overwritten
                    covered = parse_prefix(records[0][: records[0].find(";") + 1], boot_time=boot).wall
            elif name == "journal":
                parser = _run(journal_argv(since, journal_dir), timeout, env, **opts)
            else:
                parser = _run(["dmesg"], timeout, env, **opts)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
            unavailable[name] = f"{type(exc).__name__}: {exc}"
            continue
        return KernelLog(name, parser, unavailable, boot, covered)
    return KernelLog(None, LineParser(boot_time=boot, now=now), unavailable, boot)
