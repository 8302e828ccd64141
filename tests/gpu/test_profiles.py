"""The mock fleet against the real captures it was derived from.

Each check re-reads the capture independently (XPath or a targeted regex), never through
``scripts/derive_profiles.py``, so a parser bug cannot confirm itself.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from k8s_gpu_mcp.gpu import fake_nvml
from k8s_gpu_mcp.gpu.fake_nvml import FakeHandle, FakeNvml
from tests.conftest import derive_profiles

REPO = Path(__file__).resolve().parents[2]
CAPTURES = REPO / "tests" / "fixtures" / "captures"
PROFILES = REPO / "src" / "k8s_gpu_mcp" / "gpu" / "profiles"
SCRIPT = REPO / "scripts" / "derive_profiles.py"
MIB = 1024 * 1024
PROFILE_NAMES = sorted(p.stem for p in PROFILES.glob("*.json"))
REQUIRED = {
    "h100-sxm5-80gb-x8",
    "a100-sxm4-40gb-x8",
    "l40s",
    "t4",
    "a100-sxm4-80gb-mig",
    "h200",
    "v100-sxm3-32gb-retired-pages",
    "a100-sxm4-80gb-x4-remap-pending",
    "gh200-dram-uncorrectable",
    "tesla-k80-x4-retired",
}


def profile(name: str) -> dict[str, Any]:
    return json.loads((PROFILES / f"{name}.json").read_text(encoding="utf-8"))


def xml_gpus(capture: str) -> list[ET.Element]:
    text = (CAPTURES / capture).read_text(encoding="utf-8")
    return ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text)).findall("gpu")


def text_blocks(capture: str) -> dict[str, str]:
    """``nvidia-smi -q`` text split into GPU blocks keyed by bus id."""
    text = (CAPTURES / capture).read_text(encoding="utf-8")
    parts = re.split(r"^GPU ([0-9A-F]{8}:[0-9A-F]{2}:[0-9A-F]{2}\.[0-9])$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def field(block: str, label: str) -> str:
    match = re.search(rf"^\s+{re.escape(label)}\s+: (.*)$", block, flags=re.M)
    assert match, label
    return match.group(1).strip()


def nvlink_states(capture: str) -> list[list[int]]:
    states: list[list[int]] = []
    for line in (CAPTURES / capture).read_text(encoding="utf-8").splitlines():
        if line.startswith("GPU "):
            states.append([])
        elif "Link" in line:
            states[-1].append(0 if "<inactive>" in line else 1)
    return states


def load_script() -> ModuleType:
    return derive_profiles()


def topo_affinity(text: str) -> tuple[list[str | None], list[int | None]]:
    """CPU and NUMA affinity per GPU row of a topo -m capture, read with a targeted regex: the CPU
    list is the row's first ``a-b[,c-d]`` token, the NUMA node the token after it."""
    cpus: list[str | None] = []
    numa: list[int | None] = []
    for line in text.splitlines():
        line = re.sub(r"\x1b\[[0-9;]*m", "", line)
        if not re.match(r"GPU\d+\s", line):
            continue
        tokens = line.split()
        at = next((k for k, t in enumerate(tokens) if re.fullmatch(r"\d+-\d+(,\d+-\d+)*", t)), None)
        cpus.append(tokens[at] if at is not None else None)
        after = tokens[at + 1] if at is not None and at + 1 < len(tokens) else ""
        numa.append(int(after) if after.isdigit() else None)
    return cpus, numa


# ---- fleet-wide shape --------------------------------------------------------------------------
def test_required_profiles_exist() -> None:
    assert REQUIRED <= set(PROFILE_NAMES)


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_header(name: str) -> None:
    p = profile(name)
    assert p["schema"] == 1 and p["name"] == name
    assert p["captures"] and p["notes"] and p["title"]
    assert [g["index"] for g in p["gpus"]] == list(range(len(p["gpus"])))
    if p["topology"] is not None:
        n = len(p["gpus"])
        assert len(p["topology"]["common_ancestor"]) == n
        assert all(p["topology"]["common_ancestor"][i][i] == 0 for i in range(n))


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_profile_captures_exist(name: str) -> None:
    for capture in profile(name)["captures"]:
        assert (CAPTURES / capture).is_file(), capture


