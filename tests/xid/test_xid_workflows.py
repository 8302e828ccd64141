"""NVIDIA's investigatory workflows, per GPU over the window, change the advice and say the pattern."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from k8s_gpu_mcp.diagnose.ecc import ACTIONS, XID_VERDICT, EccState, judge
from k8s_gpu_mcp.xid.analyze import analyze
from k8s_gpu_mcp.xid.models import XidAnalysis
from k8s_gpu_mcp.xid.parse import parse_lines
from k8s_gpu_mcp.xid.workflows import HARDWARE_DIAG

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
BOOT = NOW - timedelta(hours=2)
GPUS = [{"index": i, "uuid": f"GPU-{i}", "bus_id": f"00000000:{b}:00.0"} for i, b in enumerate(["18", "2A"])]
A, B = "PCI:0000:18:00", "PCI:0000:2a:00"


def _run(lines: list[str]) -> XidAnalysis:
    return analyze(parse_lines(lines, boot_time=BOOT, now=NOW).events, GPUS, since=None, now=NOW)


def _wf(r: XidAnalysis, xid: int, gpu: int = 0):
    (found,) = [w for w in r.workflows if w.xid == xid and w.index == gpu]
    summary = [s for s in r.xids if s.xid == xid and s.index == gpu][0]
    assert (summary.catalog_severity, summary.sre_action) == (
        found.catalog_severity,
        found.sre_action,
    )  # it is the advice
    return found


def _x13(t: float, pid: int, where: str, bus: str = A) -> str:
    return f"[ {t}] NVRM: Xid ({bus}): 13, pid={pid}, name=python3, Graphics SM Warp Exception on ({where}): Illegal Instruction"


def test_xid13_burst_on_one_tpc_across_sms_points_at_hardware() -> None:
    r = _run([_x13(100.0, 7, "GPC 2, TPC 3, SM 0"), _x13(100.0, 7, "GPC 2, TPC 3, SM 1")])
    wf = _wf(r, 13)
    assert (
        wf.catalog_severity == "Critical"
        and wf.sre_action == HARDWARE_DIAG
        and "across SMs 0, 1" in wf.pattern
    )
    assert "WORKFLOW_XID_13" in r.action or HARDWARE_DIAG in r.action


def test_xid13_several_lines_of_one_fault_are_not_a_burst() -> None:
    """gpud's capture: Warp Exception + Global Exception lines of one fault, same SM, same time."""
    lines = [
        _x13(100.0, 7, "GPC 7, TPC 7, SM 0"),
        "[ 100.0] NVRM: Xid (PCI:0000:18:00): 13, pid=7, name=python3, Graphics SM Global Exception on (GPC 7, TPC 7, SM 0): Multiple Warp Errors",
    ]
    wf = _wf(_run(lines), 13)
    assert wf.catalog_severity == "Warning" and "check the application" in wf.pattern


def test_xid13_repeats_on_the_same_sm_at_other_times() -> None:
    wf = _wf(_run([_x13(100.0, 7, "GPC 1, TPC 0, SM 1"), _x13(900.0, 8, "GPC 1, TPC 0, SM 1")]), 13)
    assert wf.catalog_severity == "Critical" and "same SM" in wf.pattern


def _x31(t: float, name: str, bus: str = A) -> str:
    return f"[ {t}] NVRM: Xid ({bus}): 31, pid=1{int(t)}, name={name}, Ch 00000008, intr 10000000. MMU Fault"


def test_xid31_different_applications_on_one_gpu_point_at_hardware() -> None:
    wf = _wf(_run([_x31(100.0, "python3"), _x31(200.0, "trainer")]), 31)
    assert (
        wf.catalog_severity == "Critical"
        and wf.sre_action == HARDWARE_DIAG
        and "2 different applications" in wf.pattern
    )


def test_xid31_same_application_on_several_gpus_points_at_the_application() -> None:
    r = _run([_x31(100.0, "python3"), _x31(200.0, "python3"), _x31(300.0, "python3", B)])
    wf = _wf(r, 31)
    assert wf.catalog_severity == "Warning" and "several GPUs" in wf.pattern
    assert _wf(r, 31, 1).pattern == "solo: check the application"


