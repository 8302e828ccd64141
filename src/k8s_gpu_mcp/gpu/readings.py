"""What the ``gpu/`` readers return: one frozen dataclass per reading, each with its ``unavailable``.

A field NVML could not read is ``None`` and ``unavailable`` maps its name to why
("NotSupported: nvmlDeviceGetFanSpeed"); never a default. The readers are in ``adapter.py``
(system, inventory, telemetry, PCIe) and the topic modules (``ecc.py``, ``links.py``,
``processes.py``, ``usage.py``, ``reset_state.py``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from k8s_gpu_mcp.gpu.nvml_constants import RemoteType

Reasons = dict[str, str]


@dataclass(frozen=True)
class SystemInfo:
    """Driver, CUDA and NVML versions."""

    driver_version: str | None = None
    cuda_version: str | None = None
    nvml_version: str | None = None
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class Inventory:
    """A GPU's static facts (the fields of ``get_gpu_inventory`` beyond identity)."""

    serial: str | None
    vbios_version: str | None
    board_part_number: str | None
    memory_total_mib: int | None
    compute_capability: str | None
    architecture: str | None
    pcie_max_gen: int | None
    pcie_max_width: int | None
    power_default_limit_w: float | None
    power_min_limit_w: float | None
    power_max_limit_w: float | None
    mig_mode_current: bool | None
    mig_mode_pending: bool | None
    persistence_mode: bool | None
    nvlink_count: int | None
    unavailable: Reasons = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """Every field by name, ``unavailable`` included (the inventory model's keyword arguments)."""
        return asdict(self)


@dataclass(frozen=True)
class Telemetry:
    """Live readings; thresholds and max clocks are NVML's own for this GPU."""

    temperature_c: int | None
    slowdown_c: int | None
    shutdown_c: int | None
    max_operating_c: int | None
    fan_percent: int | None
    power_draw_w: float | None
    power_limit_w: float | None
    memory_used_mib: int | None
    memory_free_mib: int | None
    memory_reserved_mib: int | None
    memory_total_mib: int | None
    utilization_gpu_percent: int | None
    utilization_memory_percent: int | None
    utilization_encoder_percent: int | None
    utilization_decoder_percent: int | None
    sm_clock_mhz: int | None
    max_sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    max_memory_clock_mhz: int | None
    pstate: str | None  # "P0".."P15"
    clock_event_reasons_mask: int | None
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class PcieReading:
    """Current and max link generation and width, and the replay counter with its previous reading
    (``replay_previous``: (monotonic seconds, count), None on the first read) for a rate."""

    link_gen: int | None
    max_link_gen: int | None
    link_width: int | None
    max_link_width: int | None
    replay_counter: int | None
    replay_at: float
    replay_previous: tuple[float, int] | None
    unavailable: Reasons = field(default_factory=dict)


# scope (volatile, aggregate) -> type (corrected, uncorrected) -> "total" or a memory location -> count
EccCounters = dict[str, dict[str, dict[str, int | None]]]


@dataclass(frozen=True)
class RetiredPages:
    """Retired page counts (pre-Ampere ECC): single-bit, double-bit, pending."""

    sbe: int | None
    dbe: int | None
    pending: bool | None


@dataclass(frozen=True)
class RemappedRows:
    """Row remapping (Ampere and later): counts, pending, failure, bank histogram."""

    correctable: int | None
    uncorrectable: int | None
    pending: bool | None
    failure: bool | None
    histogram: dict[str, int] | None


@dataclass(frozen=True)
class EccReading:
    """A GPU's ECC mode, error counters, retired pages and remapped rows."""

    architecture: int | None  # nvmlDeviceArchitecture_t
    mode_current: bool | None
    mode_pending: bool | None
    counters: EccCounters
    sram_threshold_exceeded: bool | None
    retired_pages: RetiredPages
    remapped_rows: RemappedRows
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class Usage:
    """Running processes (count, GPU memory they hold) and the default power limit."""

    process_count: int | None
    process_memory_mib: int | None
    power_default_limit_w: float | None
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class ResetState:
    """The state a GPU reset depends on and changes. A lost GPU has ``lost`` and ``unavailable["*"]``."""

    lost: bool
    process_pids: list[int] | None = None
    mig_mode_current: bool | None = None
    mig_mode_pending: bool | None = None
    persistence_mode: bool | None = None
    memory_used_mib: int | None = None
    ecc_volatile_uncorrected: int | None = None
    remapped_rows_pending: bool | None = None
    retired_pages_pending: bool | None = None
    unavailable: Reasons = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        """The answer's ``state_before`` / ``state_now`` form: a lost GPU says only that, and why."""
        if self.lost:
            return {"lost": True, "unavailable": dict(self.unavailable)}
        return asdict(self)


@dataclass(frozen=True)
class NvLinkReading:
    """One NVLink: state, version, what it ends at, capabilities, error counters."""

    link: int
    state: int | None  # NVML: 1 active, 0 inactive
    version: int | None
    remote_type: RemoteType | None
    remote_bus_id: str | None
    remote_gpu: int | None  # index of the GPU at the other end
    capabilities: dict[str, bool] | None
    errors: dict[str, int | None]
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class Affinity:
    """A GPU's NUMA node and CPU affinity."""

    numa_node: int | None
    cpu_affinity: str | None  # a CPU list like 48-63,176-191
    unavailable: Reasons = field(default_factory=dict)


@dataclass(frozen=True)
class PairReadings:
    """Per ordered GPU pair (diagonal 0): common-ancestor level and P2P status per capability."""

    levels: list[list[int | None]]
    p2p: dict[str, list[list[int | None]]]
    unavailable: Reasons = field(default_factory=dict)