# ---- 1. H100 -----------------------------------------------------------------------------------
def test_h100_matches_capture() -> None:
    p = profile("h100-sxm5-80gb-x8")
    captured = xml_gpus("nvidia-smi-q-x_h100-sxm5-80gb-x8_nvk8stestinfra.xml")
    links = nvlink_states("nvlink-s_h100-sxm5-80gb_nvgpuexporter.txt")
    assert len(p["gpus"]) == len(captured) == 8
    assert links == [[1] * 18]
    for gpu, el in zip(p["gpus"], captured, strict=True):
        assert gpu["uuid"] == el.findtext("uuid")
        assert gpu["serial"] == el.findtext("serial")
        assert gpu["pci"]["bus_id"] == el.findtext("pci/pci_bus_id") == el.get("id")
        assert gpu["power"]["enforced_limit_mw"] == 700000
        assert el.findtext("gpu_power_readings/current_power_limit") == "700.00 W"
        assert gpu["memory"]["total"] == 81559 * MIB
        assert el.findtext("fb_memory_usage/total") == "81559 MiB"
        assert [link["state"] for link in gpu["nvlinks"]] == [1] * 18
        assert {link["version"] for link in gpu["nvlinks"]} == {6}
        assert {link["remote_type"] for link in gpu["nvlinks"]} == {fake_nvml.NVML_NVLINK_DEVICE_TYPE_SWITCH}
        assert gpu["fan_speed"] is None and el.findtext("fan_speed") == "N/A"


def test_h100_tlimit_thermals_are_converted_to_absolute() -> None:
    el = xml_gpus("nvidia-smi-q-x_h100-sxm5-80gb-x8_nvk8stestinfra.xml")[0]

    def celsius(tag: str) -> int:
        return int(el.findtext(f"temperature/{tag}").split()[0])

    tlimit = celsius("gpu_temp") + celsius("gpu_temp_tlimit")
    thresholds = profile("h100-sxm5-80gb-x8")["gpus"][0]["temperature"]["thresholds"]
    assert thresholds["slowdown"] == tlimit - celsius("gpu_temp_slow_tlimit_threshold")
    assert thresholds["shutdown"] == tlimit - celsius("gpu_temp_max_tlimit_threshold")
    assert thresholds["gpu_max"] == tlimit - celsius("gpu_temp_max_gpu_tlimit_threshold")
    assert thresholds["mem_max"] is None
    assert thresholds["gpu_max"] < thresholds["slowdown"] < thresholds["shutdown"]


def test_h100_topology_from_nv18_matrix() -> None:
    topo = profile("h100-sxm5-80gb-x8")["topology"]
    text = (CAPTURES / "topo-m_8x-h100-sxm-spaces_mlengineering.txt").read_text(encoding="utf-8")
    numa = [int(line.split()[-1]) for line in text.splitlines() if line.startswith("GPU")]
    assert [g["numa_node"] for g in profile("h100-sxm5-80gb-x8")["gpus"]] == numa
    for i in range(8):
        for j in range(8):
            expected = 0 if i == j else (40 if numa[i] == numa[j] else 50)
            assert topo["common_ancestor"][i][j] == expected
            assert topo["p2p"]["nvlink"][i][j] == 0


