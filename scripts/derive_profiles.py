#!/usr/bin/env python3
"""Derive the mock fleet (``src/k8s_gpu_mcp/gpu/profiles/*.json``) from real nvidia-smi captures.

Stdlib only (and the package's ``gpu/nvml_constants.py``). Reads the captures listed in ``tests/fixtures/captures/README.md`` (copied from
``../shared/fixtures/captures/``) and writes one JSON file per profile in the schema of
``docs/profiles.md``. Output is deterministic (fixed
key order, compact scalar lists), so re-running the script on unchanged captures is diff-free.

Parsers:
  * ``nvidia-smi -q -x`` XML, any driver generation (``clocks_event_reasons`` and the older
    ``clocks_throttle_reasons``; absolute or T.Limit-relative thermals; three ECC layouts);
  * ``nvidia-smi -q`` text (4-space indented ``key : value``; the 460 layout and R550+);
  * ``nvidia-smi nvlink -s`` (``Link N: 26.562 GB/s`` or ``<inactive>``);
  * ``nvidia-smi topo -m`` (GPU matrix, ANSI underline escapes, NIC / affinity columns).

Conversions (each profile's ``notes`` says which ones it relied on):
  * T.Limit thermals (Hopper/Blackwell, R545+ drivers) are printed relative to the T.Limit:
    ``gpu_temp_tlimit`` is the margin left, so the absolute T.Limit is ``gpu_temp + gpu_temp_tlimit``;
    ``slowdown = T.Limit - gpu_temp_slow_tlimit_threshold``, ``shutdown = T.Limit -
    gpu_temp_max_tlimit_threshold``, ``gpu_max = T.Limit - gpu_temp_max_gpu_tlimit_threshold``.
    The memory threshold is relative to a memory T.Limit the capture does not print: ``mem_max`` null.
  * ``topo -m`` words to NVML topology levels: X=0, PIX=10, PXB=20, PHB=30, NODE=40, SYS=50. ``NV#``
    hides the PCIe level; it is taken as NODE (same NUMA affinity) or SYS (different NUMA).
  * CUDA "12.8" -> 12080, MiB -> bytes, W -> mW, "P0" -> 0, architecture name -> NVML_DEVICE_ARCH_*.

Usage: ``python scripts/derive_profiles.py [--captures DIR] [--out DIR] [--only NAME ...] [-v]``
"""

from __future__ import annotations

import argparse
import calendar
import json
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))  # the package's NVML tables, also from a checkout not installed
from k8s_gpu_mcp.gpu import nvml_constants  # noqa: E402  (stdlib only: no pynvml import)

DEFAULT_CAPTURES = REPO / "tests" / "fixtures" / "captures"
DEFAULT_OUT = REPO / "src" / "k8s_gpu_mcp" / "gpu" / "profiles"
SCHEMA = 1
MIB = 1024 * 1024
NA_VALUES = {"", "n/a", "[n/a]", "not supported", "[not supported]", "unknown error", "none"}
DEPRECATED = "requested functionality has been deprecated"

# ---- NVML enumerations (declared once, in the package) -----------------------------------------
ARCHITECTURES = {name.lower(): code for code, name in nvml_constants.ARCHITECTURES.items()}
# Product-name pattern -> (architecture name, compute capability). nvidia-smi -q never prints the
# compute capability; these are CUDA's published values per model. Order matters (first match).
MODELS: list[tuple[str, str, tuple[int, int]]] = [
    (r"GB300|B300", "blackwell", (10, 3)),
    (r"GB200|B200", "blackwell", (10, 0)),
    (r"RTX 50\d\d", "blackwell", (12, 0)),
    (r"H100|H200|GH200", "hopper", (9, 0)),
    (r"L40S?\b|L4\b|RTX 40\d\d|RTX 6000 Ada", "ada lovelace", (8, 9)),
    (r"A100|A30\b", "ampere", (8, 0)),
    (r"A10G?\b|A40\b|A16\b|A2\b|RTX 30\d\d|RTX A\d+", "ampere", (8, 6)),
    (r"T4\b|RTX 20\d\d", "turing", (7, 5)),
    (r"V100", "volta", (7, 0)),
    (r"P100", "pascal", (6, 0)),
    (r"P40|P4\b", "pascal", (6, 1)),
    (r"K80", "kepler", (3, 7)),
]
NVLINK_VERSION = nvml_constants.NVLINK_VERSIONS
NVLINK_DEVICE_GPU = nvml_constants.NVLINK_DEVICE_GPU
NVLINK_DEVICE_SWITCH = nvml_constants.NVLINK_DEVICE_SWITCH
# nvidia-smi's reason labels: NVML's names, and two spellings older drivers print
CLOCK_REASON_BITS = {
    **nvml_constants.CLOCK_EVENT_REASONS,
    "idle": nvml_constants.CLOCK_EVENT_REASONS["gpu_idle"],
    "display_clocks_setting": nvml_constants.CLOCK_EVENT_REASONS["display_clock_setting"],
}
TOPO_LEVELS = {"X": nvml_constants.TOPOLOGY_INTERNAL, **nvml_constants.TOPOLOGY_LEVELS}
P2P_OK = nvml_constants.P2P_OK
P2P_CHIPSET_NOT_SUPPORTED = nvml_constants.P2P_CHIPSET_NOT_SUPPORTED
P2P_NOT_SUPPORTED = nvml_constants.P2P_NOT_SUPPORTED

ECC_LOCATIONS = {  # pre-Ampere per-location key -> profile location key
    "device_memory": "dram",
    "register_file": "register_file",
    "l1_cache": "l1_cache",
    "l2_cache": "l2_cache",
    "texture_memory": "texture_memory",
    "texture_shm": "texture_shm",
    "cbu": "cbu",
}


# ---- scalar conversions ------------------------------------------------------------------------
def clean(raw: str | None) -> str | None:
    """Strip a captured value; None for N/A-style values (NVML NotSupported)."""
    if raw is None:
        return None
    value = raw.strip()
    if value.lower() in NA_VALUES or value.lower() == DEPRECATED:
        return None
    return value


def number(raw: str | None) -> float | None:
    value = clean(raw)
    if value is None:
        return None
    match = re.search(r"-?\d+(?:\.\d+)?", value)
    return float(match.group()) if match else None


def integer(raw: str | None) -> int | None:
    value = number(raw)
    return None if value is None else int(value)


def mib_to_bytes(raw: str | None) -> int | None:
    value = integer(raw)
    return None if value is None else value * MIB


def watts_to_mw(raw: str | None) -> int | None:
    value = number(raw)
    return None if value is None else int(round(value * 1000))


def hex_int(raw: str | None) -> int | None:
    value = clean(raw)
    return None if value is None else int(value, 16)


def flag(raw: str | None) -> int | None:
    """Enabled/Disabled, Yes/No -> 1/0."""
    value = clean(raw)
    if value is None:
        return None
    return 1 if value.lower() in {"enabled", "yes", "active", "on"} else 0


def yes_no(raw: str | None) -> bool | None:
    value = flag(raw)
    return None if value is None else bool(value)


def pstate(raw: str | None) -> int | None:
    value = clean(raw)
    return int(value[1:]) if value and value.startswith("P") else None


def cuda_version(raw: str | None) -> int | None:
    match = re.fullmatch(r"(\d+)\.(\d+)", clean(raw) or "")  # "Not Found" (no CUDA) -> None
    return int(match.group(1)) * 1000 + int(match.group(2)) * 10 if match else None


def snake(label: str) -> str:
    key = re.sub(r"[^a-z0-9]+", "_", label.strip().lower()).strip("_")
    return {"sram_uncorrectable_sec_ded": "sram_uncorrectable_secded", "texture_shared": "texture_shm"}.get(
        key, key
    )


