"""ECC reads on the fake: counters, the SRAM threshold struct, retired pages and remapped rows."""

from __future__ import annotations

import copy

from k8s_gpu_mcp.gpu.adapter import NvmlAdapter
from k8s_gpu_mcp.gpu.ecc import read_ecc
from k8s_gpu_mcp.gpu.fake_nvml import FakeNvml
from k8s_gpu_mcp.gpu.fleet import load_profile
from k8s_gpu_mcp.gpu.readings import RemappedRows, RetiredPages


def read(profile: str, index: int = 0, edit=None) -> dict:
    state = copy.deepcopy(load_profile(profile)[1])
    if edit:
        edit(state)
    fake = FakeNvml(state)
    fake.nvmlInit()
    adapter = NvmlAdapter(fake)
    return read_ecc(adapter, adapter.gpus()[index])


def test_v100_capture_counters_and_retired_pages():
    raw = read("v100-sxm3-32gb-retired-pages")
    assert raw.counters["aggregate"]["uncorrected"]["total"] == 7627
    assert raw.counters["aggregate"]["uncorrected"]["dram"] == 7627
    assert raw.counters["volatile"]["uncorrected"]["texture_memory"] is None
    assert raw.retired_pages == RetiredPages(sbe=0, dbe=2, pending=True)
    assert raw.remapped_rows.pending is None and "remapped_rows" in raw.unavailable
    assert raw.sram_threshold_exceeded is None


def test_sram_threshold_flag_is_read_through_the_status_struct():
    raw = read("h100-sxm5-80gb-x8", edit=lambda s: s["gpus"][0]["ecc"].update(sram_threshold_exceeded=True))
    assert raw.sram_threshold_exceeded is True
    old_driver = read(
        "h100-sxm5-80gb-x8",
        edit=lambda s: s.update(nvml_errors={"nvmlDeviceGetSramEccErrorStatus": "FunctionNotFound"}),
    )
    assert old_driver.sram_threshold_exceeded is None
    assert old_driver.unavailable["sram_threshold_exceeded"].startswith("FunctionNotFound")


def test_remapped_rows_and_histogram():
    raw = read("a100-sxm4-80gb-x4-remap-pending", 1)
    assert raw.remapped_rows == RemappedRows(
        correctable=1,
        uncorrectable=0,
        pending=True,
        failure=False,
        histogram={"max": 639, "high": 1, "partial": 0, "low": 0, "none": 0},
    )
    assert raw.mode_current is True and raw.architecture == 7
