"""MIG and the NVLink fabric through every tool that shows them, on the real-capture profiles and the
bundled scenarios (mig-instance-ecc, fabric-down)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from k8s_gpu_mcp.k8s.client import set_default_api
from tests.conftest import call
from tests.k8s.fake_api import FakeCluster, gpu_node, gpu_pod

MIG = "a100-sxm4-80gb-mig"
FULL = {"detail": "full"}
BAD_MIG_UUID = "MIG-7f0c9d21-4e8a-5b3c-8d1e-2a6f4b9c7e41"


async def data(app, tool, args=None):
    result = await call(app, tool, args or {})
    assert not result.is_error, result.content
    return result.structured_content


@pytest.mark.anyio
async def test_inventory_lists_the_captured_mig_devices(make_app):
    gpu = (await data(make_app(MIG), "get_gpu_inventory", FULL))["gpus"][0]
    assert gpu["mig_mode_current"] is True and gpu["mig"]["max_devices"] == 7
    devices = gpu["mig"]["devices"]
    assert [(d["gpu_instance_id"], d["compute_instance_id"], d["profile"]) for d in devices] == [
        (3, 0, "1g.20gb"), (4, 0, "1g.20gb"), (5, 0, "1g.20gb"), (6, 0, "1g.20gb")
    ]  # fmt: skip
    assert all(d["memory_total_mib"] == 19968 and d["multiprocessor_count"] == 14 for d in devices)
    assert devices[0]["uuid"] is None and devices[0]["unavailable"]["uuid"] == "NoData: nvmlDeviceGetUUID"
    h100 = (await data(make_app(), "get_gpu_inventory", FULL))["gpus"][0]
    assert h100["mig_mode_current"] is False and h100["mig"] is None


@pytest.mark.anyio
async def test_scenario_inventory_processes_and_ecc_name_the_instance(make_app):
    app = make_app(MIG, "mig-instance-ecc")
    inv = (await data(app, "get_gpu_inventory", FULL))["gpus"][0]["mig"]["devices"]
    assert inv[1]["uuid"] == BAD_MIG_UUID and inv[1]["sram_uncorrected_volatile"] == 1
    procs = (await data(app, "list_gpu_processes", FULL))["gpus"][0]["processes"]
    assert [(p["pid"], p["mig_profile"], p["mig_device_uuid"], p["mig_device_index"]) for p in procs] == [
        (4242, "1g.20gb", BAD_MIG_UUID, 1)
    ]
    ecc = await data(app, "snapshot_ecc", {"detail": "full"})
    assert ecc["gpus"][0]["mig_devices"][1]["sram_uncorrected_volatile"] == 1
    assert "unknown in MIG mode" in ecc["problems"][0]["reason"]
    assert ecc["status"] == "unknown"  # the remap state is unknown in MIG mode, never healthy


@pytest.mark.anyio
async def test_health_shows_the_bad_instance_as_a_problem_with_evidence(make_app):
    summary = await data(make_app(MIG, "mig-instance-ecc"), "get_gpu_health")
    assert summary["status"] == "degraded"
    problem = summary["problems"][0]
    assert problem["reason"].startswith("MIG 1g.20gb (GI 4/CI 0, " + BAD_MIG_UUID)
    mig = next(e for e in problem["evidence"] if e["check"] == "mig")
    assert mig["status"] == "degraded" and mig["readings"]["sram_uncorrected_volatile"] == 1
    assert "XID 94" in summary["action"] and "nvidia-smi -r -i 0" in summary["action"]
    clean = await data(make_app(MIG), "get_gpu_health", {"detail": "full"})
    reasons = clean["gpus"][0]["reasons"]
    assert [r["message"] for r in reasons if r["component"] == "mig"] == [
        "MIG enabled: 4 device(s), 4x 1g.20gb"
    ]
    assert all(r["component"] != "fabric" for r in reasons)  # no fabric API on A100: nothing to say
    nvlink = next(r for r in reasons if r["component"] == "nvlink")  # unknown in MIG mode, with why
    assert (
        nvlink["severity"] == "unknown"
        and "unknown in MIG mode: NVLink queries are not supported" in nvlink["message"]
    )
    memory = next(r for r in reasons if r["component"] == "memory")
    assert memory["severity"] == "unknown" and "remapped rows: unknown in MIG mode" in memory["message"]


@pytest.mark.anyio
@pytest.mark.parametrize(("profile", "clique"), [("h100-sxm5-80gb-x8", 0), ("gb200-x4", 2), ("b200-x8", 0)])
async def test_fabric_from_the_captures_is_completed(make_app, profile, clique):
    topo = (await data(make_app(profile), "inspect_topology", FULL))["fabric"]
    assert topo["nvswitch_system"] is True and topo["multi_gpu_ready"] is True
    assert {(g["state"], g["registration_status"], g["clique_id"]) for g in topo["gpus"]} == {
        ("completed", "Success", clique)
    }
    health = await data(make_app(profile), "get_gpu_health", FULL)
    assert health["fabric"]["multi_gpu_ready"] is True
    assert all(r["component"] != "fabric" for g in health["gpus"] for r in g["reasons"])
    assert (await data(make_app(profile), "get_gpu_health"))["fabric"] is None  # the summary: nothing to say


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["l40s", "t4"])
async def test_pcie_cards_have_no_fabric_by_design(make_app, profile):
    topo = (await data(make_app(profile), "inspect_topology", FULL))["fabric"]
    assert topo["nvswitch_system"] is False and topo["status"] == "healthy"
    assert topo["gpus"][0]["supported"] is False and topo["gpus"][0]["problems"] == []
    health = await data(make_app(profile), "get_gpu_health", {"detail": "full"})
    assert health["fabric"] is None
    # NotSupported is said once, by design; the summary leaves it out (never an unknown)
    assert health["unavailable"]["fabric"] == "NotSupported"
    assert "nvmlDeviceGetGpuFabricInfoV" in health["not_supported"]["calls"]
    summary = await data(make_app(profile), "get_gpu_health")
    assert "fabric" not in summary["unavailable"] and summary["fabric"] is None


@pytest.mark.anyio
async def test_fabric_down_scenario_verdict(make_app):
    app = make_app("h100-sxm5-80gb-x8", "fabric-down")
    health = await data(app, "get_gpu_health")
    assert health["status"] == "critical"
    assert health["fabric"]["multi_gpu_ready"] is False
    assert health["fabric"]["summary"].startswith(
        "this node cannot run multi-GPU jobs: GPU 3 fabric not-started"
    )
    assert "GPU 5 fabric in-progress" in health["fabric"]["summary"]
    problems = {p["index"]: p for p in health["problems"]}
    assert problems[3]["status"] == "critical" and problems[5]["status"] == "degraded"
    assert problems[3]["evidence"][0]["check"] == "fabric"
    assert "fabric not-started" in problems[3]["evidence"][0]["finding"]
    # NVML's status, clique and cluster UUID are valid only once the registration completes: the summary
    # leaves them out of a pending GPU's evidence (the state in the finding is it); full keeps them as read
    assert "readings" not in problems[3]["evidence"][0]
    full = {p["index"]: p for p in (await data(app, "get_gpu_health", FULL))["problems"]}
    readings = full[3]["evidence"][0]["readings"]
    assert readings["cluster_uuid"] == "00000000-0000-0000-0000-000000000000"
    assert readings["registration_status"] == "Success" and readings["clique_id"] == 0
    assert "status" not in readings, "status is the health scale's word; NVML's return has its own name"
    assert health["action"].startswith("Cordon the node and drain the workloads on GPU 3")
    assert "nvidia-fabricmanager" in health["action"]
    summary = await data(app, "inspect_topology")
    assert summary["fabric"]["multi_gpu_ready"] is False
    # each GPU's fabric problem is in problems; the summary's fabric has no per-GPU list and no empty one
    assert not {"gpus", "sxid_notes", "sxids", "findings", "unavailable"} & set(summary["fabric"])
    fabric_evidence = [
        e for p in summary["problems"] for e in p.get("evidence", []) if e["check"] == "fabric"
    ]
    assert len(fabric_evidence) == 2 and all("readings" not in e for e in fabric_evidence)
    assert {p["index"]: p["status"] for p in summary["problems"] if p["status"] != "unknown"} == {
        3: "critical",
        5: "degraded",
    }
    topo = (await data(app, "inspect_topology", FULL))["fabric"]
    assert [g["index"] for g in topo["gpus"] if g["problems"]] == [3, 5]
    assert "has not registered GPUs 3 and 5" in topo["fabric_manager"]


@pytest.mark.anyio
async def test_a_fatal_sxid_takes_every_gpu_behind_the_switches(make_app):
    line = "[ 3600.2] nvidia-nvswitch1: SXid (PCI:0000:06:00.0): 20034, Fatal, Link 30 LTSSM Fault Up"
    app = make_app("h100-sxm5-80gb-x8", {"name": "sxid", "profile": "h100-sxm5-80gb-x8", "kernel_log": line})
    topo = (await data(app, "inspect_topology"))["fabric"]
    assert topo["multi_gpu_ready"] is False and topo["sxids"][0]["sxid"] == 20034
    assert topo["sxids"][0]["gpus"] == list(range(8))  # the captures hold no switch bus ids: every GPU
    health = await data(app, "get_gpu_health", {"since": "30d"})
    assert health["status"] == "critical" and health["fabric"]["multi_gpu_ready"] is False
    assert "NVSwitch 1 SXid 20034 (fatal, switch link 30)" in health["problems"][0]["reason"]


@pytest.fixture
def mig_cluster() -> Iterator[FakeCluster]:
    here = gpu_pod(
        "train", "gpu-node-test", None, env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": BAD_MIG_UUID}]
    )
    here["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.20gb": "1"}}
    there = gpu_pod(
        "other", "gpu-node-2", None, env=[{"name": "NVIDIA_VISIBLE_DEVICES", "value": BAD_MIG_UUID}]
    )
    there["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.20gb": "1"}}
    blind = gpu_pod("blind", "gpu-node-test", None)
    blind["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.20gb": "1"}}
    cluster = FakeCluster([gpu_node("gpu-node-test"), gpu_node("gpu-node-2")], [here, there, blind])
    set_default_api(cluster.api())
    yield cluster
    set_default_api(None)


@pytest.mark.anyio
async def test_pod_allocation_joins_mig_uuids_on_this_node(make_app, mig_cluster):
    result = await data(make_app(MIG, "mig-instance-ecc"), "get_pod_gpu_allocation", {"node": "*"})
    pods = {p["name"]: p for p in result["pods"]}
    assert pods["train"]["mig_profiles"] == {"1g.20gb": 1}
    assert pods["train"]["mig_devices"] == [
        {"uuid": BAD_MIG_UUID, "index": 0, "mig_device_index": 1, "profile": "1g.20gb",
         "gpu_instance_id": 4, "compute_instance_id": 0, "unavailable": {}}
    ]  # fmt: skip
    assert (
        pods["other"]["mig_devices"] is None and "another node" in pods["other"]["unavailable"]["mig_devices"]
    )
    assert (
        pods["blind"]["mig_devices"] is None
        and "pod-resources" in pods["blind"]["unavailable"]["mig_devices"]
    )
    assert result["allocated"] == {"nvidia.com/mig-1g.20gb": 3}


def test_connect_cluster_says_why_mig_uuids_are_not_joined():
    from k8s_gpu_mcp.tools.cluster import MIG_API_ONLY, mig_unjoined, pod_allocation

    pod = gpu_pod("m", "n", None)
    pod["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-3g.40gb": "1"}}
    plain = gpu_pod("g", "n", 1)
    allocs = [a for p in (pod, plain) if (a := pod_allocation(p)) is not None]
    mig_unjoined(allocs, MIG_API_ONLY)
    assert allocs[0].mig_profiles == {"3g.40gb": 1} and allocs[0].unavailable["mig_devices"] == MIG_API_ONLY
    assert allocs[1].mig_profiles == {} and "mig_devices" not in allocs[1].unavailable
