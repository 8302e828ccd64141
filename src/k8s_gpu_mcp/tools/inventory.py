"""get_gpu_inventory: the static map of the node's GPUs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import Field

from k8s_gpu_mcp.gpu.adapter import GpuLost
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import READ_ONLY, GpuSelector, Source, select_gpus, source

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "core"


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
    lost: bool = Field(False, description="NVML reports the GPU as lost (fallen off the bus)")
    unavailable: dict[str, str] = Field(default_factory=dict, description="field -> why it is null")


class InventoryResult(ToolModel):
    source: Source
    driver_version: str | None
    cuda_version: str | None
    nvml_version: str | None
    gpu_count: int
    gpus: list[GpuInventory]


def collect_inventory(app: AgentApp, gpus: list[int | str] | int | str | None = None) -> InventoryResult:
    """The inventory of the selected GPUs (every GPU when ``gpus`` is None)."""
    items = []
    for ref in select_gpus(app, gpus):
        base = {"index": ref.index, "name": ref.name, "uuid": ref.uuid, "pci_bus_id": ref.bus_id}
        base["pci_bus_id_short"] = ref.short_bus_id
        if ref.lost_reason:
            items.append(GpuInventory(**base, lost=True, unavailable={"*": ref.lost_reason}))
            continue
        try:
            items.append(GpuInventory(**base, **app.backend.adapter.inventory(ref).fields()))
        except GpuLost as lost:
            items.append(GpuInventory(**base, lost=True, unavailable={"*": f"GpuIsLost: {lost}"}))
    system = app.backend.system
    return InventoryResult(
        source=source(app),
        driver_version=system.driver_version,
        cuda_version=system.cuda_version,
        nvml_version=system.nvml_version,
        gpu_count=len(app.backend.adapter.gpus()),
        gpus=items,
    )


def register(app: AgentApp) -> None:
    def get_gpu_inventory(gpus: GpuSelector = None) -> InventoryResult:
        """List the node's NVIDIA GPUs: model, UUID, serial, PCI bus id (NVML and kernel-log forms),
        VBIOS, board part number, memory, compute capability, architecture, PCIe generation and width,
        power limits, MIG and persistence mode, NVLink count, and driver/CUDA/NVML versions."""
        return collect_inventory(app, gpus)

    app.add_tool(get_gpu_inventory, title="GPU inventory", annotations=READ_ONLY)
