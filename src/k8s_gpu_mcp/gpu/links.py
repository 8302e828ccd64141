"""NVLink, P2P, topology and CPU/NUMA affinity readings through NVML (adapter style).

Every call goes through :class:`FieldReader`: an error makes that one value ``None`` with its reason,
and ``GpuIsLost`` raises :class:`GpuLost` for the caller to mark the GPU lost.
"""

from __future__ import annotations

from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef, NvmlAdapter, error_name, text
from k8s_gpu_mcp.gpu.nvml_constants import (
    NVLINK_CAPABILITIES,
    NVLINK_ERROR_COUNTERS,
    NVLINK_REMOTE_TYPES,
    P2P_CAPS,
    RemoteType,
)
from k8s_gpu_mcp.gpu.pci import short_bus_id
from k8s_gpu_mcp.gpu.readings import Affinity, NvLinkReading, PairReadings

NOT_A_LINK = ("NotSupported", "InvalidArgument")
CPU_SET_WORDS = 16  # 64-bit words asked of nvmlDeviceGetCpuAffinity: room for 1024 CPUs


def _link_exists(adapter: NvmlAdapter, ref: GpuRef, link: int) -> tuple[bool, int | None, str | None]:
    """(exists, state, reason). NotSupported / InvalidArgument on the state mean "no such link",
    unless the link still answers nvmlDeviceGetNvLinkVersion: then it exists and its state is unknown."""
    nvml = adapter.nvml
    try:
        return True, nvml.nvmlDeviceGetNvLinkState(ref.handle, link), None
    except nvml.NVMLError as exc:
        name = error_name(exc)
        if name == "GpuIsLost":
            raise GpuLost("nvmlDeviceGetNvLinkState") from exc
        if name not in NOT_A_LINK:
            return True, None, f"{name}: nvmlDeviceGetNvLinkState"
    probe = adapter.reader(ref, identity=False)
    if probe.read("version", "nvmlDeviceGetNvLinkVersion", link) is None:
        return False, None, None
    return True, None, f"{name}: nvmlDeviceGetNvLinkState (the link answers other NVLink calls)"


def _link_state(adapter: NvmlAdapter, ref: GpuRef, link: int) -> tuple[int | None, str | None]:
    """(state, reason) of a link the GPU is known to have."""
    r = adapter.reader(ref, identity=False)
    state = r.read("state", "nvmlDeviceGetNvLinkState", link)
    return state, r.unavailable.get("state")


def links_unknown(adapter: NvmlAdapter, ref: GpuRef) -> str | None:
    """Why the GPU's set of links cannot be known (neither NVML's count nor a probe answers), else None.
    Probing such a GPU would list every index up to the maximum as a link of unknown state."""
    count, why_not = adapter.nvlink_count(ref.handle)
    return why_not if count is None else None


def read_nvlinks(adapter: NvmlAdapter, ref: GpuRef, bus_ids: dict[str, int]) -> list[NvLinkReading]:
    """The GPU's links; ``bus_ids`` maps short bus id -> GPU.

    Where NVML gives the link count (``NVML_FI_DEV_NVLINK_LINK_COUNT``), links ``0..count-1`` are
    read and nothing above: a library may answer a state at an index where the GPU has no link.
    Otherwise every index up to the binding's NVML_NVLINK_MAX_LINKS is probed."""
    count, _ = adapter.nvlink_field_count(ref.handle)
    links = []
    for link in range(count if count is not None else adapter.max_links):
        if count is not None:
            state, reason = _link_state(adapter, ref, link)
        else:
            exists, state, reason = _link_exists(adapter, ref, link)
            if not exists:
                continue
        links.append(_read_link(adapter, ref, link, state, reason, bus_ids))
    return links


