"""The NVLink fabric as NVML reports it per GPU (``nvmlDeviceGetGpuFabricInfoV``).

On NVSwitch systems (HGX, NVL) Fabric Manager trains the fabric and registers each GPU: the state
goes not-started -> in-progress -> completed, with an NVML status, the clique and the cluster
(NVLink domain) UUID. The health mask (v2+) says whether bandwidth is degraded, routes are
recovering or unhealthy, and whether the global fabric manager (GFM) is connected. A GPU without a
fabric (PCIe cards, pre-Hopper) answers NotSupported: ``supported`` False, by design, never unknown.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from k8s_gpu_mcp.gpu import nvml_lib
from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter, error_name

STATES = {0: "not-supported", 1: "not-started", 2: "in-progress", 3: "completed"}
SUMMARIES = {0: None, 1: "healthy", 2: "unhealthy", 3: "limited-capacity"}
_BOOL = {1: True, 2: False}
# healthMask field -> (pynvml constant suffix, value names); 0 is NOT_SUPPORTED (None) everywhere
HEALTH_FIELDS: dict[str, tuple[str, dict[int, Any]]] = {
    "degraded_bandwidth": ("DEGRADED_BW", _BOOL),
    "route_recovery_in_progress": ("ROUTE_RECOVERY", _BOOL),
    "route_unhealthy": ("ROUTE_UNHEALTHY", _BOOL),
    "access_timeout_recovery": ("ACCESS_TIMEOUT_RECOVERY", _BOOL),
    "incorrect_configuration": (
        "INCORRECT_CONFIGURATION",
        {
            1: "none",
            2: "incorrect-sysguid",
            3: "incorrect-chassis-sn",
            4: "no-partition",
            5: "insufficient-nvlinks",
            6: "incompatible-gpu-fw",
            7: "invalid-location",
            8: "gpu-state-invalid",
        },
    ),
    "partition_assigned": ("PARTITION_ASSIGNED", _BOOL),
    "gfm_state": ("GFM_STATE", {1: "connected", 2: "disconnected"}),
}
ARGUMENT_VERSION_MISMATCH = 25


@dataclass(frozen=True)
class FabricInfo:
    """One GPU's fabric registration. ``supported`` False: NVML has no fabric for this GPU (by design)."""

    supported: bool | None
    state: str | None = None  # not-supported | not-started | in-progress | completed
    status: str | None = None  # "Success" or the NVML error the registration ended with
    clique_id: int | None = None
    cluster_uuid: str | None = None
    health: dict[str, Any] | None = None  # HEALTH_FIELDS -> value; None where the struct has no mask
    health_summary: str | None = None  # healthy | unhealthy | limited-capacity (v3)
    call: str | None = None  # the NVML call (and struct version) that answered
    unavailable: dict[str, str] = field(default_factory=dict)


def _uuid(raw: Any) -> str | None:
    data = bytes(raw)
    if not any(data):
        return "00000000-0000-0000-0000-000000000000"
    h = data.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def decode_health(nvml: Any, mask: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, (const, names) in HEALTH_FIELDS.items():
        shift = getattr(nvml, f"NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_{const}", None)
        width = getattr(nvml, f"NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_{const}", None)
        out[key] = None if shift is None or width is None else names.get((mask >> shift) & width)
    return out


def _status(nvml: Any, code: int) -> str:
    if code == 0:
        return "Success"
    try:
        return error_name(nvml.NVMLError(code))
    except Exception:  # a code the binding has no class for
        return f"NVML error {code}"


def read_fabric(adapter: NvmlAdapter, ref: GpuRef) -> FabricInfo:
    """The GPU's fabric info, newest struct first (v3, v2, then the v1 call); raises ``GpuLost``."""
    nvml = adapter.nvml
    r = FieldReader(nvml, ref.handle)
    attempts = (
        ("c_nvmlGpuFabricInfo_v3_t", "nvmlDeviceGetGpuFabricInfoV"),
        ("c_nvmlGpuFabricInfo_v2_t", "nvmlDeviceGetGpuFabricInfoV"),
        ("c_nvmlGpuFabricInfo_t", "nvmlDeviceGetGpuFabricInfo"),
    )
    why = "FunctionNotFound: no GpuFabricInfo struct in this NVML binding"
    refused: list[str] = []  # newer calls that failed before an older one answered
    for struct_name, fn in attempts:
        made = nvml_lib.out_struct(nvml, struct_name)
        if made is None:
            continue
        info, arg = made
        if r.read("fabric", fn, arg) is not None:
            return _decoded(nvml, info, f"{fn} ({struct_name})", refused)
        why = r.unavailable.pop("fabric")
        refused.append(f"{why} ({struct_name})")
        if why.startswith("NotSupported"):
            return FabricInfo(False, "not-supported", call=fn, unavailable={"fabric": why})
        if not why.startswith(("FunctionNotFound", "ArgumentVersionMismatch")):
            break
    return FabricInfo(None, unavailable={"fabric": why})


def _decoded(nvml: Any, info: Any, call: str, refused: list[str]) -> FabricInfo:
    state = STATES.get(int(info.state), f"unknown ({info.state})")
    unavailable: dict[str, str] = {}
    mask = getattr(info, "healthMask", None)
    if mask is None:
        newer = f" ({'; '.join(refused)})" if refused else ""
        unavailable["health"] = f"{call} has no health mask (NVML's v1 struct){newer}"
    summary_raw = getattr(info, "healthSummary", None)
    if summary_raw is None:
        unavailable["health_summary"] = f"{call} has no health summary (struct before v3)"
    summary = SUMMARIES.get(int(summary_raw)) if summary_raw is not None else None
    return FabricInfo(
        supported=state != "not-supported",
        state=state,
        status=_status(nvml, int(info.status)),
        clique_id=int(info.cliqueId),
        cluster_uuid=_uuid(info.clusterUuid),
        health=decode_health(nvml, int(mask)) if mask is not None else None,
        health_summary=summary,
        call=call,
        unavailable=unavailable,
    )
