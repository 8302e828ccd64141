"""``/proc/<pid>/cgroup`` -> container id, pod UID, runtime and QoS class (cgroup v1 and v2).

Understands the kubelet's systemd driver (``kubepods.slice/kubepods-burstable.slice/
kubepods-burstable-pod<uid_with_underscores>.slice/cri-containerd-<id>.scope``) and cgroupfs driver
(``/kubepods/burstable/pod<uid>/<id>``), and the containerd, CRI-O and Docker naming schemes. A
process outside any container cgroup (or behind a cgroup namespace that shows ``0::/``) gets a
``CgroupInfo`` whose fields are all ``None``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_UID = r"[0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12}"
_POD = re.compile(rf"pod({_UID})(?:\.slice)?(?:/|$)")
_SCOPE = re.compile(r"^(cri-containerd|containerd|crio|cri-o|docker|libpod)-([0-9a-f]{12,64})\.scope$")
_BARE = re.compile(r"^[0-9a-f]{64}$")
_QOS = re.compile(r"kubepods[-/.](?:slice/kubepods-)?(burstable|besteffort)", re.IGNORECASE)
_RUNTIMES = {
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "cri-o": "cri-o",
    "docker": "docker",
    "libpod": "podman",
}


@dataclass(frozen=True)
class CgroupInfo:
    """Where a process runs. ``qos`` is guaranteed/burstable/besteffort for pod processes."""

    container_id: str | None = None
    pod_uid: str | None = None
    runtime: str | None = None
    qos: str | None = None
    path: str | None = None


def parse_cgroup_path(path: str) -> CgroupInfo:
    """One cgroup path (the part after the second ``:``)."""
    parts = [p for p in path.strip().split("/") if p]
    container_id = runtime = None
    for part in reversed(parts):
        if m := _SCOPE.match(part):
            container_id, runtime = m[2], _RUNTIMES[m[1]]
            break
        if _BARE.match(part):
            container_id = part
            if "docker" in parts:
                runtime = "docker"
            break
    pod = _POD.search(path)
    pod_uid = pod[1].replace("_", "-").lower() if pod else None
    qos = None
    if pod_uid:
        q = _QOS.search(path)
        qos = q[1].lower() if q else "guaranteed"
    if container_id is None and pod_uid is None:
        return CgroupInfo(path=path or None)
    return CgroupInfo(container_id, pod_uid, runtime, qos, path)


def parse_cgroup(text: str) -> CgroupInfo:
    """Parse the contents of ``/proc/<pid>/cgroup``: the v2 line (``0::``) first, then v1 controllers.

    The first line naming both a container and a pod wins; else the first naming either.
    """
    v2: list[str] = []
    v1: list[str] = []
    for line in text.splitlines():
        fields = line.strip().split(":", 2)
        if len(fields) != 3:
            continue
        (v2 if fields[0] == "0" and fields[1] == "" else v1).append(fields[2])
    best = CgroupInfo()
    for path in v2 + v1:
        info = parse_cgroup_path(path)
        if info.container_id and info.pod_uid:
            return info
        if best.container_id is None and best.pod_uid is None and (info.container_id or info.pod_uid):
            best = info
    return best


def read_cgroup(proc_root: str | Path, pid: int) -> CgroupInfo | None:
    """Parse ``<proc_root>/<pid>/cgroup``; ``None`` when it cannot be read (process gone, no access)."""
    try:
        text = (Path(proc_root) / str(int(pid)) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    return parse_cgroup(text)