# ---- 2. A100 x8 --------------------------------------------------------------------------------
def test_a100_x8_matches_capture() -> None:
    p = profile("a100-sxm4-40gb-x8")
    blocks = text_blocks("nvidia-smi-q_a100-sxm4-40gb-x8-azure-ndv4_azhpcdiag.txt")
    links = nvlink_states("nvlink-s_4x-a100-sxm4-80gb_prismsinglegpu.txt")
    assert len(p["gpus"]) == len(blocks) == 8
    assert links == [[1] * 12] * 4
    for gpu, (bus_id, block) in zip(p["gpus"], blocks.items(), strict=True):
        assert gpu["pci"]["bus_id"] == bus_id
        assert gpu["uuid"] == field(block, "GPU UUID")
        assert gpu["serial"] == field(block, "Serial Number")
        assert gpu["memory"]["total"] == int(field(block, "Total").split()[0]) * MIB == 40536 * MIB
        assert (
            gpu["power"]["enforced_limit_mw"] == 400000 and field(block, "Enforced Power Limit") == "400.00 W"
        )
        assert gpu["architecture"] == fake_nvml.NVML_DEVICE_ARCH_AMPERE
        assert [link["state"] for link in gpu["nvlinks"]] == [1] * 12
        assert {link["version"] for link in gpu["nvlinks"]} == {4}
        assert gpu["remapped_rows"]["histogram"]["max"] == 640
        assert gpu["retired_pages"] is None
    assert [g["numa_node"] for g in p["gpus"]] == [3, 3, 1, 1, 7, 7, 5, 5]


def test_a100_x8_pcie_level_bounded_by_shared_nic() -> None:
    rows = [
        line.split()
        for line in (CAPTURES / "topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt")
        .read_text(encoding="utf-8")
        .splitlines()
        if re.match(r"GPU\d", line)
    ]
    ancestor = profile("a100-sxm4-40gb-x8")["topology"]["common_ancestor"]
    for i, j in ((0, 1), (2, 3), (4, 5), (6, 7)):
        shared = [k for k in range(9, 21) if rows[i][k] == rows[j][k] == "PXB"]
        assert shared and ancestor[i][j] == ancestor[j][i] == 20  # both GPUs under one PCIe switch tree
    assert ancestor[0][2] == 50  # NUMA 3 vs 1


# ---- 3-6. single-GPU profiles ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "capture"),
    [
        ("l40s", "nvidia-smi-q-x_l40s_nvk8stestinfra.xml"),
        ("t4", "nvidia-smi-q-x_t4_nvk8stestinfra.xml"),
        ("a100-sxm4-80gb-mig", "nvidia-smi-q-x_a100-sxm4-80gb-mig_telegraf.xml"),
    ],
)
def test_single_gpu_xml_profiles_match_capture(name: str, capture: str) -> None:
    (gpu,), (el,) = profile(name)["gpus"], xml_gpus(capture)
    assert gpu["name"] == el.findtext("product_name")
    assert gpu["uuid"] == el.findtext("uuid")
    assert gpu["pci"]["bus_id"] == el.findtext("pci/pci_bus_id")
    assert gpu["memory"]["total"] == int(el.findtext("fb_memory_usage/total").split()[0]) * MIB
    limit = el.findtext("gpu_power_readings/current_power_limit") or el.findtext(
        "power_readings/enforced_power_limit"
    )
    assert gpu["power"]["enforced_limit_mw"] == round(float(limit.split()[0]) * 1000)


def test_no_nvlink_profiles() -> None:
    assert all(g["nvlinks"] == [] for g in profile("l40s")["gpus"] + profile("t4")["gpus"])


def test_a100_mig_profile() -> None:
    (gpu,), (el,) = (
        profile("a100-sxm4-80gb-mig")["gpus"],
        xml_gpus("nvidia-smi-q-x_a100-sxm4-80gb-mig_telegraf.xml"),
    )
    assert el.findtext("mig_mode/current_mig") == "Enabled"
    assert gpu["mig_mode"] == {"current": 1, "pending": 1}
    assert el.findtext("remapped_rows").strip() == "N/A"
    assert gpu["remapped_rows"] is None
    assert gpu["nvlinks"] is None


