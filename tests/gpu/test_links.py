"""NVLink / topology / affinity reads on the fake: link discovery, the P2P READ trap, lost GPUs."""

from __future__ import annotations

import copy

import pytest

from k8s_gpu_mcp.gpu.adapter import GpuLost, NvmlAdapter
from k8s_gpu_mcp.gpu.fake_nvml import FakeNvml
from k8s_gpu_mcp.gpu.fleet import load_profile
from k8s_gpu_mcp.gpu.links import cpu_list, read_affinity, read_nvlinks, read_pairs


def adapter_for(profile: dict) -> NvmlAdapter:
    fake = FakeNvml(profile)
    fake.nvmlInit()
    return NvmlAdapter(fake)


@pytest.fixture
def h100() -> dict:
    return copy.deepcopy(load_profile("h100-sxm5-80gb-x8")[1])


def test_links_are_discovered_up_to_the_binding_maximum_not_a_constant(h100):
    adapter = adapter_for(h100)
    ref = adapter.gpus()[0]
    assert len(read_nvlinks(adapter, ref, {})) == 18
    adapter.nvml.profile["gpus"][0]["nvlinks"] = h100["gpus"][0]["nvlinks"][:4]
    assert [link["link"] for link in read_nvlinks(adapter, ref, {})] == [0, 1, 2, 3]
    assert adapter.nvml.calls["nvmlDeviceGetNvLinkState"] == 2 * 36  # every index the binding allows
    adapter.nvml.NVML_NVLINK_MAX_LINKS = 12  # an older binding: its own maximum, not a constant here
    assert len(read_nvlinks(adapter, ref, {})) == 4
    adapter.nvml.profile["gpus"][0]["nvlinks"] = h100["gpus"][0]["nvlinks"]
    assert len(read_nvlinks(adapter, ref, {})) == 12


def test_p2p_read_uses_index_zero_not_the_tuple_trap(h100):
    adapter = adapter_for(h100)
    pairs = read_pairs(adapter, adapter.gpus()[:2])
    assert pairs["p2p"]["read"] == [[0, 0], [0, 0]] and pairs["unavailable"] == {}
    with pytest.raises(TypeError):
        adapter.nvml.nvmlDeviceGetP2PStatus(
            adapter.gpus()[0].handle, adapter.gpus()[1].handle, adapter.nvml.NVML_P2P_CAPS_INDEX_READ
        )


def test_missing_topology_is_unknown_with_a_reason():
    adapter = adapter_for(copy.deepcopy(load_profile("l40s")[1]))
    pairs = read_pairs(adapter, adapter.gpus())
    assert pairs["levels"] == [[0]]
    two = copy.deepcopy(load_profile("tesla-k80-x4-retired")[1])
    adapter = adapter_for(two)
    pairs = read_pairs(adapter, adapter.gpus()[:2])
    assert pairs["levels"][0][1] is None and pairs["unavailable"]["topology"].startswith("NotSupported")


def test_cpu_affinity_round_trips_through_the_fake(h100):
    h100["gpus"][0]["cpu_affinity"] = "0-51,104-155"
    adapter = adapter_for(h100)
    got = read_affinity(adapter, adapter.gpus()[0])
    assert got["cpu_affinity"] == "0-51,104-155" and got["numa_node"] == 0
    assert cpu_list([0b1011]) == "0-1,3" and cpu_list([0, 1]) == "64"


def test_lost_gpu_raises_gpu_lost(h100):
    h100["gpus"][2]["lost"] = True
    adapter = adapter_for(h100)
    ref = adapter.gpus()[2]
    with pytest.raises(GpuLost):
        read_nvlinks(adapter, ref, {})
