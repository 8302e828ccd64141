"""Health components, status, score and node verdict, from plain inputs."""

from __future__ import annotations

from dataclasses import replace

from k8s_gpu_mcp.diagnose import pcie
from k8s_gpu_mcp.diagnose.ecc import CORRECTED_STORM, EccState, judge
from k8s_gpu_mcp.diagnose.health import HealthInputs, XidFinding, Zombie, assess
from k8s_gpu_mcp.diagnose.node import gpus_text, remedy, verdict
from k8s_gpu_mcp.diagnose.throttle import ThrottleInputs, interpret
from k8s_gpu_mcp.diagnose.topology import Finding

IDLE = HealthInputs(
    index=0,
    temperature_c=30,
    slowdown_c=89,
    shutdown_c=95,
    max_operating_c=87,
    power_draw_w=70.0,
    power_limit_w=700.0,
    power_default_limit_w=700.0,
    throttling=interpret(ThrottleInputs(mask=0x1)),
    process_count=0,
    process_memory_mib=0,
)


def test_idle_gpu_is_healthy_with_full_score():
    a = assess(IDLE)
    assert (a.status, a.score, a.action) == ("healthy", 100, "No action.")
    assert a.summary == "GPU 0: healthy (100/100): all checks passed"


def test_temperature_is_judged_against_nvml_thresholds():
    assert assess(replace(IDLE, temperature_c=85)).status == "warning"  # within 5 C of slowdown 89
    hot = assess(replace(IDLE, temperature_c=91))
    assert hot.status == "degraded" and "89 C" in hot.reasons[0].message
    assert hot.reasons[0].evidence["slowdown_c"] == 89
    assert assess(replace(IDLE, temperature_c=96)).status == "critical"
    unknown = assess(replace(IDLE, temperature_c=None, unreadable={"temperature_c": "NoPermission: x"}))
    assert unknown.status == "unknown" and unknown.reasons[0].severity == "unknown"


def test_power_brake_throttling_points_at_the_psu():
    t = interpret(
        ThrottleInputs(mask=0x88, sm_clock_mhz=990, max_sm_clock_mhz=1980, power_w=310, power_limit_w=700)
    )
    a = assess(replace(IDLE, throttling=t))
    assert a.status == "degraded" and "PSU" in a.action


def test_ecc_verdict_maps_to_status_and_action():
    state = EccState(ecc_enabled=True, volatile_uncorrected=0, aggregate_uncorrected=0, repair="row_remapping",
                     remap_pending=True, remap_failure=False)  # fmt: skip
    a = assess(replace(IDLE, ecc=judge(state)))
    assert a.status == "degraded" and a.score == 75 and "reset" in a.action
    failed = assess(replace(IDLE, ecc=judge(replace(state, remap_pending=False, remap_failure=True))))
    assert failed.status == "critical" and "RMA" in failed.action


def test_xid_findings_feed_health_with_their_action():
    xid = XidFinding(48, 0, "Fatal", "Drain and reset the GPU", name="DBE", count=2)
    a = assess(replace(IDLE, xids=[xid]))
    assert a.status == "critical" and a.action == "Drain and reset the GPU"
    assert a.reasons[0].message == "XID 48 DBE x2" and a.reasons[0].evidence["xid"] == 48
    info = assess(replace(IDLE, xids=[XidFinding(63, 0, "Info", "none")]))
    assert info.status == "healthy"


def test_lost_gpu_scores_zero_and_says_reboot():
    a = assess(
        HealthInputs(
            index=4, lost_reason="GpuIsLost: nvmlDeviceGetUUID", xids=[XidFinding(79, 4, "Fatal", "reboot")]
        )
    )
    assert (a.status, a.score) == ("lost", 0)
    assert "reboot" in a.action and [r.component for r in a.reasons] == ["lost", "xid"]


def test_nvlink_findings_and_processes():
    f = Finding(
        "inactive_links", "degraded", [1], "GPU 1: 1 of 18 NVLinks inactive (links 4)", "NCCL slows", [4]
    )
    a = assess(replace(IDLE, nvlink=[f], process_count=2, process_memory_mib=1024))
    assert a.status == "degraded" and "NVLinks inactive" in a.summary
    assert any(r.component == "processes" and "2 processes using 1024 MiB" in r.message for r in a.reasons)


def test_score_counts_each_component_once():
    t = interpret(ThrottleInputs(mask=0x48, temperature_c=91, slowdown_c=89))
    a = assess(replace(IDLE, temperature_c=91, throttling=t))
    assert a.score == 50 and a.status == "degraded"


def test_node_verdict_is_the_worst_gpu_and_names_it():
    ok = assess(IDLE)
    bad = assess(replace(IDLE, index=3, temperature_c=91))
    v = verdict([ok, bad])
    status, action = v.status, v.action
    assert status == "degraded" and action.startswith("Move workloads off GPU 3")
    lost = assess(HealthInputs(index=5, lost_reason="GpuIsLost"))
    assert verdict([ok, bad, lost]).status == "lost"
    v = verdict([ok])
    assert (v.status, v.action) == ("healthy", "No action: every GPU passed.")


# ---- issue 16: verdicts an SRE would sign -------------------------------------------------------


def test_power_cap_at_the_limit_under_load_is_normal():
    t = interpret(
        ThrottleInputs(
            mask=0x4, sm_clock_mhz=1755, max_sm_clock_mhz=1980, power_w=695, power_limit_w=700, pstate=0
        )
    )
    a = assess(replace(IDLE, throttling=t, power_draw_w=695))
    assert (a.status, a.score, a.action) == ("healthy", 100, "No action.")
    assert "normal under load" in a.reasons[0].message and a.reasons[0].action is None


