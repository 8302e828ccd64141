"""The topo -m matrix builder against real captures, and the topology findings."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.diagnose.topology import (
    Finding,
    LinkEnd,
    build_matrix,
    findings,
    link_counts,
    render,
    restates_link_findings,
)
from k8s_gpu_mcp.gpu.nvml_constants import TOPOLOGY_LEVELS
from tests.conftest import CAPTURES, derive_profiles

TOPO_CAPTURES = [
    "topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt",
    "topo-m_8x-h200-10nic_glm52fp8.txt",
    "topo-m_8x-h200-12nic_distributedai.txt",
    "topo-m_8x-h100-sxm-spaces_mlengineering.txt",
    "topo-m_8x-v100-sxm2-32gb-hybridcube_llamacppmultigpu.txt",
    "topo-m_4x-a100-sxm4-80gb-nv4_a100workshop.txt",
    "topo-m_4x-a100-pcie-adroit_a100workshop.txt",
]


def parse_topo_m(text: str):
    return derive_profiles().parse_topo(text)


def capture(name: str) -> str:
    path = CAPTURES / name
    return path.read_text()


def cells_to_inputs(cells: list[list[str]]) -> tuple[list[list[int | None]], list[list[int]]]:
    """Split topo -m cells back into (levels, link counts); an NV# cell hides its level (None)."""
    levels = [
        [0 if i == j else TOPOLOGY_LEVELS.get(c) for j, c in enumerate(row)] for i, row in enumerate(cells)
    ]
    counts = [[int(c[2:]) if c.startswith("NV") else 0 for c in row] for row in cells]
    return levels, counts


def test_parser_reads_ansi_header_nic_columns_and_affinity():
    topo = parse_topo_m(capture("topo-m_8x-h200-10nic_glm52fp8.txt"))
    assert len(topo.cells) == 8
    assert topo.cells[0] == ["X", *["NV18"] * 7]
    assert topo.cpus[4] == "64-127,192-255" and topo.numa[4] == 1
    dgx = parse_topo_m(capture("topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt"))
    assert dgx.cpus[0] == "48-63,176-191" and dgx.numa == [3, 3, 1, 1, 7, 7, 5, 5]


@pytest.mark.parametrize("name", TOPO_CAPTURES)
def test_builder_reproduces_the_gpu_block_of_real_captures(name):
    topo = parse_topo_m(capture(name))
    levels, counts = cells_to_inputs(topo.cells)
    assert build_matrix(levels, counts) == topo.cells


def _switched(n: int, links: int, down: dict[int, int] | None = None) -> list[list[LinkEnd]]:
    down = down or {}
    return [[LinkEnd(k, k >= down.get(g, 0), to_switch=True) for k in range(links)] for g in range(n)]


def test_nvswitch_links_make_every_pair_nv18_like_the_h200_capture():
    topo = parse_topo_m(capture("topo-m_8x-h200-12nic_distributedai.txt"))
    levels = [
        [0 if i == j else (40 if topo.numa[i] == topo.numa[j] else 50) for j in range(8)] for i in range(8)
    ]
    assert build_matrix(levels, link_counts(_switched(8, 18))) == topo.cells


def test_dgx_a100_nv12_from_switch_links():
    topo = parse_topo_m(capture("topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt"))
    levels = [[0 if i == j else 50 for j in range(8)] for i in range(8)]
    assert build_matrix(levels, link_counts(_switched(8, 12))) == topo.cells


def test_direct_links_count_toward_their_peer_gpu():
    ends = [[LinkEnd(0, True, peer_gpu=1), LinkEnd(1, True, peer_gpu=1), LinkEnd(2, False, peer_gpu=1)], []]
    ends[1] = [LinkEnd(0, True, peer_gpu=0), LinkEnd(1, True, peer_gpu=0)]
    assert link_counts(ends) == [[0, 2], [2, 0]]
    assert build_matrix([[0, 50], [50, 0]], [[0, 0], [0, 0]]) == [["X", "SYS"], ["SYS", "X"]]
    assert build_matrix([[0, None], [None, 0]], [[0, 0], [0, 0]])[0][1] == "N/A"


def test_render_looks_like_topo_m_and_parses_back():
    cells = [["X", "NV18"], ["NV18", "X"]]
    text = render(cells, ["0-51", None], [0, None])
    assert text.startswith("\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\nGPU0\t X \tNV18\t0-51\t0\n")
    assert parse_topo_m(text).cells == cells


def test_one_link_down_on_hgx_is_inactive_and_uneven_pairs_naming_the_gpu():
    ends = _switched(8, 18, down={1: 1})
    counts = link_counts(ends)
    assert counts[1][0] == 17 and counts[0][2] == 18
    found = {f.kind: f for f in findings(ends, counts, None)}
    assert found["inactive_links"].gpus == [1] and found["inactive_links"].links == [0]
    assert found["uneven_pairs"].gpus == [1]
    assert "NV17" in found["uneven_pairs"].message and "NV18" in found["uneven_pairs"].message
    assert "NCCL" in found["inactive_links"].consequence
    every = list(found.values())
    assert restates_link_findings(found["uneven_pairs"], every)  # GPU 1's own inactive link says it
    assert not restates_link_findings(found["inactive_links"], every)


def test_thin_pairs_without_a_gpu_link_finding_are_news():
    pairs = Finding("uneven_pairs", "degraded", [2, 3], "2 GPU pairs ...", "...")
    inactive = Finding("inactive_links", "degraded", [2], "GPU 2: 1 of 18 NVLinks inactive", "...")
    assert not restates_link_findings(pairs, [pairs, inactive])  # GPU 3 has no link finding of its own
    assert not restates_link_findings(Finding("uneven_pairs", "degraded", [], "m", "c"), [pairs])


def test_replay_and_recovery_counters_are_findings_and_unknown_state_is_not_down():
    ends = [[LinkEnd(0, True, to_switch=True, replay=5, recovery=0), LinkEnd(1, None, to_switch=True)]]
    kinds = {f.kind: f for f in findings(ends, link_counts(ends), None)}
    assert kinds["link_errors"].message == "GPU 0 NVLink 0: replay 5"
    assert kinds["unknown_links"].severity == "info" and "inactive_links" not in kinds


def test_p2p_gaps_without_nvlink_are_info_and_with_nvlink_a_warning():
    ends: list[list[LinkEnd]] = [[], [], []]
    counts = [[0, 4, 0], [4, 0, 0], [0, 0, 0]]
    p2p = {
        "read": [[0, 0, 1], [0, 0, 1], [1, 1, 0]],
        "write": [[0, 0, 1], [0, 0, 1], [1, 1, 0]],
        "nvlink": [[0, 5, 5], [5, 0, 5], [5, 5, 0]],
    }
    found = findings(ends, counts, p2p)
    kinds = {f.kind: f for f in found}
    assert (
        kinds["p2p_nvlink_unsupported"].gpus == [0, 1]
        and kinds["p2p_nvlink_unsupported"].severity == "warning"
    )
    assert (
        kinds["p2p_unsupported"].gpus == [0, 1, 2]
        and "CHIPSET_NOT_SUPPORTED" in kinds["p2p_unsupported"].message
    )
