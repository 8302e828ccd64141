"""Fabric reads on the fake, against the real captures' Fabric blocks (re-read here with XPath)."""

from __future__ import annotations

import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from k8s_gpu_mcp.gpu.adapter import NvmlAdapter
from k8s_gpu_mcp.gpu.fabric import read_fabric
from k8s_gpu_mcp.gpu.fake_nvml import FakeNvml
from k8s_gpu_mcp.gpu.fleet import load_profile

CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "captures"
STATES = {"Completed": "completed", "In Progress": "in-progress", "Not Started": "not-started"}


def fake(profile: str, edit=None) -> tuple[FakeNvml, NvmlAdapter]:
    state = copy.deepcopy(load_profile(profile)[1])
    if edit:
        edit(state)
    nvml = FakeNvml(state)
    nvml.nvmlInit()
    return nvml, NvmlAdapter(nvml)


def xml_fabric(capture: str) -> list[ET.Element]:
    text = re.sub(r"<!DOCTYPE[^>]*>", "", (CAPTURES / capture).read_text(encoding="utf-8"))
    return [gpu.find("fabric") for gpu in ET.fromstring(text).findall("gpu")]


@pytest.mark.parametrize(
    ("profile", "capture"),
    [
        ("h100-sxm5-80gb-x8", "nvidia-smi-q-x_h100-sxm5-80gb-x8_nvk8stestinfra.xml"),
        ("gb200-x4", "nvidia-smi-q-x_gb200-x4_nvk8stestinfra.xml"),
        ("b200-x8", "nvidia-smi-q-x_b200-x8_nvk8stestinfra.xml"),
    ],
)
def test_fabric_matches_the_capture(profile: str, capture: str):
    nvml, adapter = fake(profile)
    captured = xml_fabric(capture)
    refs = adapter.gpus()
    assert len(refs) == len(captured)
    for ref, el in zip(refs, captured, strict=True):
        info = read_fabric(adapter, ref)
        assert info.supported is True and info.state == STATES[el.findtext("state")]
        assert info.status == el.findtext("status") == "Success"
        assert info.clique_id == int(el.findtext("cliqueId"))
        assert info.cluster_uuid == el.findtext("clusterUuid")
        summary = el.findtext("health/summary")
        assert info.health_summary == (None if summary == "N/A" else summary.lower())
        assert info.call == "nvmlDeviceGetGpuFabricInfoV (c_nvmlGpuFabricInfo_v3_t)"


def test_gb200_health_flags_from_the_capture():
    nvml, adapter = fake("gb200-x4")
    info = read_fabric(adapter, adapter.gpus()[0])
    el = xml_fabric("nvidia-smi-q-x_gb200-x4_nvk8stestinfra.xml")[0]
    assert el.findtext("health/bandwidth") == "Full" and info.health["degraded_bandwidth"] is False
    assert el.findtext("health/route_unhealthy") == "False" and info.health["route_unhealthy"] is False
    assert (
        el.findtext("health/incorrect_configuration") == "N/A"
        and info.health["incorrect_configuration"] is None
    )
    assert info.health["gfm_state"] is None  # not printed: NOT_SUPPORTED in the mask, never "connected"


@pytest.mark.parametrize("profile", ["l40s", "t4", "a100-sxm4-80gb-mig", "a100-sxm4-40gb-x8"])
def test_no_fabric_is_not_supported_by_design(profile: str):
    nvml, adapter = fake(profile)
    info = read_fabric(adapter, adapter.gpus()[0])
    assert info.supported is False and info.state == "not-supported"
    assert info.unavailable == {"fabric": "NotSupported: nvmlDeviceGetGpuFabricInfoV"}


def test_unreadable_fabric_is_unknown_and_old_structs_fall_back():
    nvml, adapter = fake(
        "h100-sxm5-80gb-x8",
        lambda s: s["gpus"][0].update(nvml_errors={"nvmlDeviceGetGpuFabricInfoV": "NoPermission"}),
    )
    info = read_fabric(adapter, adapter.gpus()[0])
    assert (
        info.supported is None and info.unavailable["fabric"] == "NoPermission: nvmlDeviceGetGpuFabricInfoV"
    )
    mismatch = {"nvmlDeviceGetGpuFabricInfoV": "ArgumentVersionMismatch"}
    nvml, adapter = fake("h100-sxm5-80gb-x8", lambda s: s["gpus"][1].update(nvml_errors=mismatch))
    info = read_fabric(adapter, adapter.gpus()[1])  # v3 and v2 refused: the v1 call, without health
    assert info.state == "completed" and info.call == "nvmlDeviceGetGpuFabricInfo (c_nvmlGpuFabricInfo_t)"
    assert info.health is None and "health" in info.unavailable


def test_fabric_down_state_and_health_mask():
    def down(state):
        state["gpus"][3]["fabric"].update(
            state=2, health={"route_unhealthy": True, "gfm_state": "disconnected"}
        )

    nvml, adapter = fake("h100-sxm5-80gb-x8", down)
    info = read_fabric(adapter, adapter.gpus()[3])
    assert info.state == "in-progress" and info.health["route_unhealthy"] is True
    assert info.health["gfm_state"] == "disconnected"
