"""get_gpu_inventory: the static map of the node's GPUs."""

import json
from typing import TYPE_CHECKING, Any

from pydantic import Field

from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.diagnose import mig as mig_rules
from k8s_gpu_mcp.gpu.adapter import GpuLost
from k8s_gpu_mcp.gpu.mig import MigDevice, MigState, read_mig
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import (
    READ_ONLY,
    GpuSelector,
    NodeAnswer,
    NotSupported,
    Source,
    fold_unavailable,
    full_only,
    judge_each,
    node_answer,
    select_gpus,
    source,
    split_not_supported,
    summary_only,
)
from k8s_gpu_mcp.vocabulary import NOT_APPLICABLE, Detail, DetailLevel, is_by_design

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"


class MigDeviceInfo(ToolModel):
    """One MIG device (a compute instance in a GPU instance), as NVML reports it through its handle."""

    index: int = Field(description="MIG device index on its GPU")
    uuid: str | None = Field(description="MIG-... UUID (what the device plugin hands a container)")
    profile: str | None = Field(
        description="MIG profile, e.g. 1g.10gb ... 7g.80gb (from the MIG device name)"
    )
    gpu_instance_id: int | None
    compute_instance_id: int | None
    gpu_instance_profile_id: int | None = None
    placement_start: int | None = Field(None, description="first memory slice of the GPU instance")
    placement_size: int | None = Field(None, description="memory slices the GPU instance spans")
    multiprocessor_count: int | None = None
    gpu_slices: int | None = None
    compute_slices: int | None = None
    copy_engines: int | None = None
    decoders: int | None = None
    encoders: int | None = None
    jpeg_engines: int | None = None
    ofa_engines: int | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    memory_free_mib: int | None = None
    sram_uncorrected_volatile: int | None = Field(
        None,
        description="uncorrectable SRAM ECC errors since reset: the one ECC counter NVML keeps per instance",
    )
    unavailable: dict[str, str] = Field(default_factory=dict)


class MigInfo(ToolModel):
    max_devices: int | None = Field(None, description="MIG device slots (nvmlDeviceGetMaxMigDeviceCount)")
    devices: list[MigDeviceInfo] | None = Field(
        description="null when MIG is on but the devices could not be listed"
    )
    unavailable: dict[str, str] = Field(default_factory=dict)


def mig_device_info(dev: MigDevice) -> MigDeviceInfo:
    return MigDeviceInfo(**vars(dev))


def mig_info(state: MigState) -> MigInfo | None:
    """A GPU's MIG devices, or None where MIG is off or absent (mig_mode_current says which)."""
    if not state.enabled and state.devices is not None:
        return None
    devices = None if state.devices is None else [mig_device_info(d) for d in state.devices]
    return MigInfo(max_devices=state.max_devices, devices=devices, unavailable=state.unavailable)


class GpuInventory(ToolModel):
    index: int
    name: str | None
    uuid: str | None
    serial: str | None = None
    pci_bus_id: str | None = Field(None, description="NVML form, e.g. 00000000:3B:00.0")
    pci_bus_id_short: str | None = Field(None, description="kernel-log form, e.g. 0000:3b:00")
    vbios_version: str | None = None
    board_part_number: str | None = None
    memory_total_mib: int | None = None
    compute_capability: str | None = None
    architecture: str | None = None
    pcie_max_gen: int | None = None
    pcie_max_width: int | None = None
    power_default_limit_w: float | None = None
    power_min_limit_w: float | None = None
    power_max_limit_w: float | None = None
    mig_mode_current: bool | None = None
    mig_mode_pending: bool | None = None
    persistence_mode: bool | None = None
    nvlink_count: int | None = Field(None, description="NVLink links NVML reports for this GPU")
    mig: MigInfo | None = Field(
        None, description="MIG devices (profile, UUID, GI/CI, memory, placement); null when MIG is off"
    )
    lost: bool = Field(False, description="NVML reports the GPU as lost (fallen off the bus)")
    unavailable: dict[str, str] = Field(default_factory=dict, description="field -> why it is null")


# What names one GPU (said in healthy_gpus / problems) or is its own per board: not a model's attribute.
PER_GPU = {"index", "uuid", "serial", "pci_bus_id", "pci_bus_id_short", "lost", "unavailable", "mig"}
IDENTITY = ("name", "uuid", "pci_bus_id")


class GpuModel(ToolModel):
    """GPUs alike in everything but their identity, said once: the attributes and which GPUs have them."""

    gpus: list[int] = Field(description="the indexes of the GPUs with exactly these attributes")
    attributes: dict[str, Any] = Field(
        description="every inventory field these GPUs share (name, architecture, memory, PCIe, power "
        "limits, MIG and persistence mode, NVLink count, VBIOS, ...); null = unreadable, see unavailable"
    )


class InventoryResult(NodeAnswer):
    driver_version: str | None
    cuda_version: str | None
    nvml_version: str | None
    gpu_count: int
    models: list[GpuModel] | None = summary_only("the GPUs grouped by identical attributes")
    not_supported: NotSupported | None = full_only("fields this GPU model never has")
    gpus: list[GpuInventory] | None = full_only("every field of every GPU, serials and VBIOS included")
    source: Source