def smi_timestamp(raw: str | None) -> int | None:
    """'Wed Aug 21 23:34:06 2019' -> seconds since the epoch, read as UTC (the capture has no zone)."""
    value = clean(raw)
    if value is None:
        return None
    return calendar.timegm(time.strptime(" ".join(value.split()), "%a %b %d %H:%M:%S %Y"))


# ---- nested section dicts (ECC, retired pages, remapped rows) ----------------------------------
Tree = dict[str, Any]  # snake_case key -> str leaf or Tree


# ---- nvidia-smi -q text ------------------------------------------------------------------------
@dataclass
class Node:
    key: str
    value: str | None
    children: list[Node] = field(default_factory=list)

    def find(self, *path: str) -> Node | None:
        node: Node | None = self
        for label in path:
            if node is None:
                return None
            node = next((c for c in node.children if c.key.lower() == label.lower()), None)
        return node

    def get(self, *path: str) -> str | None:
        node = self.find(*path)
        return None if node is None else node.value

    def walk(self) -> Iterable[Node]:
        for child in self.children:
            yield child
            yield from child.walk()

    def tree(self) -> Tree | str | None:
        if not self.children:
            return self.value
        return {snake(c.key): c.tree() for c in self.children}


_TEXT_LINE = re.compile(r"^( *)([^:]+?)\s*(?::\s?(.*))?$")


def parse_smi_text(text: str) -> Node:
    """Indentation tree of an ``nvidia-smi -q`` dump; GPU blocks are children named 'GPU <busid>'."""
    root = Node("root", None)
    stack: list[tuple[int, Node]] = [(-1, root)]
    for line in text.splitlines():
        match = _TEXT_LINE.match(line.rstrip())
        if not line.strip() or line.startswith("=") or not match:
            continue
        level = len(match.group(1)) // 4
        node = Node(match.group(2).strip(), match.group(3))
        while stack[-1][0] >= level:
            stack.pop()
        stack[-1][1].children.append(node)
        stack.append((level, node))
    return root


# ---- field paths: XML (relative to <gpu>) and text (labels below 'GPU <busid>') ---------------
PathSpec = tuple[list[str], list[tuple[str, ...]]]
_PWR_X, _PWR_T = "gpu_power_readings", "GPU Power Readings"
FIELDS: dict[str, PathSpec] = {
    "name": (["product_name"], [("Product Name",)]),
    "architecture": (["product_architecture"], [("Product Architecture",)]),
    "uuid": (["uuid"], [("GPU UUID",)]),
    "serial": (["serial"], [("Serial Number",)]),
    "minor_number": (["minor_number"], [("Minor Number",)]),
    "bus_id": (["pci/pci_bus_id"], [("PCI", "Bus Id")]),
    "device_id": (["pci/pci_device_id"], [("PCI", "Device Id")]),
    "subsystem_id": (["pci/pci_sub_system_id"], [("PCI", "Sub System Id")]),
    "vbios_version": (["vbios_version"], [("VBIOS Version",)]),
    "board_part_number": (["board_part_number"], [("Board Part Number",)]),
    "persistence_mode": (["persistence_mode"], [("Persistence Mode",)]),
    "mig_current": (["mig_mode/current_mig"], [("MIG Mode", "Current")]),
    "mig_pending": (["mig_mode/pending_mig"], [("MIG Mode", "Pending")]),
    "mem_total": (["fb_memory_usage/total"], [("FB Memory Usage", "Total")]),
    "mem_reserved": (["fb_memory_usage/reserved"], [("FB Memory Usage", "Reserved")]),
    "mem_used": (["fb_memory_usage/used"], [("FB Memory Usage", "Used")]),
    "mem_free": (["fb_memory_usage/free"], [("FB Memory Usage", "Free")]),
    "pcie_max_gen": (
        ["pci/pci_gpu_link_info/pcie_gen/max_link_gen"],
        [("PCI", "GPU Link Info", "PCIe Generation", "Max")],
    ),
    "pcie_curr_gen": (
        ["pci/pci_gpu_link_info/pcie_gen/current_link_gen"],
        [("PCI", "GPU Link Info", "PCIe Generation", "Current")],
    ),
    "pcie_max_width": (
        ["pci/pci_gpu_link_info/link_widths/max_link_width"],
        [("PCI", "GPU Link Info", "Link Width", "Max")],
    ),
    "pcie_curr_width": (
        ["pci/pci_gpu_link_info/link_widths/current_link_width"],
        [("PCI", "GPU Link Info", "Link Width", "Current")],
    ),
    "pcie_replay": (["pci/replay_counter"], [("PCI", "Replays Since Reset")]),
    # nvmlDeviceGetPowerUsage: the instantaneous reading where the driver prints both.
    "power_usage": (
        [
            f"{_PWR_X}/instant_power_draw",
            f"{_PWR_X}/power_draw",
            f"{_PWR_X}/average_power_draw",
            "power_readings/power_draw",
        ],
        [
            (_PWR_T, "Instantaneous Power Draw"),
            (_PWR_T, "Power Draw"),
            (_PWR_T, "Average Power Draw"),
            ("Power Readings", "Power Draw"),
        ],
    ),
    "power_limit": (
        [f"{_PWR_X}/current_power_limit", "power_readings/enforced_power_limit"],
        [(_PWR_T, "Current Power Limit"), ("Power Readings", "Enforced Power Limit")],
    ),
    "power_default": (
        [f"{_PWR_X}/default_power_limit", "power_readings/default_power_limit"],
        [(_PWR_T, "Default Power Limit"), ("Power Readings", "Default Power Limit")],
    ),
    "power_min": (
        [f"{_PWR_X}/min_power_limit", "power_readings/min_power_limit"],
        [(_PWR_T, "Min Power Limit"), ("Power Readings", "Min Power Limit")],
    ),
    "power_max": (
        [f"{_PWR_X}/max_power_limit", "power_readings/max_power_limit"],
        [(_PWR_T, "Max Power Limit"), ("Power Readings", "Max Power Limit")],
    ),
    "temp_gpu": (["temperature/gpu_temp"], [("Temperature", "GPU Current Temp")]),
    "temp_memory": (["temperature/memory_temp"], [("Temperature", "Memory Current Temp")]),
    "tlimit": (["temperature/gpu_temp_tlimit"], [("Temperature", "GPU T.Limit Temp")]),
    "tlimit_shutdown": (
        ["temperature/gpu_temp_max_tlimit_threshold"],
        [("Temperature", "GPU Shutdown T.Limit Temp")],
    ),
    "tlimit_slowdown": (
        ["temperature/gpu_temp_slow_tlimit_threshold"],
        [("Temperature", "GPU Slowdown T.Limit Temp")],
    ),
    "tlimit_gpu_max": (
        ["temperature/gpu_temp_max_gpu_tlimit_threshold"],
        [("Temperature", "GPU Max Operating T.Limit Temp")],
    ),
    "shutdown": (["temperature/gpu_temp_max_threshold"], [("Temperature", "GPU Shutdown Temp")]),
    "slowdown": (["temperature/gpu_temp_slow_threshold"], [("Temperature", "GPU Slowdown Temp")]),
    "gpu_max": (["temperature/gpu_temp_max_gpu_threshold"], [("Temperature", "GPU Max Operating Temp")]),
    "mem_max": (["temperature/gpu_temp_max_mem_threshold"], [("Temperature", "Memory Max Operating Temp")]),
    "fan_speed": (["fan_speed"], [("Fan Speed",)]),
    "util_gpu": (["utilization/gpu_util"], [("Utilization", "Gpu")]),
    "util_memory": (["utilization/memory_util"], [("Utilization", "Memory")]),
    "util_encoder": (["utilization/encoder_util"], [("Utilization", "Encoder")]),
    "util_decoder": (["utilization/decoder_util"], [("Utilization", "Decoder")]),
    "pstate": (["performance_state"], [("Performance State",)]),
    "ecc_current": (["ecc_mode/current_ecc"], [("ECC Mode", "Current")]),
    "ecc_pending": (["ecc_mode/pending_ecc"], [("ECC Mode", "Pending")]),
    "fabric_state": (["fabric/state"], [("Fabric", "State")]),
    "fabric_status": (["fabric/status"], [("Fabric", "Status")]),
    "fabric_clique": (["fabric/cliqueId"], [("Fabric", "CliqueId")]),
    "fabric_cluster_uuid": (["fabric/clusterUuid"], [("Fabric", "ClusterUUID")]),
    "fabric_summary": (["fabric/health/summary"], [("Fabric", "Health", "Summary")]),
}
# Fabric health flags: profile key -> (XML tag, text label) under fabric/health
FABRIC_HEALTH = {
    "degraded_bandwidth": ("bandwidth", "Bandwidth"),
    "route_recovery_in_progress": ("route_recovery_in_progress", "Route Recovery in progress"),
    "route_unhealthy": ("route_unhealthy", "Route Unhealthy"),
    "access_timeout_recovery": ("access_timeout_recovery", "Access Timeout Recovery"),
    "partition_assigned": ("partition_assigned", "Partition Assigned"),
}
for _key, (_tag, _label) in FABRIC_HEALTH.items():
    FIELDS[f"fabric_{_key}"] = ([f"fabric/health/{_tag}"], [("Fabric", "Health", _label)])
