"""The MIG rules, directly."""

from __future__ import annotations

from k8s_gpu_mcp.diagnose import mig
from k8s_gpu_mcp.gpu.mig import MigDevice, MigState


def dev(index: int, gi: int, sram: int | None = 0, **kw) -> MigDevice:
    return MigDevice(index, f"MIG-{index}", profile="1g.20gb", gpu_instance_id=gi, compute_instance_id=0,
                     sram_uncorrected_volatile=sram, **kw)  # fmt: skip


def test_healthy_devices_give_one_info_line():
    reasons = mig.reasons(MigState(True, True, 7, (dev(0, 3), dev(1, 4))))
    assert [(r.severity, r.message) for r in reasons] == [("info", "MIG enabled: 2 device(s), 2x 1g.20gb")]


def test_an_instance_with_sram_errors_is_degraded_with_its_ids():
    reasons = mig.reasons(MigState(True, True, 7, (dev(0, 3), dev(1, 4, sram=2))))
    bad = reasons[0]
    assert bad.component == "mig" and bad.severity == "degraded"
    assert (
        bad.message
        == "MIG 1g.20gb (GI 4/CI 0, MIG-1): 2 uncorrectable SRAM ECC error(s) since the last reset"
    )
    assert bad.evidence["gpu_instance_id"] == 4 and bad.action == mig.SRAM_ACTION


def test_unknown_is_never_healthy():
    unread = MigState(True, True, 7, None, {"devices": "MIG device 0: NoPermission"})
    assert mig.reasons(unread)[0].severity == "unknown"
    counter = dev(
        0, 3, sram=None, unavailable={"sram_uncorrected_volatile": "NoData: nvmlDeviceGetMemoryErrorCounter"}
    )
    assert mig.reasons(MigState(True, True, 7, (counter,)))[0].severity == "unknown"
    by_design = dev(0, 3, sram=None, unavailable={"sram_uncorrected_volatile": "NotSupported: x"})
    assert [r.severity for r in mig.reasons(MigState(True, True, 7, (by_design,)))] == ["info"]
    mode = MigState(None, None, None, None, {"mig_mode": "Unknown: nvmlDeviceGetMigMode"})
    assert mig.reasons(mode)[0].severity == "unknown"


def test_no_mig_and_mig_off_say_nothing():
    assert (
        mig.reasons(MigState(None, None, None, (), {"mig_mode": "NotSupported: nvmlDeviceGetMigMode"})) == []
    )
    assert mig.reasons(MigState(False, False)) == []


def test_pending_change_and_empty_mig():
    pending = mig.reasons(MigState(False, True))
    assert pending[0].severity == "warning" and "enabled after the next GPU reset" in pending[0].message
    empty = mig.reasons(MigState(True, True, 7, ()))
    assert empty[0].severity == "warning" and empty[0].action == mig.EMPTY_ACTION