def reasons(g: GpuInventory) -> list[health.Reason]:
    """What the inventory itself can find wrong: a GPU it cannot identify, a MIG mode change that
    waits for a reset. Other unreadable fields are listed in unavailable, not judged."""
    out = []
    missing = {k: g.unavailable.get(k, "null") for k in IDENTITY if getattr(g, k) is None}
    missing = {k: v for k, v in missing.items() if not is_by_design(v)}
    if missing:
        why = "; ".join(f"{k}: {v}" for k, v in missing.items())
        out.append(
            health.Reason("inventory", "unknown", f"GPU identity unreadable ({why})", {"fields": missing})
        )
    if g.mig is not None and g.mig.devices is None:
        why = g.mig.unavailable.get("devices", "not read")
        out.append(health.Reason("inventory", "unknown", f"MIG is enabled but its devices could not be listed: {why}",
                                 {"why": why}))  # fmt: skip
    if (
        g.mig_mode_pending is not None
        and g.mig_mode_current is not None
        and g.mig_mode_pending != g.mig_mode_current
    ):
        want = "enabled" if g.mig_mode_pending else "disabled"
        out.append(health.Reason("inventory", "warning",
                                 f"MIG mode {want} on the next GPU reset (now {'on' if g.mig_mode_current else 'off'})",
                                 {"mig_mode_current": g.mig_mode_current, "mig_mode_pending": g.mig_mode_pending},
                                 f"Drain the GPU and reset it (nvidia-smi -r -i {g.index}) to apply the MIG mode, "
                                 "or set it back"))  # fmt: skip
    return out


def group_models(items: list[GpuInventory]) -> list[GpuModel]:
    groups: dict[str, GpuModel] = {}
    for g in items:
        if g.lost:
            continue
        attributes = g.model_dump(mode="json", exclude=PER_GPU)
        if g.mig is not None:  # the MIG layout, said as profiles (each device's UUID is per GPU: full)
            attributes["mig_devices"] = (
                "unreadable"
                if g.mig.devices is None
                else mig_rules.profiles_text_of(d.profile for d in g.mig.devices)
            )
        key = json.dumps(attributes, sort_keys=True)
        groups.setdefault(key, GpuModel(gpus=[], attributes=attributes)).gpus.append(g.index)
    return list(groups.values())


def answer(app: "AgentApp", items: list[GpuInventory], detail: DetailLevel) -> InventoryResult:
    judged = judge_each(items, reasons)
    head = node_answer(
        detail,
        judged,
        fold_unavailable({}, {g.index: g.unavailable for g in items}, keep_not_supported=detail == "full"),
        "No action: every GPU is identified and no mode change waits for a reset.",
    )
    system = app.backend.system
    result = InventoryResult(
        **head,
        driver_version=system.driver_version,
        cuda_version=system.cuda_version,
        nvml_version=system.nvml_version,
        gpu_count=len(app.backend.adapter.gpus()),
        source=source(app),
    )
    if detail == "full":
        result.gpus = items
        result.not_supported = split_not_supported(result)
    else:
        result.models = group_models(items)
    return result


def read_inventory(app: "AgentApp", gpus: list[int | str] | int | str | None = None) -> list[GpuInventory]:
    """Every field of the selected GPUs (every GPU when ``gpus`` is None)."""
    items = []
    for ref in select_gpus(app, gpus):
        base = {"index": ref.index, "name": ref.name, "uuid": ref.uuid, "pci_bus_id": ref.bus_id}
        base["pci_bus_id_short"] = ref.short_bus_id
        if ref.lost_reason:
            items.append(GpuInventory(**base, lost=True, unavailable={"*": ref.lost_reason}))
            continue
        try:
            adapter = app.backend.adapter
            state = read_mig(adapter, ref)
            mig = mig_info(state)
            item = GpuInventory(**base, **adapter.inventory(ref).fields(), mig=mig)
            if mig is None:
                item.unavailable["mig"] = (
                    state.unavailable.get("mig_mode") or f"{NOT_APPLICABLE} MIG is disabled"
                )
            items.append(item)
        except GpuLost as lost:
            items.append(GpuInventory(**base, lost=True, unavailable={"*": f"GpuIsLost: {lost}"}))
    return items


def collect_inventory(
    app: "AgentApp", gpus: list[int | str] | int | str | None = None, detail: DetailLevel = "full"
) -> InventoryResult:
    """The inventory answer of the selected GPUs (every GPU when ``gpus`` is None)."""
    return answer(app, read_inventory(app, gpus), detail)


def register(app: "AgentApp") -> None:
    def get_gpu_inventory(gpus: GpuSelector = None, detail: Detail = "summary") -> InventoryResult:
        """List the node's NVIDIA GPUs: model, UUID, PCI bus id, memory, compute capability,
        architecture, PCIe generation and width, power limits, MIG and persistence mode, NVLink count,
        and driver/CUDA/NVML versions. The summary (default) gives the node's status and action, any
        GPU that is lost, unidentifiable or waits for a MIG mode change, and the GPUs grouped by
        identical attributes; detail="full" lists every field of every GPU (serial, VBIOS, board part
        number and the kernel-log form of the bus id included). With MIG on, each MIG device: profile
        (1g.10gb ... 7g.80gb), MIG UUID, GPU/compute instance ids, memory, placement and engine counts
        (the summary says the profiles per group of GPUs)."""
        return collect_inventory(app, gpus, detail)

    app.add_tool(get_gpu_inventory, title="GPU inventory", annotations=READ_ONLY)
