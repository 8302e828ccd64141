"""Pydantic result types of the XID analysis (they are the MCP tool's output schema)."""

from datetime import datetime
from typing import Literal

from pydantic import Field

from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.vocabulary import Status

Severity = Literal["Info", "Warning", "Critical", "Fatal"]


class XidEvent(ToolModel):
    timestamp: datetime | None = Field(description="Wall clock (UTC); null when the line could not be dated")
    timestamp_note: str | None = Field(None, description="Why timestamp is null or approximate")
    uptime_s: float | None = Field(None, description="Seconds since boot as printed (dmesg, kmsg), if any")
    kind: Literal["xid", "gpu_lost"] = Field(
        description="gpu_lost: no-XID 'fallen off the bus' report or NVML GpuIsLost"
    )
    xid: int = Field(description="XID number (79 for a lost GPU reported without an XID)")
    name: str
    status: Status = Field(description="catalog_severity on the one status scale (docs/tools.md)")
    catalog_severity: Severity = Field(description="severity derived from NVIDIA's resolution bucket")
    sre_action: str
    bucket: str | None = Field(description="NVIDIA's immediate resolution bucket (after message decoding)")
    investigatory_bucket: str | None = None
    subcode: str | None = Field(None, description="Decoded unit/subcode, recovery action or NVLink link")
    notes: list[str] = Field(default_factory=list)
    app_caused: bool = Field(False, description="Often caused by the application rather than the GPU")
    app_caused_why: str | None = None
    sympathetic: bool = Field(False, description="Side effect of another XID")
    caused_by_xid: int | None = None
    index: int | None = Field(None, description="GPU index; null when the PCI id matches no GPU NVML lists")
    uuid: str | None = None
    pci_bus_id: str | None = Field(None, description="NVML form, e.g. 00000000:3B:00.0")
    pci: str | None = Field(None, description="PCI id exactly as the kernel printed it")
    pid: int | None = None
    process: str | None = None
    container_id: str | None = None
    pod_uid: str | None = None
    raw: str | None = Field(None, description="The kernel line(s) verbatim")
    sources: list[str] = Field(
        description="Where the event was seen: kmsg, journal, dmesg, kern.log, messages, file, nvml, scenario"
    )
    boot: Literal["current", "previous"] | None = Field(
        None, description="The boot that logged it: this one, or an earlier one (journal, rotated kern.log)"
    )
    boot_id: str | None = Field(None, description="That boot's id (journalctl --list-boots), when known")
    boot_started: datetime | None = Field(None, description="When that boot started, when known")


class BootRecord(ToolModel):
    """One boot of the node, as the kernel history read knows it."""

    boot_id: str | None = Field(description="32 hex digits (journalctl --list-boots); null when not named")
    started: datetime | None = Field(description="Its first journal entry, or the start its log lines date")
    last_entry: datetime | None = Field(None, description="Its last journal entry (null: current boot)")
    current: bool
    source: str = Field(description="journal, kern.log, messages, or proc (this boot's /proc/stat)")


class XidSummary(ToolModel):
    xid: int
    name: str
    index: int | None
    uuid: str | None
    pci_bus_id: str | None
    count: int
    first_seen: datetime | None
    last_seen: datetime | None
    status: Status
    catalog_severity: Severity
    sre_action: str
    boots: list[Literal["current", "previous"]] = Field(
        default_factory=list, description="The boots these events came from, where known (current first)"
    )


class Workflow(ToolModel):
    """One of NVIDIA's investigatory workflows, evaluated over the window's events on one GPU."""

    workflow: str = Field(
        description="NVIDIA's workflow (WORKFLOW_XID_13, ...), or the ECC verdict for 63/64"
    )
    xid: int
    index: int | None
    pci_bus_id: str | None
    count: int = Field(description="Events of this XID on this GPU in the window")
    pattern: str = Field(description="The pattern seen, and what it points at")
    status: Status
    catalog_severity: Severity
    sre_action: str = Field(description="The advice for this XID on this GPU (replaces the per-event one)")


class SxidEvent(ToolModel):
    sxid: int
    switch: int
    bus_id: str | None
    fatal: bool | None
    link: int | None
    message: str
    details: list[str] = Field(default_factory=list)
    timestamp: datetime | None
    raw: str


class XidAnalysis(ToolModel):
    status: Status = Field(description="Worst status among the reported events; healthy when there are none")
    action: str = Field(description="One recommendation naming the GPUs and the actions")
    events: list[XidEvent]
    xids: list[XidSummary] = Field(description="Per XID and GPU: count, first and last seen, action")
    workflows: list[Workflow] = Field(
        default_factory=list,
        description="NVIDIA's investigatory workflows per GPU: the pattern seen and its advice",
    )
    sxids: list[SxidEvent] = Field(default_factory=list, description="NVSwitch SXids (never GPU XIDs)")
    total_events: int
    truncated: bool = Field(description="True when limit cut the event list (summary and verdict cover all)")
    since: datetime | None
    covered_since: datetime | None = Field(
        None,
        description="The earliest time the kernel log sources read cover (the live ring buffer, the "
        "journal's boots, rotated kern.log files); later than `since` means the window is not fully seen",
    )
    boots: list[BootRecord] = Field(default_factory=list, description="The boots the history read knows")
    sources: list[str]
    notes: list[str] = Field(default_factory=list)
    unavailable: dict[str, str] = Field(default_factory=dict)