def test_xid45_alone_restarts_fabric_manager_with_others_follows_them() -> None:
    alone = "[ 100.0] NVRM: Xid (PCI:0000:18:00): 45, pid=1, name=a, Ch 00000008"
    wf = _wf(_run([alone]), 45)
    assert (wf.pattern, wf.catalog_severity) == ("solo", "Warning") and "Fabric Manager" in wf.sre_action
    wf = _wf(_run([_x31(50.0, "a"), alone]), 45)
    assert (
        wf.catalog_severity == "Info"
        and wf.pattern == "with XID 31 on this GPU"
        and wf.sre_action == "None: act on XID 31"
    )


X48 = "[ 100.0] NVRM: Xid (PCI:0000:18:00): 48, pid=1, name=a, An uncorrectable double bit error (DBE) has been detected"
X63 = "[ 100.1] NVRM: Xid (PCI:0000:18:00): 63, pid='<unknown>', name=<unknown>, Row Remapper: New row marked for remapping, reset gpu to activate."
X64 = "[ 100.1] NVRM: Xid (PCI:0000:18:00): 64, pid='<unknown>', name=<unknown>, Row Remapper Error: row remapping failed"


def test_xid48_alone_with_63_and_with_64() -> None:
    assert (_wf(_run([X48]), 48).pattern, _wf(_run([X48]), 48).catalog_severity) == ("solo", "Critical")
    wf = _wf(_run([X48, X63]), 48)
    assert (
        wf.catalog_severity == "Fatal"
        and wf.sre_action == "Drain the node and reset the GPU"
        and "XID 63" in wf.pattern
    )
    wf = _wf(_run([X48, X64]), 48)
    assert wf.catalog_severity == "Fatal" and wf.sre_action == ACTIONS["replace"] and "replace" in wf.pattern


def test_xid48_on_another_gpu_does_not_count_as_with_63() -> None:
    assert _wf(_run([X48, X63.replace("0000:18:00", "0000:2a:00")]), 48).pattern == "solo"


def test_xid48_sram_adds_the_threshold_check() -> None:
    sram = X48.replace("DBE) has been detected", "DBE) has been detected in SRAM")
    assert "SRAM threshold" in _wf(_run([sram]), 48).pattern


def test_xid63_and_64_advice_is_the_ecc_verdicts() -> None:
    """The same evidence, the same advice: snapshot_ecc's verdict for a pending remap / a remap failure."""
    pending = judge(
        EccState(
            ecc_enabled=True,
            volatile_uncorrected=0,
            aggregate_uncorrected=0,
            repair="row_remapping",
            remap_pending=True,
            remap_failure=False,
        )
    )
    failed = judge(
        EccState(
            ecc_enabled=True,
            volatile_uncorrected=0,
            aggregate_uncorrected=0,
            repair="row_remapping",
            remap_pending=False,
            remap_failure=True,
        )
    )
    assert (pending.verdict, failed.verdict) == (XID_VERDICT[63], XID_VERDICT[64])
    wf63, wf64 = _wf(_run([X63]), 63), _wf(_run([X64]), 64)
    assert wf63.sre_action == pending.action and wf63.catalog_severity == "Critical"
    assert wf64.sre_action == failed.action and wf64.catalog_severity == "Fatal"


def _x74(t: float, r0: str, link: int = 3) -> str:
    return f"[ {t}] NVRM: Xid (PCI:0000:18:00): 74, pid='<unknown>', name=<unknown>, NVLink: fatal error detected on link {link}({r0}, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0)"


def test_xid74_ecc_parity_more_than_twice_on_a_link_is_reported() -> None:
    assert [w for w in _run([_x74(1.0, "0x10"), _x74(2.0, "0x10")]).workflows if w.xid == 74] == []
    wf = _wf(_run([_x74(1.0, "0x10"), _x74(2.0, "0x20"), _x74(3.0, "0x10"), _x74(4.0, "0x10", 5)]), 74)
    assert (
        wf.workflow == "WORKFLOW_NVLINK_ERR"
        and "link 3" in wf.pattern
        and "report to NVIDIA" in wf.sre_action
    )


def _x154(t: float, old: str, new: str) -> str:
    return f"[ {t}] NVRM: Xid (PCI:0000:18:00): 154, GPU recovery action changed from {old} to {new}"


def test_xid154_follows_the_latest_recovery_action() -> None:
    r = _run(
        [
            _x154(1.0, "0x0 (None)", "0x1 (GPU Reset Required)"),
            _x154(2.0, "0x1 (GPU Reset Required)", "0x2 (Node Reboot Required)"),
        ]
    )
    wf = _wf(r, 154)
    assert (
        wf.catalog_severity == "Fatal" and "Node Reboot Required" in wf.pattern and "reboot" in wf.sre_action
    )