# nvidia-smi's fabric words -> NVML values (nvmlGpuFabricState_t, nvmlReturn_t, health summary)
FABRIC_STATES = {"not started": 1, "in progress": 2, "completed": 3}
FABRIC_STATUS = {"success": 0}
FABRIC_SUMMARY = {"healthy": 1, "unhealthy": 2, "limited capacity": 3}
# MIG: SMs per compute slice and the most MIG devices, per model (NVIDIA MIG User Guide: A100 has
# seven 14-SM compute slices). The profile name is <compute slices>g.<memory GB>gb.
MIG_MODELS: list[tuple[str, int, int]] = [(r"A100", 14, 7)]
for _clock, _label in (("graphics", "Graphics"), ("sm", "SM"), ("mem", "Memory"), ("video", "Video")):
    FIELDS[f"clock_{_clock}"] = ([f"clocks/{_clock}_clock"], [("Clocks", _label)])
    FIELDS[f"max_clock_{_clock}"] = ([f"max_clocks/{_clock}_clock"], [("Max Clocks", _label)])


class XmlGpu:
    """One ``<gpu>`` element of ``nvidia-smi -q -x``."""

    def __init__(self, element: ET.Element):
        self.el = element

    def value(self, name: str) -> str | None:
        for path in FIELDS[name][0]:
            found = self.el.find(path)
            if found is not None and not len(found):
                return clean(found.text)
        return None

    def _tree(self, path: str) -> Tree | str | None:
        el = self.el.find(path)
        return None if el is None else _xml_tree(el)

    def clock_reasons(self) -> dict[str, str | None]:
        for tag in ("clocks_event_reasons", "clocks_throttle_reasons"):
            section = self.el.find(tag)
            if section is not None:
                prefix = re.compile(r"^clocks_(event|throttle)_reason_")
                return {prefix.sub("", c.tag): clean(c.text) for c in section}
        return {}

    def ecc(self) -> Tree | None:
        tree = self._tree("ecc_errors")
        return tree if isinstance(tree, dict) else None

    def retired_pages(self) -> dict[str, Any] | None:
        section = self.el.find("retired_pages")
        if section is None:
            return None
        pending = clean(section.findtext("pending_retirement")) or clean(
            section.findtext("pending_blacklist")
        )
        return {
            "sbe": _xml_pages(section.find("multiple_single_bit_retirement")),
            "dbe": _xml_pages(section.find("double_bit_retirement")),
            "pending": pending,
        }

    def remapped_rows(self) -> dict[str, Any] | None:
        tree = self._tree("remapped_rows")
        if not isinstance(tree, dict):
            return None
        hist = tree.get("row_remapper_histogram") or {}
        return {
            "corr": tree.get("remapped_row_corr"),
            "unc": tree.get("remapped_row_unc"),
            "pending": tree.get("remapped_row_pending"),
            "failure": tree.get("remapped_row_failure"),
            "histogram": {
                k: hist.get(f"row_remapper_histogram_{k}") for k in ("max", "high", "partial", "low", "none")
            },
        }

    def mig_devices(self) -> list[dict[str, str | None]]:
        return _xml_mig_devices(self.el)

    def processes(self) -> list[dict[str, str | None]]:
        return [
            {
                "pid": p.findtext("pid"),
                "type": p.findtext("type"),
                "name": p.findtext("process_name"),
                "used_memory": p.findtext("used_memory"),
                "gpu_instance_id": p.findtext("gpu_instance_id"),
                "compute_instance_id": p.findtext("compute_instance_id"),
            }
            for p in self.el.findall("processes/process_info")
        ]


def _xml_mig_devices(gpu: ET.Element) -> list[dict[str, str | None]]:
    shared = "device_attributes/shared/"
    return [
        {
            "index": d.findtext("index"),
            "gpu_instance_id": d.findtext("gpu_instance_id"),
            "compute_instance_id": d.findtext("compute_instance_id"),
            "sm": d.findtext(f"{shared}multiprocessor_count"),
            "copy_engine": d.findtext(f"{shared}copy_engine_count"),
            "encoder": d.findtext(f"{shared}encoder_count"),
            "decoder": d.findtext(f"{shared}decoder_count"),
            "ofa": d.findtext(f"{shared}ofa_count"),
            "jpg": d.findtext(f"{shared}jpg_count"),
            "sram_uncorrectable": d.findtext("ecc_error_count/volatile_count/sram_uncorrectable"),
            **{f"mem_{k}": d.findtext(f"fb_memory_usage/{k}") for k in ("total", "reserved", "used", "free")},
        }
        for d in gpu.findall("mig_devices/mig_device")
    ]


def _xml_tree(el: ET.Element) -> Tree | str | None:
    if not len(el):
        return el.text
    return {c.tag: _xml_tree(c) for c in el}


def _xml_pages(section: ET.Element | None) -> dict[str, Any]:
    if section is None:
        return {"count": None, "pages": None}
    pages = [
        (p.findtext("retired_page_address"), p.findtext("retired_page_timestamp"))
        for p in section.findall("retired_pagelist/retired_page")
    ]
    return {"count": section.findtext("retired_count"), "pages": pages}


