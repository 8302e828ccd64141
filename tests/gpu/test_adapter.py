"""The real adapter, run on the pynvml-compatible fake: every field and every NVML error path."""

from __future__ import annotations

import copy

import pytest

from k8s_gpu_mcp.gpu.adapter import GpuLost, NvmlAdapter
from k8s_gpu_mcp.gpu.fake_nvml import ERROR_CODES_BY_NAME, FakeNvml
from k8s_gpu_mcp.gpu.fleet import load_profile
from k8s_gpu_mcp.gpu.pci import short_bus_id


@pytest.fixture(scope="module")
def h100() -> dict:
    return load_profile("h100-sxm5-80gb-x8")[1]


def adapter_for(profile: dict) -> NvmlAdapter:
    fake = FakeNvml(profile)
    fake.nvmlInit()
    return NvmlAdapter(fake)


def test_inventory_reads_the_capture_values(h100):
    adapter = adapter_for(h100)
    refs = adapter.gpus()
    assert len(refs) == 8
    inv = adapter.inventory(refs[0])
    assert inv.memory_total_mib == 81559
    assert inv.power_max_limit_w == 700.0
    assert inv.nvlink_count == 18
    assert inv.architecture == "Hopper"
    assert refs[0].bus_id == h100["gpus"][0]["pci"]["bus_id"]


def test_system_versions(h100):
    system = adapter_for(h100).system()
    assert system.driver_version == h100["driver_version"]
    cuda = h100["cuda_driver_version"]
    assert system.cuda_version == f"{cuda // 1000}.{cuda % 1000 // 10}"


@pytest.mark.parametrize(
    "error", ["NotSupported", "NoPermission", "Unknown", "Timeout", "FunctionNotFound", "Uninitialized"]
)
def test_each_nvml_error_nulls_only_its_field_with_a_reason(h100, error):
    profile = copy.deepcopy(h100)
    profile["gpus"][0]["nvml_errors"] = {"nvmlDeviceGetFanSpeed": error, "nvmlDeviceGetPowerUsage": error}
    adapter = adapter_for(profile)
    t = adapter.telemetry(adapter.gpus()[0])
    assert t.fan_percent is None and t.power_draw_w is None
    assert t.unavailable["power_draw_w"] == f"{error}: nvmlDeviceGetPowerUsage"
    assert t.temperature_c == profile["gpus"][0]["temperature"]["gpu"]  # the rest still answers


def test_null_in_profile_is_not_supported_never_zero(h100):
    profile = copy.deepcopy(h100)
    profile["gpus"][1]["temperature"]["thresholds"]["slowdown"] = None
    adapter = adapter_for(profile)
    t = adapter.telemetry(adapter.gpus()[1])
    assert t.slowdown_c is None
    assert t.unavailable["slowdown_c"].startswith("NotSupported")


def test_gpu_is_lost_is_raised_as_gpulost_for_the_tool_to_mark(h100):
    profile = copy.deepcopy(h100)
    profile["gpus"][2]["lost"] = True
    adapter = adapter_for(profile)
    ref = adapter.gpus()[2]
    assert ref.lost_reason and ref.lost_reason.startswith("GpuIsLost")
    with pytest.raises(GpuLost):
        adapter.telemetry(ref)
    assert adapter.gpus()[3].lost_reason is None


def test_function_missing_from_an_old_binding_is_reported(h100):
    class OldBinding:
        def __init__(self, inner):
            self._inner = inner

        def __getattr__(self, name):
            if name == "nvmlDeviceGetCurrentClocksEventReasons":
                raise AttributeError(name)
            return getattr(self._inner, name)

    fake = FakeNvml(h100)
    fake.nvmlInit()
    adapter = NvmlAdapter(OldBinding(fake))
    t = adapter.telemetry(adapter.gpus()[0])
    assert t.clock_event_reasons_mask is None
    assert t.unavailable["clock_event_reasons"].startswith("FunctionNotFound")


def test_unexpected_python_error_in_a_binding_does_not_escape(h100):
    fake = FakeNvml(h100)
    fake.nvmlInit()
    fake.nvmlDeviceGetFanSpeed = lambda h: (_ for _ in ()).throw(TypeError("ctypes said no"))
    adapter = NvmlAdapter(fake)
    t = adapter.telemetry(adapter.gpus()[0])
    assert t.fan_percent is None and "ctypes said no" in t.unavailable["fan_percent"]


def test_device_count_failure_gives_no_gpus_not_a_crash(h100):
    profile = copy.deepcopy(h100)
    profile["nvml_errors"] = {"nvmlDeviceGetCount": "Unknown"}
    assert adapter_for(profile).gpus() == []


def test_fake_error_classes_match_pynvml_names_and_codes():
    import pynvml

    for name, code in ERROR_CODES_BY_NAME.items():
        real = getattr(pynvml, f"NVMLError_{name}", None)
        assert real is not None, name
        assert real(code).value == code
        assert pynvml.NVMLError(code).__class__.__name__ == f"NVMLError_{name}"


def test_fake_constants_match_pynvml():
    import pynvml

    from k8s_gpu_mcp.gpu import fake_nvml

    for name in dir(fake_nvml):
        if name.startswith(("NVML_", "nvmlEventType", "nvmlMemory")) and name != "nvmlEventTypeAll":
            assert getattr(pynvml, name) == getattr(fake_nvml, name), name


def test_fake_functions_exist_in_pynvml():
    import pynvml

    for name in dir(FakeNvml):
        if name.startswith("nvml"):
            assert hasattr(pynvml, name), name


def test_short_bus_id_matches_kernel_form():
    assert short_bus_id("00000000:3B:00.0") == "0000:3b:00"


def test_board_constants_are_read_once_and_failures_are_retried(h100):
    profile = copy.deepcopy(h100)
    fake = FakeNvml(profile)
    fake.nvmlInit()
    adapter = NvmlAdapter(fake)
    ref = adapter.gpus()[0]
    profile_errors = fake.profile.setdefault("nvml_errors", {})
    profile_errors["nvmlDeviceGetMaxClockInfo"] = "Timeout"
    assert adapter.telemetry(ref).max_sm_clock_mhz is None  # a failure is not cached
    profile_errors.clear()
    fake.calls.clear()
    first = adapter.telemetry(ref)
    second = adapter.telemetry(ref)
    assert first.max_sm_clock_mhz == second.max_sm_clock_mhz == profile["gpus"][0]["max_clocks"]["sm"]
    assert fake.calls["nvmlDeviceGetMaxClockInfo"] == 2  # sm and memory, once each
    assert fake.calls["nvmlDeviceGetTemperature"] == 2  # live readings are read every time
    adapter.gpus(refresh=True)
    adapter.telemetry(adapter.gpus()[0])
    assert fake.calls["nvmlDeviceGetMaxClockInfo"] == 4  # a refresh forgets the constants