def _read_link(
    adapter: NvmlAdapter,
    ref: GpuRef,
    link: int,
    state: int | None,
    reason: str | None,
    bus_ids: dict[str, int],
) -> NvLinkReading:
    r = adapter.reader(ref, identity=False)
    if reason:
        r.unavailable["state"] = reason
    version = r.read("version", "nvmlDeviceGetNvLinkVersion", link)
    rtype = r.read("remote_type", "nvmlDeviceGetNvLinkRemoteDeviceType", link)
    remote_type: RemoteType | None = NVLINK_REMOTE_TYPES.get(rtype, "unknown") if rtype is not None else None
    remote = None
    if remote_type == "switch":
        r.unavailable["remote_bus_id"] = "NotRead: the link ends at an NVSwitch, not at a GPU"
    else:
        pci = r.read("remote_bus_id", "nvmlDeviceGetNvLinkRemotePciInfo", link)
        remote = text(pci.busId) if pci is not None else None
        if remote == "":  # an inactive link: NVML answers with an empty PCI info
            remote = None
            r.unavailable["remote_bus_id"] = "Empty: nvmlDeviceGetNvLinkRemotePciInfo gave no bus id"
    remote_gpu = bus_ids.get(short_bus_id(remote)) if remote else None
    if remote_gpu is None:
        r.unavailable["remote_gpu"] = (
            f"NotAGpu: {remote} is not one of this node's GPUs"
            if remote
            else f"NotAGpu: {r.unavailable['remote_bus_id']}"
            if "remote_bus_id" in r.unavailable
            else "Unknown: no remote bus id"
        )
    if remote_type is None and remote_gpu is not None:
        remote_type = "gpu"
    caps = {k: r.read(f"capabilities.{k}", "nvmlDeviceGetNvLinkCapability", link, c)
            for k, c in NVLINK_CAPABILITIES.items()}  # fmt: skip
    errors = {
        k: r.read(f"errors.{k}", "nvmlDeviceGetNvLinkErrorCounter", link, c)
        for k, c in NVLINK_ERROR_COUNTERS.items()
    }
    return NvLinkReading(
        link=link,
        state=state,
        version=version,
        remote_type=remote_type,
        remote_bus_id=remote,
        remote_gpu=remote_gpu,
        capabilities={k: bool(v) for k, v in caps.items()}
        if any(v is not None for v in caps.values())
        else None,
        errors=errors,
        unavailable=r.unavailable,
    )


def read_affinity(adapter: NvmlAdapter, ref: GpuRef) -> Affinity:
    """NUMA node and CPU affinity (as a CPU list like ``48-63,176-191``)."""
    r = adapter.reader(ref)
    numa = r.read("numa_node", "nvmlDeviceGetNumaNodeId")
    words = r.read("cpu_affinity", "nvmlDeviceGetCpuAffinity", CPU_SET_WORDS)
    return Affinity(
        numa_node=numa,
        cpu_affinity=cpu_list([int(w) for w in words]) if words is not None else None,
        unavailable=r.unavailable,
    )


def cpu_list(words: list[int]) -> str:
    """64-bit affinity words -> ``0-3,8``."""
    cpus = [w * 64 + b for w, word in enumerate(words) for b in range(64) if word >> b & 1]
    ranges: list[str] = []
    start = prev = None
    for cpu in [*cpus, None]:
        if cpu is not None and prev is not None and cpu == prev + 1:
            prev = cpu
            continue
        if start is not None:
            ranges.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = cpu
    return ",".join(ranges)


def read_pairs(adapter: NvmlAdapter, refs: list[GpuRef]) -> PairReadings:
    """Common-ancestor levels and P2P status for every ordered GPU pair (diagonal 0)."""
    n = len(refs)
    levels: list[list[int | None]] = [[0 if i == j else None for j in range(n)] for i in range(n)]
    p2p: dict[str, list[list[int | None]]] = {
        k: [[0 if i == j else None for j in range(n)] for i in range(n)] for k in P2P_CAPS
    }
    unavailable: dict[str, str] = {}
    for i, a in enumerate(refs):
        for j, b in enumerate(refs):
            if i == j or a.handle is None or b.handle is None or a.lost_reason or b.lost_reason:
                continue
            r = adapter.reader(a, identity=False)
            try:
                levels[i][j] = r.read("topology", "nvmlDeviceGetTopologyCommonAncestor", b.handle)
                for cap, index in P2P_CAPS.items():
                    p2p[cap][i][j] = r.read(f"p2p.{cap}", "nvmlDeviceGetP2PStatus", b.handle, index)
            except GpuLost as exc:  # either GPU fell off the bus: the pair stays unknown
                r.unavailable["topology"] = f"GpuIsLost: {exc}"
            for key, why in r.unavailable.items():
                unavailable.setdefault(key, why)
    return PairReadings(levels=levels, p2p=p2p, unavailable=unavailable)