class TextGpu:
    """One ``GPU <busid>`` block of ``nvidia-smi -q``."""

    def __init__(self, node: Node):
        self.node = node

    def value(self, name: str) -> str | None:
        for path in FIELDS[name][1]:
            found = self.node.find(*path)
            if found is not None and not found.children:
                return clean(found.value)
        return None

    def clock_reasons(self) -> dict[str, str | None]:
        section = self.node.find("Clocks Event Reasons") or self.node.find("Clocks Throttle Reasons")
        return {} if section is None else {snake(n.key): clean(n.value) for n in section.walk()}

    def ecc(self) -> Tree | None:
        section = self.node.find("ECC Errors")
        tree = None if section is None else section.tree()
        return tree if isinstance(tree, dict) else None

    def retired_pages(self) -> dict[str, Any] | None:
        section = self.node.find("Retired Pages")
        if section is None:
            return None
        pending = section.get("Pending Page Retirement") or section.get("Pending Page Blacklist")
        return {
            "sbe": {"count": section.get("Single Bit ECC"), "pages": None},
            "dbe": {"count": section.get("Double Bit ECC"), "pages": None},
            "pending": clean(pending),
        }

    def remapped_rows(self) -> dict[str, Any] | None:
        section = self.node.find("Remapped Rows")
        if section is None or not section.children:
            return None
        hist = section.find("Bank Remap Availability Histogram") or Node("", None)
        return {
            "corr": section.get("Correctable Error"),
            "unc": section.get("Uncorrectable Error"),
            "pending": section.get("Pending"),
            "failure": section.get("Remapping Failure Occurred"),
            "histogram": {k: hist.get(k) for k in ("max", "high", "partial", "low", "none")},
        }

    def processes(self) -> list[dict[str, str | None]]:
        section = self.node.find("Processes")
        procs: list[dict[str, str | None]] = []
        ids: dict[str, str | None] = {}
        for child in [] if section is None else section.children:
            if child.key.lower() in {"gpu instance id", "compute instance id"}:
                ids[snake(child.key)] = child.value
            elif child.key.lower() == "process id":
                procs.append(
                    {
                        "pid": child.value,
                        "type": child.get("Type"),
                        "name": child.get("Name"),
                        "used_memory": child.get("Used GPU Memory"),
                        **ids,
                    }
                )
                ids = {}
        return procs


GpuSource = XmlGpu | TextGpu


@dataclass
class Capture:
    """A parsed ``-q`` / ``-q -x`` capture: node-wide header and per-GPU sources."""

    driver_version: str | None
    cuda_version: str | None
    attached_gpus: int | None
    gpus: list[GpuSource]


def load_smi(path: Path) -> Capture:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".xml":
        root = ET.fromstring(re.sub(r"<!DOCTYPE[^>]*>", "", text))
        return Capture(
            clean(root.findtext("driver_version")),
            clean(root.findtext("cuda_version")),
            integer(root.findtext("attached_gpus")),
            [XmlGpu(g) for g in root.findall("gpu")],
        )
    tree = parse_smi_text(text)
    return Capture(
        clean(tree.get("Driver Version")),
        clean(tree.get("CUDA Version")),
        integer(tree.get("Attached GPUs")),
        [TextGpu(n) for n in tree.children if n.key.startswith("GPU ")],
    )


# ---- nvidia-smi nvlink -s ----------------------------------------------------------------------
def parse_nvlink_status(text: str) -> list[list[int]]:
    """Per GPU (in order), per link: 1 when a speed is shown, 0 for ``<inactive>``."""
    gpus: list[list[int]] = []
    for line in text.splitlines():
        if re.match(r"^GPU \d+:", line):
            gpus.append([])
            continue
        match = re.match(r"^\s+Link (\d+):\s*(.*)$", line)
        if match and gpus:
            assert int(match.group(1)) == len(gpus[-1]), f"links out of order: {line!r}"
            gpus[-1].append(0 if "inactive" in match.group(2).lower() else 1)
    return gpus


# ---- nvidia-smi topo -m ------------------------------------------------------------------------
@dataclass
class Topo:
    cells: list[list[str]]  # GPU x GPU words: X, NV#, PIX, PXB, PHB, NODE, SYS
    numa: list[int | None]
    nics: list[list[str]] = field(default_factory=list)  # GPU x NIC words
    cpus: list[str | None] = field(default_factory=list)  # CPU Affinity column, e.g. "0-19,40-59"


def parse_topo(text: str) -> Topo:
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line) for line in text.splitlines()]
    header = next(line for line in lines if re.search(r"\bGPU0\b", line) and not line.startswith("GPU0"))
    columns = [c.strip() for c in re.split(r"\t|\s{2,}", header.strip()) if c.strip()]
    n_gpus = sum(1 for c in columns if re.fullmatch(r"GPU\d+", c))
    n_devices = sum(1 for c in columns if c not in {"CPU Affinity", "NUMA Affinity", "GPU NUMA ID"})
    numa_col = columns.index("NUMA Affinity") - n_devices if "NUMA Affinity" in columns else None
    cpu_col = columns.index("CPU Affinity") - n_devices if "CPU Affinity" in columns else None
    cells: list[list[str]] = []
    numa: list[int | None] = []
    nics: list[list[str]] = []
    cpus: list[str | None] = []
    for i in range(n_gpus):
        tokens = next(line for line in lines if line.startswith(f"GPU{i}")).split()
        cells.append(tokens[1 : 1 + n_gpus])
        nics.append(tokens[1 + n_gpus : 1 + n_devices])
        extra = tokens[1 + n_devices :]
        numa.append(integer(extra[numa_col]) if numa_col is not None and len(extra) > numa_col else None)
        cpu = extra[cpu_col] if cpu_col is not None and len(extra) > cpu_col else None
        cpus.append(cpu if cpu and re.fullmatch(r"\d+(-\d+)?(,\d+(-\d+)?)*", cpu) else None)
    return Topo(cells, numa, nics, cpus)


def pcie_level(topo: Topo, i: int, j: int) -> int:
    word = topo.cells[i][j]
    if word in TOPO_LEVELS:
        return TOPO_LEVELS[word]
    # NV#: the matrix hides the PCIe path. In a PCIe tree the GPU-GPU common ancestor is no higher than
    # the worse of both GPUs' paths to a shared NIC; without such a NIC, NUMA affinity decides.
    via_nic = [
        max(TOPO_LEVELS[a], TOPO_LEVELS[b])
        for a, b in zip(topo.nics[i], topo.nics[j], strict=True)
        if a in TOPO_LEVELS and b in TOPO_LEVELS
    ]
    same_numa = topo.numa[i] is not None and topo.numa[i] == topo.numa[j]
    by_numa = TOPO_LEVELS["NODE"] if same_numa else TOPO_LEVELS["SYS"]
    return min([by_numa, *via_nic])


def nvlink_count(word: str) -> int:
    return int(word[2:]) if word.startswith("NV") else 0


def build_topology(topo: Topo) -> dict[str, Any]:
    n = len(topo.cells)
    pairs = [[(i, j) for j in range(n)] for i in range(n)]

    def matrix(fn: Callable[[int, int], int]) -> list[list[int]]:
        return [[0 if i == j else fn(i, j) for i, j in row] for row in pairs]

    def pcie_p2p(i: int, j: int) -> int:
        if nvlink_count(topo.cells[i][j]) or pcie_level(topo, i, j) < TOPO_LEVELS["SYS"]:
            return P2P_OK
        return P2P_CHIPSET_NOT_SUPPORTED

    def nvlink_p2p(i: int, j: int) -> int:
        return P2P_OK if nvlink_count(topo.cells[i][j]) else P2P_NOT_SUPPORTED

    return {
        "common_ancestor": matrix(lambda i, j: pcie_level(topo, i, j)),
        "p2p": {
            "read": matrix(pcie_p2p),
            "write": matrix(pcie_p2p),
            "nvlink": matrix(nvlink_p2p),
            "atomics": matrix(nvlink_p2p),
            "prop": matrix(pcie_p2p),
        },
    }


# ---- one GPU -----------------------------------------------------------------------------------
def model_info(name: str) -> tuple[str, tuple[int, int]] | None:
    for pattern, arch, cc in MODELS:
        if re.search(pattern, name):
            return arch, cc
    return None


def build_memory(src: GpuSource) -> dict[str, int | None] | None:
    total = mib_to_bytes(src.value("mem_total"))
    if total is None:
        return None
    return {
        "total": total,
        "reserved": mib_to_bytes(src.value("mem_reserved")),
        "used": mib_to_bytes(src.value("mem_used")),
        "free": mib_to_bytes(src.value("mem_free")),
    }


