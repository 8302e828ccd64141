"""Health components, status, score and node verdict, from plain inputs."""

from __future__ import annotations

from dataclasses import replace

from k8s_gpu_mcp.diagnose.ecc import EccState, judge
from k8s_gpu_mcp.diagnose.health import HealthInputs, XidFinding, assess
from k8s_gpu_mcp.diagnose.node import node_verdict
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
    status, action = node_verdict([ok, bad])
    assert status == "degraded" and action.startswith("Move workloads off GPU 3")
    lost = assess(HealthInputs(index=5, lost_reason="GpuIsLost"))
    assert node_verdict([ok, bad, lost])[0] == "lost"
    assert node_verdict([ok]) == ("healthy", "No action: every GPU passed.")
