"""Message-level decoding: 144-150 sheet, 74 registers, 154 recovery actions, 45, 48, app-caused flags."""

from __future__ import annotations

import pytest

from k8s_gpu_mcp.xid.catalog import derive_action, nvlink5_decode_rows, nvlink5_patterns
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


PATTERN_ROWS = nvlink5_patterns()


def _intr(pattern: str) -> int:
    return int(pattern.replace("-", "0"), 2)


@pytest.mark.parametrize(
    "row", PATTERN_ROWS, ids=lambda r: f"{r['xid']}-{r['unit']}-{r['error_status']}-{r['intr_info_v1']}"
)
def test_nvlink5_decode_sheet_v1(row: dict) -> None:
    """Every row of the sheet decodes from its V1 IntrInfo pattern (drivers before R575)."""
    msg = f"{row['unit']} Nonfatal XC0 i0 Link 03 ({_intr(row['intr_info_v1']):#010x} {row['error_status']} 0x0 0x0 0x0 0x0)"
    d = decode(row["xid"], msg)
    assert row["unit"] in d.subcode.split(" or ")
    assert d.investigatory_bucket == row["investigatory_bucket"]
    assert d.bucket.split(" (alt:")[0] == row["immediate_bucket"]
    from k8s_gpu_mcp.xid.decode import _mask_value

    mask, value = _mask_value(row["intr_info_v2"])
    also_v2 = _intr(row["intr_info_v1"]) & mask == value  # 150's watchdog word is all zero in both
    assert "V1 (< R575)" in d.notes[-1] or also_v2


def test_nvlink5_v1_and_v2_patterns_never_collide_across_rows() -> None:
    """Decoding tries V2 then V1; that is safe only if no V1 word matches another row's V2 pattern."""
    from k8s_gpu_mcp.xid.decode import _mask_value

    for row in PATTERN_ROWS:
        for mine, theirs in (("intr_info_v1", "intr_info_v2"), ("intr_info_v2", "intr_info_v1")):
            word = _intr(row[mine])
            for other in PATTERN_ROWS:
                mask, value = _mask_value(other[theirs])
                if other["xid"] == row["xid"] and word & mask == value and other is not row:
                    assert other["error_status"] != row["error_status"] or other["unit"] == row["unit"]


def test_nvlink5_patterns_agree_with_the_catalog_v2_sheet() -> None:
    """The generated V1+V2 data and catalog.json's V2 sheet come from the same NVIDIA sheet."""
    ours = {(r["xid"], r["unit"], r["intr_info_pattern"], r["error_status"]) for r in ROWS}
    theirs = {(r["xid"], r["unit"], r["intr_info_v2"], r["error_status"]) for r in PATTERN_ROWS}
    assert ours == theirs


@pytest.mark.parametrize(
    ("xid", "v1", "v2", "unit", "severity"),
    [
        # the subcodes where V1 and V2 differ (bits [9:5] with the unit family in [4:0] vs bits [6:0])
        (149, 0b10001_00110, 0b0010011, "NETIR_BER_EVENT", "Info"),
        (149, 0b10010_00110, 0b0010100, "NETIR_MFDE_EVENT", "Critical"),
        (147, 0b01100_00100, 0b0001110, "TREX", "Info"),
        (148, 0b00000_00101, 0b0001111, "NVLPW_CTRL/NVLPW", "Info"),
    ],
)
def test_nvlink5_v1_subcodes_that_differ_from_v2(
    xid: int, v1: int, v2: int, unit: str, severity: str
) -> None:
    status = "0x00000001" if unit != "TREX" and "NVLPW" not in unit else "0x80000000"
    for word in (v1, v2):
        d = decode(xid, f"{unit} Nonfatal XC0 i0 Link 03 ({word:#010x} {status} 0x0 0x0 0x0 0x0)")
        assert (d.subcode, d.severity) == (unit, severity)


def test_nvlink5_v1_ber_event_is_not_a_drain() -> None:
    """Production NETIR_BER_EVENT on a pre-R575 driver: the sheet says ignore, not drain and reset."""
    d = decode(149, "NETIR_BER_EVENT Nonfatal XC0 i0 Link 12 (0x00000226 0x00000000 0x0 0x0 0x0 0x0)")
    assert d.subcode == "NETIR_BER_EVENT" and d.severity == "Info" and "V1" in d.notes[-1]


def test_nvlink5_v1_tlw_pipes_share_a_pattern() -> None:
    d = decode(146, "TLW_TX Fatal XC0 i0 Link 01 (0x00000163 0x00000004 0x0 0x0 0x0 0x0)")
    assert d.subcode == "TLW_TX/TLW_TX_PIPE0 or TLW_TX/TLW_TX_PIPE1" and d.severity == "Critical"
    d = decode(146, "TLW_TX Fatal XC0 i0 Link 01 (0x0000000d 0x00000004 0x0 0x0 0x0 0x0)")  # V2 pipe 1
    assert d.subcode == "TLW_TX/TLW_TX_PIPE1"