def build_thresholds(src: GpuSource) -> dict[str, int | None]:
    temp, margin = integer(src.value("temp_gpu")), integer(src.value("tlimit"))
    if temp is not None and margin is not None:
        tlimit = temp + margin  # absolute T.Limit; the thresholds are offsets below it

        def below(name: str) -> int | None:
            offset = integer(src.value(name))
            return None if offset is None else tlimit - offset

        return {
            "shutdown": below("tlimit_shutdown"),
            "slowdown": below("tlimit_slowdown"),
            "gpu_max": below("tlimit_gpu_max"),
            "mem_max": None,  # relative to a memory T.Limit the capture does not print
        }
    return {k: integer(src.value(k)) for k in ("shutdown", "slowdown", "gpu_max", "mem_max")}


def build_clock_reasons(src: GpuSource) -> tuple[int | None, int | None]:
    reasons = src.clock_reasons()
    if not reasons:
        return None, None
    current = supported = 0
    for name, state in reasons.items():
        bit = CLOCK_REASON_BITS.get(name, 0)
        if state is not None:
            supported |= bit
            current |= bit if state.lower() == "active" else 0
    return current, supported


def _ecc_scope(scope: Tree) -> dict[str, dict[str, int | None]]:
    """One of volatile/aggregate -> {"corrected": {...}, "uncorrected": {...}}."""
    if "single_bit" in scope:  # pre-Ampere: per location, nvidia-smi prints the total
        out = {}
        for kind, key in (("corrected", "single_bit"), ("uncorrected", "double_bit")):
            block = scope.get(key) or {}
            counts = {"total": integer(block.get("total"))}
            counts.update({loc: integer(block.get(raw)) for raw, loc in ECC_LOCATIONS.items()})
            out[kind] = counts
        return out
    dram_c, dram_u = integer(scope.get("dram_correctable")), integer(scope.get("dram_uncorrectable"))
    sram_c = integer(scope.get("sram_correctable"))
    if "sram_uncorrectable_parity" in scope:  # R550+: SRAM uncorrectable = parity + SEC-DED
        parity, secded = (
            integer(scope.get("sram_uncorrectable_parity")),
            integer(scope.get("sram_uncorrectable_secded")),
        )
        sram_u = None if parity is None or secded is None else parity + secded
    else:
        sram_u = integer(scope.get("sram_uncorrectable"))

    def counts(dram: int | None, sram: int | None) -> dict[str, int | None]:
        total = None if dram is None or sram is None else dram + sram  # no total printed: sum
        return {"total": total, "dram": dram, "sram": sram}

    return {"corrected": counts(dram_c, sram_c), "uncorrected": counts(dram_u, sram_u)}


def build_ecc(src: GpuSource) -> dict[str, Any] | None:
    current, pending = flag(src.value("ecc_current")), flag(src.value("ecc_pending"))
    if current is None:
        return None
    errors = src.ecc() if current else None
    ecc: dict[str, Any] = {
        "mode": {"current": current, "pending": pending},
        "volatile": None,
        "aggregate": None,
    }
    if errors:
        for scope in ("volatile", "aggregate"):
            if isinstance(errors.get(scope), dict):
                ecc[scope] = _ecc_scope(errors[scope])
        aggregate = errors.get("aggregate")
        exceeded = aggregate.get("sram_threshold_exceeded") if isinstance(aggregate, dict) else None
        ecc["sram_threshold_exceeded"] = yes_no(exceeded)
    return ecc


def _pages(block: dict[str, Any]) -> list[dict[str, int | None]] | None:
    count = integer(block.get("count"))
    if count is None:
        return None
    if block.get("pages") is None:  # text -q prints counts only: addresses unknown
        return [{"address": None, "timestamp": None} for _ in range(count)]
    return [{"address": hex_int(addr), "timestamp": smi_timestamp(ts)} for addr, ts in block["pages"]]


def build_retired_pages(src: GpuSource) -> dict[str, Any] | None:
    raw = src.retired_pages()
    if raw is None:
        return None
    sbe, dbe = _pages(raw["sbe"]), _pages(raw["dbe"])
    if sbe is None and dbe is None:
        return None
    return {"sbe": sbe, "dbe": dbe, "pending": yes_no(raw["pending"])}


def build_remapped_rows(src: GpuSource) -> dict[str, Any] | None:
    raw = src.remapped_rows()
    if raw is None or integer(raw["corr"]) is None:
        return None
    return {
        "corr": integer(raw["corr"]),
        "unc": integer(raw["unc"]),
        "pending": yes_no(raw["pending"]),
        "failure": yes_no(raw["failure"]),
        "histogram": {k: integer(v) for k, v in raw["histogram"].items()},
    }


def build_processes(src: GpuSource) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {"compute": [], "graphics": []}
    for proc in src.processes():
        entry: dict[str, Any] = {
            "pid": integer(proc["pid"]),
            "used_memory": mib_to_bytes(proc["used_memory"]),
            "name": clean(proc["name"]),
        }
        for key in ("gpu_instance_id", "compute_instance_id"):
            if integer(proc.get(key)) is not None:
                entry[key] = integer(proc.get(key))
        kind = (clean(proc["type"]) or "C").upper()
        if "C" in kind:
            out["compute"].append(entry)
        if "G" in kind:
            out["graphics"].append(dict(entry))
    return out


def true_false(raw: str | None) -> bool | None:
    value = clean(raw)
    return None if value is None else value.lower() in ("true", "yes", "degraded")


def build_fabric(src: GpuSource) -> dict[str, Any] | None:
    """The Fabric block; None where it prints N/A (NVML has no fabric for this GPU: NotSupported)."""
    state = clean(src.value("fabric_state"))
    if state is None:
        return None
    status, summary = clean(src.value("fabric_status")), clean(src.value("fabric_summary"))
    return {
        "state": FABRIC_STATES[state.lower()],
        "status": None if status is None else FABRIC_STATUS[status.lower()],
        "clique_id": integer(src.value("fabric_clique")),
        "cluster_uuid": clean(src.value("fabric_cluster_uuid")),
        "health_summary": None if summary is None else FABRIC_SUMMARY[summary.lower()],
        "health": {key: true_false(src.value(f"fabric_{key}")) for key in FABRIC_HEALTH},
    }


def build_mig_devices(src: GpuSource, mig: dict[str, Any] | None, name: str) -> list[dict[str, Any]] | None:
    """The MIG devices the capture prints (None: no MIG on this GPU; []: MIG disabled)."""
    if mig is None:
        return None
    raw = src.mig_devices() if isinstance(src, XmlGpu) else []
    model = next(((sms, top) for pat, sms, top in MIG_MODELS if re.search(pat, name)), None)
    gis = [d["gpu_instance_id"] for d in raw]
    out = []
    for d in raw:
        sm, total = integer(d["sm"]), integer(d["mem_total"])
        slices = sm // model[0] if model and sm and sm % model[0] == 0 else None
        profile = f"{slices}g.{round(total / 1000)}gb" if slices and total else None
        alone = gis.count(d["gpu_instance_id"]) == 1  # one compute instance spans the GPU instance
        out.append({
            "index": integer(d["index"]),
            "uuid": None,
            "profile": profile,
            "gpu_instance_id": integer(d["gpu_instance_id"]),
            "compute_instance_id": integer(d["compute_instance_id"]),
            "gpu_instance_profile_id": None,
            "placement": None,
            "attributes": {
                "multiprocessor_count": sm,
                "copy_engine_count": integer(d["copy_engine"]),
                "decoder_count": integer(d["decoder"]),
                "encoder_count": integer(d["encoder"]),
                "jpg_count": integer(d["jpg"]),
                "ofa_count": integer(d["ofa"]),
                "gpu_instance_slice_count": slices,
                "compute_instance_slice_count": slices if alone else None,
                "memory_size_mib": total,
            },
            "memory": {k: mib_to_bytes(d[f"mem_{k}"]) for k in ("total", "reserved", "used", "free")},
            "ecc": {"volatile_sram_uncorrected": integer(d["sram_uncorrectable"])},
        })  # fmt: skip
    return out


