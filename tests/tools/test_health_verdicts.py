"""get_gpu_health verdicts an SRE would sign (issue 16): one scenario per class, verdict and action."""

from __future__ import annotations

import time

import pytest

from k8s_gpu_mcp.gpu.fleet import list_scenarios
from tests.conftest import call


async def health(app, args=None):
    result = await call(app, "get_gpu_health", {"detail": "full", **(args or {})})
    assert not result.is_error, result.content
    return result.structured_content


def gpu(data, index):
    return next(g for g in data["gpus"] if g["index"] == index)


def components(g, *severities):
    return {r["component"] for r in g["reasons"] if r["severity"] in severities}


def test_every_class_has_its_bundled_scenario():
    assert {
        "busy-and-capped",
        "idle-power-cap",
        "zombie",
        "sbe-storm",
        "pcie-downtrained",
        "process-list-unreadable",
    } <= set(list_scenarios())


@pytest.mark.anyio
async def test_busy_and_capped_is_healthy_with_no_advice(make_app):
    data = await health(make_app(None, "busy-and-capped"))
    g = gpu(data, 0)
    assert (g["status"], g["score"], g["action"]) == ("healthy", 100, "No action.")
    assert (data["status"], data["action"]) == ("healthy", "No action: every GPU passed.")
    throttling = next(r for r in g["reasons"] if r["component"] == "throttling")
    assert throttling["severity"] == "info" and "normal under load" in throttling["message"]
    assert throttling["action"] is None and "raise" not in throttling["message"]


@pytest.mark.anyio
async def test_idle_power_cap_is_an_idle_artifact(make_app):
    data = await health(make_app(None, "idle-power-cap"))
    g = gpu(data, 0)
    assert (g["status"], g["action"], data["action"]) == (
        "healthy",
        "No action.",
        "No action: every GPU passed.",
    )
    throttling = next(r for r in g["reasons"] if r["component"] == "throttling")
    assert "idle artifact" in throttling["message"] and "P8" in throttling["message"]
    assert not [r for r in g["reasons"] if r["component"] == "pcie" and r["severity"] != "info"]  # Gen1 idle


@pytest.mark.anyio
async def test_idle_clocks_are_called_lowered_only_when_they_are(make_app):
    t4 = (await call(make_app("t4"), "get_gpu_telemetry", {"detail": "full"})).structured_content["gpus"][0]
    assert t4["clocks"]["sm_mhz"] == t4["clocks"]["max_sm_mhz"]
    assert "lowered" not in t4["throttling"]["explanation"].replace("not lowered", "")


@pytest.mark.anyio
async def test_zombie_memory_is_a_warning_with_evidence(make_app):
    data = await health(make_app(None, "zombie"))
    held, unaccounted = gpu(data, 2), gpu(data, 6)
    assert held["status"] == unaccounted["status"] == "warning" == data["status"]
    z = next(r for r in held["reasons"] if r["component"] == "processes")
    assert z["severity"] == "warning" and "30720 MiB" in z["message"] and "4194303" in z["message"]
    assert z["evidence"]["zombies"][0]["pid"] == 4194303
    o = next(r for r in unaccounted["reasons"] if r["component"] == "processes")
    assert o["evidence"]["unaccounted_mib"] == 2048 and "1 process)" in o["message"]
    assert "nvidia-smi -r -i 2)" in held["action"] and "<gpu>" not in held["action"]
    action = data["action"]
    assert action.startswith("Keep the node in service. GPUs 2 and 6: Free the memory")
    assert action.count("Free the memory") == 1 and "<gpu>" not in action and "No drain" not in action


@pytest.mark.anyio
async def test_an_empty_process_list_is_not_proof_of_orphaned_memory(make_app):
    app = make_app(None, {"gpus": {1: {"memory": {"used": 4294967296, "free": 80723525632}}}})
    g = gpu(await health(app), 1)
    procs = next(r for r in g["reasons"] if r["component"] == "processes")
    assert procs["severity"] == "info" and "unknown" in procs["message"]
    assert g["status"] != "warning"


@pytest.mark.anyio
async def test_mock_mode_never_reads_this_machines_proc_for_profile_pids(make_app):
    # pid 1 exists on every machine: a profile pid must still be judged by the profile, not by /proc.
    app = make_app(None, {"gpus": {0: {"processes": {"compute": [{"pid": 1, "used_memory": 1048576, "name": "python"}]},
                                       "memory": {"used": 1048576, "free": 85016494080}}}})  # fmt: skip
    p = (await call(app, "list_gpu_processes", {"gpus": [0], "detail": "full"})).structured_content["gpus"][
        0
    ]["processes"][0]
    assert p["command"] == "python" and p["zombie"] is False
    alive = (
        await call(make_app(None, "ecc-dbe-xid48"), "list_gpu_processes", {"gpus": [0], "detail": "full"})
    ).structured_content
    assert alive["gpus"][0]["processes"][0]["zombie"] is False  # the hung job of the XID 48 story


