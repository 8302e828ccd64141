"""A pynvml-compatible fake NVML driven by a fleet profile.

It exposes the subset of the ``pynvml`` API that :mod:`k8s_gpu_mcp.gpu.adapter` calls, with the
same function names, constants, struct attribute names and ``NVMLError_*`` subclasses, so the
real adapter runs unchanged on top of it. State is one node's profile (see ``docs/profiles.md``):
a missing key or ``null`` makes the matching call raise ``NVMLError_NotSupported``, as the real
library does for a field the GPU lacks. ``nvml_errors`` injects any other NVML error per call.
"""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import dataclass, field
from typing import Any, overload

from k8s_gpu_mcp.gpu.nvml_constants import (
    ECC_ERROR_TYPES,
    ECC_SCOPES,
    MEMORY_LOCATIONS,
    NVLINK_CAPABILITIES,
    NVLINK_ERROR_COUNTERS,
    P2P_CAPS,
)

# ---- constants (values identical to pynvml / nvml.h) -------------------------------------------
NVML_SUCCESS = 0
NVML_ERROR_UNINITIALIZED = 1
NVML_ERROR_INVALID_ARGUMENT = 2
NVML_ERROR_NOT_SUPPORTED = 3
NVML_ERROR_NO_PERMISSION = 4
NVML_ERROR_ALREADY_INITIALIZED = 5
NVML_ERROR_NOT_FOUND = 6
NVML_ERROR_INSUFFICIENT_SIZE = 7
NVML_ERROR_INSUFFICIENT_POWER = 8
NVML_ERROR_DRIVER_NOT_LOADED = 9
NVML_ERROR_TIMEOUT = 10
NVML_ERROR_IRQ_ISSUE = 11
NVML_ERROR_LIBRARY_NOT_FOUND = 12
NVML_ERROR_FUNCTION_NOT_FOUND = 13
NVML_ERROR_CORRUPTED_INFOROM = 14
NVML_ERROR_GPU_IS_LOST = 15
NVML_ERROR_RESET_REQUIRED = 16
NVML_ERROR_OPERATING_SYSTEM = 17
NVML_ERROR_LIB_RM_VERSION_MISMATCH = 18
NVML_ERROR_IN_USE = 19
NVML_ERROR_MEMORY = 20
NVML_ERROR_NO_DATA = 21
NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25
NVML_ERROR_UNKNOWN = 999

NVML_FEATURE_DISABLED = 0
NVML_FEATURE_ENABLED = 1

NVML_TEMPERATURE_GPU = 0
NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0
NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1
NVML_TEMPERATURE_THRESHOLD_MEM_MAX = 2
NVML_TEMPERATURE_THRESHOLD_GPU_MAX = 3

NVML_CLOCK_GRAPHICS = 0
NVML_CLOCK_SM = 1
NVML_CLOCK_MEM = 2
NVML_CLOCK_VIDEO = 3

NVML_MEMORY_ERROR_TYPE_CORRECTED = 0
NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1
NVML_VOLATILE_ECC = 0
NVML_AGGREGATE_ECC = 1
NVML_MEMORY_LOCATION_L1_CACHE = 0
NVML_MEMORY_LOCATION_L2_CACHE = 1
NVML_MEMORY_LOCATION_DEVICE_MEMORY = 2
NVML_MEMORY_LOCATION_DRAM = 2
NVML_MEMORY_LOCATION_REGISTER_FILE = 3
NVML_MEMORY_LOCATION_TEXTURE_MEMORY = 4
NVML_MEMORY_LOCATION_TEXTURE_SHM = 5
NVML_MEMORY_LOCATION_CBU = 6
NVML_MEMORY_LOCATION_SRAM = 7
NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS = 0
NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR = 1

NVML_NVLINK_MAX_LINKS = 36
NVML_NVLINK_ERROR_DL_REPLAY = 0
NVML_NVLINK_ERROR_DL_RECOVERY = 1
NVML_NVLINK_ERROR_DL_CRC_FLIT = 2
NVML_NVLINK_ERROR_DL_CRC_DATA = 3
NVML_NVLINK_ERROR_DL_ECC_DATA = 4
NVML_NVLINK_CAP_P2P_SUPPORTED = 0
NVML_NVLINK_CAP_SYSMEM_ACCESS = 1
NVML_NVLINK_CAP_P2P_ATOMICS = 2
NVML_NVLINK_CAP_SYSMEM_ATOMICS = 3
NVML_NVLINK_CAP_SLI_BRIDGE = 4
NVML_NVLINK_CAP_VALID = 5
NVML_NVLINK_DEVICE_TYPE_GPU = 0x00
NVML_NVLINK_DEVICE_TYPE_IBMNPU = 0x01
NVML_NVLINK_DEVICE_TYPE_SWITCH = 0x02
NVML_NVLINK_DEVICE_TYPE_UNKNOWN = 0xFF
NVML_FI_DEV_NVLINK_LINK_COUNT = 91
NVML_VALUE_TYPE_UNSIGNED_INT = 1

NVML_TOPOLOGY_INTERNAL = 0
NVML_TOPOLOGY_SINGLE = 10
NVML_TOPOLOGY_MULTIPLE = 20
NVML_TOPOLOGY_HOSTBRIDGE = 30
NVML_TOPOLOGY_NODE = 40
NVML_TOPOLOGY_SYSTEM = 50
NVML_P2P_CAPS_INDEX_READ = (0,)  # the real binding's trailing-comma trap, kept on purpose
NVML_P2P_CAPS_INDEX_WRITE = 1
NVML_P2P_CAPS_INDEX_NVLINK = 2
NVML_P2P_CAPS_INDEX_ATOMICS = 3
NVML_P2P_CAPS_INDEX_PROP = 4
NVML_P2P_STATUS_OK = 0
NVML_P2P_STATUS_NOT_SUPPORTED = 5

NVML_DEVICE_ARCH_KEPLER = 2
NVML_DEVICE_ARCH_MAXWELL = 3
NVML_DEVICE_ARCH_PASCAL = 4
NVML_DEVICE_ARCH_VOLTA = 5
NVML_DEVICE_ARCH_TURING = 6
NVML_DEVICE_ARCH_AMPERE = 7
NVML_DEVICE_ARCH_ADA = 8
NVML_DEVICE_ARCH_HOPPER = 9
NVML_DEVICE_ARCH_BLACKWELL = 10

