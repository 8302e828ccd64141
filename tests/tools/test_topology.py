from __future__ import annotations

import pytest

from tests.conftest import call, topo_cells


@pytest.mark.anyio
async def test_a100_x8_matrix_matches_the_dgx_a100_topo_capture(make_app):
    data = (
        await call(make_app("a100-sxm4-40gb-x8"), "inspect_topology", {"detail": "full"})
    ).structured_content
    assert data["matrix"] == topo_cells("topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt")
    assert [g["numa_node"] for g in data["gpus"]] == [3, 3, 1, 1, 7, 7, 5, 5]
    assert data["gpus"][0]["active_links"] == 12 and data["findings"] == []
    assert data["matrix_text"].splitlines()[1].startswith("GPU0\t X \tNV12")


@pytest.mark.anyio
async def test_h100_links_end_at_nvswitches_and_unknown_counters_are_null_with_reason(make_app):
    data = (await call(make_app(), "inspect_topology", {"detail": "full"})).structured_content
    assert data["matrix"] == topo_cells("topo-m_8x-h100-sxm-spaces_mlengineering.txt")
    link = data["gpus"][0]["nvlinks"][0]
    assert len(data["gpus"][0]["nvlinks"]) == 18
    assert (link["state"], link["version"], link["remote_type"]) == ("up", 6, "switch")
    # no capture prints the counters: NoData (not read), not NotSupported (what the GPU lacks)
    assert link["errors"]["replay"] is None and link["unavailable"]["errors.replay"].startswith("NoData")
    assert link["capabilities"] is None
    assert set(data["p2p"]["read"][0]) == {"OK"}  # READ is index 0, not the (0,) tuple
    assert data["gpus"][0]["cpu_affinity"] == "0-51,104-155" and data["gpus"][4]["numa_node"] == 1  # topo -m


@pytest.mark.anyio
@pytest.mark.parametrize(
    "profile", ["h100-sxm5-80gb-x8", "a100-sxm4-40gb-x8", "a100-sxm4-80gb-x4-remap-pending"]
)
async def test_the_matrix_is_symmetric_and_carries_the_captured_affinity(make_app, profile):
    data = (await call(make_app(profile), "inspect_topology", {"detail": "full"})).structured_content
    m = data["matrix"]
    assert all(m[i][j] == m[j][i] for i in range(len(m)) for j in range(len(m))), m
    assert all(g["cpu_affinity"] and g["numa_node"] is not None for g in data["gpus"])
    assert "N/A" not in data["matrix_text"].split("Legend")[0]


@pytest.mark.anyio
async def test_nvlink_down_scenario_shows_nv17_pairs_and_link_errors(make_app):
    data = (
        await call(make_app(None, "nvlink-down-xid74"), "inspect_topology", {"detail": "full"})
    ).structured_content
    assert data["matrix"][1][0] == "NV17" and data["matrix"][0][2] == "NV18"
    kinds = {f["kind"]: f for f in data["findings"]}
    assert kinds["uneven_pairs"]["gpus"] == [1]
    assert kinds["link_errors"]["message"] == "GPU 1 NVLink 4: replay 120, recovery 3"


@pytest.mark.anyio
async def test_selection_and_bad_gpu(make_app):
    app = make_app()
    data = (await call(app, "inspect_topology", {"gpus": [0, 1], "detail": "full"})).structured_content
    assert data["labels"] == ["GPU0", "GPU1"] and data["matrix"] == [["X", "NV18"], ["NV18", "X"]]
    bad = await call(app, "inspect_topology", {"gpus": [9], "detail": "full"})
    assert bad.is_error and "valid GPUs" in bad.content[0].text


@pytest.mark.anyio
async def test_gpu_without_nvlink_and_node_without_topology(make_app):
    data = (await call(make_app("l40s"), "inspect_topology", {"detail": "full"})).structured_content
    assert data["gpus"][0]["nvlinks"] == [] and data["matrix"] == [["X"]] and data["findings"] == []
