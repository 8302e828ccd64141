from __future__ import annotations

import pytest

from tests.conftest import call


async def ecc(make_app, profile=None, scenario=None, args=None):
    """snapshot_ecc(detail=full): every counter of every GPU."""
    app = make_app(profile, scenario) if scenario else make_app(profile)
    return (await call(app, "snapshot_ecc", {"detail": "full", **(args or {})})).structured_content


@pytest.mark.anyio
async def test_clean_h100_has_counters_per_location_and_no_retired_pages(make_app):
    data = await ecc(make_app, "h100-sxm5-80gb-x8", args={"gpus": [0]})
    gpu = data["gpus"][0]
    assert gpu["memory_state"] == "healthy" and gpu["repair_mechanism"] == "row_remapping"
    assert gpu["aggregate"]["uncorrected"]["by_location"]["dram"] == 0
    assert gpu["aggregate"]["uncorrected"]["by_location"]["l1_cache"] is None  # N/A is null, not 0
    assert (
        gpu["unavailable"]["aggregate.uncorrected.l1_cache"] == "NotSupported"
    )  # by design: the call said once
    assert "nvmlDeviceGetMemoryErrorCounter" in data["not_supported"]["calls"]
    assert gpu["retired_pages"] == {"sbe": None, "dbe": None, "pending": None}
    assert gpu["sram_threshold_exceeded"] is False
    assert data["status"] == "healthy"


@pytest.mark.anyio
async def test_v100_retired_pages_capture_means_replace(make_app):
    """2 DBE pages pending retirement and 7627 lifetime DBEs, as nvidia-smi -q printed them."""
    data = await ecc(make_app, "v100-sxm3-32gb-retired-pages")
    gpu = data["gpus"][0]
    assert gpu["retired_pages"] == {"sbe": 0, "dbe": 2, "pending": True}
    assert gpu["aggregate"]["uncorrected"]["total"] == 7627
    levels = {r["level"] for r in gpu["reasons"]}
    assert gpu["memory_state"] == "replace" and {"replace", "reset-required"} <= levels
    assert gpu["remapped_rows"]["pending"] is None and gpu["sram_threshold_exceeded"] is None
    assert data["status"] == "critical" and "RMA" in data["action"]


@pytest.mark.anyio
async def test_a100_remap_pending_capture_means_reset_required(make_app):
    data = await ecc(make_app, "a100-sxm4-80gb-x4-remap-pending")
    verdicts = [g["memory_state"] for g in data["gpus"]]
    assert verdicts == ["healthy", "reset-required", "healthy", "healthy"]
    assert data["gpus"][1]["remapped_rows"]["histogram"] == {
        "max": 639,
        "high": 1,
        "partial": 0,
        "low": 0,
        "none": 0,
    }
    assert data["status"] == "degraded" and "GPU 1" in data["action"]


@pytest.mark.anyio
async def test_gh200_uncorrectable_remapped_row_in_effect_means_monitor(make_app):
    gpu = (await ecc(make_app, "gh200-dram-uncorrectable"))["gpus"][0]
    assert gpu["memory_state"] == "monitor"
    assert any("remapped for uncorrectable" in r["text"] for r in gpu["reasons"])


@pytest.mark.anyio
async def test_k80_retired_pages_mean_monitor(make_app):
    data = await ecc(make_app, "tesla-k80-x4-retired")
    assert [g["memory_state"] for g in data["gpus"]] == ["monitor", "monitor", "healthy", "healthy"]
    assert data["gpus"][0]["retired_pages"] == {"sbe": 1, "dbe": 1, "pending": False}


@pytest.mark.anyio
async def test_mig_hides_the_row_remapper_so_the_verdict_is_unknown(make_app):
    gpu = (await ecc(make_app, "a100-sxm4-80gb-mig"))["gpus"][0]
    assert gpu["memory_state"] == "unknown" and gpu["unavailable"]["verdict.remapped_rows"].endswith(
        "NotSupported: nvmlDeviceGetRemappedRows"
    )


@pytest.mark.anyio
async def test_sram_threshold_and_lost_gpu(make_app):
    data = await ecc(make_app, None, {"profile": "h100-sxm5-80gb-x8", "gpus": {
        "2": {"ecc": {"sram_threshold_exceeded": True}}, "3": {"lost": True}}})  # fmt: skip
    assert data["gpus"][2]["memory_state"] == "replace" and data["gpus"][2]["sram_threshold_exceeded"] is True
    assert data["gpus"][3]["memory_state"] == "lost" and data["status"] == "lost"


@pytest.mark.anyio
async def test_bad_gpu_lists_choices(make_app):
    result = await call(make_app(), "snapshot_ecc", {"gpus": ["GPU-nope"]})
    assert result.is_error and "valid GPUs" in result.content[0].text