def test_h200_profile() -> None:
    ((bus_id, block),) = text_blocks("nvidia-smi-q_h200_gls.txt").items()
    (gpu,) = profile("h200")["gpus"]
    assert gpu["pci"]["bus_id"] == bus_id
    assert gpu["uuid"] == field(block, "GPU UUID")
    assert gpu["memory"]["total"] == 143771 * MIB
    assert gpu["power"]["enforced_limit_mw"] == 700000
    assert [link["state"] for link in gpu["nvlinks"]] == nvlink_states("nvlink-s_h200_nvgpuexporter.txt")[0]


# ---- 7-11. fault profiles ----------------------------------------------------------------------
def test_v100_retired_pages_fault() -> None:
    (gpu,) = profile("v100-sxm3-32gb-retired-pages")["gpus"]
    (el,) = xml_gpus("nvidia-smi-q-x_v100-sxm3-32gb-retired-pages-ecc_openpai.xml")
    ecc = gpu["ecc"]
    assert ecc["volatile"]["corrected"]["total"] == 1 and ecc["volatile"]["uncorrected"]["total"] == 1
    assert (
        ecc["aggregate"]["corrected"]["dram"]
        == int(el.findtext("ecc_errors/aggregate/single_bit/device_memory"))
        == 291
    )
    assert ecc["aggregate"]["uncorrected"]["dram"] == 7627
    assert ecc["aggregate"]["uncorrected"]["total"] == int(
        el.findtext("ecc_errors/aggregate/double_bit/total")
    )
    assert ecc["aggregate"]["corrected"]["texture_memory"] is None  # N/A in the capture
    addresses = [int(a.text, 16) for a in el.iter("retired_page_address")]
    assert [p["address"] for p in gpu["retired_pages"]["dbe"]] == addresses and len(addresses) == 2
    assert all(p["timestamp"] for p in gpu["retired_pages"]["dbe"])
    assert gpu["retired_pages"]["sbe"] == []
    assert gpu["retired_pages"]["pending"] is True
    assert gpu["remapped_rows"] is None


def test_a100_remap_pending_fault() -> None:
    blocks = text_blocks("nvidia-smi-q_a100-sxm4-80gb-x4-remapped-rows_gls.txt")
    gpus = {g["pci"]["bus_id"]: g for g in profile("a100-sxm4-80gb-x4-remap-pending")["gpus"]}
    assert list(gpus) == list(blocks)
    faulty = gpus["00000000:9E:00.0"]
    block = blocks["00000000:9E:00.0"]
    assert re.search(r"Correctable Error\s+: 1\n\s+Uncorrectable Error\s+: 0\n\s+Pending\s+: Yes", block)
    assert faulty["remapped_rows"]["corr"] == 1 and faulty["remapped_rows"]["pending"] is True
    assert (
        faulty["ecc"]["volatile"]["corrected"]["dram"]
        == faulty["ecc"]["aggregate"]["corrected"]["dram"]
        == 353
    )
    assert faulty["remapped_rows"]["histogram"]["max"] == 639
    assert gpus["00000000:C2:00.0"]["remapped_rows"]["corr"] == 1
    assert gpus["00000000:C2:00.0"]["remapped_rows"]["pending"] is False
    others = [g for bus, g in gpus.items() if bus != "00000000:9E:00.0"]
    assert not any(g["remapped_rows"]["pending"] for g in others)
    for gpu in gpus.values():  # HGX A100 4-GPU: 4 direct links to each of 3 peers
        peers = [link["remote_bus_id"] for link in gpu["nvlinks"]]
        assert len(peers) == 12 and gpu["pci"]["bus_id"] not in peers
        assert {peers.count(b) for b in set(peers)} == {4}