nvmlMemory_v2 = 0x02000028

# ---- MIG and the NVLink fabric (nvml.h) ----
NVML_DEVICE_MIG_DISABLE = 0
NVML_DEVICE_MIG_ENABLE = 1
NVML_GPU_FABRIC_UUID_LEN = 16
NVML_GPU_FABRIC_STATE_NOT_SUPPORTED = 0
NVML_GPU_FABRIC_STATE_NOT_STARTED = 1
NVML_GPU_FABRIC_STATE_IN_PROGRESS = 2
NVML_GPU_FABRIC_STATE_COMPLETED = 3
nvmlGpuFabricInfo_v2 = 0x02000024
nvmlGpuFabricInfo_v3 = 0x3000028
# healthMask fields: (shift, width) per field, values NOT_SUPPORTED=0, TRUE=1, FALSE=2 (incorrect
# configuration: NOT_SUPPORTED=0, NONE=1, then the cause; GFM state: NOT_SUPPORTED=0, CONNECTED=1,
# DISCONNECTED=2)
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_DEGRADED_BW = 0
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_DEGRADED_BW = 0x3
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_ROUTE_RECOVERY = 2
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_ROUTE_RECOVERY = 0x3
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_ROUTE_UNHEALTHY = 4
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_ROUTE_UNHEALTHY = 0x3
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_ACCESS_TIMEOUT_RECOVERY = 6
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_ACCESS_TIMEOUT_RECOVERY = 0x3
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_INCORRECT_CONFIGURATION = 8
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_INCORRECT_CONFIGURATION = 0xF
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_PARTITION_ASSIGNED = 12
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_PARTITION_ASSIGNED = 0x3
NVML_GPU_FABRIC_HEALTH_MASK_SHIFT_GFM_STATE = 14
NVML_GPU_FABRIC_HEALTH_MASK_WIDTH_GFM_STATE = 0x3
NVML_GPU_FABRIC_HEALTH_SUMMARY_NOT_SUPPORTED = 0
NVML_GPU_FABRIC_HEALTH_SUMMARY_HEALTHY = 1
NVML_GPU_FABRIC_HEALTH_SUMMARY_UNHEALTHY = 2
NVML_GPU_FABRIC_HEALTH_SUMMARY_LIMITED_CAPACITY = 3
nvmlEventTypeSingleBitEccError = 0x1
nvmlEventTypeDoubleBitEccError = 0x2
nvmlEventTypeXidCriticalError = 0x8
nvmlEventTypeNone = 0x0
nvmlEventTypeAll = 0xFFFF

# NVML value -> the profile's key (the tables in nvml_constants, inverted)
_P2P_CAPS = {**{v: k for k, v in P2P_CAPS.items()}, 4: "prop"}
_ECC_COUNTER = {v: k for k, v in ECC_SCOPES.items()}
_ECC_TYPE = {v: k for k, v in ECC_ERROR_TYPES.items()}
_MEMORY_LOCATION = {v: k for k, v in MEMORY_LOCATIONS.items()}
_NVLINK_ERROR = {**{v: k for k, v in NVLINK_ERROR_COUNTERS.items()}, 4: "ecc_data"}
_NVLINK_CAP = {v: k for k, v in NVLINK_CAPABILITIES.items()}
_CLOCK = {0: "graphics", 1: "sm", 2: "mem", 3: "video"}
_THRESHOLD = {0: "shutdown", 1: "slowdown", 2: "mem_max", 3: "gpu_max"}


# ---- errors: same class names and codes as pynvml ----------------------------------------------
class NVMLError(Exception):
    _valClassMapping: dict[int, type[NVMLError]] = {}
    _errcode_to_string = {
        NVML_ERROR_UNINITIALIZED: "Uninitialized",
        NVML_ERROR_INVALID_ARGUMENT: "Invalid Argument",
        NVML_ERROR_NOT_SUPPORTED: "Not Supported",
        NVML_ERROR_NO_PERMISSION: "Insufficient Permissions",
        NVML_ERROR_ALREADY_INITIALIZED: "Already Initialized",
        NVML_ERROR_NOT_FOUND: "Not Found",
        NVML_ERROR_INSUFFICIENT_SIZE: "Insufficient Size",
        NVML_ERROR_INSUFFICIENT_POWER: "Insufficient External Power",
        NVML_ERROR_DRIVER_NOT_LOADED: "Driver Not Loaded",
        NVML_ERROR_TIMEOUT: "Timeout",
        NVML_ERROR_IRQ_ISSUE: "Interrupt Request Issue",
        NVML_ERROR_LIBRARY_NOT_FOUND: "NVML Shared Library Not Found",
        NVML_ERROR_FUNCTION_NOT_FOUND: "Function Not Found",
        NVML_ERROR_CORRUPTED_INFOROM: "Corrupted infoROM",
        NVML_ERROR_GPU_IS_LOST: "GPU is lost",
        NVML_ERROR_RESET_REQUIRED: "GPU requires restart",
        NVML_ERROR_OPERATING_SYSTEM: "The operating system has blocked the request.",
        NVML_ERROR_LIB_RM_VERSION_MISMATCH: "RM has detected an NVML/RM version mismatch.",
        NVML_ERROR_MEMORY: "Insufficient Memory",
        NVML_ERROR_NO_DATA: "No data",
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch",
        NVML_ERROR_UNKNOWN: "Unknown Error",
    }
    value: int

    def __new__(cls, value: int) -> NVMLError:
        if cls is NVMLError:
            cls = NVMLError._valClassMapping.get(value, cls)
        obj = Exception.__new__(cls)
        obj.value = value
        return obj

    def __init__(self, value: int):
        super().__init__(value)
        self.value = value

    def __str__(self) -> str:
        return self._errcode_to_string.get(self.value, f"NVML Error with code {self.value}")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, NVMLError) and self.value == other.value

    __hash__ = Exception.__hash__


def _error_class_name(constant: str) -> str:
    return "NVMLError_" + "".join(part.capitalize() for part in constant[len("NVML_ERROR_") :].split("_"))


for _name, _code in list(globals().items()):
    if _name.startswith("NVML_ERROR_"):
        _cls = type(_error_class_name(_name), (NVMLError,), {})
        NVMLError._valClassMapping[_code] = _cls
        globals()[_cls.__name__] = _cls

