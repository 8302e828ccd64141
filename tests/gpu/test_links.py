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


def test_link_count_comes_from_nvml_field_values(h100):
    adapter = adapter_for(h100)
    ref = adapter.gpus()[0]
    assert adapter.nvlink_count(ref.handle) == (18, None)
    assert [link.link for link in read_nvlinks(adapter, ref, {})] == list(range(18))
    assert adapter.nvml.calls["nvmlDeviceGetNvLinkState"] == 18  # no index above the count is read
    adapter.nvml.profile["gpus"][0]["nvlinks"] = []
    assert adapter.nvlink_count(ref.handle) == (0, None) and read_nvlinks(adapter, ref, {}) == []


def test_no_phantom_link_where_the_library_answers_every_index(h100):
    """NVIDIA's mock NVML answers a state for every index below 18; its field value says 12 (A100)."""
    h100["gpus"][0]["nvlinks"] = h100["gpus"][0]["nvlinks"][:12]
    adapter = adapter_for(h100)
    ref = adapter.gpus()[0]
    fake = adapter.nvml
    fake.nvmlDeviceGetNvLinkState = lambda handle, link: 0  # every index answers DISABLED
    assert adapter.nvlink_count(ref.handle) == (12, None)
    assert len(read_nvlinks(adapter, ref, {})) == 12
    assert adapter.inventory(ref).nvlink_count == 12


def test_without_the_field_links_are_probed_up_to_the_binding_maximum(h100):
    h100["gpus"][0]["nvml_errors"] = {"nvmlDeviceGetFieldValues": "NotSupported"}
    adapter = adapter_for(h100)
    ref = adapter.gpus()[0]
    assert len(read_nvlinks(adapter, ref, {})) == 18
    adapter.nvml.profile["gpus"][0]["nvlinks"] = h100["gpus"][0]["nvlinks"][:4]
    assert [link.link for link in read_nvlinks(adapter, ref, {})] == [0, 1, 2, 3]
    assert adapter.nvml.calls["nvmlDeviceGetNvLinkState"] == 2 * 36  # every index the binding allows
    adapter.nvml.NVML_NVLINK_MAX_LINKS = 12  # an older binding: its own maximum, not a constant here
    assert len(read_nvlinks(adapter, ref, {})) == 4
    adapter.nvml.profile["gpus"][0]["nvlinks"] = h100["gpus"][0]["nvlinks"]
    assert len(read_nvlinks(adapter, ref, {})) == 12
    assert adapter.inventory(ref).nvlink_count == 12


def test_a_per_field_error_falls_back_and_a_lost_gpu_raises(h100):
    adapter = adapter_for(h100)
    ref = adapter.gpus()[0]
    fake = adapter.nvml
    real_values = fake.nvmlDeviceGetFieldValues

    def answer(code):
        def values(handle, ids):
            out = real_values(handle, ids)
            out[0].nvmlReturn = code
            return out

        return values

    fake.nvmlDeviceGetFieldValues = answer(fake.NVML_ERROR_NOT_SUPPORTED)
    assert adapter.nvlink_field_count(ref.handle) == (
        None,
        "NotSupported: nvmlDeviceGetFieldValues (NVML_FI_DEV_NVLINK_LINK_COUNT)",
    )
    assert adapter.nvlink_count(ref.handle) == (18, None)  # probed
    fake.nvmlDeviceGetFieldValues = answer(fake.NVML_ERROR_GPU_IS_LOST)
    with pytest.raises(GpuLost):
        adapter.nvlink_count(ref.handle)


def test_remote_bus_id_is_null_with_a_reason_never_empty(h100):
    h100["gpus"][0]["nvlinks"][0].update(remote_type=0)
    adapter = adapter_for(h100)
    # what NVIDIA's mock NVML answers for an inactive link: SUCCESS and an all-zero PCI info
    empty = FakeNvml.nvmlDeviceGetPciInfo(adapter.nvml, adapter.gpus()[0].handle)
    empty.busId = empty.busIdLegacy = ""
    adapter.nvml.nvmlDeviceGetNvLinkRemotePciInfo = lambda handle, link: empty
    links = read_nvlinks(adapter, adapter.gpus()[0], {})
    assert links[0].remote_bus_id is None and links[0].remote_gpu is None
    assert links[0].unavailable["remote_bus_id"].startswith("Empty: nvmlDeviceGetNvLinkRemotePciInfo")
    assert links[1].remote_type == "switch" and links[1].remote_bus_id is None
    assert "NVSwitch" in links[1].unavailable["remote_bus_id"]


def test_p2p_read_uses_index_zero_not_the_tuple_trap(h100):
    adapter = adapter_for(h100)
    pairs = read_pairs(adapter, adapter.gpus()[:2])
    assert pairs.p2p["read"] == [[0, 0], [0, 0]] and pairs.unavailable == {}
    with pytest.raises(TypeError):
        adapter.nvml.nvmlDeviceGetP2PStatus(
            adapter.gpus()[0].handle, adapter.gpus()[1].handle, adapter.nvml.NVML_P2P_CAPS_INDEX_READ
        )


def test_missing_topology_is_unknown_with_a_reason():
    adapter = adapter_for(copy.deepcopy(load_profile("l40s")[1]))
    pairs = read_pairs(adapter, adapter.gpus())
    assert pairs.levels == [[0]]
    two = copy.deepcopy(load_profile("tesla-k80-x4-retired")[1])
    adapter = adapter_for(two)
    pairs = read_pairs(adapter, adapter.gpus()[:2])
    assert pairs.levels[0][1] is None and pairs.unavailable["topology"].startswith("NotSupported")


def test_cpu_affinity_round_trips_through_the_fake(h100):
    h100["gpus"][0]["cpu_affinity"] = "0-51,104-155"
    adapter = adapter_for(h100)
    got = read_affinity(adapter, adapter.gpus()[0])
    assert got.cpu_affinity == "0-51,104-155" and got.numa_node == 0
    assert cpu_list([0b1011]) == "0-1,3" and cpu_list([0, 1]) == "64"


def test_lost_gpu_raises_gpu_lost(h100):
    h100["gpus"][2]["lost"] = True
    adapter = adapter_for(h100)
    ref = adapter.gpus()[2]
    with pytest.raises(GpuLost):
        read_nvlinks(adapter, ref, {})
