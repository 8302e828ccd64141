from __future__ import annotations

import pytest

from k8s_gpu_mcp.k8s.pods import PodLookup, PodRef
from tests.conftest import call
from tests.host.proctree import CGROUP_V2_POD, CONTAINER, POD_UID, FakeProc, make_host, make_proc

GIB = 2**30


def scenario(**gpus):
    return {"gpus": {str(k): v for k, v in gpus.items()}}


def procs(*entries, used=None, free=None):
    gpu = {"processes": {"compute": [e for e in entries if e.get("type") != "graphics"]}}
    graphics = [e for e in entries if e.get("type") == "graphics"]
    if graphics:
        gpu["processes"]["graphics"] = graphics
    for e in entries:
        e.pop("type", None)
    if used is not None:
        gpu["memory"] = {"used": used, "free": free if free is not None else 85018542080 - used}
    return gpu


@pytest.fixture
def tree(tmp_path):
    proc = make_proc(
        tmp_path,
        FakeProc(4242, uid=1000, cgroup=CGROUP_V2_POD),
        FakeProc(5151, state="Z", cmdline=[], comm="python", ppid=4000),
        FakeProc(6161, comm="Xorg", cmdline=["/usr/lib/xorg/Xorg", ":0"], uid=0),
    )
    host = make_host(tmp_path, {0: "root", 1000: "alice"})
    return {"proc_root": str(proc), "host_root": str(host)}


def by_pid(gpu):
    return {p["pid"]: p for p in gpu["processes"]}


@pytest.mark.anyio
async def test_processes_are_enriched_from_proc_and_cgroup(make_app, tree, monkeypatch):
    monkeypatch.setattr(
        "k8s_gpu_mcp.tools.processes.lookup_pods",
        lambda node, mock: PodLookup({POD_UID: PodRef(POD_UID, "trainer-0", "ml")}),
    )
    sc = scenario(
        **{
            "0": procs({"pid": 4242, "used_memory": 8 * GIB}, used=8 * GIB),
            "1": procs(
                {"pid": 6161, "used_memory": GIB},
                {"pid": 6161, "used_memory": GIB, "type": "graphics"},
                used=GIB,
            ),
        }
    )
    data = (
        await call(make_app(scenario=sc, **tree), "list_gpu_processes", {"gpus": [0, 1], "detail": "full"})
    ).structured_content
    p = by_pid(data["gpus"][0])[4242]
    assert p["command"] == "python train.py" and p["user"] == "alice" and p["uid"] == 1000
    assert p["state"] == "sleeping" and p["start_time"].startswith("2023-11-14")
    assert p["container_id"] == CONTAINER and p["pod_uid"] == POD_UID
    assert (p["pod_name"], p["pod_namespace"]) == ("trainer-0", "ml")
    assert p["zombie"] is False and p["used_memory_mib"] == 8192 and p["type"] == "compute"
    assert p["gpu_instance_id"] is None and p["compute_instance_id"] is None
    assert data["gpus"][0]["orphan_memory_mib"] == 0 and data["gpus"][0]["process_memory_mib"] == 8192
    xorg = by_pid(data["gpus"][1])[6161]
    assert xorg["type"] == "compute+graphics" and xorg["user"] == "root"
    assert data["gpus"][1]["orphan_memory_mib"] == 0  # the C+G process is counted once
    assert data["findings"] == [] and data["proc_root"] == tree["proc_root"]


@pytest.mark.anyio
async def test_zombies_gone_defunct_and_pod_deleted(make_app, tree, monkeypatch):
    monkeypatch.setattr("k8s_gpu_mcp.tools.processes.lookup_pods", lambda node, mock: PodLookup({}))
    sc = scenario(
        **{
            "2": procs(
                {"pid": 999999, "used_memory": 30 * GIB},
                {"pid": 5151, "used_memory": 2 * GIB},
                {"pid": 4242, "used_memory": GIB},
                used=33 * GIB,
            )
        }
    )
    data = (
        await call(make_app(scenario=sc, **tree), "list_gpu_processes", {"gpus": 2, "detail": "full"})
    ).structured_content
    ps = by_pid(data["gpus"][0])
    assert ps[999999]["zombie"] is True and "no longer exists" in ps[999999]["zombie_reasons"][0]
    assert ps[5151]["zombie"] is True and "defunct" in ps[5151]["zombie_reasons"][0]
    assert "pid 4000" in ps[5151]["zombie_reasons"][0]
    assert ps[4242]["zombie"] is True and POD_UID in ps[4242]["zombie_reasons"][0]
    assert len(data["findings"]) == 3 and all(f.startswith("GPU 2: zombie") for f in data["findings"])


