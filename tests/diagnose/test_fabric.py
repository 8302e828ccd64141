"""The fabric verdict rules, directly."""

from __future__ import annotations

from k8s_gpu_mcp.diagnose import fabric
from k8s_gpu_mcp.diagnose.fabric import GpuFabric, SwitchError
from k8s_gpu_mcp.gpu.fabric import FabricInfo

DONE = FabricInfo(True, "completed", "Success", 0, "00000000-0000-0000-0000-000000000000", {}, None)


def gpu(
    index: int, info: FabricInfo = DONE, switch_links: int | None = 18, bus: frozenset[str] = frozenset()
):
    return GpuFabric(index, info, switch_links, bus)


def test_completed_everywhere_is_ready():
    v = fabric.verdict([gpu(i) for i in range(8)])
    assert v.nvswitch_system is True and v.multi_gpu_ready is True and v.status == "healthy"
    assert "fabric completed on GPUs 0, 1, 2, 3, 4, 5, 6 and 7 (clique 0" in v.summary
    assert all(rs == () for rs in v.per_gpu.values())


def test_in_progress_and_not_started_block_multi_gpu_jobs():
    training = FabricInfo(True, "in-progress", "Success", 0, DONE.cluster_uuid, {}, None)
    stopped = FabricInfo(True, "not-started", "Success", 0, DONE.cluster_uuid, {}, None)
    v = fabric.verdict([gpu(0), gpu(1, training), gpu(2, stopped)])
    assert v.multi_gpu_ready is False and v.status == "critical"
    assert (
        v.summary == "this node cannot run multi-GPU jobs: GPU 1 fabric in-progress; GPU 2 fabric not-started"
    )
    assert v.per_gpu[1][0].severity == "degraded" and v.per_gpu[2][0].severity == "critical"
    assert v.per_gpu[2][0].action == fabric.FM_ACTION
    assert "has not registered GPUs 1 and 2" in v.fabric_manager


def test_failed_status_and_unhealthy_routes():
    failed = FabricInfo(True, "completed", "Unknown", 0, DONE.cluster_uuid, {}, None)
    routes = FabricInfo(True, "completed", "Success", 0, DONE.cluster_uuid, {"route_unhealthy": True}, None)
    v = fabric.verdict([gpu(0, failed), gpu(1, routes)])
    assert v.multi_gpu_ready is False
    assert v.per_gpu[0][0].message == "fabric registration failed: state completed, status Unknown"
    assert v.per_gpu[1][0].severity == "degraded"


def test_pcie_cards_are_not_supported_by_design():
    none = FabricInfo(
        False, "not-supported", unavailable={"fabric": "NotSupported: nvmlDeviceGetGpuFabricInfoV"}
    )
    v = fabric.verdict([gpu(0, none, switch_links=0)])
    assert v.nvswitch_system is False and v.multi_gpu_ready is None and v.status == "healthy"
    assert v.per_gpu[0] == () and v.summary.startswith("no NVSwitch fabric")


def test_a100_hgx_has_switch_links_but_no_fabric_api():
    none = FabricInfo(False, "not-supported")
    v = fabric.verdict([gpu(i, none, switch_links=12) for i in range(2)])
    assert v.nvswitch_system is True and v.multi_gpu_ready is None and v.status == "healthy"
    assert v.per_gpu[0][0].severity == "info"


def test_unreadable_fabric_is_unknown():
    unread = FabricInfo(None, unavailable={"fabric": "NoPermission: nvmlDeviceGetGpuFabricInfoV"})
    v = fabric.verdict([gpu(0), gpu(1, unread)])
    assert v.multi_gpu_ready is None and v.status == "unknown"
    assert v.per_gpu[1][0].message == "fabric state unreadable: NoPermission: nvmlDeviceGetGpuFabricInfoV"


def test_fatal_sxid_tied_to_the_gpus_behind_the_switch():
    sx = SwitchError(20034, 2, "0000:05:00.0", True, 30, "LTSSM Fault Up")
    # switch bus ids unknown (the captures do not print them): every GPU with NVLinks to a switch
    v = fabric.verdict([gpu(0), gpu(1)], [sx])
    assert v.multi_gpu_ready is False and v.status == "critical"
    assert v.sxids[0].gpus == (0, 1) and v.sxids[0].tied_by == fabric.NO_SWITCH_BUS
    assert v.per_gpu[0][0].evidence["sxid"] == 20034
    # known bus ids: only the GPU whose links end at that switch
    v = fabric.verdict(
        [gpu(0, bus=frozenset({"0000:05:00.0"})), gpu(1, bus=frozenset({"0000:06:00.0"}))], [sx]
    )
    assert v.sxids[0].gpus == (0,) and v.per_gpu[1] == ()
    nonfatal = SwitchError(12028, 0, None, False, None, "egress non-posted PRIV error")
    v = fabric.verdict([gpu(0)], [nonfatal])
    assert v.multi_gpu_ready is True and v.status == "warning"


def test_gpus_in_different_cliques_warn():
    other = FabricInfo(True, "completed", "Success", 3, DONE.cluster_uuid, {}, None)
    v = fabric.verdict([gpu(0), gpu(1, other)])
    assert v.multi_gpu_ready is True and v.status == "warning"
    assert "2 NVLink cliques" in v.reasons[0].message


def test_gfm_state_is_the_fabric_manager_reading():
    conn = FabricInfo(True, "completed", "Success", 0, DONE.cluster_uuid, {"gfm_state": "connected"}, None)
    assert fabric.verdict([gpu(0, conn)]).fabric_manager == "global fabric manager connected on every GPU"
    disc = FabricInfo(True, "completed", "Success", 0, DONE.cluster_uuid, {"gfm_state": "disconnected"}, None)
    v = fabric.verdict([gpu(0, disc)])
    assert v.fabric_manager.startswith("global fabric manager disconnected on GPU 0")
    assert v.per_gpu[0][0].severity == "warning"
