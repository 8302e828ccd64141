"""MIG: the GPU's MIG mode and its MIG devices (GPU instance + compute instance), read through NVML.

Each MIG device is read through its own MIG device handle (``nvmlDeviceGetMigDeviceHandleByIndex``):
UUID, name (NVML names it ``<GPU> MIG <profile>``, e.g. ``... MIG 1g.20gb``), GPU and compute instance
ids, memory, engine attributes, and the one ECC counter NVML keeps per instance (volatile uncorrectable
SRAM). The GPU instance's profile id and placement come from ``nvmlGpuInstanceGetInfo``. Every field
NVML will not give is ``None`` with its reason in ``unavailable``; an empty slot (NotFound) is skipped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from k8s_gpu_mcp.gpu.adapter import FieldReader, GpuRef, NvmlAdapter, text

MIB = 2**20
_PROFILE_RE = re.compile(r"\bMIG\s+(\S+)\s*$")


@dataclass(frozen=True)
class MigDevice:
    """One MIG device: a compute instance inside a GPU instance."""

    index: int  # the MIG device index on its GPU (nvmlDeviceGetMigDeviceHandleByIndex)
    uuid: str | None = None
    name: str | None = None
    profile: str | None = None  # 1g.10gb ... 7g.80gb, from the name NVML gives the MIG device
    gpu_instance_id: int | None = None
    compute_instance_id: int | None = None
    gpu_instance_profile_id: int | None = None
    placement_start: int | None = None
    placement_size: int | None = None
    multiprocessor_count: int | None = None
    copy_engines: int | None = None
    decoders: int | None = None
    encoders: int | None = None
    jpeg_engines: int | None = None
    ofa_engines: int | None = None
    gpu_slices: int | None = None
    compute_slices: int | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    sram_uncorrected_volatile: int | None = None  # NVML's one per-instance ECC counter
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MigState:
    """A GPU's MIG mode and devices. ``devices``: ``()`` when MIG is off or the GPU has no MIG;
    ``None`` when MIG is on but the devices could not be listed (reason in ``unavailable``)."""

    mode_current: bool | None
    mode_pending: bool | None
    max_devices: int | None = None
    devices: tuple[MigDevice, ...] | None = ()
    unavailable: dict[str, str] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return bool(self.mode_current)

    def device_for(self, gpu_instance_id: int | None, compute_instance_id: int | None) -> MigDevice | None:
        """The MIG device holding (GI, CI), as a process entry names it."""
        if gpu_instance_id is None:
            return None
        for dev in self.devices or ():
            if dev.gpu_instance_id == gpu_instance_id and (
                compute_instance_id is None or dev.compute_instance_id == compute_instance_id
            ):
                return dev
        return None

    def device_by_uuid(self, uuid: str) -> MigDevice | None:
        return next((d for d in self.devices or () if d.uuid and d.uuid.lower() == uuid.lower()), None)


def read_mig(adapter: NvmlAdapter, ref: GpuRef) -> MigState:
    """The GPU's MIG state; raises ``GpuLost``."""
    nvml = adapter.nvml
    r = FieldReader(nvml, ref.handle)
    mode = r.read("mig_mode", "nvmlDeviceGetMigMode")
    if mode is None:
        why = r.unavailable["mig_mode"]
        # NotSupported: a GPU without MIG has no MIG devices, by design; any other failure: unknown.
        devices: tuple[MigDevice, ...] | None = () if why.startswith("NotSupported") else None
        return MigState(
            None, None, None, devices, {"mig_mode": why, **({} if devices == () else {"devices": why})}
        )
    current, pending = bool(mode[0]), bool(mode[1])
    if not current:
        return MigState(current, pending, None, (), {})
    count = r.read("max_devices", "nvmlDeviceGetMaxMigDeviceCount")
    if count is None:
        r.unavailable["devices"] = (
            f"the MIG device slots could not be counted: {r.unavailable['max_devices']}"
        )
        return MigState(current, pending, None, None, r.unavailable)
    devices_found: list[MigDevice] = []
    for index in range(int(count)):
        handle = r.read("slot", "nvmlDeviceGetMigDeviceHandleByIndex", index)
        if handle is None:
            why = r.unavailable.pop("slot")
            if why.startswith("NotFound"):  # an empty slot
                continue
            r.unavailable["devices"] = f"MIG device {index}: {why}"
            return MigState(current, pending, int(count), None, r.unavailable)
        devices_found.append(read_mig_device(nvml, ref, index, handle))
    return MigState(current, pending, int(count), tuple(devices_found), r.unavailable)