@pytest.mark.anyio
async def test_corrected_error_storm_is_monitor(make_app):
    app = make_app(None, "sbe-storm")
    data = await health(app)
    g = gpu(data, 3)
    memory = next(r for r in g["reasons"] if r["component"] == "memory")
    assert memory["evidence"]["verdict"] == "monitor" and "48213 corrected" in memory["message"]
    assert g["status"] == "warning" and "re-check ECC" in g["action"]
    assert data["action"].startswith("Keep the node in service. GPU 3: Re-check ECC")
    ecc = (await call(app, "snapshot_ecc", {"gpus": [3], "detail": "full"})).structured_content["gpus"][0]
    assert ecc["memory_state"] == "monitor"


@pytest.mark.anyio
async def test_pcie_downtrained_and_replaying_is_a_warning(make_app):
    app = make_app(None, "pcie-downtrained")
    data = await health(app, {"gpus": [5]})
    g = gpu(data, 5)
    pcie = [r for r in g["reasons"] if r["component"] == "pcie"]
    messages = " | ".join(r["message"] for r in pcie)
    assert "x8 of x16" in messages and "Gen3 of Gen5" in messages
    assert pcie[0]["evidence"]["link_width"] == 8 and pcie[0]["evidence"]["max_link_width"] == 16
    assert g["status"] == "warning" and "Reseat" in g["action"] and "Reseat" in data["action"]
    time.sleep(1.1)  # the replay rate needs two reads of the counter at least a second apart
    again = gpu(await health(app, {"gpus": [5]}), 5)
    rising = [r for r in again["reasons"] if r["component"] == "pcie" and "rising" in r["message"]]
    assert rising and rising[0]["severity"] == "warning"
    assert rising[0]["evidence"]["replay_rate_per_min"] > 8  # DCGM's PCIe replay rate limit


@pytest.mark.anyio
async def test_a_steady_replay_counter_is_information_only(make_app):
    app = make_app("h100-sxm5-80gb-x8")
    first = gpu(await health(app, {"gpus": [0]}), 0)
    time.sleep(1.1)
    second = gpu(await health(app, {"gpus": [0]}), 0)
    for g in (first, second):
        pcie = [r for r in g["reasons"] if r["component"] == "pcie"]
        assert [r["severity"] for r in pcie] == ["info"] and "150 PCIe replays" in pcie[0]["message"]
    assert pcie[0]["evidence"]["replay_rate_per_min"] == 0  # measured on the second read: no growth


@pytest.mark.anyio
async def test_an_unreadable_process_list_is_unknown_never_healthy(make_app):
    data = await health(make_app(None, "process-list-unreadable"))
    g = gpu(data, 0)
    assert g["status"] == "unknown" and "all checks passed" not in g["summary"]
    assert "processes" in components(g, "unknown") and "Verify" in g["action"]
    assert data["status"] == "unknown" and data["action"].startswith(
        "Keep the node in service, but verify GPU 0"
    )


@pytest.mark.anyio
async def test_a_crashed_xid_analysis_is_unknown_never_healthy(make_app, monkeypatch):
    import k8s_gpu_mcp.xid.analyze as analyze_module

    def boom(*args, **kwargs):
        raise OverflowError("date value out of range")

    monkeypatch.setattr(analyze_module, "analyze", boom)
    data = await health(make_app(None, "busy-and-capped"))
    g = gpu(data, 0)
    assert g["status"] == "unknown" and "xid" in components(g, "unknown")
    assert "all checks passed" not in g["summary"] and data["status"] == "unknown"
    # a GPU with a found fault keeps it, and says what could not be verified
    data = await health(make_app(None, "row-remap-pending"))
    g5 = gpu(data, 5)
    assert g5["status"] == "degraded" and "not verified" in g5["summary"] and "xid" in g5["summary"]


@pytest.mark.anyio
async def test_a_since_too_large_is_a_clear_error_or_unknown_never_healthy(make_app):
    result = await call(make_app(None, "busy-and-capped"), "get_gpu_health", {"since": "999999999d"})
    if result.is_error:  # the XID analysis bounds `since` itself
        assert "since" in result.content[0].text
    else:
        data = result.structured_content
        assert gpu(data, 0)["status"] != "healthy" and data["status"] != "healthy"


@pytest.mark.anyio
async def test_node_action_is_one_ranked_text(make_app):
    scenario = {
        "gpus": {
            3: {"ecc": {"volatile": {"uncorrected": {"total": 1, "dram": 1}}}},
            5: {"ecc": {"volatile": {"uncorrected": {"total": 1, "dram": 1}}}},
            6: {"pcie": {"curr_link_width": 8}},
        }
    }
    data = await health(make_app(None, scenario))
    action = data["action"]
    assert data["status"] == "degraded"
    assert action.startswith(
        "Move workloads off GPUs 3 and 5 (or drain the node); then GPUs 3 and 5: Reset it"
    )
    assert "GPU 6: Reseat" in action and action.count("Drain") == 0 and "<gpu>" not in action
    assert "nvidia-smi -r -i 3 and -i 5" in action
