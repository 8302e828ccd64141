"""The GPU reset preconditions, as pure rules over a reset state and the host's facts."""

from __future__ import annotations

from k8s_gpu_mcp.diagnose.reset import blocking, preconditions
from k8s_gpu_mcp.gpu.readings import ResetState

METHOD = "nvidia-smi --gpu-reset -i 00000000:3B:00.0"
IDLE = ResetState(
    lost=False, process_pids=[], mig_mode_current=False, mig_mode_pending=False, persistence_mode=True
)


def by_name(state: ResetState, method: str | None = METHOD, mock: list[str] | None = None) -> dict:
    return {c.name: c for c in preconditions(state, method, ["no nvidia-smi in /host"], mock)}


def test_an_idle_gpu_with_a_method_passes_every_blocking_check():
    checks = preconditions(IDLE, METHOD, [], None)
    assert blocking(checks) == []
    assert [c.name for c in checks] == ["no_processes", "mig", "persistence_mode", "reset_method", "peers"]
    assert by_name(IDLE)["reset_method"].detail == METHOD
    assert by_name(IDLE)["peers"].ok is None and not by_name(IDLE)["peers"].blocking  # never claimed checked


def test_listed_processes_block_and_an_unreadable_list_blocks_too():
    busy = ResetState(lost=False, process_pids=[4242], mig_mode_current=False, persistence_mode=True)
    assert by_name(busy)["no_processes"].ok is False and "4242" in by_name(busy)["no_processes"].detail
    unread = ResetState(
        lost=False,
        process_pids=None,
        mig_mode_current=False,
        unavailable={"compute_processes": "Timeout: nvmlDeviceGetComputeRunningProcesses"},
    )
    check = by_name(unread)["no_processes"]
    assert check.ok is None and check.blocking and "Timeout" in check.detail
    assert check in blocking(preconditions(unread, METHOD, [], None))


def test_mig_not_supported_is_no_mig_but_unreadable_mig_blocks():
    no_mig = ResetState(
        lost=False, process_pids=[], unavailable={"mig_mode_current": "NotSupported: nvmlDeviceGetMigMode"}
    )
    assert by_name(no_mig)["mig"].ok is True
    unread = ResetState(
        lost=False, process_pids=[], unavailable={"mig_mode_current": "NoPermission: nvmlDeviceGetMigMode"}
    )
    assert by_name(unread)["mig"].ok is None
    enabled = ResetState(lost=False, process_pids=[], mig_mode_current=True, mig_mode_pending=False)
    assert (
        by_name(enabled)["mig"].ok is False and "pending MIG mode disabled" in by_name(enabled)["mig"].detail
    )


def test_a_lost_gpu_and_a_missing_method_block():
    lost = ResetState(lost=True, unavailable={"*": "GpuIsLost: nvmlDeviceGetUUID"})
    names = [c.name for c in blocking(preconditions(lost, None, ["no PCI bus id"], None))]
    assert names[:2] == ["gpu_reachable", "no_processes"] and "reset_method" in names
    assert by_name(lost, None)["reset_method"].detail == "no reset method: no nvidia-smi in /host"


def test_the_mock_fleet_refuses_real_host_paths():
    assert by_name(IDLE, mock=["/sys"])["mock_safety"].ok is False
    assert by_name(IDLE, mock=[])["mock_safety"].ok is True
    assert "mock_safety" not in by_name(IDLE)  # real NVML: not a mock concern
    assert "mock_safety" not in by_name(IDLE, None, mock=[])  # no method: nothing would run
