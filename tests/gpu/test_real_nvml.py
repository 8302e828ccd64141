"""Real NVML: the same adapter on the real pynvml. Skips cleanly where no GPU is present."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.gpu import nvml_lib
from k8s_gpu_mcp.gpu.adapter import GpuLost, NvmlAdapter

pytestmark = pytest.mark.real_nvml


@pytest.fixture(scope="module")
def adapter() -> NvmlAdapter:
    try:
        return NvmlAdapter(nvml_lib.load_real_nvml())
    except nvml_lib.NvmlUnavailable as exc:
        pytest.skip(f"no real NVML here: {exc}")


def test_real_inventory_and_telemetry_read_every_gpu(adapter):
    refs = adapter.gpus()
    assert refs, "NVML initialized but enumerated no GPU"
    system = adapter.system()
    assert system.driver_version
    for ref in refs:
        if ref.lost_reason:
            continue
        try:
            inv = adapter.inventory(ref)
            tel = adapter.telemetry(ref)
        except GpuLost:  # per-GPU readings raise it (adapter docstring); the tools mark the GPU lost
            continue
        assert inv.memory_total_mib and inv.memory_total_mib > 0
        assert tel.temperature_c is not None
        # every null carries its reason
        for key, value in {**vars(inv), **vars(tel)}.items():
            if value is None:
                assert key in inv.unavailable or key in tel.unavailable, key


def test_real_p2p_read_index_trap(adapter):
    import pynvml  # noqa: F401  (test-only: proves the binding's tuple trap still exists)

    assert pynvml.NVML_P2P_CAPS_INDEX_READ == (0,)