def test_gh200_dram_uncorrectable_fault() -> None:
    ((_, block),) = text_blocks("nvidia-smi-q_gh200-dram-uncorrectable_gls.txt").items()
    (gpu,) = profile("gh200-dram-uncorrectable")["gpus"]
    aggregate = block.split("Aggregate\n", 1)[1]
    assert int(field(aggregate, "DRAM Uncorrectable")) == gpu["ecc"]["aggregate"]["uncorrected"]["dram"] == 1
    assert field(block, "Uncorrectable Error") == "1" and gpu["remapped_rows"]["unc"] == 1
    assert gpu["ecc"]["volatile"]["uncorrected"]["dram"] == 0


def test_k80_retired_pages() -> None:
    gpus = profile("tesla-k80-x4-retired")["gpus"]
    captured = xml_gpus("nvidia-smi-q-x_tesla-k80-x4-ecc-retired_openpai.xml")
    for gpu, el in zip(gpus, captured, strict=True):
        for key, tag in (("sbe", "multiple_single_bit_retirement"), ("dbe", "double_bit_retirement")):
            addresses = [
                int(a.text, 16)
                for a in el.findall(f"retired_pages/{tag}/retired_pagelist/retired_page/retired_page_address")
            ]
            assert [p["address"] for p in gpu["retired_pages"][key]] == addresses
            assert all(p["timestamp"] is None for p in gpu["retired_pages"][key])
        assert gpu["architecture"] == fake_nvml.NVML_DEVICE_ARCH_KEPLER
    assert sum(len(g["retired_pages"]["dbe"]) for g in gpus) == 2


def test_the_stitched_v100_profile_is_gone() -> None:
    # It combined three nodes' captures into an asymmetric matrix (GPU0-GPU4 NV2 one way, NV1 the
    # other) and named 16 GB boards 32gb; its inactive link ends cannot be wired consistently.
    assert not (PROFILES / "v100-sxm2-32gb-x8-inactive-nvlinks.json").exists()


@pytest.mark.parametrize("name", sorted(p.stem for p in PROFILES.glob("*.json")))
def test_every_derived_matrix_is_symmetric(name: str) -> None:
    topo = profile(name)["topology"]
    if topo is None:
        return
    matrices = {"common_ancestor": topo["common_ancestor"], **{f"p2p.{k}": v for k, v in topo["p2p"].items()}}
    for what, m in matrices.items():
        n = len(m)
        asymmetric = [(i, j) for i in range(n) for j in range(n) if m[i][j] != m[j][i]]
        assert not asymmetric, f"{name} {what}: {asymmetric}"


@pytest.mark.parametrize(
    ("name", "topo"),
    [
        ("h100-sxm5-80gb-x8", "topo-m_8x-h100-sxm-spaces_mlengineering.txt"),
        ("a100-sxm4-40gb-x8", "topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt"),
    ],
)
def test_topology_profiles_carry_cpu_and_numa_affinity_from_the_capture(name: str, topo: str) -> None:
    cpus, numa = topo_affinity((CAPTURES / topo).read_text(encoding="utf-8"))
    gpus = profile(name)["gpus"]
    assert [g["cpu_affinity"] for g in gpus] == cpus
    assert [g["numa_node"] for g in gpus] == numa
    assert all(g["cpu_affinity"] for g in gpus)


# ---- topology fixtures (8x H200 matrices are parser fixtures, not profiles) --------------------
@pytest.mark.parametrize(
    ("capture", "n", "numa"),
    [
        ("topo-m_8x-h200-10nic_glm52fp8.txt", 8, [0, 0, 0, 0, 1, 1, 1, 1]),
        ("topo-m_8x-h200-12nic_distributedai.txt", 8, [0, 0, 0, 0, 1, 1, 1, 1]),
        ("topo-m_4x-a100-sxm4-80gb-nv12_prismsinglegpu.txt", 4, [1, 1, 1, 1]),
        ("topo-m_4x-a100-pcie-adroit_a100workshop.txt", 4, [0, 0, 1, 1]),
        ("topo-m_h100-sxm5-80gb-1gpu-vm_nvgpuexporter.txt", 1, [0]),
    ],
)
def test_topo_parser_handles_ansi_and_nic_columns(capture: str, n: int, numa: list[int]) -> None:
    topo = load_script().parse_topo((CAPTURES / capture).read_text(encoding="utf-8"))
    assert len(topo.cells) == n and all(len(row) == n for row in topo.cells)
    assert topo.numa == numa
    assert all(topo.cells[i][i] == "X" for i in range(n))