def test_power_cap_on_an_idle_card_is_an_artifact():
    t = interpret(
        ThrottleInputs(
            mask=0x4, sm_clock_mhz=0, max_sm_clock_mhz=1695, power_w=15.7, power_limit_w=150, pstate=8
        )
    )
    assert t.expected and "idle artifact" in t.expected and "P8" in t.expected
    assert assess(replace(IDLE, throttling=t)).status == "healthy"


def test_idle_clocks_are_lowered_only_below_the_max():
    assert (
        "clocks lowered"
        in interpret(ThrottleInputs(mask=0x1, sm_clock_mhz=345, max_sm_clock_mhz=1980)).explanation
    )
    at_max = interpret(ThrottleInputs(mask=0x1, sm_clock_mhz=1590, max_sm_clock_mhz=1590)).explanation
    assert "clocks lowered" not in at_max and "not lowered" in at_max


def test_board_limit_still_warns_without_advising_a_higher_limit():
    t = interpret(ThrottleInputs(mask=0x200, power_w=100, power_limit_w=300))
    a = assess(replace(IDLE, throttling=t))
    assert a.status == "warning" and "raise" not in a.action.lower()


def test_corrected_error_storm_is_monitor_below_it_info():
    base = EccState(ecc_enabled=True, volatile_uncorrected=0, aggregate_uncorrected=0, repair="row_remapping",
                    remap_pending=False, remap_failure=False, aggregate_corrected=60000)  # fmt: skip
    assert judge(replace(base, volatile_corrected=CORRECTED_STORM)).verdict == "monitor"
    assert judge(replace(base, volatile_corrected=353)).verdict == "healthy"


def test_pcie_rules():
    busy = pcie.PcieState(curr_gen=3, max_gen=5, curr_width=8, max_width=16, replay=150, busy=True)
    kinds = [f.message.split(":")[0] for f in pcie.judge(busy)]
    assert any("x8 of x16" in k for k in kinds) and any("Gen3 of Gen5" in f.message for f in pcie.judge(busy))
    idle = replace(busy, curr_width=16, busy=False)
    assert [f.severity for f in pcie.judge(idle)] == ["info"]  # Gen drop while idle is power saving
    assert (
        pcie.replay_rate((0.0, 100), (60.0, 109)) == 9.0 and pcie.replay_rate((0.0, 100), (0.5, 200)) is None
    )
    assert pcie.replay_rate((0.0, 100), (60.0, 10)) is None  # the counter was reset
    rising = replace(idle, replay_rate_per_min=9.0)
    assert [f.severity for f in pcie.judge(rising)] == ["warning"]
    assert [f.severity for f in pcie.judge(replace(idle, replay_rate_per_min=8.0))] == ["info"]


def test_zombies_warn_and_unaccounted_memory_needs_a_complete_non_empty_list():
    z = assess(replace(IDLE, process_count=1, process_memory_mib=30720, memory_used_mib=30720,
                       process_list_complete=True, zombies=[Zombie(4194303, 30720, "pid gone")]))  # fmt: skip
    assert z.status == "warning" and "1 zombie process" in z.summary and "-r -i 0" in z.action
    orphan = replace(IDLE, process_count=1, process_memory_mib=6144, memory_used_mib=8192,
                     memory_total_mib=81559, process_list_complete=True)  # fmt: skip
    assert assess(orphan).status == "warning" and "2048 MiB" in assess(orphan).summary
    empty = replace(orphan, process_count=0, process_memory_mib=0)
    assert assess(empty).status == "healthy"  # an empty list may be a driver limit: not proof
    assert assess(replace(orphan, memory_used_mib=6300)).status == "healthy"  # under 1% / 256 MiB
    assert "1 process " in assess(replace(IDLE, process_count=1, process_memory_mib=10)).reasons[0].message


def test_a_check_that_did_not_run_is_unknown_never_all_passed():
    a = assess(replace(IDLE, failed_checks={"xid": "XID analysis failed: OverflowError()"}))
    assert a.status == "unknown" and "all checks passed" not in a.summary and "Verify" in a.action
    worse = assess(replace(IDLE, temperature_c=91, failed_checks={"xid": "boom"}))
    assert worse.status == "degraded" and "not verified: xid" in worse.summary


def test_node_text_is_generated_once_from_the_ranked_list():
    xid = XidFinding(48, 0, "Fatal", "Drain the node and reset the GPU")
    crit = [assess(replace(IDLE, index=i, xids=[replace(xid, gpu_index=i)])) for i in (3, 5)]
    warn = assess(replace(IDLE, index=1, failed_checks={}, temperature_c=86))
    unknown = assess(replace(IDLE, index=2, failed_checks={"nvlink": "counters unreadable"}))
    v = verdict([assess(IDLE), warn, unknown, *crit])
    status, action = v.status, v.action
    assert status == "critical"
    assert action == (
        "Cordon the node and drain the workloads on GPUs 3 and 5; then GPUs 3 and 5: Reset the GPU; "
        "GPU 1: Check chassis airflow, fans and inlet temperature; the GPU throttles until it cools; "
        "verify GPU 2 (not checked: nvlink)."
    )
    assert verdict([warn]).action.startswith("Keep the node in service. GPU 1: Check chassis")
    assert (
        gpus_text([6, 1, 2]) == "GPUs 1, 2 and 6" and remedy("None") == "" and remedy("Drain the node") == ""
    )