def build_gpu(src: GpuSource, index: int) -> dict[str, Any]:
    v = src.value
    name = v("name") or ""
    info = model_info(name)
    arch_name = (v("architecture") or (info[0] if info else "")).lower()
    current_reasons, supported_reasons = build_clock_reasons(src)
    mig = (
        None
        if flag(v("mig_current")) is None
        else {"current": flag(v("mig_current")), "pending": flag(v("mig_pending"))}
    )
    return {
        "index": index,
        "name": name,
        "uuid": v("uuid"),
        "serial": v("serial"),
        "minor_number": integer(v("minor_number")),
        "architecture": ARCHITECTURES.get(arch_name),
        "compute_capability": list(info[1]) if info else None,
        "pci": {
            "bus_id": v("bus_id"),
            "device_id": hex_int(v("device_id")),
            "subsystem_id": hex_int(v("subsystem_id")),
        },
        "vbios_version": v("vbios_version"),
        "board_part_number": v("board_part_number"),
        "memory": build_memory(src),
        "pcie": {
            "max_link_gen": integer(v("pcie_max_gen")),
            "max_link_width": integer(v("pcie_max_width")),
            "curr_link_gen": integer(v("pcie_curr_gen")),
            "curr_link_width": integer(v("pcie_curr_width")),
            "replay_counter": integer(v("pcie_replay")),
        },
        "power": {
            "usage_mw": watts_to_mw(v("power_usage")),
            "enforced_limit_mw": watts_to_mw(v("power_limit")),
            "default_limit_mw": watts_to_mw(v("power_default")),
            "min_limit_mw": watts_to_mw(v("power_min")),
            "max_limit_mw": watts_to_mw(v("power_max")),
        },
        "temperature": {
            "gpu": integer(v("temp_gpu")),
            "memory": integer(v("temp_memory")),
            "thresholds": build_thresholds(src),
        },
        "fan_speed": integer(v("fan_speed")),
        "utilization": {k: integer(v(f"util_{k}")) for k in ("gpu", "memory", "encoder", "decoder")},
        "clocks": {k: integer(v(f"clock_{k}")) for k in ("graphics", "sm", "mem", "video")},
        "max_clocks": {k: integer(v(f"max_clock_{k}")) for k in ("graphics", "sm", "mem", "video")},
        "pstate": pstate(v("pstate")),
        "clock_event_reasons": current_reasons,
        "supported_clock_event_reasons": supported_reasons,
        "persistence_mode": flag(v("persistence_mode")),
        "mig_mode": mig,
        "mig_max_devices": next((top for pat, _, top in MIG_MODELS if mig and re.search(pat, name)), None),
        "mig_devices": build_mig_devices(src, mig, name),
        "fabric": build_fabric(src),
        "numa_node": None,
        "cpu_affinity": None,  # from the topo capture's CPU Affinity column, when there is one
        "ecc": build_ecc(src),
        "retired_pages": build_retired_pages(src),
        "remapped_rows": build_remapped_rows(src),
        "nvlinks": None,
        "processes": build_processes(src),
        "lost": False,
    }


# ---- NVLink entries ----------------------------------------------------------------------------
def nvlink_entries(
    states: list[int | None], version: int | None, remotes: list[tuple[int, str | None]]
) -> list[dict[str, Any]]:
    """One entry per link. ``remotes[k]`` is (NVML_NVLINK_DEVICE_TYPE_*, remote bus id or None)."""
    return [
        {
            "state": state,
            "version": version,
            "remote_type": remotes[k][0],
            "remote_bus_id": remotes[k][1],
            "capabilities": None,  # nvidia-smi nvlink -c was not captured
            "errors": None,  # nvidia-smi nvlink -e was not captured
        }
        for k, state in enumerate(states)
    ]


def peer_remotes(
    topo: Topo, gpu: int, bus_ids: list[str | None], n_links: int
) -> list[tuple[int, str | None]]:
    """Direct-connect wiring: NV# links to each peer, assigned to link indices in peer order."""
    remotes: list[tuple[int, str | None]] = []
    for peer, word in enumerate(topo.cells[gpu]):
        remotes += [(NVLINK_DEVICE_GPU, bus_ids[peer])] * nvlink_count(word)
    if len(remotes) != n_links:
        raise ValueError(f"GPU{gpu}: topo shows {len(remotes)} NVLinks, nvlink -s shows {n_links}")
    return remotes


# ---- profiles ----------------------------------------------------------------------------------
@dataclass
class Spec:
    name: str
    title: str
    smi: str
    notes: str
    nvlink: str | None = None
    nvlink_mode: str = "none"  # none | absent ([]) | replicate (capture GPU 0 for all) | by_index
    remote: str = "switch"  # switch | gpu (peer order from the topo matrix)
    topo: str | None = None
    extra_captures: list[str] = field(default_factory=list)


def assumption_notes(capture: Capture, gpus: list[dict[str, Any]]) -> list[str]:
    """Generic derivation notes, each added only where this profile relies on it."""
    notes = ["compute_capability is not printed by nvidia-smi; it is CUDA's published value for the model."]
    if any(src.value("architecture") is None for src in capture.gpus):
        notes.append(
            "architecture is derived from the product name (the capture has no Product Architecture)."
        )
    if any(src.value("tlimit") is not None for src in capture.gpus):
        notes.append(
            "Thermals are printed relative to T.Limit: absolute T.Limit = gpu_temp + gpu_temp_tlimit; "
            "shutdown/slowdown/gpu_max = T.Limit minus the printed shutdown/slowdown/max-operating offsets; "
            "mem_max is null (the memory T.Limit is not printed)."
        )
    eccs = [g["ecc"] for g in gpus if g["ecc"] and g["ecc"]["aggregate"]]
    if any("sram" in e["aggregate"]["corrected"] for e in eccs):
        notes.append(
            "ECC totals are dram + sram (the capture prints no total); "
            "SRAM uncorrectable = parity + SEC-DED where the driver splits it."
        )
    pages = [
        p
        for g in gpus
        if g["retired_pages"]
        for p in (g["retired_pages"]["sbe"] or []) + (g["retired_pages"]["dbe"] or [])
    ]
    if any(p["address"] is None for p in pages):
        notes.append(
            "Retired pages: nvidia-smi -q text prints counts only, so each page has a null address and timestamp."
        )
    if any(p["timestamp"] is not None for p in pages):
        notes.append("Retired-page timestamps are the capture's local times read as UTC epoch seconds.")
    links = [link for g in gpus for link in g["nvlinks"] or []]
    if links:
        notes.append(
            "NVLink version is by generation (Volta 2_0=2, Ampere 3_0=4, Hopper 4_0=6, Blackwell 5_0=7); "
            "capabilities and error counters are null because nvlink -c / -e were not captured."
        )
    if any(link["remote_type"] == NVLINK_DEVICE_SWITCH for link in links):
        notes.append(
            "NVLinks end at NVSwitches (remote_type 2); the switch PCI bus id is not captured (null)."
        )
    if any(g["mig_devices"] for g in gpus):
        notes.append(
            "MIG devices are the capture's mig_devices; nvidia-smi -q prints no MIG UUIDs, GPU instance profile "
            "ids or placements (null: NoData). The profile name is <compute slices>g.<memory GB>gb, the slices "
            "from the multiprocessor count (A100: 14 SMs per compute slice, NVIDIA MIG User Guide), the GB "
            "being the device's MiB / 1000 rounded; mig_max_devices is the model's seven."
        )
    if any(g["fabric"] for g in gpus):
        notes.append(
            "fabric is the capture's Fabric block (state, status, clique, cluster UUID, health flags); "
            "health_mask bits are built from the flags by the fake; N/A fabric is null (NotSupported)."
        )
    notes.append(
        "supported_clock_event_reasons is the OR of the reasons the capture lists as Active or Not Active "
        "(the capture prints no mask); nvml_version is null (not printed)."
    )
    return notes


