"""Map a process to its container and pod from ``/proc/<pid>/cgroup`` (cgroup v1 and v2).

Understands the kubelet's systemd and cgroupfs layouts and the containerd, CRI-O and Docker
naming schemes. Returns ``None`` when the process is not in a recognisable container cgroup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_POD_RE = re.compile(
    r"pod([0-9a-fA-F]{8}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{4}[-_][0-9a-fA-F]{12})"
)
_SCOPE_RE = re.compile(r"(?P<rt>cri-containerd|crio|docker|containerd|cri-o)-(?P<id>[0-9a-f]{12,64})\.scope$")
_DOCKER_RE = re.compile(r"/docker/(?P<id>[0-9a-f]{12,64})(?:/|$)")
_BARE_ID_RE = re.compile(r"^[0-9a-f]{64}$")
_QOS_RE = re.compile(r"kubepods[-/.](?:slice/kubepods-)?(?P<qos>burstable|besteffort)", re.I)
_RUNTIME = {
    "cri-containerd": "containerd",
    "containerd": "containerd",
    "crio": "cri-o",
    "cri-o": "cri-o",
    "docker": "docker",
}


@dataclass(frozen=True, slots=True)
class CgroupInfo:
    container_id: str | None
    pod_uid: str | None
    runtime: str | None
    qos_class: str | None
    cgroup_path: str


def parse_cgroup_path(path: str) -> CgroupInfo | None:
    """Container id / pod uid from one cgroup path; None when it names neither."""
    pod = _POD_RE.search(path)
    container_id = runtime = None
    last = path.rstrip("/").rsplit("/", 1)[-1]
    if m := _SCOPE_RE.search(last):
        container_id, runtime = m["id"], _RUNTIME[m["rt"]]
    elif m := _DOCKER_RE.search(path):
        container_id, runtime = m["id"], "docker"
    elif pod and _BARE_ID_RE.match(last):
        container_id = last  # cgroupfs driver: /kubepods/<qos>/pod<uid>/<container id>
    if pod is None and container_id is None:
        return None
    qos = None
    if pod is not None:
        q = _QOS_RE.search(path)
        qos = q["qos"].lower() if q else "guaranteed"
    return CgroupInfo(
        container_id=container_id,
        pod_uid=pod[1].replace("_", "-").lower() if pod else None,
        runtime=runtime,
        qos_class=qos,
        cgroup_path=path,
    )


def parse_cgroup(text: str) -> CgroupInfo | None:
    """Parse the contents of ``/proc/<pid>/cgroup``: the v2 entry first, then any v1 controller."""
    paths: list[tuple[bool, str]] = []
    for line in text.splitlines():
        parts = line.strip().split(":", 2)
        if len(parts) == 3:
            paths.append((parts[0] == "0" and parts[1] == "", parts[2]))
    best: CgroupInfo | None = None
    for _, path in sorted(paths, key=lambda p: not p[0]):
        info = parse_cgroup_path(path)
        if info is not None and info.container_id and info.pod_uid:
            return info
        best = best or info
    return best


def attribute_pid(pid: int, proc_root: str | Path = "/proc") -> CgroupInfo | None:
    """Container and pod of ``pid`` (``proc_root`` is injectable, e.g. ``/host/proc``); None if unknown."""
    try:
        text = (Path(proc_root) / str(int(pid)) / "cgroup").read_text(encoding="utf-8", errors="replace")
    except (OSError, ValueError):
        return None
    return parse_cgroup(text)
