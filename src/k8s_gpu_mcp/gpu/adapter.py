"""NvmlAdapter: reads NVML field by field, on the real ``pynvml`` module or on ``FakeNvml``.

Each field is read on its own. ``NotSupported``, ``NoPermission`` and any other NVML error make
that one field ``None`` and record why in ``unavailable``. ``GpuIsLost`` is the one exception that
leaves a per-GPU reading (``inventory``, ``telemetry``, the topic readers): it raises
:class:`GpuLost`, and the tool marks that GPU lost and goes on with the others. Enumeration itself
never raises: a diagnostic agent runs on nodes that are already failing.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from k8s_gpu_mcp.gpu.nvml_constants import ARCHITECTURES, GPU_IS_LOST, PSTATE_UNKNOWN
from k8s_gpu_mcp.gpu.pci import short_bus_id
from k8s_gpu_mcp.gpu.readings import Inventory, PcieReading, SystemInfo, Telemetry

log = logging.getLogger(__name__)

# nvmlValueType_t -> the member of the nvmlValue_t union that holds the value (nvml.h)
_VALUE_MEMBERS = {0: "dVal", 1: "uiVal", 2: "ulVal", 3: "ullVal", 4: "sllVal", 5: "siVal", 6: "usVal"}


class GpuLost(Exception):
    """NVML answered GpuIsLost: the GPU fell off the bus."""


def error_name(exc: BaseException) -> str:
    """``NVMLError_NotSupported`` -> ``NotSupported``; other exceptions by class name."""
    return type(exc).__name__.removeprefix("NVMLError_")


def text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


@dataclass
class FieldReader:
    """Reads one GPU's fields; failures become ``None`` plus a reason in ``unavailable``."""

    nvml: Any
    handle: Any
    unavailable: dict[str, str] = field(default_factory=dict)

    def read(self, name: str, fn: str, *args: Any, **kwargs: Any) -> Any:
        func: Callable[..., Any] | None = getattr(self.nvml, fn, None)
        if func is None:
            self.unavailable[name] = f"FunctionNotFound: {fn} is not in this NVML binding"
            return None
        try:
            return func(self.handle, *args, **kwargs)
        except self.nvml.NVMLError as exc:
            if getattr(exc, "value", None) == GPU_IS_LOST:
                raise GpuLost(fn) from exc
            self.unavailable[name] = f"{error_name(exc)}: {fn}"
        except Exception as exc:  # a binding bug or ctypes failure must not take the tool down
            log.warning("unexpected NVML failure", extra={"fn": fn, "error": repr(exc)})
            self.unavailable[name] = f"{error_name(exc)}: {fn}: {exc}"
        return None


@dataclass
class GpuRef:
    """Identity of one GPU, resolved once: how tools and logs name it."""

    index: int
    uuid: str | None
    bus_id: str | None
    name: str | None
    handle: Any = None
    lost_reason: str | None = None
    unavailable: dict[str, str] = field(default_factory=dict)  # identity fields NVML would not give

    @property
    def short_bus_id(self) -> str | None:
        return short_bus_id(self.bus_id) if self.bus_id else None


