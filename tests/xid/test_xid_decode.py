"""Message-level decoding: 144-150 sheet, 74 registers, 154 recovery actions, 45, 48, app-caused flags."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.xid.catalog import derive_action, nvlink5_decode_rows
from k8s_gpu_mcp.xid.decode import APP_CAUSED_WHY, decode

ROWS = nvlink5_decode_rows()


def _v2_intr(pattern: str) -> int:
    return int(pattern.replace("-", "0"), 2)


@pytest.mark.parametrize(
    "row", ROWS, ids=lambda r: f"{r['xid']}-{r['unit']}-{r['error_status']}-{r['intr_info_pattern']}"
)
def test_nvlink5_decode_sheet_v2(row: dict) -> None:
    intr = _v2_intr(row["intr_info_pattern"])
    msg = f"{row['unit']} Fatal XC0 i0 Link 03 ({intr:#010x} {row['error_status']} 0x00000000 0x00000000 0x00000000 0x00000000)"
    d = decode(row["xid"], msg)
    assert d.bucket == row["immediate_bucket"]
    assert d.investigatory_bucket == row["investigatory_bucket"]
    assert d.subcode == row["unit"]
    assert d.severity == derive_action(row["immediate_bucket"])[0]


@pytest.mark.parametrize(
    ("xid", "words", "unit", "imm", "inv"),
    [
        # worked examples of the reference (V1 IntrInfo, drivers < R575)
        (149, "0x000fe406 0x00000000", "NETIR/NETIR_INT", "RESET_GPU", "SYMPATHETIC_REPORT_SOLO"),
        (145, "0x0409a0c2 0x00000008", "RLW_RXPIPE", "IGNORE", "CONTACT_SUPPORT"),
        (149, "0x004505c6 0x00000000", "NETIR_LINK_EVT/NETIR_LINK_DOWN", "RESET_GPU", "INVESTIGATE_LINK_SI"),
        (
            149,
            "0x025001c6 0x00000000",
            "NETIR_LINK_EVT/NETIR_LINK_DOWN",
            "RESET_GPU",
            "INVESTIGATE_PEER_DEVICE",
        ),
        (149, "0x026001c6 0x00000000", "NETIR_LINK_EVT/NETIR_LINK_DOWN", "IGNORE", "INVESTIGATE_SW/USER"),
        (150, "0x00000000 0xffffffff", "MSE_WATCHDOG", "RESET_GPU", "CONTACT_SUPPORT"),
    ],
)
def test_nvlink5_worked_examples(xid: int, words: str, unit: str, imm: str, inv: str) -> None:
    d = decode(xid, f"X Fatal XC0 i0 Link 00 ({words} 0x00000000 0x00000000 0x00000000 0x00000000)")
    assert (d.subcode, d.bucket, d.investigatory_bucket) == (unit, imm, inv)


def test_nvlink5_link_fatal_means_drain_and_reset() -> None:
    d = decode(149, "NETIR Fatal XC0 i0 Link -1 (0x000fe406 0x00000000 0x0 0x0 0x0 0x0)")
    assert d.severity == "Critical" and d.sre_action == "Drain the GPU's workloads and reset the GPU"


def test_nvlink5_undecodable_falls_back_to_catalog() -> None:
    d = decode(145, "RLW_REMAP Nonfatal XC0 i0 Link 02")
    assert d.bucket == "WORKFLOW_NVLINK5_ERR" and d.severity == "Critical" and d.notes
    d = decode(149, "X (0x7fffffff 0x00000042)")
    assert d.bucket == "WORKFLOW_NVLINK5_ERR" and "not in NVIDIA's decode sheet" in d.notes[0]


@pytest.mark.parametrize(
    ("regs", "severity", "needle"),
    [
        ("0x10000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Critical", "possible hardware fault"),
        ("0x200000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Critical", "marginal signal integrity"),
        ("0x10, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Warning", "ECC/parity"),
        ("0x2, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Info", "sympathetic"),
        ("0x40800001, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Info", "ignorable"),
        ("0x0, 0x0, 0x0, 0x0, 0x100000, 0x0, 0x0", "Info", "threshold"),
        ("0x4000, 0x0, 0x0, 0x0, 0x0, 0x0, 0x0", "Critical", "undocumented bits [14]"),
    ],
)
def test_xid74_register_decode(regs: str, severity: str, needle: str) -> None:
    d = decode(74, f"NVLink: fatal error detected on link 6({regs})")
    assert d.severity == severity
    assert d.subcode == "link 6"
    assert needle in " ".join(d.notes)


def test_xid74_without_registers_keeps_catalog_default() -> None:
    d = decode(74, "NVLink: fatal error detected on link 1")
    assert (d.severity, d.sre_action) == ("Critical", "Reset the GPU")


@pytest.mark.parametrize(
    ("text", "severity", "action"),
    [
        ("0x0 (None) to 0x1 (GPU Reset Required)", "Critical", "Reset the GPU"),
        ("0x0 (None) to 0x2 (Node Reboot Required)", "Fatal", "Drain the node and reboot it"),
        ("0x0 (None) to 0x3 (Drain P2P)", "Critical", "Drain peer-to-peer (NVLink) workloads from the GPU"),
        ("0x0 (None) to 0x4 (Drain and Reset)", "Fatal", "Drain the node and reset the GPU"),
        ("0x1 (GPU Reset Required) to 0x0 (None)", "Info", "None"),
        ("0x0 (None) to 0x2 (OS Reboot)", "Fatal", "Drain the node and reboot it"),
    ],
)
def test_xid154_recovery_action(text: str, severity: str, action: str) -> None:
    d = decode(154, f"GPU recovery action changed from {text}")
    assert (d.severity, d.sre_action) == (severity, action)


def test_xid154_unknown_value_by_text() -> None:
    d = decode(154, "GPU recovery action changed from 0x0 (None) to 0x9 (Drain and Reset)")
    assert d.sre_action == "Drain the node and reset the GPU"


def test_xid45_sympathetic_and_solo() -> None:
    d = decode(45, "Ch 00000001 caused by previous Xid 149", caused_by=149)
    assert d.severity == "Info" and "149" in d.sre_action
    assert decode(45, "Ch 00000001", related={48}).sre_action == "None: act on XID 48"
    solo = decode(45, "Ch 00000001")
    assert solo.severity == "Warning" and "Fabric Manager" in solo.sre_action


def test_xid48_memory_workflow() -> None:
    assert "63/64" in decode(48, "DBE", related={63}).notes[0]
    assert "Solo" in decode(48, "DBE").notes[0]
    assert any("SRAM" in n for n in decode(48, "DBE", related={172}).notes)


@pytest.mark.parametrize("xid", [13, 31, 43, 45, 68, 109])
def test_app_caused_flags(xid: int) -> None:
    d = decode(xid, "")
    assert d.app_caused and d.app_caused_why == APP_CAUSED_WHY[xid]


@pytest.mark.parametrize("xid", [48, 79, 74, 94, 95, 154])
def test_hardware_xids_not_flagged_as_app(xid: int) -> None:
    assert not decode(xid, "").app_caused