def topology_notes(topo: Topo) -> list[str]:
    notes = [
        "Topology: topo -m words map to NVML levels X=0, PIX=10, PXB=20, PHB=30, NODE=40, SYS=50; "
        "numa_node and cpu_affinity are the topo capture's NUMA Affinity and CPU Affinity columns.",
        "P2P read/write/prop: OK (0) over NV# or same-socket PCIe, CHIPSET_NOT_SUPPORTED (1) across sockets (SYS, "
        "assumed: PCIe P2P over the inter-socket link is not supported); nvlink/atomics: OK over NV#, "
        "NOT_SUPPORTED (5) otherwise; diagonal 0.",
    ]
    if any(nvlink_count(word) for row in topo.cells for word in row):
        notes.append(
            "NV# cells hide the PCIe path between GPUs: common_ancestor is the worse of the two GPUs' levels to a "
            "NIC they share when that is below NODE (a PCIe-tree bound), else NODE (40) for the same NUMA "
            "affinity and SYS (50) otherwise (assumed)."
        )
    return notes


def build_profile(spec: Spec, captures: Path) -> dict[str, Any]:
    capture = load_smi(captures / spec.smi)
    gpus = [build_gpu(src, i) for i, src in enumerate(capture.gpus)]
    topo = parse_topo((captures / spec.topo).read_text(encoding="utf-8")) if spec.topo else None
    if topo is not None:
        if len(topo.cells) != len(gpus):
            raise ValueError(f"{spec.name}: topo has {len(topo.cells)} GPUs, capture has {len(gpus)}")
        for gpu, numa, cpus in zip(gpus, topo.numa, topo.cpus, strict=True):
            gpu["numa_node"] = numa
            gpu["cpu_affinity"] = cpus
    attach_nvlinks(spec, captures, gpus, topo)
    profile: dict[str, Any] = {
        "schema": SCHEMA,
        "name": spec.name,
        "title": spec.title,
        "captures": [spec.smi] + [c for c in (spec.nvlink, spec.topo, *spec.extra_captures) if c],
        "notes": "",
        "driver_version": capture.driver_version,
        "cuda_driver_version": cuda_version(capture.cuda_version),
        "nvml_version": None,
        "topology": build_topology(topo) if topo else None,
        "gpus": gpus,
    }
    extra = topology_notes(topo) if topo else []
    profile["notes"] = " ".join([spec.notes, *extra, *assumption_notes(capture, gpus)])
    return profile


def attach_nvlinks(spec: Spec, captures: Path, gpus: list[dict[str, Any]], topo: Topo | None) -> None:
    if spec.nvlink_mode == "none":
        return
    if spec.nvlink_mode == "absent":
        for gpu in gpus:
            gpu["nvlinks"] = []
        return
    assert spec.nvlink is not None
    per_gpu = parse_nvlink_status((captures / spec.nvlink).read_text(encoding="utf-8"))
    if spec.nvlink_mode == "replicate":
        if any(states != per_gpu[0] for states in per_gpu):
            raise ValueError(f"{spec.nvlink}: GPUs differ, cannot replicate one GPU's links")
        per_gpu = [per_gpu[0]] * len(gpus)
    n_links = max(len(states) for states in per_gpu)
    bus_ids = [g["pci"]["bus_id"] for g in gpus]
    for i, gpu in enumerate(gpus):
        # A GPU missing from the nvlink capture keeps its link slots, with an unknown (null) state.
        states: list[int | None] = list(per_gpu[i]) if i < len(per_gpu) else [None] * n_links
        if spec.remote == "gpu":
            assert topo is not None, f"{spec.name}: peer wiring needs a topo capture"
            remotes = peer_remotes(topo, i, bus_ids, len(states))
        else:
            remotes = [(NVLINK_DEVICE_SWITCH, None)] * len(states)
        gpu["nvlinks"] = nvlink_entries(states, NVLINK_VERSION.get(gpu["architecture"]), remotes)


