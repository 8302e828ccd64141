"""get_gpu_health on profiles, fault captures and every bundled fault scenario."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.gpu.fleet import list_scenarios
from tests.conftest import call


async def health(app, args=None):
    """get_gpu_health(detail=full): every GPU with all its reasons."""
    result = await call(app, "get_gpu_health", {"detail": "full", **(args or {})})
    assert not result.is_error, result.content
    return result.structured_content


def by_index(data):
    return {g["index"]: g for g in data["gpus"]}


def only_unverified_nvlink(gpu):
    """A GPU whose one open question is the NVLink error counters its capture does not hold."""
    return gpu["status"] == "unknown" and {
        r["component"] for r in gpu["reasons"] if r["severity"] != "info"
    } == {"nvlink"}


@pytest.mark.anyio
async def test_idle_h100_node_is_unverified_not_healthy_without_nvlink_counters(make_app):
    data = await health(make_app())
    # The captures hold no NVLink error counters (NotSupported in the mock): not "all checks passed".
    assert data["status"] == "unknown" and data["action"].startswith("Keep the node in service, but verify")
    assert all(only_unverified_nvlink(g) for g in data["gpus"]), [g["summary"] for g in data["gpus"]]
    assert {g["score"] for g in data["gpus"]} == {95}
    assert "(links 0-17)" in data["gpus"][0]["reasons"][0]["message"]  # each link named once, as a range
    assert data["source"]["mock"] is True


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["l40s-load", "l40s", "a10-sw-power-cap", "t4"])
async def test_pcie_cards_without_nvlink_have_no_link_findings(make_app, profile):
    data = await health(make_app(profile))
    assert not [r for g in data["gpus"] for r in g["reasons"] if r["component"] == "nvlink"]


@pytest.mark.anyio
@pytest.mark.parametrize("profile", ["b200-x8", "gb200-x4"])
async def test_gpus_whose_capture_has_no_nvlink_data_have_unknown_links_not_zero(make_app, profile):
    app = make_app(profile)
    data = await health(app)
    for g in data["gpus"]:
        links = [r for r in g["reasons"] if r["component"] == "nvlink"]
        assert [r["evidence"]["kind"] for r in links] == ["unknown_links"] and g["status"] == "unknown"
        assert "inactive" not in links[0]["message"]
    inventory = (await call(app, "get_gpu_inventory", {"gpus": [0], "detail": "full"})).structured_content[
        "gpus"
    ][0]
    assert inventory["nvlink_count"] is None and "NoData" in inventory["unavailable"]["nvlink_count"]


# scenario -> (GPU, status, words the GPU action must contain, words the node action must contain)
SCENARIOS = {
    "row-remap-pending": (5, "degraded", "reset", "Move workloads off GPU 5"),
    "row-remap-failure": (6, "critical", "RMA", "Cordon the node"),
    "ecc-dbe-xid48": (0, "critical", "reset", "Cordon the node"),
    "nvlink-down-xid74": (1, "degraded", "reset", "Move workloads off GPU 1"),
    "thermal-slowdown": (3, "degraded", "airflow", "GPU 3"),
    "power-brake": (2, "degraded", "PSU", "GPU 2"),
    "gpu-lost-xid79": (4, "lost", "reboot", "GPU 4 lost"),
}


def test_every_bundled_scenario_has_a_health_test():
    assert set(SCENARIOS) <= set(list_scenarios())


@pytest.mark.anyio
@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_scenario_verdict_and_action(make_app, name):
    index, status, gpu_words, node_words = SCENARIOS[name]
    data = await health(make_app(None, name))
    gpu = by_index(data)[index]
    assert gpu["status"] == status, gpu["summary"]
    assert gpu_words.lower() in gpu["action"].lower() and node_words in data["action"]
    assert data["status"] == status
    others = [g for g in data["gpus"] if g["index"] != index]
    assert all(g["status"] == "healthy" or only_unverified_nvlink(g) for g in others), [
        g["summary"] for g in others
    ]
    assert gpu["reasons"] and all(r["evidence"] for r in gpu["reasons"])


@pytest.mark.anyio
async def test_dbe_reasons_carry_the_numbers_and_the_running_process(make_app):
    gpu = by_index(await health(make_app(None, "ecc-dbe-xid48")))[0]
    memory = next(r for r in gpu["reasons"] if r["component"] == "memory")
    assert memory["evidence"]["verdict"] == "reset-required"
    assert "Row remap pending" in memory["message"] and "1 uncorrectable" in memory["message"]
    procs = next(r for r in gpu["reasons"] if r["component"] == "processes")
    assert procs["evidence"]["count"] == 1 and procs["evidence"]["memory_used_mib"] == 65536


@pytest.mark.anyio
async def test_thermal_reason_uses_nvml_thresholds(make_app):
    app = make_app(None, "thermal-slowdown")
    gpu = by_index(await health(app, {"gpus": [3]}))[3]
    slowdown = app.backend.mock.state["gpus"][3]["temperature"]["thresholds"]["slowdown"]
    thermal = next(r for r in gpu["reasons"] if r["component"] == "thermal")
    assert thermal["evidence"]["slowdown_c"] == slowdown and f"{slowdown} C" in thermal["message"]
    assert gpu["score"] == 45  # thermal (degraded) + throttling (degraded) + NVLink counters unread


# fault capture profile -> {GPU: status}
FAULT_PROFILES = {
    "v100-sxm3-32gb-retired-pages": {0: "critical"},
    # GPUs 0, 2, 3: no NVLink error counters in the capture, so unverified rather than healthy
    "a100-sxm4-80gb-x4-remap-pending": {0: "unknown", 1: "degraded", 2: "unknown", 3: "unknown"},
    "gh200-dram-uncorrectable": {0: "warning"},
    "tesla-k80-x4-retired": {0: "warning", 1: "warning", 2: "healthy", 3: "healthy"},
}


@pytest.mark.anyio
@pytest.mark.parametrize("profile", sorted(FAULT_PROFILES))
async def test_fault_captures_get_the_sre_verdict(make_app, profile):
    data = await health(make_app(profile))
    assert {g["index"]: g["status"] for g in data["gpus"]} == FAULT_PROFILES[profile]


@pytest.mark.anyio
async def test_recent_xids_from_the_kernel_log_are_reasons_with_their_action(make_app):
    data = await health(make_app(None, "ecc-dbe-xid48"))
    gpu = by_index(data)[0]
    xids = {r["evidence"]["xid"]: r for r in gpu["reasons"] if r["component"] == "xid"}
    assert set(xids) == {48, 63}
    assert xids[48]["severity"] == "critical" and xids[48]["evidence"]["count"] == 1
    assert xids[63]["severity"] == "degraded"  # XID 63 takes the ECC verdict reset-required (issue 15)
    assert gpu["reasons"][0]["component"] == "xid" and "reset" in gpu["action"].lower()
    assert data["since"] == "24h" and "xids" not in data["unavailable"]


@pytest.mark.anyio
async def test_xid_window_excludes_old_events_and_bad_since_is_a_tool_error(make_app):
    app = make_app(None, "ecc-dbe-xid48")
    recent = await health(app, {"since": "1m"})  # the scenario's lines are dated 5 minutes ago
    assert not [r for r in by_index(recent)[0]["reasons"] if r["component"] == "xid"]
    assert by_index(recent)[0]["status"] == "degraded"  # the pending remap is still there
    bad = await call(app, "get_gpu_health", {"since": "yesterday"})
    assert bad.is_error and "since" in bad.content[0].text


@pytest.mark.anyio
async def test_xid79_on_a_lost_gpu_is_attributed_to_it_by_elimination(make_app):
    data = await health(make_app(None, "gpu-lost-xid79"))
    gpu4 = by_index(data)[4]
    assert gpu4["status"] == "lost"
    assert any(r["component"] == "xid" and "79" in r["message"] for r in gpu4["reasons"]), gpu4["reasons"]
    assert any("by elimination" in note for note in data["notes"])


@pytest.mark.anyio
async def test_bad_gpu_is_a_tool_error(make_app):
    result = await call(make_app(), "get_gpu_health", {"gpus": [42]})
    assert result.is_error and "valid GPUs" in result.content[0].text


@pytest.mark.anyio
async def test_a_crash_in_the_xid_analysis_costs_only_the_xid_part(make_app, monkeypatch):
    import k8s_gpu_mcp.xid.analyze as analyze_module

    def boom(*args, **kwargs):
        raise RuntimeError("parser bug")

    monkeypatch.setattr(analyze_module, "analyze", boom)
    data = await health(make_app(None, "thermal-slowdown"))
    assert "parser bug" in data["unavailable"]["xids"]
    assert by_index(data)[3]["status"] != "healthy"  # the thermal verdict still stands