@pytest.mark.anyio
async def test_orphan_memory_and_its_unknowns(make_app, tree):
    sc = scenario(
        **{
            "3": procs({"pid": 4242, "used_memory": GIB}, used=3 * GIB),
            "4": procs({"pid": 4242, "used_memory": None}, used=3 * GIB),
            "5": {"nvml_errors": {"nvmlDeviceGetGraphicsRunningProcesses": "NoPermission"}},
            "6": {"nvml_errors": {"nvmlDeviceGetMemoryInfo": "Unknown"}},
        }
    )
    data = (
        await call(
            make_app(scenario=sc, **tree), "list_gpu_processes", {"gpus": [3, 4, 5, 6], "detail": "full"}
        )
    ).structured_content
    g3, g4, g5, g6 = data["gpus"]
    assert g3["orphan_memory_mib"] == 2048 and "2048 MiB" in data["findings"][0]
    assert g4["orphan_memory_mib"] is None and "usedGpuMemory" in g4["unavailable"]["orphan_memory_mib"]
    assert by_pid(g4)[4242]["used_memory_mib"] is None and g4["process_memory_mib"] is None
    assert g5["processes"] is None and g5["orphan_memory_mib"] is None
    assert "NoPermission" in g5["unavailable"]["graphics_processes"]
    assert g6["orphan_memory_mib"] is None and g6["memory_used_mib"] is None
    assert "Unknown" in g6["unavailable"]["orphan_memory_mib"]


@pytest.mark.anyio
async def test_mig_instances_and_mig_overhead_is_not_orphaned(make_app, tree):
    sc = scenario(
        **{"0": procs({"pid": 4242, "used_memory": GIB, "gpu_instance_id": 1, "compute_instance_id": 0})}
    )
    app = make_app(profile="a100-sxm4-80gb-mig", scenario=sc, **tree)
    gpu = (await call(app, "list_gpu_processes", {"gpus": 0, "detail": "full"})).structured_content["gpus"][0]
    p = gpu["processes"][0]
    assert (p["gpu_instance_id"], p["compute_instance_id"]) == (1, 0)
    assert gpu["orphan_memory_mib"] is None and "MIG" in gpu["unavailable"]["orphan_memory_mib"]


@pytest.mark.anyio
async def test_proc_outside_host_pid_namespace_gives_unknown_not_zombie(make_app, tmp_path):
    proc = make_proc(tmp_path, host_pid_ns=False)
    sc = scenario(**{"0": procs({"pid": 4242, "used_memory": GIB}, used=GIB)})
    data = (
        await call(
            make_app(scenario=sc, proc_root=str(proc)), "list_gpu_processes", {"gpus": 0, "detail": "full"}
        )
    ).structured_content
    p = data["gpus"][0]["processes"][0]
    assert p["zombie"] is None and "host PID" in p["unavailable"]["zombie"]
    assert "host PID" in data["unavailable"]["proc"] and data["findings"] == []


@pytest.mark.anyio
async def test_lost_gpu_and_pod_lookup_reason_in_mock(make_app, tree):
    sc = scenario(**{"4": {"lost": True}, "0": procs({"pid": 4242, "used_memory": GIB}, used=GIB)})
    data = (
        await call(make_app(scenario=sc, **tree), "list_gpu_processes", {"gpus": [0, 4], "detail": "full"})
    ).structured_content
    assert data["gpus"][1]["lost"] is True and data["gpus"][1]["processes"] is None
    p = data["gpus"][0]["processes"][0]
    assert p["pod_name"] is None and "mock" in p["unavailable"]["pod_name"]
    assert p["zombie"] is False


@pytest.mark.anyio
async def test_bundled_zombie_scenario(make_app):
    # judged by the profile (pid 4194303 exited, pid 5120 alive), not by this machine's /proc
    data = (
        await call(make_app(scenario="zombie"), "list_gpu_processes", {"detail": "full"})
    ).structured_content
    assert data["source"]["scenario"] == "zombie"
    g2 = data["gpus"][2]
    assert g2["processes"][0]["pid"] == 4194303 and g2["processes"][0]["zombie"] is True
    assert g2["processes"][0]["used_memory_mib"] == 30720 and g2["orphan_memory_mib"] == 0
    assert data["gpus"][6]["orphan_memory_mib"] == 2048 and data["gpus"][6]["processes"][0]["zombie"] is False
    assert [f.split(":")[0] for f in data["findings"]] == ["GPU 2", "GPU 6"]


@pytest.mark.anyio
async def test_bad_selector_lists_valid_gpus(make_app):
    result = await call(make_app(), "list_gpu_processes", {"gpus": [42], "detail": "full"})
    assert result.is_error and "valid GPUs" in result.content[0].text


def test_pod_lookup_failures_become_reasons(monkeypatch):
    from k8s_gpu_mcp.k8s import pods

    assert pods.lookup_pods("n", mock=True).pods is None

    def boom(node):
        raise RuntimeError("no kubeconfig")

    monkeypatch.setattr(pods, "list_node_pods", boom)
    lookup = pods.lookup_pods("n", mock=False)
    assert lookup.pods is None and "no kubeconfig" in lookup.reason
    monkeypatch.setattr(
        pods, "list_node_pods", lambda node: [{"metadata": {"uid": "u1", "name": "p", "namespace": "ns"}}]
    )
    assert pods.lookup_pods("n", mock=False).pods["u1"] == PodRef("u1", "p", "ns", None)
