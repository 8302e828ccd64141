"""The memory verdict, rule by rule; an unread counter is unknown, never 0."""

from __future__ import annotations

from dataclasses import replace

from k8s_gpu_mcp.diagnose.ecc import EccState, judge, repair_mechanism

CLEAN_AMPERE = EccState(
    ecc_enabled=True,
    ecc_pending=True,
    volatile_corrected=0,
    volatile_uncorrected=0,
    aggregate_corrected=0,
    aggregate_uncorrected=0,
    sram_threshold_exceeded=False,
    repair="row_remapping",
    remap_correctable=0,
    remap_uncorrectable=0,
    remap_pending=False,
    remap_failure=False,
    histogram={"max": 2560, "high": 0, "partial": 0, "low": 0, "none": 0},
)
CLEAN_VOLTA = replace(
    CLEAN_AMPERE,
    repair="page_retirement",
    remap_correctable=None,
    remap_uncorrectable=None,
    remap_pending=None,
    remap_failure=None,
    histogram=None,
    sram_threshold_exceeded=None,
    retired_sbe=0,
    retired_dbe=0,
    retired_pending=False,
)


def test_clean_gpus_are_healthy():
    for state in (CLEAN_AMPERE, CLEAN_VOLTA):
        v = judge(state)
        assert v.verdict == "healthy" and v.reasons == [] and v.unknown == [] and v.action == "No action."


def test_repair_mechanism_follows_the_architecture():
    assert repair_mechanism(5) == "page_retirement" and repair_mechanism(7) == "row_remapping"
    assert repair_mechanism(None) is None


def test_pending_remap_needs_a_reset():
    v = judge(replace(CLEAN_AMPERE, remap_correctable=1, remap_pending=True))
    assert v.verdict == "reset-required" and "reset" in v.action
    assert v.reasons[0].text.startswith("Row remap pending")


def test_remap_failure_and_sram_threshold_mean_replace():
    assert judge(replace(CLEAN_AMPERE, remap_failure=True)).verdict == "replace"
    v = judge(replace(CLEAN_AMPERE, sram_threshold_exceeded=True))
    assert v.verdict == "replace" and "RMA" in v.action


def test_volatile_uncorrectable_means_reset_and_history_means_monitor():
    assert (
        judge(replace(CLEAN_AMPERE, volatile_uncorrected=1, aggregate_uncorrected=1)).verdict
        == "reset-required"
    )
    v = judge(replace(CLEAN_AMPERE, aggregate_uncorrected=1, remap_uncorrectable=1))
    assert v.verdict == "monitor" and len(v.reasons) == 2


def test_retired_pages_monitor_then_rma_level_and_dbe_beyond_capacity():
    assert judge(replace(CLEAN_VOLTA, retired_sbe=1, retired_dbe=1)).verdict == "monitor"
    assert judge(replace(CLEAN_VOLTA, retired_dbe=2, retired_pending=True)).verdict == "reset-required"
    assert judge(replace(CLEAN_VOLTA, retired_sbe=30, retired_dbe=30)).verdict == "replace"
    v = judge(replace(CLEAN_VOLTA, aggregate_uncorrected=7627, retired_dbe=2))
    assert v.verdict == "replace" and "7627" in v.reasons[0].text


def test_banks_without_spare_rows_are_watched():
    v = judge(replace(CLEAN_AMPERE, histogram={"max": 2559, "high": 0, "partial": 0, "low": 0, "none": 1}))
    assert v.verdict == "monitor" and "none left" in v.reasons[0].text


def test_correctable_only_stays_healthy_with_info_reasons():
    v = judge(replace(CLEAN_AMPERE, aggregate_corrected=353, volatile_corrected=353, remap_correctable=1))
    assert v.verdict == "healthy" and {r.level for r in v.reasons} == {"info"}


def test_unread_deciding_counters_make_the_verdict_unknown_not_healthy():
    state = replace(
        CLEAN_AMPERE,
        remap_pending=None,
        remap_failure=None,
        remap_correctable=None,
        remap_uncorrectable=None,
        histogram=None,
        unreadable={"remapped_rows": "NotSupported: nvmlDeviceGetRemappedRows"},
    )
    v = judge(state)
    assert v.verdict == "unknown" and v.unknown == ["remapped rows: NotSupported: nvmlDeviceGetRemappedRows"]
    assert "nvidia-smi" in v.action
    assert judge(replace(CLEAN_AMPERE, aggregate_uncorrected=None)).verdict == "unknown"
    assert judge(replace(CLEAN_AMPERE, ecc_enabled=False)).verdict == "unknown"


def test_a_known_problem_wins_over_unknown_counters_which_stay_listed():
    v = judge(replace(CLEAN_AMPERE, remap_pending=True, aggregate_uncorrected=None))
    assert v.verdict == "reset-required" and v.unknown == ["aggregate uncorrected: unreadable"]