# The names pynvml produces for the codes the adapter and tests care about.
NVMLError_NotSupported: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_NOT_SUPPORTED]
NVMLError_NoPermission: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_NO_PERMISSION]
NVMLError_GpuIsLost: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_GPU_IS_LOST]
NVMLError_Timeout: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_TIMEOUT]
NVMLError_Unknown: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_UNKNOWN]
NVMLError_Uninitialized: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_UNINITIALIZED]
NVMLError_FunctionNotFound: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_FUNCTION_NOT_FOUND]
NVMLError_InvalidArgument: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_INVALID_ARGUMENT]
NVMLError_NotFound: type[NVMLError] = NVMLError._valClassMapping[NVML_ERROR_NOT_FOUND]

ERROR_CODES_BY_NAME: dict[str, int] = {
    cls.__name__.removeprefix("NVMLError_"): code for code, cls in NVMLError._valClassMapping.items()
}


# ---- structs: attribute names as in pynvml's ctypes structures ---------------------------------
@dataclass
class c_nvmlMemory_v2_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    version: int
    total: int
    reserved: int
    free: int
    used: int


@dataclass
class c_nvmlPciInfo_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    busIdLegacy: str
    domain: int
    bus: int
    device: int
    pciDeviceId: int
    pciSubSystemId: int
    busId: str


@dataclass
class c_nvmlUtilization_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    gpu: int
    memory: int


@dataclass
class c_nvmlProcessInfo_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    pid: int
    usedGpuMemory: int | None
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass
class c_nvmlRowRemapperHistogramValues:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    max: int
    high: int
    partial: int
    low: int
    none: int


@dataclass
class c_nvmlEccSramErrorStatus_v1_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    """Only ``bThresholdExceeded`` is served (profile key ``ecc.sram_threshold_exceeded``)."""

    version: int = 0x1000068
    bThresholdExceeded: int = 0


@dataclass
class c_nvmlEventData_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    device: Any
    eventType: int
    eventData: int
    gpuInstanceId: int = 0xFFFFFFFF
    computeInstanceId: int = 0xFFFFFFFF


@dataclass
class c_nvmlValue_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    """The value union; only the member the field's ``valueType`` names is meaningful."""

    uiVal: int = 0


@dataclass
class c_nvmlFieldValue_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    fieldId: int
    scopeId: int = 0
    timestamp: int = 0
    latencyUsec: int = 0
    valueType: int = NVML_VALUE_TYPE_UNSIGNED_INT
    nvmlReturn: int = NVML_SUCCESS
    value: c_nvmlValue_t = field(default_factory=c_nvmlValue_t)


@dataclass(frozen=True)
class FakeHandle:
    """Stands for ``c_nvmlDevice_t``: an opaque handle, here just the GPU's index."""

    index: int


@dataclass(frozen=True)
class FakeMigHandle:
    """Stands for a MIG device's ``c_nvmlDevice_t``: the parent GPU's index and the MIG device index."""

    index: int
    mig: int


@dataclass(frozen=True)
class FakeGpuInstance:
    """Stands for ``c_nvmlGpuInstance_t``: the parent GPU's index and the GPU instance id."""

    index: int
    gpu_instance_id: int


@dataclass
class c_nvmlDeviceAttributes:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    multiprocessorCount: int
    sharedCopyEngineCount: int
    sharedDecoderCount: int
    sharedEncoderCount: int
    sharedJpegCount: int
    sharedOfaCount: int
    gpuInstanceSliceCount: int
    computeInstanceSliceCount: int
    memorySizeMB: int


@dataclass
class c_nvmlGpuInstancePlacement_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    start: int
    size: int


@dataclass
class c_nvmlGpuInstanceInfo_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    device: Any
    id: int
    profileId: int
    placement: c_nvmlGpuInstancePlacement_t


@dataclass
class c_nvmlGpuFabricInfo_t:
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    clusterUuid: list[int] = field(default_factory=lambda: [0] * NVML_GPU_FABRIC_UUID_LEN)
    status: int = 0
    cliqueId: int = 0
    state: int = 0


@dataclass
class c_nvmlGpuFabricInfo_v2_t(c_nvmlGpuFabricInfo_t):
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    version: int = nvmlGpuFabricInfo_v2
    healthMask: int = 0


@dataclass
class c_nvmlGpuFabricInfo_v3_t(c_nvmlGpuFabricInfo_v2_t):
    """pynvml's ctypes structure of that name, as a plain object (same attribute names)."""

    version: int = nvmlGpuFabricInfo_v3
    healthSummary: int = 0


c_nvmlGpuFabricInfoV_t = c_nvmlGpuFabricInfo_v2_t

# Calls that answer on a MIG device handle (the NVML reference: identity, memory, attributes, instance
# ids, and per-instance volatile SRAM uncorrectable ECC). Any other call on one answers NotSupported.
MIG_HANDLE_CALLS = frozenset(
    {
        "nvmlDeviceGetUUID",
        "nvmlDeviceGetName",
        "nvmlDeviceGetMemoryInfo",
        "nvmlDeviceGetMemoryErrorCounter",
        "nvmlDeviceGetAttributes_v2",
        "nvmlDeviceGetGpuInstanceId",
        "nvmlDeviceGetComputeInstanceId",
        "nvmlDeviceIsMigDeviceHandle",
        "nvmlDeviceGetDeviceHandleFromMigDeviceHandle",
    }
)
# profile key -> (shift, {profile value: mask value}) for the fabric healthMask (pynvml's constants)
_FABRIC_HEALTH: dict[str, tuple[int, dict[Any, int]]] = {
    "degraded_bandwidth": (0, {True: 1, False: 2}),
    "route_recovery_in_progress": (2, {True: 1, False: 2}),
    "route_unhealthy": (4, {True: 1, False: 2}),
    "access_timeout_recovery": (6, {True: 1, False: 2}),
    "incorrect_configuration": (8, {"none": 1, "incorrect_sysguid": 2, "incorrect_chassis_sn": 3,
                                    "no_partition": 4, "insufficient_nvlinks": 5, "incompatible_gpu_fw": 6,
                                    "invalid_location": 7, "gpu_state_invalid": 8}),
    "partition_assigned": (12, {True: 1, False: 2}),
    "gfm_state": (14, {"connected": 1, "disconnected": 2}),
}  # fmt: skip


class FakeEventSet:
    def __init__(self) -> None:
        self.registered: dict[int, int] = {}
        self.queue: list[c_nvmlEventData_t] = []
        self.cond = threading.Condition()