# ---- deterministic JSON ------------------------------------------------------------------------
def dumps(obj: Any, indent: int = 0) -> str:
    """Pretty JSON with lists of scalars kept on one line (matrices stay readable)."""
    pad, inner = " " * indent, " " * (indent + 2)
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        items = [f"{inner}{json.dumps(k)}: {dumps(v, indent + 2)}" for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(obj, list):
        if all(not isinstance(x, dict | list) for x in obj):
            return "[" + ", ".join(json.dumps(x, ensure_ascii=False) for x in obj) + "]"
        return "[\n" + ",\n".join(f"{inner}{dumps(x, indent + 2)}" for x in obj) + f"\n{pad}]"
    return json.dumps(obj, ensure_ascii=False)


_HGX_H100_TOPO = "topo-m_8x-h100-sxm-spaces_mlengineering.txt"
SPECS: list[Spec] = [
    Spec(
        name="h100-sxm5-80gb-x8",
        title="8x NVIDIA H100 80GB HBM3 (HGX, SXM5)",
        smi="nvidia-smi-q-x_h100-sxm5-80gb-x8_nvk8stestinfra.xml",
        nvlink="nvlink-s_h100-sxm5-80gb_nvgpuexporter.txt",
        nvlink_mode="replicate",
        topo=_HGX_H100_TOPO,
        notes=(
            "Per-GPU data from the 8x H100 -q -x capture (serials and UUIDs are the source's placeholders). "
            "NVLinks: the 18 links of the single H100 in the nvgpuexporter nvlink -s capture (same model, other "
            "node) are given to every GPU. Topology from the ml-engineering 8-GPU Hopper NV18 matrix (comparable "
            "HGX node, model not named there)."
        ),
    ),
    Spec(
        name="a100-sxm4-40gb-x8",
        title="8x NVIDIA A100-SXM4-40GB (Azure ND A100 v4, HGX with NVSwitch)",
        smi="nvidia-smi-q_a100-sxm4-40gb-x8-azure-ndv4_azhpcdiag.txt",
        nvlink="nvlink-s_4x-a100-sxm4-80gb_prismsinglegpu.txt",
        nvlink_mode="replicate",
        topo="topo-m_dgx-a100-8x-a100-sxm4_gengwg.txt",
        notes=(
            "Per-GPU data from the Azure NDv4 -q capture (460 driver: Clocks Throttle Reasons, no Product "
            "Architecture, VM pass-through bus ids). NVLinks: 12 per GPU, link states from the 4x A100-SXM4-80GB "
            "nvlink -s capture (all GPUs identical, other node). Topology from the DGX A100 topo -m (NV12 "
            "all-to-all, comparable node; NUMA 3/3/1/1/7/7/5/5 is that node's)."
        ),
    ),
    Spec(
        name="l40s",
        title="1x NVIDIA L40S (AWS g6e.2xlarge)",
        smi="nvidia-smi-q-x_l40s_nvk8stestinfra.xml",
        nvlink_mode="absent",
        extra_captures=["nvlink-s_l40s-no-nvlink_nvgpuexporter.txt"],
        notes=(
            "Single-GPU VM capture. No NVLink (nvlinks []): an L40S nvlink -s capture from another node prints "
            "'Device does not have or support Nvlink'. No topo capture: topology null."
        ),
    ),
    Spec(
        name="t4",
        title="1x Tesla T4 (AWS g4dn.xlarge)",
        smi="nvidia-smi-q-x_t4_nvk8stestinfra.xml",
        nvlink_mode="absent",
        notes=(
            "Single-GPU VM capture. T4 is a PCIe card without NVLink (nvlinks [], no nvlink capture). "
            "No topo capture: topology null."
        ),
    ),
    Spec(
        name="a100-sxm4-80gb-mig",
        title="1x NVIDIA A100-SXM4-80GB, MIG enabled (4x 1g.20gb)",
        smi="nvidia-smi-q-x_a100-sxm4-80gb-mig_telegraf.xml",
        extra_captures=["nvlink-s_h100-sxm5-80gb-mig-unsupported_nvgpuexporter.txt"],
        notes=(
            "The capture says attached_gpus 4 but its source kept one <gpu>; the profile has that one GPU. "
            "MIG is enabled: remapped rows print N/A (null, NVML NotSupported under MIG) and nvlinks is null, as "
            "nvlink -s answers 'not supported for Devices in MIG mode' (seen on an H100 in MIG mode). "
            "No topo capture: topology null."
        ),
    ),
    Spec(
        name="h200",
        title="1x NVIDIA H200 (SXM, 700 W)",
        smi="nvidia-smi-q_h200_gls.txt",
        nvlink="nvlink-s_h200_nvgpuexporter.txt",
        nvlink_mode="replicate",
        notes=(
            "Single-GPU -q capture. NVLinks: the 18 links of an H200 nvlink -s capture (same model, other node), "
            "assumed to end at NVSwitches (HGX). The 8x H200 topo -m captures are a different node and are not "
            "used (topology null)."
        ),
    ),
    Spec(
        name="v100-sxm3-32gb-retired-pages",
        title="1x Tesla V100-SXM3-32GB with DBE retired pages pending retirement (DGX-2 class)",
        smi="nvidia-smi-q-x_v100-sxm3-32gb-retired-pages-ecc_openpai.xml",
        notes=(
            "Fault profile. The capture says attached_gpus 16 but its source kept one <gpu>; the profile has that "
            "one GPU: volatile SBE 1 / DBE 1, aggregate SBE 291 / DBE 7627 (device memory), 2 DBE retired pages, "
            "retirement pending. Pre-Ampere: per-location ECC, remapped_rows null, no MIG. No nvlink or topo "
            "capture for this node: nvlinks and topology null (unknown)."
        ),
    ),
    Spec(
        name="a100-sxm4-80gb-x4-remap-pending",
        title="4x NVIDIA A100-SXM4-80GB, row remap pending on 9E:00.0 (HGX A100 4-GPU)",
        smi="nvidia-smi-q_a100-sxm4-80gb-x4-remapped-rows_gls.txt",
        nvlink="nvlink-s_4x-a100-sxm4-80gb_prismsinglegpu.txt",
        nvlink_mode="replicate",
        remote="gpu",
        topo="topo-m_4x-a100-sxm4-80gb-nv4_a100workshop.txt",
        notes=(
            "Fault profile. GPU 00000000:9E:00.0: DRAM correctable 353 (volatile and aggregate), remapped rows "
            "correctable 1, pending Yes (reset needed); GPU C2:00.0 has 1 correctable remap, not pending. "
            "NVLinks: 12 per GPU, states from the 4x A100-SXM4-80GB nvlink -s capture (other node). Topology: the "
            "4x A100-SXM-80GB HGX NV4 all-to-all topo -m (comparable node); links are direct GPU-to-GPU "
            "(remote_type 0), 4 per peer, assigned to link indices in peer order (assumed; nvlink -R not captured)."
        ),
    ),
    Spec(
        name="gh200-dram-uncorrectable",
        title="1x NVIDIA GH200 480GB with a DRAM uncorrectable error and an uncorrectable row remap",
        smi="nvidia-smi-q_gh200-dram-uncorrectable_gls.txt",
        notes=(
            "Fault profile: aggregate DRAM uncorrectable 1, remapped rows uncorrectable 1 (not pending), "
            "histogram high 1. Enforced power limit 700 W below the 900 W default, as captured. No nvlink or topo "
            "capture: nvlinks and topology null (unknown)."
        ),
    ),
    Spec(
        name="tesla-k80-x4-retired",
        title="4x Tesla K80 (Azure VM) with retired pages",
        smi="nvidia-smi-q-x_tesla-k80-x4-ecc-retired_openpai.xml",
        nvlink_mode="absent",
        notes=(
            "Fault profile: two of four GPUs have 1 SBE and 1 DBE retired page each (addresses as captured; the "
            "430 driver prints no timestamps, so timestamp is null) and aggregate ECC errors. Kepler has no "
            "NVLink (nvlinks []). No topo capture: topology null."
        ),
    ),
    Spec(
        name="b200-x8",
        title="8x NVIDIA B200 (HGX)",
        smi="nvidia-smi-q-x_b200-x8_nvk8stestinfra.xml",
        notes="Per-GPU data from the 8x B200 -q -x capture. No nvlink or topo capture: nvlinks and topology null.",
    ),
    Spec(
        name="gb200-x4",
        title="4x NVIDIA GB200 (AWS p6e-gb200, arm64)",
        smi="nvidia-smi-q-x_gb200-x4_nvk8stestinfra.xml",
        notes="Per-GPU data from the 4x GB200 -q -x capture. No nvlink or topo capture: nvlinks and topology null.",
    ),
    Spec(
        name="a10-sw-power-cap",
        title="1x NVIDIA A10 with SW Power Cap active",
        smi="nvidia-smi-q_a10-sw-power-cap_gls.txt",
        nvlink_mode="absent",
        notes=(
            "Throttling profile: SW Power Cap Active in the capture. A10 is a PCIe card without NVLink "
            "(nvlinks []). No topo capture: topology null."
        ),
    ),
    Spec(
        name="l40s-load",
        title="1x NVIDIA L40S under load (ffmpeg NVENC)",
        smi="nvidia-smi-q_l40s-load_nvgpuexporter.txt",
        nvlink="nvlink-s_l40s-no-nvlink_nvgpuexporter.txt",
        nvlink_mode="absent",
        notes=(
            "Load profile from the nvgpuexporter L40S bundle's -q under load (processes as captured). No clock "
            "event reason is Active at capture time (mask 0); only the SW Power Capping counter is non-zero, and "
            "the profile schema has no counters. No NVLink: "
            "the same bundle's nvlink -s prints 'Device does not have or support Nvlink' (nvlinks []). "
            "No topo capture used: topology null."
        ),
    ),
]


def write_profiles(
    captures: Path, out: Path, only: set[str] | None = None, verbose: bool = False
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in SPECS:
        if only and spec.name not in only:
            continue
        path = out / f"{spec.name}.json"
        path.write_text(dumps(build_profile(spec, captures)) + "\n", encoding="utf-8")
        written.append(path)
        if verbose:
            sys.stderr.write(f"wrote {path}\n")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--captures", type=Path, default=DEFAULT_CAPTURES, help="capture directory")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="profile output directory")
    parser.add_argument("--only", nargs="*", help="profile names to (re)generate")
    parser.add_argument("-v", "--verbose", action="store_true", help="list written files on stderr")
    args = parser.parse_args(argv)
    write_profiles(args.captures, args.out, set(args.only) if args.only else None, args.verbose)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