def read_mig_device(nvml: Any, ref: GpuRef, index: int, handle: Any) -> MigDevice:
    """One MIG device through its handle; raises ``GpuLost``."""
    m = FieldReader(nvml, handle)
    out: dict[str, Any] = {"index": index}
    uuid = m.read("uuid", "nvmlDeviceGetUUID")
    out["uuid"] = text(uuid) if uuid is not None else None
    name = m.read("name", "nvmlDeviceGetName")
    out["name"] = text(name) if name is not None else None
    match = _PROFILE_RE.search(out["name"] or "")
    out["profile"] = match.group(1) if match else None
    if out["profile"] is None:
        m.unavailable["profile"] = (
            m.unavailable.get("name") or f"the MIG device name {out['name']!r} names no profile"
        )
    out["gpu_instance_id"] = m.read("gpu_instance_id", "nvmlDeviceGetGpuInstanceId")
    out["compute_instance_id"] = m.read("compute_instance_id", "nvmlDeviceGetComputeInstanceId")
    mem = m.read("memory", "nvmlDeviceGetMemoryInfo")
    for key in ("total", "used", "free"):
        out[f"memory_{key}_mib"] = getattr(mem, key) // MIB if mem is not None else None
        if mem is None:
            m.unavailable[f"memory_{key}_mib"] = m.unavailable["memory"]
    m.unavailable.pop("memory", None)
    attrs = m.read("attributes", "nvmlDeviceGetAttributes")
    for key, attr in (
        ("multiprocessor_count", "multiprocessorCount"),
        ("copy_engines", "sharedCopyEngineCount"),
        ("decoders", "sharedDecoderCount"),
        ("encoders", "sharedEncoderCount"),
        ("jpeg_engines", "sharedJpegCount"),
        ("ofa_engines", "sharedOfaCount"),
        ("gpu_slices", "gpuInstanceSliceCount"),
        ("compute_slices", "computeInstanceSliceCount"),
    ):
        out[key] = int(getattr(attrs, attr)) if attrs is not None else None
        if attrs is None:
            m.unavailable[key] = m.unavailable["attributes"]
    m.unavailable.pop("attributes", None)
    out["sram_uncorrected_volatile"] = m.read(
        "sram_uncorrected_volatile",
        "nvmlDeviceGetMemoryErrorCounter",
        getattr(nvml, "NVML_MEMORY_ERROR_TYPE_UNCORRECTED", 1),
        getattr(nvml, "NVML_VOLATILE_ECC", 0),
        getattr(nvml, "NVML_MEMORY_LOCATION_SRAM", 7),
    )
    out.update(_placement(nvml, ref, out["gpu_instance_id"], m.unavailable))
    return MigDevice(**out, unavailable=m.unavailable)


def _placement(
    nvml: Any, ref: GpuRef, gpu_instance_id: int | None, unavailable: dict[str, str]
) -> dict[str, Any]:
    keys = ("gpu_instance_profile_id", "placement_start", "placement_size")
    if gpu_instance_id is None:
        unavailable.update({k: "the GPU instance id is unknown" for k in keys})
        return dict.fromkeys(keys)
    parent = FieldReader(nvml, ref.handle)
    gi = parent.read("gi", "nvmlDeviceGetGpuInstanceById", gpu_instance_id)
    reader = FieldReader(nvml, gi)
    info = reader.read("info", "nvmlGpuInstanceGetInfo") if gi is not None else None
    if info is None:
        why = parent.unavailable.get("gi") or reader.unavailable.get("info", "nvmlGpuInstanceGetInfo")
        unavailable.update(dict.fromkeys(keys, f"{why} (GPU instance {gpu_instance_id})"))
        return dict.fromkeys(keys)
    return {
        "gpu_instance_profile_id": int(info.profileId),
        "placement_start": int(info.placement.start),
        "placement_size": int(info.placement.size),
    }
