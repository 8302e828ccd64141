"""MIG reads on the fake, against the real A100 MIG capture (re-read here with XPath)."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from k8s_gpu_mcp.gpu.adapter import GpuLost, NvmlAdapter
from k8s_gpu_mcp.gpu.fake_nvml import FakeHandle, FakeMigHandle, FakeNvml, NVMLError_NotSupported
from k8s_gpu_mcp.gpu.fleet import load_profile
from k8s_gpu_mcp.gpu.mig import read_mig

CAPTURE = (
    Path(__file__).resolve().parents[1] / "fixtures/captures/nvidia-smi-q-x_a100-sxm4-80gb-mig_telegraf.xml"
)


def fake(profile: str, edit=None) -> tuple[FakeNvml, NvmlAdapter]:
    state = copy.deepcopy(load_profile(profile)[1])
    if edit:
        edit(state)
    nvml = FakeNvml(state)
    nvml.nvmlInit()
    return nvml, NvmlAdapter(nvml)


def captured_devices() -> list[ET.Element]:
    text = re.sub(r"<!DOCTYPE[^>]*>", "", CAPTURE.read_text(encoding="utf-8"))
    return ET.fromstring(text).findall("gpu/mig_devices/mig_device")


def test_a100_mig_devices_match_the_capture():
    nvml, adapter = fake("a100-sxm4-80gb-mig")
    state = read_mig(adapter, adapter.gpus()[0])
    captured = captured_devices()
    assert state.mode_current is True and state.mode_pending is True and state.max_devices == 7
    assert state.devices is not None and len(state.devices) == len(captured) == 4
    for dev, el in zip(state.devices, captured, strict=True):
        assert dev.index == int(el.findtext("index"))
        assert dev.gpu_instance_id == int(el.findtext("gpu_instance_id"))
        assert dev.compute_instance_id == int(el.findtext("compute_instance_id"))
        assert dev.multiprocessor_count == int(el.findtext("device_attributes/shared/multiprocessor_count"))
        assert dev.decoders == int(el.findtext("device_attributes/shared/decoder_count"))
        assert f"{dev.memory_total_mib} MiB" == el.findtext("fb_memory_usage/total")
        assert f"{dev.memory_used_mib} MiB" == el.findtext("fb_memory_usage/used")
        sram = el.findtext("ecc_error_count/volatile_count/sram_uncorrectable")
        assert dev.sram_uncorrected_volatile == int(sram)
        assert dev.profile == "1g.20gb" and dev.name == "NVIDIA A100-SXM4-80GB MIG 1g.20gb"
        # the capture prints no MIG UUID, profile id or placement: null with the reason, never made up
        assert dev.uuid is None and dev.unavailable["uuid"] == "NoData: nvmlDeviceGetUUID"
        assert dev.placement_start is None and dev.unavailable["placement_start"].startswith("NoData")


def test_mig_disabled_and_no_mig_gpus():
    nvml, adapter = fake("h100-sxm5-80gb-x8")
    state = read_mig(adapter, adapter.gpus()[0])
    assert state.mode_current is False and state.devices == () and state.unavailable == {}
    nvml, adapter = fake("t4")  # a GPU without MIG: no devices by design, the reason kept
    state = read_mig(adapter, adapter.gpus()[0])
    assert state.mode_current is None and state.devices == ()
    assert state.unavailable["mig_mode"] == "NotSupported: nvmlDeviceGetMigMode"


def test_listing_failure_is_unknown_not_empty():
    def broken(state):
        state["gpus"][0]["nvml_errors"] = {"nvmlDeviceGetMigDeviceHandleByIndex": "NoPermission"}

    nvml, adapter = fake("a100-sxm4-80gb-mig", broken)
    state = read_mig(adapter, adapter.gpus()[0])
    assert state.devices is None
    assert state.unavailable["devices"] == "MIG device 0: NoPermission: nvmlDeviceGetMigDeviceHandleByIndex"


def test_placement_and_uuid_where_the_profile_has_them():
    def placed(state):
        dev = state["gpus"][0]["mig_devices"][1]
        dev["uuid"] = "MIG-11111111-2222-3333-4444-555555555555"
        dev["placement"] = {"start": 2, "size": 2}
        dev["gpu_instance_profile_id"] = 9

    nvml, adapter = fake("a100-sxm4-80gb-mig", placed)
    state = read_mig(adapter, adapter.gpus()[0])
    dev = state.device_by_uuid("mig-11111111-2222-3333-4444-555555555555")
    assert dev is not None and dev.index == 1 and (dev.placement_start, dev.placement_size) == (2, 2)
    assert dev.gpu_instance_profile_id == 9
    assert (
        state.device_for(4, 0) is dev and state.device_for(4, None) is dev and state.device_for(9, 0) is None
    )


def test_mig_handles_answer_only_mig_calls_and_lost_gpus_raise():
    nvml, adapter = fake("a100-sxm4-80gb-mig")
    mig = nvml.nvmlDeviceGetMigDeviceHandleByIndex(FakeHandle(0), 0)
    assert isinstance(mig, FakeMigHandle) and nvml.nvmlDeviceIsMigDeviceHandle(mig) == 1
    assert nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(mig) == FakeHandle(0)
    with pytest.raises(NVMLError_NotSupported):
        nvml.nvmlDeviceGetTemperature(mig, 0)
    with pytest.raises(NVMLError_NotSupported):  # per instance only volatile uncorrectable SRAM
        nvml.nvmlDeviceGetMemoryErrorCounter(mig, 0, 0, nvml.NVML_MEMORY_LOCATION_SRAM)
    nvml, adapter = fake("a100-sxm4-80gb-mig", lambda s: s["gpus"][0].update(lost=True))
    with pytest.raises(GpuLost):
        read_mig(adapter, adapter.gpus()[0])
