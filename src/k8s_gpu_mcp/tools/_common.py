"""What every tool shares: the ``source`` stamp, GPU selection, and annotation presets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, StrictInt, StrictStr

from k8s_gpu_mcp.gpu.pci import kernel_bus_id
from k8s_gpu_mcp.models import ToolModel

if TYPE_CHECKING:
    from k8s_gpu_mcp.gpu.adapter import GpuRef
    from k8s_gpu_mcp.server import AgentApp

READ_ONLY = ToolAnnotations(
    readOnlyHint=True, idempotentHint=True, openWorldHint=False, destructiveHint=False
)
DESTRUCTIVE = ToolAnnotations(
    readOnlyHint=False, idempotentHint=False, openWorldHint=False, destructiveHint=True
)

GpuSelector = Annotated[
    list[StrictInt | StrictStr] | StrictInt | StrictStr | None,
    Field(
        description="GPU indexes (0, 1, ...), UUIDs ('GPU-...') or PCI bus ids, one or a list; omit for every GPU."
    ),
]


class Source(ToolModel):
    """Where a result came from. ``mock`` is true whenever the data is not from real hardware."""

    backend: Literal["nvml", "mock"]
    mock: bool
    profile: str | None = Field(None, description="mock fleet profile, when mock")
    scenario: str | None = Field(None, description="fault scenario overlaid on the profile, when mock")
    driver_version: str | None
    cuda_version: str | None
    nvml_version: str | None
    node: str
    collected_at: datetime
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="node-level reads that failed (versions, GPU enumeration), with why"
    )


def source(app: AgentApp) -> Source:
    from k8s_gpu_mcp.gpu.backend import source_fields

    return Source(**source_fields(app.backend))


def select_gpus(app: AgentApp, gpus: list[int | str] | int | str | None) -> list[GpuRef]:
    """Resolve a selector to GPUs, or raise a ToolError that lists the valid choices."""
    refs = app.backend.adapter.gpus()
    if gpus is None:
        return refs
    if isinstance(gpus, int | str) and not isinstance(gpus, bool):
        gpus = [gpus]
    if not isinstance(gpus, list) or not gpus:
        raise ToolError(f"'gpus' must be a non-empty list of indexes or UUIDs; {valid_choices(refs)}")
    chosen: list[GpuRef] = []
    for item in gpus:
        match = _match(refs, item)
        if match is None:
            raise ToolError(f"unknown GPU {clip(item)}; {valid_choices(refs)}")
        if match not in chosen:
            chosen.append(match)
    return chosen


def _match(refs: list[GpuRef], item: int | str) -> GpuRef | None:
    if isinstance(item, bool):
        return None
    if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
        index = int(item)
        return next((r for r in refs if r.index == index), None)
    if isinstance(item, str):
        wanted = item.strip()
        for ref in refs:
            if ref.uuid and ref.uuid.lower() == wanted.lower():
                return ref
        short = kernel_bus_id(wanted)
        if short:
            return next((r for r in refs if r.short_bus_id == short), None)
    return None


def clip(value: object, limit: int = 64) -> str:
    """repr() of caller-supplied input, cut short: an error must not echo a megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def valid_choices(refs: list[GpuRef]) -> str:
    if not refs:
        return "this node has no GPUs that NVML can see"
    listed = ", ".join(f"{r.index} ({r.uuid or 'uuid unknown'})" for r in refs)
    return f"valid GPUs: {listed}"
