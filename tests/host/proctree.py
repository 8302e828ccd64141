"""Build fake /proc trees (and host roots) in tmp_path for the process and remediation tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

BTIME = 1_700_000_000
POD_UID = "0f9c1e2a-3b4c-4d5e-8f60-718293a4b5c6"
CONTAINER = "a" * 64
CGROUP_V2_POD = (
    "0::/kubepods.slice/kubepods-burstable.slice/"
    f"kubepods-burstable-pod{POD_UID.replace('-', '_')}.slice/cri-containerd-{CONTAINER}.scope\n"
)


@dataclass
class FakeProc:
    pid: int
    comm: str = "python"
    cmdline: list[str] = field(default_factory=lambda: ["python", "train.py"])
    state: str = "S"
    ppid: int = 1
    uid: int = 1000
    start_ticks: int = 500
    cgroup: str = "0::/system.slice/ssh.service\n"


def make_proc(root: Path, *procs: FakeProc, host_pid_ns: bool = True) -> Path:
    """A /proc with btime, pid 1, kthreadd at pid 2 (the host-namespace marker) and ``procs``."""
    proc = root / "proc"
    proc.mkdir(parents=True, exist_ok=True)
    (proc / "stat").write_text(f"cpu  1 2 3 4\nbtime {BTIME}\nprocesses 42\n")
    base = [FakeProc(1, "systemd", ["/sbin/init"], uid=0, ppid=0, start_ticks=1)]
    if host_pid_ns:
        base.append(FakeProc(2, "kthreadd", [], uid=0, ppid=0, start_ticks=1))
    for p in [*base, *procs]:
        d = proc / str(p.pid)
        d.mkdir(exist_ok=True)
        tail = " ".join(["0"] * 18)
        # fields after state: ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
        # cutime cstime priority nice threads itrealvalue starttime ...
        fields = [str(p.ppid)] + ["0"] * 17 + [str(p.start_ticks)] + tail.split()[:10]
        (d / "stat").write_text(f"{p.pid} ({p.comm}) {p.state} {' '.join(fields)}\n")
        (d / "cmdline").write_bytes(b"".join(a.encode() + b"\0" for a in p.cmdline))
        (d / "status").write_text(
            f"Name:\t{p.comm}\nState:\t{p.state}\nUid:\t{p.uid}\t{p.uid}\t{p.uid}\t{p.uid}\n"
        )
        (d / "comm").write_text(p.comm + "\n")
        (d / "cgroup").write_text(p.cgroup)
    return proc


def make_host(root: Path, users: dict[int, str] | None = None) -> Path:
    host = root / "host"
    (host / "etc").mkdir(parents=True, exist_ok=True)
    lines = [f"{name}:x:{uid}:{uid}::/home/{name}:/bin/sh" for uid, name in (users or {0: "root"}).items()]
    (host / "etc" / "passwd").write_text("\n".join(lines) + "\n")
    return host