class NvmlAdapter:
    """The only code that calls NVML functions. ``nvml`` is ``pynvml`` or a ``FakeNvml``."""

    def __init__(self, nvml: Any):
        self.nvml = nvml
        self._lock = threading.Lock()
        self._refs: list[GpuRef] | None = None
        self.enumeration_error: str | None = None
        self._constants: dict[tuple[int, str], Any] = {}
        self._replays: dict[int, tuple[float, int]] = {}  # GPU index -> (monotonic s, counter) last read

    # ---- system ----
    def system(self) -> SystemInfo:
        reader = FieldReader(_SystemCaller(self.nvml), None)
        driver = reader.read("driver_version", "nvmlSystemGetDriverVersion")
        cuda = reader.read("cuda_version", "nvmlSystemGetCudaDriverVersion")
        nvml_version = reader.read("nvml_version", "nvmlSystemGetNVMLVersion")
        return SystemInfo(
            driver_version=_opt_text(driver),
            cuda_version=f"{cuda // 1000}.{cuda % 1000 // 10}" if isinstance(cuda, int) else None,
            nvml_version=_opt_text(nvml_version),
            unavailable=reader.unavailable,
        )

    def reader(self, ref: GpuRef, *, identity: bool = True) -> FieldReader:
        """A FieldReader on the GPU; ``identity`` starts it with what enumeration could not read."""
        return FieldReader(self.nvml, ref.handle, dict(ref.unavailable) if identity else {})

    def memory(self, r: FieldReader, name: str = "memory") -> Any:
        """nvmlDeviceGetMemoryInfo, as nvmlMemory_v2 where the binding has it (``used`` then excludes
        driver-reserved memory)."""
        return r.read(name, "nvmlDeviceGetMemoryInfo", version=getattr(self.nvml, "nvmlMemory_v2", None))

    def gpus(self, refresh: bool = False) -> list[GpuRef]:
        """Every GPU NVML enumerates, with identity; a lost GPU stays listed with its reason."""
        with self._lock:
            if self._refs is None or refresh:
                self._refs = self._enumerate()
                self._constants.clear()
            return self._refs

    def _enumerate(self) -> list[GpuRef]:
        nvml = self.nvml
        self.enumeration_error = None
        try:
            count = nvml.nvmlDeviceGetCount()
        except Exception as exc:
            self.enumeration_error = f"{error_name(exc)}: nvmlDeviceGetCount"
            log.error("cannot enumerate GPUs", extra={"error": self.enumeration_error})
            return []
        refs = []
        for index in range(count):
            try:
                handle = nvml.nvmlDeviceGetHandleByIndex(index)
            except Exception as exc:
                refs.append(
                    GpuRef(index, None, None, None, None, f"{error_name(exc)}: nvmlDeviceGetHandleByIndex")
                )
                continue
            reader = FieldReader(nvml, handle)
            try:
                uuid = reader.read("uuid", "nvmlDeviceGetUUID")
                pci = reader.read("pci_bus_id", "nvmlDeviceGetPciInfo")
                name = reader.read("name", "nvmlDeviceGetName")
            except GpuLost as lost:
                refs.append(GpuRef(index, None, None, None, handle, f"GpuIsLost: {lost}"))
                continue
            bus_id = text(pci.busId) if pci is not None else None
            name_text = text(name) if name else None
            refs.append(GpuRef(index, _opt_text(uuid), bus_id, name_text, handle, None, reader.unavailable))
        return refs

    # ---- per-GPU readings ----
    def inventory(self, ref: GpuRef) -> Inventory:
        r = self.reader(ref)  # read in this order: the reasons in ``unavailable`` keep it
        serial = _opt_text(r.read("serial", "nvmlDeviceGetSerial"))
        vbios = _opt_text(r.read("vbios_version", "nvmlDeviceGetVbiosVersion"))
        part = _opt_text(r.read("board_part_number", "nvmlDeviceGetBoardPartNumber"))
        mem = r.read("memory_total_mib", "nvmlDeviceGetMemoryInfo")
        cc = r.read("compute_capability", "nvmlDeviceGetCudaComputeCapability")
        arch = r.read("architecture", "nvmlDeviceGetArchitecture")
        max_gen = r.read("pcie_max_gen", "nvmlDeviceGetMaxPcieLinkGeneration")
        max_width = r.read("pcie_max_width", "nvmlDeviceGetMaxPcieLinkWidth")
        default = _watts(r.read("power_default_limit_w", "nvmlDeviceGetPowerManagementDefaultLimit"))
        limits = r.read("power_min_limit_w", "nvmlDeviceGetPowerManagementLimitConstraints")
        if limits is None:
            r.unavailable["power_max_limit_w"] = r.unavailable["power_min_limit_w"]
        mig = r.read("mig_mode_current", "nvmlDeviceGetMigMode")
        if mig is None:
            r.unavailable["mig_mode_pending"] = r.unavailable["mig_mode_current"]
        persistence = r.read("persistence_mode", "nvmlDeviceGetPersistenceMode")
        return Inventory(
            serial=serial,
            vbios_version=vbios,
            board_part_number=part,
            memory_total_mib=mem.total // 2**20 if mem is not None else None,
            compute_capability=f"{cc[0]}.{cc[1]}" if cc is not None else None,
            architecture=ARCHITECTURES.get(arch, f"unknown ({arch})") if arch is not None else None,
            pcie_max_gen=max_gen,
            pcie_max_width=max_width,
            power_default_limit_w=default,
            power_min_limit_w=_watts(limits[0]) if limits else None,
            power_max_limit_w=_watts(limits[1]) if limits else None,
            mig_mode_current=bool(mig[0]) if mig is not None else None,
            mig_mode_pending=bool(mig[1]) if mig is not None else None,
            persistence_mode=bool(persistence) if persistence is not None else None,
            nvlink_count=self._nvlink_count(r),
            unavailable=r.unavailable,
        )

    def _nvlink_count(self, r: FieldReader) -> int | None:
        count, reason = self.nvlink_count(r.handle)
        if reason:
            r.unavailable["nvlink_count"] = reason
        elif count is not None and (why := self.nvlink_field_count(r.handle)[1]):
            r.unavailable["nvlink_link_count_field"] = f"{why}; the count was probed link by link"
        return count

    def nvlink_count(self, handle: Any) -> tuple[int | None, str | None]:
        """(links the GPU has, why unknown). NVML's own count (the NVLINK_LINK_COUNT field value)
        first; where that field is not answered, the links whose state NVML answers, up to the
        binding's NVML_NVLINK_MAX_LINKS. Probing alone over-counts on libraries that answer every
        index below the maximum (NVIDIA's mock NVML does), so it is only the fallback."""
        count, why_not = self.nvlink_field_count(handle)
        if count is not None:
            return count, None
        probe = FieldReader(self.nvml, handle)
        count = 0
        for link in range(self.max_links):
            if probe.read("state", "nvmlDeviceGetNvLinkState", link) is not None:
                count += 1
                continue
            reason = probe.unavailable.pop("state")
            if not reason.startswith(("NotSupported", "InvalidArgument")):
                return None, f"{reason} (link {link}); {why_not}"
        return count, None

    def nvlink_field_count(self, handle: Any) -> tuple[int | None, str]:
        """NVML's own link count (capped at the binding's maximum), or (None, why not)."""
        count, why_not = self._field_value(handle, "NVML_FI_DEV_NVLINK_LINK_COUNT")
        return (min(int(count), self.max_links), "") if count is not None else (None, why_not)

    def _field_value(self, handle: Any, field_name: str) -> tuple[Any, str]:
        """One ``nvmlDeviceGetFieldValues`` reading: (value, "") or (None, why not)."""
        fn = "nvmlDeviceGetFieldValues"
        field_id = getattr(self.nvml, field_name, None)
        if field_id is None:
            return None, f"FunctionNotFound: {field_name} is not in this NVML binding"
        r = FieldReader(self.nvml, handle)
        values = r.read("value", fn, [field_id])
        if values is None:
            return None, f"{r.unavailable['value']} ({field_name})"
        value = values[0]
        if value.nvmlReturn == GPU_IS_LOST:
            raise GpuLost(f"{fn} ({field_name})")
        if value.nvmlReturn != 0:  # the binding's own error class names the per-field code
            return None, f"{error_name(self.nvml.NVMLError(int(value.nvmlReturn)))}: {fn} ({field_name})"
        member = _VALUE_MEMBERS.get(int(value.valueType))
        if member is None:
            return None, f"Unknown: {fn} ({field_name}) returned value type {value.valueType}"
        return getattr(value.value, member), ""

    @property
    def max_links(self) -> int:
        return int(getattr(self.nvml, "NVML_NVLINK_MAX_LINKS", 36))

    def constant(self, r: FieldReader, ref: GpuRef, name: str, fn: str, *args: Any) -> Any:
        """A per-board constant (thresholds, max clocks): read once per GPU, only a successful read
        is kept; ``gpus(refresh=True)`` forgets them."""
        key = (ref.index, name)
        if key in self._constants:
            return self._constants[key]
        value = r.read(name, fn, *args)
        if value is not None:
            self._constants[key] = value
        return value

    def telemetry(self, ref: GpuRef) -> Telemetry:
        nvml = self.nvml
        r = self.reader(ref)
        temperature = r.read("temperature_c", "nvmlDeviceGetTemperature", nvml.NVML_TEMPERATURE_GPU)
        thresholds = {
            key: self.constant(r, ref, key, "nvmlDeviceGetTemperatureThreshold", getattr(nvml, const))
            for key, const in (
                ("slowdown_c", "NVML_TEMPERATURE_THRESHOLD_SLOWDOWN"),
                ("shutdown_c", "NVML_TEMPERATURE_THRESHOLD_SHUTDOWN"),
                ("max_operating_c", "NVML_TEMPERATURE_THRESHOLD_GPU_MAX"),
            )
        }
        fan = r.read("fan_percent", "nvmlDeviceGetFanSpeed")
        draw = _watts(r.read("power_draw_w", "nvmlDeviceGetPowerUsage"))
        limit = _watts(r.read("power_limit_w", "nvmlDeviceGetEnforcedPowerLimit"))
        mem = self.memory(r)
        memory: dict[str, int | None] = {}
        for key in ("used", "free", "reserved", "total"):
            memory[key] = getattr(mem, key) // 2**20 if mem is not None else None
            if mem is None:
                r.unavailable[f"memory_{key}_mib"] = r.unavailable["memory"]
        r.unavailable.pop("memory", None)
        util = r.read("utilization_gpu_percent", "nvmlDeviceGetUtilizationRates")
        if util is None:
            r.unavailable["utilization_memory_percent"] = r.unavailable["utilization_gpu_percent"]
        enc = r.read("utilization_encoder_percent", "nvmlDeviceGetEncoderUtilization")
        dec = r.read("utilization_decoder_percent", "nvmlDeviceGetDecoderUtilization")
        sm = r.read("sm_clock_mhz", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_SM)
        max_sm = self.constant(r, ref, "max_sm_clock_mhz", "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_SM)
        mem_clock = r.read("memory_clock_mhz", "nvmlDeviceGetClockInfo", nvml.NVML_CLOCK_MEM)
        max_mem_clock = self.constant(
            r, ref, "max_memory_clock_mhz", "nvmlDeviceGetMaxClockInfo", nvml.NVML_CLOCK_MEM
        )
        pstate = r.read("pstate", "nvmlDeviceGetPerformanceState")
        if pstate == PSTATE_UNKNOWN:
            r.unavailable["pstate"] = "Unknown: nvmlDeviceGetPerformanceState returned NVML_PSTATE_UNKNOWN"
        mask = r.read("clock_event_reasons", "nvmlDeviceGetCurrentClocksEventReasons")
        return Telemetry(
            temperature_c=temperature,
            slowdown_c=thresholds["slowdown_c"],
            shutdown_c=thresholds["shutdown_c"],
            max_operating_c=thresholds["max_operating_c"],
            fan_percent=fan,
            power_draw_w=draw,
            power_limit_w=limit,
            memory_used_mib=memory["used"],
            memory_free_mib=memory["free"],
            memory_reserved_mib=memory["reserved"],
            memory_total_mib=memory["total"],
            utilization_gpu_percent=util.gpu if util is not None else None,
            utilization_memory_percent=util.memory if util is not None else None,
            utilization_encoder_percent=enc[0] if enc is not None else None,
            utilization_decoder_percent=dec[0] if dec is not None else None,
            sm_clock_mhz=sm,
            max_sm_clock_mhz=max_sm,
            memory_clock_mhz=mem_clock,
            max_memory_clock_mhz=max_mem_clock,
            pstate=f"P{pstate}" if pstate is not None and pstate != PSTATE_UNKNOWN else None,
            clock_event_reasons_mask=mask,
            unavailable=r.unavailable,
        )

    def pcie(self, ref: GpuRef) -> PcieReading:
        """Current and max PCIe link generation and width, and the replay counter with the previous
        reading of it for a rate."""
        r = self.reader(ref)
        gen = r.read("link_gen", "nvmlDeviceGetCurrPcieLinkGeneration")
        max_gen = self.constant(r, ref, "max_link_gen", "nvmlDeviceGetMaxPcieLinkGeneration")
        width = r.read("link_width", "nvmlDeviceGetCurrPcieLinkWidth")
        max_width = self.constant(r, ref, "max_link_width", "nvmlDeviceGetMaxPcieLinkWidth")
        replay = r.read("replay_counter", "nvmlDeviceGetPcieReplayCounter")
        at = time.monotonic()
        previous = None
        if replay is not None:
            with self._lock:
                previous = self._replays.get(ref.index)
                self._replays[ref.index] = (at, replay)
        return PcieReading(
            link_gen=gen,
            max_link_gen=max_gen,
            link_width=width,
            max_link_width=max_width,
            replay_counter=replay,
            replay_at=at,
            replay_previous=previous,
            unavailable=r.unavailable,
        )


class _SystemCaller:
    """Adapts system-level calls (no handle) to FieldReader's ``fn(handle, ...)`` shape."""

    def __init__(self, nvml: Any):
        self.nvml = nvml
        self.NVMLError = nvml.NVMLError

    def __getattr__(self, name: str) -> Any:
        func = getattr(self.nvml, name)
        return lambda _handle, *args: func(*args)


def _watts(milliwatts: int | None) -> float | None:
    return round(milliwatts / 1000, 2) if milliwatts is not None else None


def _opt_text(value: Any) -> str | None:
    return text(value) if value is not None else None
