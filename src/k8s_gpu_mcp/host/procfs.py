"""Read one process from a ``/proc`` tree under a configurable root (host /proc, or a test tree).

Every reader returns ``None`` for what it cannot read and says why in ``unavailable``: a process
that exited between two reads is a normal event on a busy node, not an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from k8s_gpu_mcp.k8s.cgroup import CgroupInfo, read_cgroup

STATES = {
    "R": "running",
    "S": "sleeping",
    "D": "disk sleep",
    "Z": "zombie",
    "T": "stopped",
    "t": "tracing stop",
    "X": "dead",
    "x": "dead",
    "K": "wakekill",
    "W": "waking",
    "P": "parked",
    "I": "idle",
}


@dataclass
class ProcInfo:
    """What ``/proc/<pid>`` says about one process; ``exists`` is False when the directory is gone."""

    pid: int
    exists: bool
    cmdline: str | None = None
    comm: str | None = None
    state: str | None = None  # the one-letter code from /proc/<pid>/stat
    ppid: int | None = None
    uid: int | None = None
    user: str | None = None
    start_ticks: int | None = None  # starttime, clock ticks after boot (stable identity with the pid)
    start_time: datetime | None = None
    cgroup: CgroupInfo | None = None
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def state_name(self) -> str | None:
        return STATES.get(self.state, f"unknown ({self.state})") if self.state else None

    @property
    def defunct(self) -> bool:
        return self.state in ("Z", "X", "x")


def parse_stat(text: str) -> tuple[str, str, int, int]:
    """``/proc/<pid>/stat`` -> (comm, state, ppid, starttime ticks). comm may hold spaces and ')'."""
    head, _, rest = text.rpartition(")")
    comm = head.partition("(")[2]
    fields = rest.split()
    # fields[0] is field 3 (state); starttime is field 22.
    return comm, fields[0], int(fields[1]), int(fields[19])


def boot_time(proc_root: str | Path) -> int | None:
    """``btime`` from ``<proc_root>/stat``: seconds since the epoch at boot."""
    try:
        for line in (Path(proc_root) / "stat").read_text().splitlines():
            if line.startswith("btime "):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def read_passwd(host_root: str | Path | None) -> dict[int, str]:
    """uid -> name from ``<host_root>/etc/passwd``; empty when absent (the caller shows the uid)."""
    if not host_root:
        return {}
    names: dict[int, str] = {}
    try:
        text = (Path(host_root) / "etc" / "passwd").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    for line in text.splitlines():
        parts = line.split(":")
        if len(parts) >= 3 and parts[2].isdigit():
            names.setdefault(int(parts[2]), parts[0])
    return names


def clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def read_proc(
    proc_root: str | Path,
    pid: int,
    users: dict[int, str] | None = None,
    btime: int | None = None,
) -> ProcInfo:
    """Everything the process tools show about ``pid``; each part read on its own."""
    base = Path(proc_root) / str(pid)
    if not base.is_dir():
        return ProcInfo(pid, exists=False, unavailable={"*": f"no {base}: the process is gone"})
    info = ProcInfo(pid, exists=True)
    try:
        info.comm, info.state, info.ppid, info.start_ticks = parse_stat((base / "stat").read_text())
        if btime is not None:
            info.start_time = datetime.fromtimestamp(btime + info.start_ticks / clock_ticks(), UTC)
        else:
            info.unavailable["start_time"] = f"no btime in {Path(proc_root) / 'stat'}"
    except (OSError, ValueError, IndexError) as exc:
        info.unavailable["state"] = f"{base / 'stat'}: {exc}"
    try:
        raw = (base / "cmdline").read_bytes()
        args = [a.decode(errors="replace") for a in raw.split(b"\0") if a]
        info.cmdline = " ".join(args) if args else (f"[{info.comm}]" if info.comm else None)
    except OSError as exc:
        info.unavailable["cmdline"] = f"{base / 'cmdline'}: {exc}"
    try:
        for line in (base / "status").read_text().splitlines():
            if line.startswith("Uid:"):
                info.uid = int(line.split()[1])
                break
    except (OSError, ValueError, IndexError) as exc:
        info.unavailable["user"] = f"{base / 'status'}: {exc}"
    if info.uid is not None:
        info.user = (users or {}).get(info.uid, str(info.uid))
    info.cgroup = read_cgroup(proc_root, pid)
    if info.cgroup is None:
        info.unavailable["cgroup"] = f"cannot read {base / 'cgroup'}"
    return info


def start_ticks(proc_root: str | Path, pid: int) -> int | None:
    """Just the start time in ticks (with the pid, a process identity that survives pid reuse)."""
    try:
        return parse_stat((Path(proc_root) / str(pid) / "stat").read_text())[3]
    except (OSError, ValueError, IndexError):
        return None


def proc_state(proc_root: str | Path, pid: int) -> str | None:
    try:
        return parse_stat((Path(proc_root) / str(pid) / "stat").read_text())[1]
    except (OSError, ValueError, IndexError):
        return None


def proc_root_problem(proc_root: str | Path) -> str | None:
    """Why this /proc tree cannot show the host's processes (the pids NVML reports); None when it can.

    Host PID namespace check: pid 2 is always ``kthreadd`` there, and never inside a container's.
    """
    root = Path(proc_root)
    try:
        comm = (root / "2" / "comm").read_text().strip()
    except OSError:
        comm = None
    if comm != "kthreadd":
        return (
            f"{root} does not show the host's processes (no kthreadd at pid 2): share the host PID "
            "namespace (kubectl debug node/... does) or mount the host's /proc and pass --proc-root"
        )
    return None
