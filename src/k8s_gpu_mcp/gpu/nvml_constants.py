"""NVML's enumerations as name tables, declared once (values from nvml.h; no ``pynvml`` import).

The readers in ``gpu/``, the fake, the pure rules in ``diagnose/`` and ``scripts/derive_profiles.py``
all read these. The values are NVML's ABI; ``tests/gpu/test_adapter.py`` checks the fake's
pynvml-named constants against the real binding.
"""

from __future__ import annotations

from typing import Final, Literal

GPU_IS_LOST: Final = 15  # NVML_ERROR_GPU_IS_LOST
PSTATE_UNKNOWN: Final = 32  # NVML_PSTATE_UNKNOWN

# nvmlDeviceArchitecture_t -> name
ARCHITECTURES: Final[dict[int, str]] = {
    2: "Kepler",
    3: "Maxwell",
    4: "Pascal",
    5: "Volta",
    6: "Turing",
    7: "Ampere",
    8: "Ada Lovelace",
    9: "Hopper",
    10: "Blackwell",
    13: "Rubin",
}
ARCH_AMPERE: Final = 7  # from Ampere on, GPUs remap rows instead of retiring pages
# NVML_NVLINK_VERSION_* by architecture: 2_0 = 2 (Volta), 3_0 = 4 (Ampere), 4_0 = 6 (Hopper), 5_0 = 7 (Blackwell)
NVLINK_VERSIONS: Final[dict[int, int]] = {5: 2, 7: 4, 9: 6, 10: 7}

# nvmlClocksEventReason* bits (the nvmlClocksThrottleReason* aliases for 0x200 and 0x400)
CLOCK_EVENT_REASONS: Final[dict[str, int]] = {
    "gpu_idle": 0x001,
    "applications_clocks_setting": 0x002,
    "sw_power_cap": 0x004,
    "hw_slowdown": 0x008,
    "sync_boost": 0x010,
    "sw_thermal_slowdown": 0x020,
    "hw_thermal_slowdown": 0x040,
    "hw_power_brake_slowdown": 0x080,
    "display_clock_setting": 0x100,
    "board_limit": 0x200,
    "reliability": 0x400,
}


def clock_event_mask(names: list[str | int]) -> int:
    """Reason names (or raw bits) -> the mask NVML would report; an unknown name raises ValueError."""
    mask = 0
    for name in names:
        if isinstance(name, int):
            mask |= name
        elif name in CLOCK_EVENT_REASONS:
            mask |= CLOCK_EVENT_REASONS[name]
        else:
            raise ValueError(f"unknown clock-event reason {name!r}; valid: {sorted(CLOCK_EVENT_REASONS)}")
    return mask


# ECC: nvmlEccCounterType_t, nvmlMemoryErrorType_t, nvmlMemoryLocation_t (in the order answers list them)
ECC_SCOPES: Final[dict[str, int]] = {"volatile": 0, "aggregate": 1}
ECC_ERROR_TYPES: Final[dict[str, int]] = {"corrected": 0, "uncorrected": 1}
MEMORY_LOCATIONS: Final[dict[str, int]] = {
    "dram": 2,  # NVML_MEMORY_LOCATION_DRAM (DEVICE_MEMORY before Ampere)
    "sram": 7,
    "l1_cache": 0,
    "l2_cache": 1,
    "register_file": 3,
    "texture_memory": 4,
    "texture_shm": 5,
    "cbu": 6,
}

# NVLink: nvmlIntNvLinkDeviceType_t, nvmlNvLinkCapability_t, nvmlNvLinkErrorCounter_t
RemoteType = Literal["gpu", "ibmnpu", "switch", "unknown"]
NVLINK_REMOTE_TYPES: Final[dict[int, RemoteType]] = {0: "gpu", 1: "ibmnpu", 2: "switch", 0xFF: "unknown"}
NVLINK_DEVICE_GPU: Final = 0
NVLINK_DEVICE_SWITCH: Final = 2
NVLINK_CAPABILITIES: Final[dict[str, int]] = {
    "p2p": 0,
    "sysmem_access": 1,
    "p2p_atomics": 2,
    "sysmem_atomics": 3,
    "sli_bridge": 4,
    "valid": 5,
}
NVLINK_ERROR_COUNTERS: Final[dict[str, int]] = {"replay": 0, "recovery": 1, "crc_flit": 2, "crc_data": 3}

# Topology: nvmlGpuTopologyLevel_t by its `nvidia-smi topo -m` word. INTERNAL (0, two GPUs on one
# board) is printed as PIX.
TOPOLOGY_LEVELS: Final[dict[str, int]] = {"PIX": 10, "PXB": 20, "PHB": 30, "NODE": 40, "SYS": 50}
TOPOLOGY_INTERNAL: Final = 0

# P2P: nvmlGpuP2PCapsIndex_t (READ is 0: pynvml's NVML_P2P_CAPS_INDEX_READ is the tuple (0,)) and
# nvmlGpuP2PStatus_t (nvml.h spells CHIPSET_NOT_SUPPORED; the alias is used here)
P2P_CAPS: Final[dict[str, int]] = {"read": 0, "write": 1, "nvlink": 2, "atomics": 3}
P2P_STATUS: Final[dict[int, str]] = {
    0: "OK",
    1: "CHIPSET_NOT_SUPPORTED",
    2: "GPU_NOT_SUPPORTED",
    3: "IOH_TOPOLOGY_NOT_SUPPORTED",
    4: "DISABLED_BY_REGKEY",
    5: "NOT_SUPPORTED",
    6: "UNKNOWN",
}
P2P_OK: Final = 0
P2P_CHIPSET_NOT_SUPPORTED: Final = 1
P2P_NOT_SUPPORTED: Final = 5