# ---- regeneration ------------------------------------------------------------------------------
def test_derive_script_reproduces_committed_profiles(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, str(SCRIPT), "--captures", str(CAPTURES), "--out", str(tmp_path)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in PROFILES.glob("*.json"))
    for path in PROFILES.glob("*.json"):
        assert (tmp_path / path.name).read_bytes() == path.read_bytes(), path.name


# ---- the fake serves every profile -------------------------------------------------------------
NULL_CHECKS: list[tuple[tuple[str, ...], str, tuple[Any, ...]]] = [
    (("fan_speed",), "nvmlDeviceGetFanSpeed", ()),
    (("mig_mode",), "nvmlDeviceGetMigMode", ()),
    (("numa_node",), "nvmlDeviceGetNumaNodeId", ()),
    (("remapped_rows",), "nvmlDeviceGetRemappedRows", ()),
    (("retired_pages",), "nvmlDeviceGetRetiredPagesPendingStatus", ()),
    (("ecc",), "nvmlDeviceGetEccMode", ()),
    (("temperature", "thresholds", "mem_max"), "nvmlDeviceGetTemperatureThreshold", (2,)),
    (("temperature", "thresholds", "gpu_max"), "nvmlDeviceGetTemperatureThreshold", (3,)),
    (("utilization", "encoder"), "nvmlDeviceGetEncoderUtilization", ()),
    (("board_part_number",), "nvmlDeviceGetBoardPartNumber", ()),
    (("ecc", "aggregate", "corrected", "texture_memory"), "nvmlDeviceGetMemoryErrorCounter", (0, 1, 4)),
]


def _dig(node: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


@pytest.mark.parametrize("name", PROFILE_NAMES)
def test_fake_nvml_serves_profile(name: str) -> None:
    p = profile(name)
    nvml = FakeNvml(p)
    nvml.nvmlInit()
    assert nvml.nvmlDeviceGetCount() == len(p["gpus"])
    for i, gpu in enumerate(p["gpus"]):
        h = nvml.nvmlDeviceGetHandleByIndex(i)
        assert nvml.nvmlDeviceGetName(h) == gpu["name"]
        mem = nvml.nvmlDeviceGetMemoryInfo(h, version=nvml.nvmlMemory_v2)
        assert mem.total == gpu["memory"]["total"] > 0
        for path, fn, args in NULL_CHECKS:
            if _dig(gpu, path) is None:
                with pytest.raises(nvml.NVMLError_NotSupported):
                    getattr(nvml, fn)(h, *args)
        if gpu["nvlinks"] is None:  # no NVLink data in the capture: unknown, not "no links"
            with pytest.raises(nvml.NVMLError_NoData):
                nvml.nvmlDeviceGetNvLinkState(h, 0)
        elif not gpu["nvlinks"]:
            with pytest.raises(nvml.NVMLError_NotSupported):
                nvml.nvmlDeviceGetNvLinkState(h, 0)
        elif gpu["nvlinks"][0]["capabilities"] is None:
            with pytest.raises(nvml.NVMLError_NotSupported):
                nvml.nvmlDeviceGetNvLinkCapability(h, 0, nvml.NVML_NVLINK_CAP_P2P_SUPPORTED)
    if p["topology"] is None:
        with pytest.raises(nvml.NVMLError_NotSupported):
            nvml.nvmlDeviceGetTopologyCommonAncestor(FakeHandle(0), FakeHandle(0))
    nvml.nvmlShutdown()