def _missing(value: Any) -> Any:
    if value is None:
        raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
    return value


def _captured(value: Any) -> Any:
    """A value the profile's capture did not print (``null``): NoData, not NotSupported."""
    if value is None:
        raise NVMLError(NVML_ERROR_NO_DATA)
    return value


def _pci_info(bus_id: str) -> c_nvmlPciInfo_t:
    domain_s, bus_s, rest = bus_id.split(":")
    device_s = rest.split(".")[0]
    domain, bus, device = int(domain_s, 16), int(bus_s, 16), int(device_s, 16)
    return c_nvmlPciInfo_t(
        busIdLegacy=f"{domain:04X}:{bus:02X}:{device:02X}.0",
        domain=domain,
        bus=bus,
        device=device,
        pciDeviceId=0,
        pciSubSystemId=0,
        busId=f"{domain:08X}:{bus:02X}:{device:02X}.0",
    )


class FakeNvml:
    """One node's NVML, built from a profile dict (already overlaid with any scenario)."""

    NVMLError = NVMLError

    def __init__(self, profile: dict[str, Any]):
        self.profile = copy.deepcopy(profile)
        self.gpus: list[dict[str, Any]] = self.profile["gpus"]
        self._initialized = 0
        self._event_sets: list[FakeEventSet] = []
        self._lock = threading.Lock()
        self.calls: dict[str, int] = {}
        self._started = time.monotonic()
        self._has_real = bool(self.fake_real_pids())

    def __getattr__(self, name: str) -> Any:
        # Constants and error classes resolve from this module, as attributes of pynvml do.
        try:
            return globals()[name]
        except KeyError:
            raise AttributeError(name) from None

    # ---- helpers ----
    @overload
    def _check(self, fn: str) -> None: ...
    @overload
    def _check(self, fn: str, handle: FakeHandle | FakeMigHandle) -> dict[str, Any]: ...
    def _check(self, fn: str, handle: FakeHandle | FakeMigHandle | None = None) -> dict[str, Any] | None:
        self.calls[fn] = self.calls.get(fn, 0) + 1
        if not self._initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        node_errors = self.profile.get("nvml_errors") or {}
        if fn in node_errors:
            raise NVMLError(ERROR_CODES_BY_NAME[node_errors[fn]])
        if handle is None:
            return None
        gpu = self.gpus[handle.index]
        errors = gpu.get("nvml_errors") or {}
        if fn in errors:
            raise NVMLError(ERROR_CODES_BY_NAME[errors[fn]])
        if gpu.get("lost"):
            raise NVMLError(NVML_ERROR_GPU_IS_LOST)
        if isinstance(handle, FakeMigHandle) and fn not in MIG_HANDLE_CALLS:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return gpu

    @staticmethod
    def _get(gpu: dict[str, Any] | None, *path: str | int) -> Any:
        node: Any = gpu
        for key in path:
            if node is None:
                break
            if isinstance(node, dict):
                node = node.get(key)
            else:
                node = node[key] if isinstance(key, int) and key < len(node) else None
        return _missing(node)

    # ---- system ----
    def nvmlInit(self) -> None:
        self._initialized += 1

    def nvmlShutdown(self) -> None:
        if not self._initialized:
            raise NVMLError(NVML_ERROR_UNINITIALIZED)
        self._initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        self._check("nvmlSystemGetDriverVersion")
        return _missing(self.profile.get("driver_version"))

    def nvmlSystemGetCudaDriverVersion(self) -> int:
        self._check("nvmlSystemGetCudaDriverVersion")
        return _missing(self.profile.get("cuda_driver_version"))

    def nvmlSystemGetNVMLVersion(self) -> str:
        self._check("nvmlSystemGetNVMLVersion")
        return _missing(self.profile.get("nvml_version"))

    def nvmlDeviceGetCount(self) -> int:
        self._check("nvmlDeviceGetCount")
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeHandle:
        self._check("nvmlDeviceGetHandleByIndex")
        if not 0 <= index < len(self.gpus):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(index)

    # ---- identity ----
    def nvmlDeviceGetName(self, h: FakeHandle | FakeMigHandle) -> str:
        gpu = self._check("nvmlDeviceGetName", h)
        if isinstance(h, FakeMigHandle):  # NVML names a MIG device "<GPU name> MIG <profile>"
            return f"{self._get(gpu, 'name')} MIG {_captured(self._mig_device(gpu, h).get('profile'))}"
        return self._get(gpu, "name")

    def nvmlDeviceGetUUID(self, h: FakeHandle | FakeMigHandle) -> str:
        gpu = self._check("nvmlDeviceGetUUID", h)
        if isinstance(h, FakeMigHandle):
            return _captured(self._mig_device(gpu, h).get("uuid"))
        return self._get(gpu, "uuid")

    def nvmlDeviceGetSerial(self, h: FakeHandle) -> str:
        return self._get(self._check("nvmlDeviceGetSerial", h), "serial")

    def nvmlDeviceGetMinorNumber(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetMinorNumber", h), "minor_number")

    def nvmlDeviceGetPciInfo(self, h: FakeHandle) -> c_nvmlPciInfo_t:
        gpu = self._check("nvmlDeviceGetPciInfo", h)
        info = _pci_info(self._get(gpu, "pci", "bus_id"))
        info.pciDeviceId = gpu["pci"].get("device_id") or 0
        info.pciSubSystemId = gpu["pci"].get("subsystem_id") or 0
        return info

    def nvmlDeviceGetVbiosVersion(self, h: FakeHandle) -> str:
        return self._get(self._check("nvmlDeviceGetVbiosVersion", h), "vbios_version")

    def nvmlDeviceGetBoardPartNumber(self, h: FakeHandle) -> str:
        return self._get(self._check("nvmlDeviceGetBoardPartNumber", h), "board_part_number")

    def nvmlDeviceGetArchitecture(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetArchitecture", h), "architecture")

    def nvmlDeviceGetCudaComputeCapability(self, h: FakeHandle) -> tuple[int, int]:
        major, minor = self._get(self._check("nvmlDeviceGetCudaComputeCapability", h), "compute_capability")
        return (major, minor)

    def nvmlDeviceGetMemoryInfo(
        self, h: FakeHandle | FakeMigHandle, version: int | None = None
    ) -> c_nvmlMemory_v2_t:
        gpu = self._check("nvmlDeviceGetMemoryInfo", h)
        self._reap_real()
        mem = _captured(self._mig_device(gpu, h).get("memory")) if isinstance(h, FakeMigHandle) else None
        mem = mem or self._get(gpu, "memory")
        used = mem["used"]
        if version is None:
            # v1 folds reserved memory into "used", as the real v1 call does.
            used += mem.get("reserved") or 0
        return c_nvmlMemory_v2_t(version or 0, mem["total"], mem.get("reserved") or 0, mem["free"], used)

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetMaxPcieLinkGeneration", h), "pcie", "max_link_gen")

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetMaxPcieLinkWidth", h), "pcie", "max_link_width")

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetCurrPcieLinkGeneration", h), "pcie", "curr_link_gen")

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetCurrPcieLinkWidth", h), "pcie", "curr_link_width")

    def nvmlDeviceGetPcieReplayCounter(self, h: FakeHandle) -> int:
        """Profile ``pcie.replay_counter``; a scenario's ``pcie.replay_per_min`` makes it grow with
        wall time since the fake started, as a link that keeps replaying does."""
        pcie = self._get(self._check("nvmlDeviceGetPcieReplayCounter", h), "pcie")
        base = _missing(pcie.get("replay_counter"))
        rate = pcie.get("replay_per_min") or 0
        return int(base + rate * (time.monotonic() - self._started) / 60)

    def nvmlDeviceGetPersistenceMode(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetPersistenceMode", h), "persistence_mode")

    def nvmlDeviceGetMigMode(self, h: FakeHandle) -> list[int]:
        mig = self._get(self._check("nvmlDeviceGetMigMode", h), "mig_mode")
        return [mig["current"], mig["pending"]]

    def nvmlDeviceGetNumaNodeId(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetNumaNodeId", h), "numa_node")

    def nvmlDeviceGetCpuAffinity(self, h: FakeHandle, cpu_set_size: int) -> list[int]:
        """Profile key ``cpu_affinity``: a CPU list as topo -m prints it, e.g. ``"48-63,176-191"``."""
        cpus = self._get(self._check("nvmlDeviceGetCpuAffinity", h), "cpu_affinity")
        words = [0] * cpu_set_size
        for part in str(cpus).split(","):
            lo, _, hi = part.partition("-")
            for cpu in range(int(lo), int(hi or lo) + 1):
                if cpu < 64 * cpu_set_size:
                    words[cpu // 64] |= 1 << (cpu % 64)
        return words

    # ---- power ----
    def nvmlDeviceGetPowerUsage(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetPowerUsage", h), "power", "usage_mw")

    def nvmlDeviceGetEnforcedPowerLimit(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetEnforcedPowerLimit", h), "power", "enforced_limit_mw")

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: FakeHandle) -> int:
        return self._get(
            self._check("nvmlDeviceGetPowerManagementDefaultLimit", h), "power", "default_limit_mw"
        )

    def nvmlDeviceGetPowerManagementLimitConstraints(self, h: FakeHandle) -> list[int]:
        gpu = self._check("nvmlDeviceGetPowerManagementLimitConstraints", h)
        return [self._get(gpu, "power", "min_limit_mw"), self._get(gpu, "power", "max_limit_mw")]

    # ---- thermal, clocks, utilization ----
    def nvmlDeviceGetTemperature(self, h: FakeHandle, sensor: int) -> int:
        gpu = self._check("nvmlDeviceGetTemperature", h)
        if sensor != NVML_TEMPERATURE_GPU:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return self._get(gpu, "temperature", "gpu")

    def nvmlDeviceGetTemperatureThreshold(self, h: FakeHandle, threshold: int) -> int:
        gpu = self._check("nvmlDeviceGetTemperatureThreshold", h)
        if threshold not in _THRESHOLD:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return self._get(gpu, "temperature", "thresholds", _THRESHOLD[threshold])

    def nvmlDeviceGetFanSpeed(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetFanSpeed", h), "fan_speed")

    def nvmlDeviceGetUtilizationRates(self, h: FakeHandle) -> c_nvmlUtilization_t:
        util = self._get(self._check("nvmlDeviceGetUtilizationRates", h), "utilization")
        return c_nvmlUtilization_t(_missing(util.get("gpu")), _missing(util.get("memory")))

    def nvmlDeviceGetEncoderUtilization(self, h: FakeHandle) -> list[int]:
        return [
            self._get(self._check("nvmlDeviceGetEncoderUtilization", h), "utilization", "encoder"),
            167000,
        ]

    def nvmlDeviceGetDecoderUtilization(self, h: FakeHandle) -> list[int]:
        return [
            self._get(self._check("nvmlDeviceGetDecoderUtilization", h), "utilization", "decoder"),
            167000,
        ]

    def nvmlDeviceGetClockInfo(self, h: FakeHandle, clock: int) -> int:
        return self._get(self._check("nvmlDeviceGetClockInfo", h), "clocks", _CLOCK.get(clock, "?"))

    def nvmlDeviceGetMaxClockInfo(self, h: FakeHandle, clock: int) -> int:
        return self._get(self._check("nvmlDeviceGetMaxClockInfo", h), "max_clocks", _CLOCK.get(clock, "?"))

    def nvmlDeviceGetPerformanceState(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetPerformanceState", h), "pstate")

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: FakeHandle) -> int:
        return self._get(self._check("nvmlDeviceGetCurrentClocksEventReasons", h), "clock_event_reasons")

    def nvmlDeviceGetSupportedClocksEventReasons(self, h: FakeHandle) -> int:
        gpu = self._check("nvmlDeviceGetSupportedClocksEventReasons", h)
        return self._get(gpu, "supported_clock_event_reasons")

    # ---- ECC, retired pages, remapped rows ----
    def nvmlDeviceGetEccMode(self, h: FakeHandle) -> list[int]:
        mode = self._get(self._check("nvmlDeviceGetEccMode", h), "ecc", "mode")
        return [mode["current"], mode["pending"]]

    def nvmlDeviceGetTotalEccErrors(self, h: FakeHandle, error_type: int, counter_type: int) -> int:
        gpu = self._check("nvmlDeviceGetTotalEccErrors", h)
        return self._get(gpu, "ecc", _ECC_COUNTER[counter_type], _ECC_TYPE[error_type], "total")

    def nvmlDeviceGetMemoryErrorCounter(
        self, h: FakeHandle | FakeMigHandle, error_type: int, counter_type: int, location: int
    ) -> int:
        gpu = self._check("nvmlDeviceGetMemoryErrorCounter", h)
        loc = _MEMORY_LOCATION.get(location, "?")
        if isinstance(h, FakeMigHandle):
            # Per instance NVML answers only volatile uncorrectable non-DRAM (SRAM) errors.
            wanted = (NVML_MEMORY_ERROR_TYPE_UNCORRECTED, NVML_VOLATILE_ECC, NVML_MEMORY_LOCATION_SRAM)
            if (error_type, counter_type, location) != wanted:
                raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
            ecc = self._mig_device(gpu, h).get("ecc") or {}
            return int(_captured(ecc.get("volatile_sram_uncorrected")))
        return self._get(gpu, "ecc", _ECC_COUNTER[counter_type], _ECC_TYPE[error_type], loc)

    def nvmlDeviceGetSramEccErrorStatus(self, h: FakeHandle, status: c_nvmlEccSramErrorStatus_v1_t) -> int:
        gpu = self._check("nvmlDeviceGetSramEccErrorStatus", h)
        status.bThresholdExceeded = int(self._get(gpu, "ecc", "sram_threshold_exceeded"))
        return NVML_SUCCESS

    def nvmlDeviceGetRetiredPages_v2(self, h: FakeHandle, cause: int) -> list[dict[str, int]]:
        gpu = self._check("nvmlDeviceGetRetiredPages_v2", h)
        key = "sbe" if cause == NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS else "dbe"
        return [dict(p) for p in self._get(gpu, "retired_pages", key)]

    def nvmlDeviceGetRetiredPagesPendingStatus(self, h: FakeHandle) -> int:
        return int(
            self._get(self._check("nvmlDeviceGetRetiredPagesPendingStatus", h), "retired_pages", "pending")
        )

    def nvmlDeviceGetRemappedRows(self, h: FakeHandle) -> tuple[int, int, int, int]:
        rows = self._get(self._check("nvmlDeviceGetRemappedRows", h), "remapped_rows")
        return (rows["corr"], rows["unc"], int(rows["pending"]), int(rows["failure"]))

    def nvmlDeviceGetRowRemapperHistogram(self, h: FakeHandle) -> c_nvmlRowRemapperHistogramValues:
        hist = self._get(self._check("nvmlDeviceGetRowRemapperHistogram", h), "remapped_rows", "histogram")
        return c_nvmlRowRemapperHistogramValues(**hist)

    # ---- NVLink ----
    def _link(self, fn: str, h: FakeHandle, link: int) -> dict[str, Any]:
        gpu = self._check(fn, h)
        if gpu.get("nvlinks") is None:  # the capture holds no NVLink data: unknown, not "no links"
            raise NVMLError(NVML_ERROR_NO_DATA)
        links = gpu.get("nvlinks") or []
        if not 0 <= link < len(links) or links[link] is None:
            raise NVMLError(
                NVML_ERROR_NOT_SUPPORTED if link < NVML_NVLINK_MAX_LINKS else NVML_ERROR_INVALID_ARGUMENT
            )
        return links[link]

    def nvmlDeviceGetNvLinkState(self, h: FakeHandle, link: int) -> int:
        return _missing(self._link("nvmlDeviceGetNvLinkState", h, link).get("state"))

    def nvmlDeviceGetNvLinkVersion(self, h: FakeHandle, link: int) -> int:
        return _missing(self._link("nvmlDeviceGetNvLinkVersion", h, link).get("version"))

    def nvmlDeviceGetNvLinkRemotePciInfo(self, h: FakeHandle, link: int) -> c_nvmlPciInfo_t:
        return _pci_info(
            _missing(self._link("nvmlDeviceGetNvLinkRemotePciInfo", h, link).get("remote_bus_id"))
        )

    def nvmlDeviceGetNvLinkRemoteDeviceType(self, h: FakeHandle, link: int) -> int:
        return _missing(self._link("nvmlDeviceGetNvLinkRemoteDeviceType", h, link).get("remote_type"))

    def nvmlDeviceGetNvLinkCapability(self, h: FakeHandle, link: int, capability: int) -> int:
        caps = _missing(self._link("nvmlDeviceGetNvLinkCapability", h, link).get("capabilities"))
        return int(_missing(caps.get(_NVLINK_CAP.get(capability, "?"))))

    def nvmlDeviceGetNvLinkErrorCounter(self, h: FakeHandle, link: int, counter: int) -> int:
        # No capture prints these counters: a profile without them answers NoData (not read), not
        # NotSupported (which real NVML answers where the GPU has no such counter).
        errors = self._link("nvmlDeviceGetNvLinkErrorCounter", h, link).get("errors")
        if errors is None:
            raise NVMLError(NVML_ERROR_NO_DATA)
        return _missing(errors.get(_NVLINK_ERROR.get(counter, "?")))

    def nvmlDeviceGetFieldValues(self, h: FakeHandle, field_ids: list[Any]) -> list[c_nvmlFieldValue_t]:
        """Only NVML_FI_DEV_NVLINK_LINK_COUNT is served: the length of the profile's ``nvlinks``
        (``[]``: no NVLink, 0; ``null``, a capture without NVLink data: NoData, unknown). Any other field answers NotSupported in its own
        ``nvmlReturn``, as NVML does per field."""
        gpu = self._check("nvmlDeviceGetFieldValues", h)
        values = []
        for fid in field_ids:
            fid, scope = fid if isinstance(fid, tuple) else (fid, 0)
            if fid == NVML_FI_DEV_NVLINK_LINK_COUNT and gpu.get("nvlinks") is None:
                values.append(c_nvmlFieldValue_t(fid, scope, nvmlReturn=NVML_ERROR_NO_DATA))
            elif fid == NVML_FI_DEV_NVLINK_LINK_COUNT:
                count = len(gpu.get("nvlinks") or [])
                values.append(c_nvmlFieldValue_t(fid, scope, value=c_nvmlValue_t(uiVal=count)))
            else:
                values.append(c_nvmlFieldValue_t(fid, scope, nvmlReturn=NVML_ERROR_NOT_SUPPORTED))
        return values

    # ---- topology ----
    def nvmlDeviceGetTopologyCommonAncestor(self, h1: FakeHandle, h2: FakeHandle) -> int:
        self._check("nvmlDeviceGetTopologyCommonAncestor", h1)
        self._check("nvmlDeviceGetTopologyCommonAncestor", h2)
        matrix = _missing((self.profile.get("topology") or {}).get("common_ancestor"))
        return matrix[h1.index][h2.index]

    def nvmlDeviceGetP2PStatus(self, h1: FakeHandle, h2: FakeHandle, index: int) -> int:
        self._check("nvmlDeviceGetP2PStatus", h1)
        self._check("nvmlDeviceGetP2PStatus", h2)
        if not isinstance(index, int):  # what ctypes does with the (0,) tuple trap
            raise TypeError("an integer is required (got type tuple)")
        p2p = _missing((self.profile.get("topology") or {}).get("p2p"))
        return _missing(p2p.get(_P2P_CAPS.get(index, "?")))[h1.index][h2.index]

    # ---- MIG (profile key mig_devices: the MIG devices nvidia-smi -q printed) ----
    def _mig_devices(self, gpu: dict[str, Any]) -> list[dict[str, Any]]:
        if gpu.get("mig_mode") is None:  # a GPU without MIG
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return _captured(gpu.get("mig_devices"))

    def _mig_device(self, gpu: dict[str, Any], h: FakeMigHandle) -> dict[str, Any]:
        found = next((d for d in self._mig_devices(gpu) if d.get("index") == h.mig), None)
        if found is None:
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return found

    def nvmlDeviceGetMaxMigDeviceCount(self, h: FakeHandle) -> int:
        gpu = self._check("nvmlDeviceGetMaxMigDeviceCount", h)
        if gpu.get("mig_mode") is None:
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(_captured(gpu.get("mig_max_devices")))

    def nvmlDeviceGetMigDeviceHandleByIndex(self, h: FakeHandle, index: int) -> FakeMigHandle:
        gpu = self._check("nvmlDeviceGetMigDeviceHandleByIndex", h)
        if isinstance(h, FakeMigHandle):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        devices = self._mig_devices(gpu)
        if not (gpu.get("mig_mode") or {}).get("current"):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        if any(d.get("index") == index for d in devices):
            return FakeMigHandle(h.index, index)
        limit = gpu.get("mig_max_devices")
        raise NVMLError(
            NVML_ERROR_INVALID_ARGUMENT if limit is not None and index >= limit else NVML_ERROR_NOT_FOUND
        )

    def nvmlDeviceIsMigDeviceHandle(self, h: FakeHandle | FakeMigHandle) -> int:
        self._check("nvmlDeviceIsMigDeviceHandle", h)
        return int(isinstance(h, FakeMigHandle))

    def nvmlDeviceGetDeviceHandleFromMigDeviceHandle(self, h: FakeMigHandle) -> FakeHandle:
        self._check("nvmlDeviceGetDeviceHandleFromMigDeviceHandle", h)
        if not isinstance(h, FakeMigHandle):
            raise NVMLError(NVML_ERROR_INVALID_ARGUMENT)
        return FakeHandle(h.index)

    def nvmlDeviceGetGpuInstanceId(self, h: FakeMigHandle) -> int:
        gpu = self._check("nvmlDeviceGetGpuInstanceId", h)
        if not isinstance(h, FakeMigHandle):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(_captured(self._mig_device(gpu, h).get("gpu_instance_id")))

    def nvmlDeviceGetComputeInstanceId(self, h: FakeMigHandle) -> int:
        gpu = self._check("nvmlDeviceGetComputeInstanceId", h)
        if not isinstance(h, FakeMigHandle):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        return int(_captured(self._mig_device(gpu, h).get("compute_instance_id")))

    def nvmlDeviceGetAttributes_v2(self, h: FakeMigHandle) -> c_nvmlDeviceAttributes:
        """Engine counts of a MIG device (NVML answers this only for MIG device handles)."""
        gpu = self._check("nvmlDeviceGetAttributes_v2", h)
        if not isinstance(h, FakeMigHandle):
            raise NVMLError(NVML_ERROR_NOT_SUPPORTED)
        a = _captured(self._mig_device(gpu, h).get("attributes"))
        keys = ("multiprocessor_count", "copy_engine_count", "decoder_count", "encoder_count", "jpg_count",
                "ofa_count", "gpu_instance_slice_count", "compute_instance_slice_count", "memory_size_mib")  # fmt: skip
        return c_nvmlDeviceAttributes(*(int(_captured(a.get(k))) for k in keys))

    nvmlDeviceGetAttributes = nvmlDeviceGetAttributes_v2

    def nvmlDeviceGetGpuInstanceById(self, h: FakeHandle, gpu_instance_id: int) -> FakeGpuInstance:
        gpu = self._check("nvmlDeviceGetGpuInstanceById", h)
        if not any(d.get("gpu_instance_id") == gpu_instance_id for d in self._mig_devices(gpu)):
            raise NVMLError(NVML_ERROR_NOT_FOUND)
        return FakeGpuInstance(h.index, gpu_instance_id)

    def nvmlGpuInstanceGetInfo(self, gi: FakeGpuInstance) -> c_nvmlGpuInstanceInfo_t:
        """Profile id and placement: profile keys ``gpu_instance_profile_id`` and ``placement`` (NoData
        where the capture did not print them; nvidia-smi -q does not)."""
        gpu = self._check("nvmlGpuInstanceGetInfo", FakeHandle(gi.index))
        dev = next(d for d in self._mig_devices(gpu) if d.get("gpu_instance_id") == gi.gpu_instance_id)
        placement = _captured(dev.get("placement"))
        return c_nvmlGpuInstanceInfo_t(
            FakeHandle(gi.index),
            gi.gpu_instance_id,
            int(_captured(dev.get("gpu_instance_profile_id"))),
            c_nvmlGpuInstancePlacement_t(int(placement["start"]), int(placement["size"])),
        )

    # ---- NVLink fabric (profile key fabric; null: the GPU has no fabric, NVML NotSupported) ----
    def _fabric(self, fn: str, h: FakeHandle) -> dict[str, Any]:
        return self._get(self._check(fn, h), "fabric")

    @staticmethod
    def _fill_fabric(info: c_nvmlGpuFabricInfo_t, fabric: dict[str, Any]) -> None:
        uuid = str(_captured(fabric.get("cluster_uuid")))
        info.clusterUuid = list(bytes.fromhex(uuid.replace("-", "")))
        info.status = int(_captured(fabric.get("status")))
        info.cliqueId = int(_captured(fabric.get("clique_id")))
        info.state = int(_captured(fabric.get("state")))

    def nvmlDeviceGetGpuFabricInfo(self, h: FakeHandle, info: c_nvmlGpuFabricInfo_t) -> int:
        self._fill_fabric(info, self._fabric("nvmlDeviceGetGpuFabricInfo", h))
        return NVML_SUCCESS

    def nvmlDeviceGetGpuFabricInfoV(self, h: FakeHandle, info: c_nvmlGpuFabricInfo_v2_t) -> int:
        fabric = self._fabric("nvmlDeviceGetGpuFabricInfoV", h)
        if getattr(info, "version", None) not in (nvmlGpuFabricInfo_v2, nvmlGpuFabricInfo_v3):
            raise NVMLError(NVML_ERROR_ARGUMENT_VERSION_MISMATCH)
        self._fill_fabric(info, fabric)
        mask = 0
        for key, (shift, values) in _FABRIC_HEALTH.items():
            value = (fabric.get("health") or {}).get(key)
            mask |= values.get(value.lower() if isinstance(value, str) else value, 0) << shift
        info.healthMask = mask
        if isinstance(info, c_nvmlGpuFabricInfo_v3_t):
            info.healthSummary = int(fabric.get("health_summary") or 0)
        return NVML_SUCCESS

    # ---- processes ----
    def _processes(self, fn: str, h: FakeHandle, kind: str) -> list[c_nvmlProcessInfo_t]:
        gpu = self._check(fn, h)
        self._reap_real()
        procs = (gpu.get("processes") or {}).get(kind) or []
        return [
            c_nvmlProcessInfo_t(
                pid=p["pid"],
                usedGpuMemory=p.get("used_memory"),
                gpuInstanceId=p.get("gpu_instance_id", 0xFFFFFFFF),
                computeInstanceId=p.get("compute_instance_id", 0xFFFFFFFF),
            )
            for p in procs
        ]

    def nvmlDeviceGetComputeRunningProcesses(self, h: FakeHandle) -> list[c_nvmlProcessInfo_t]:
        return self._processes("nvmlDeviceGetComputeRunningProcesses", h, "compute")

    def nvmlDeviceGetGraphicsRunningProcesses(self, h: FakeHandle) -> list[c_nvmlProcessInfo_t]:
        return self._processes("nvmlDeviceGetGraphicsRunningProcesses", h, "graphics")

    # ---- events ----
    def nvmlEventSetCreate(self) -> FakeEventSet:
        self._check("nvmlEventSetCreate")
        es = FakeEventSet()
        with self._lock:
            self._event_sets.append(es)
        return es

    def nvmlDeviceGetSupportedEventTypes(self, h: FakeHandle) -> int:
        gpu = self._check("nvmlDeviceGetSupportedEventTypes", h)
        return gpu.get("supported_event_types", nvmlEventTypeXidCriticalError | 0x3)

    def nvmlDeviceRegisterEvents(self, h: FakeHandle, mask: int, event_set: FakeEventSet) -> None:
        self._check("nvmlDeviceRegisterEvents", h)
        with event_set.cond:
            event_set.registered[h.index] = mask

    def nvmlEventSetWait_v2(self, event_set: FakeEventSet, timeout_ms: int) -> c_nvmlEventData_t:
        self._check("nvmlEventSetWait_v2")
        deadline = time.monotonic() + timeout_ms / 1000
        with event_set.cond:
            while not event_set.queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise NVMLError(NVML_ERROR_TIMEOUT)
                event_set.cond.wait(remaining)
            return event_set.queue.pop(0)

    nvmlEventSetWait = nvmlEventSetWait_v2

    def nvmlEventSetFree(self, event_set: FakeEventSet) -> None:
        self._check("nvmlEventSetFree")
        with self._lock:
            if event_set in self._event_sets:
                self._event_sets.remove(event_set)

    # ---- fake-only controls (never called by the adapter) ----
    def fake_emit_event(self, index: int, event_type: int, data: int) -> None:
        """Deliver an event to every set registered for this GPU and type, as the driver would."""
        for es in list(self._event_sets):
            with es.cond:
                if es.registered.get(index, 0) & event_type:
                    es.queue.append(c_nvmlEventData_t(FakeHandle(index), event_type, data))
                    es.cond.notify_all()

    def fake_add_process(
        self, index: int, pid: int, used_memory: int, kind: str = "compute", real: bool = False
    ) -> None:
        """Register a GPU process. ``real=True`` marks a live OS process (a test's child): the fake
        drops it, as the driver would, once it has exited (see ``_reap_real``)."""
        procs = self.gpus[index].setdefault("processes", {}).setdefault(kind, [])
        procs.append({"pid": pid, "used_memory": used_memory, "real": real})
        self._has_real = self._has_real or real
        mem = self.gpus[index].get("memory")
        if mem:
            mem["used"] += used_memory
            mem["free"] = max(0, mem["free"] - used_memory)

    def fake_remove_process(self, pid: int) -> int:
        """Drop a pid from every GPU (the driver does this when the process exits); returns bytes freed."""
        freed = 0
        for gpu in self.gpus:
            for kind, procs in (gpu.get("processes") or {}).items():
                keep = [p for p in procs if p["pid"] != pid]
                for p in procs:
                    if p["pid"] == pid and gpu.get("memory"):
                        used = p.get("used_memory") or 0
                        freed += used
                        gpu["memory"]["used"] = max(0, gpu["memory"]["used"] - used)
                        gpu["memory"]["free"] += used
                gpu["processes"][kind] = keep
        return freed

    def fake_real_pids(self) -> set[int]:
        """Pids registered with ``real: true``: the only mock processes a tool may really signal."""
        return {
            p["pid"]
            for gpu in self.gpus
            for procs in (gpu.get("processes") or {}).values()
            for p in procs or []
            if p.get("real")
        }

    def _reap_real(self) -> None:
        """Drop ``real`` processes that have exited (``kill(pid, 0)`` fails, or /proc says zombie),
        freeing their memory as the driver does when a CUDA process dies."""
        if not self._has_real:  # the common case: no live OS process was ever registered
            return
        for pid in self.fake_real_pids():
            if not _os_process_alive(pid):
                self.fake_remove_process(pid)


def _os_process_alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X", "x")
    except (OSError, IndexError):
        return True
