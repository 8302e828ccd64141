"""Message-level XID decoding: where NVIDIA's action depends on the message, not just the number.

Covers XID 48 (+63/64 memory workflow), 74 (NVLink register bits), 144-150 (NVLink5 V1 and V2 IntrInfo /
ErrorStatus decode sheet), 154 (recovery action text), 45 (sympathetic teardown) and the XIDs
NVIDIA's own device plugin treats as application errors (13, 31, 43, 45, 68, 109).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from .catalog import SEVERITY_ORDER, Severity, derive_action, lookup, nvlink5_patterns

APP_CAUSED_WHY: dict[int, str] = {
    13: "Graphics/compute exception: usually a kernel bug (out-of-bounds access, illegal instruction); "
    "hardware only if it repeats on the same GPC/TPC across different applications.",
    31: "MMU page fault: usually the application touched an invalid address; hardware only if it repeats "
    "on the same GPU across different applications.",
    43: "The application hit a software fault (e.g. a device-side assert) and its channel was reset; the GPU stays healthy.",
    45: "The driver tore down the application's channels (kill, Ctrl-C, reset, or fallout of another XID).",
    68: "Video decoder (NVDEC) exception, usually triggered by the stream or the application.",
    109: "Context-switch timeout: often an application hang; NVIDIA's device plugin treats it as an app error "
    "although the catalog says reset the GPU.",
}

_NVLINK5_CODES = range(144, 151)
_ENCODINGS = (("intr_info_v2", "V2 (>= R575)"), ("intr_info_v1", "V1 (< R575)"))
_NVLINK5_RE = re.compile(r"\((?P<intr>0x[0-9a-fA-F]+)\s+(?P<status>0x[0-9a-fA-F]+)")
_XID74_RE = re.compile(
    r"link\s*(?P<link>-?\d+)\s*\((?P<regs>0x[0-9a-fA-F]+(?:\s*,\s*0x[0-9a-fA-F]+)*)\)", re.I
)
_XID154_RE = re.compile(
    r"recovery action changed from (0x[0-9a-fA-F]+) \(([^)]*)\) to (0x[0-9a-fA-F]+) \(([^)]*)\)"
)

# XID 154 target values (NVML_GPU_RECOVERY_ACTION_*) -> (severity, action).
RECOVERY_ACTIONS: dict[int, tuple[str, Severity, str]] = {
    0: ("None", "Info", "None"),
    1: ("GPU Reset Required", "Critical", "Reset the GPU"),
    2: ("Node Reboot Required", "Fatal", "Drain the node and reboot it"),
    3: ("Drain P2P", "Critical", "Drain peer-to-peer (NVLink) workloads from the GPU"),
    4: ("Drain and Reset", "Fatal", "Drain the node and reset the GPU"),
    5: ("Recover IMEX domain", "Critical", "Recover the IMEX domain"),
    6: ("Bus Reset", "Critical", "Reset the GPU (PCIe bus reset)"),
    7: ("System Reboot", "Fatal", "Drain the node and reboot it"),
}
_RECOVERY_BY_TEXT = {text.lower(): value for value, (text, _, _) in RECOVERY_ACTIONS.items()}

# XID 74, first register: bit -> (class, meaning). Fifth register: threshold-only bits.
_X74_IGNORE = {0, 23, 30}
_X74_SYMPATHETIC = {1, 20}
_X74_ECC = {4, 5}
_X74_HW = {8, 9, 12, 16, 17, 24, 28}
_X74_SI = {21, 22}
_X74_REG5_THRESHOLD = {20, 23, 26, 29}


@dataclass(slots=True)
class Decoded:
    """What one XID event means here: severity, action, buckets, notes, app-caused or not."""

    severity: Severity
    sre_action: str
    bucket: str | None
    investigatory_bucket: str | None
    notes: list[str] = field(default_factory=list)
    app_caused: bool = False
    app_caused_why: str | None = None
    subcode: str | None = None


def decode(
    xid: int, message: str = "", *, related: Collection[int] = (), caused_by: int | None = None
) -> Decoded:
    """Decode one XID message. ``related``: other XIDs on the same GPU close in time."""
    info = lookup(xid)
    out = Decoded(info.severity, info.sre_action, info.immediate_bucket, info.investigatory_bucket)
    if xid in APP_CAUSED_WHY:
        out.app_caused, out.app_caused_why = True, APP_CAUSED_WHY[xid]
    handler = _HANDLERS.get(xid) or (_nvlink5 if xid in _NVLINK5_CODES else None)
    if handler is not None:
        handler(out, xid, message, set(related) - {xid}, caused_by)
    return out


def _xid48(out: Decoded, xid: int, message: str, related: set[int], caused_by: int | None) -> None:
    if related & {63, 64}:
        out.notes.append("With XID 63/64 (row remapping): drain and reset the GPU so the remap takes effect.")
    else:
        out.notes.append(
            "Solo double-bit ECC error: NVIDIA says reset the GPU; run field diagnostics if it recurs."
        )
    if related & {171, 172} or "SRAM" in message:
        out.notes.append(
            "SRAM error: check the SRAM threshold flag (nvidia-smi -q ECC section) and run field diagnostics."
        )


def _xid45(out: Decoded, xid: int, message: str, related: set[int], caused_by: int | None) -> None:
    cause = caused_by or next(iter(sorted(related)), None)
    if cause is not None:
        out.severity, out.sre_action = "Info", f"None: act on XID {cause}"
        out.notes.append(f"Sympathetic: teardown caused by XID {cause}.")
    else:
        out.severity, out.sre_action = (
            "Warning",
            "Restart Fabric Manager if the node has NVSwitches, otherwise none",
        )
        out.notes.append("Seen alone: NVIDIA's workflow says restart Fabric Manager (RESTART_FM).")


def _xid154(out: Decoded, xid: int, message: str, related: set[int], caused_by: int | None) -> None:
    m = _XID154_RE.search(message)
    if not m:
        out.notes.append("Recovery-action text not found in the message; read the raw line.")
        return
    value = int(m[3], 16)
    if value not in RECOVERY_ACTIONS:
        value = _RECOVERY_BY_TEXT.get(m[4].strip().lower(), -1)
    if value in RECOVERY_ACTIONS:
        text, out.severity, out.sre_action = RECOVERY_ACTIONS[value]
        out.subcode = text
    else:
        out.notes.append(f"Unknown recovery action {m[3]} ({m[4]}).")
    out.notes.append(f"Driver recovery action: {m[2]} -> {m[4]}.")


def _xid74(out: Decoded, xid: int, message: str, related: set[int], caused_by: int | None) -> None:
    m = _XID74_RE.search(message)
    if not m:
        out.notes.append("No register words in the message: follow the catalog default (reset the GPU).")
        return
    regs = [int(r, 16) for r in re.split(r"\s*,\s*", m["regs"])]
    r0 = regs[0]
    bits = {b for b in range(32) if r0 >> b & 1}
    classes: list[tuple[Severity, str, str]] = []
    if bits & _X74_HW:
        classes.append(
            (
                "Critical",
                "Reset the GPU; reseat the NVLink connections and run diagnostics if it persists",
                "possible hardware fault",
            )
        )
    if bits & _X74_SI:
        classes.append(
            (
                "Critical",
                "Reset the GPU; check link mechanics and run field diagnostics",
                "marginal signal integrity",
            )
        )
    if bits & _X74_ECC:
        classes.append(
            (
                "Warning",
                "Reset the GPU when convenient; report if seen more than twice on this link",
                "ECC/parity error",
            )
        )
    if bits & _X74_SYMPATHETIC:
        classes.append(("Info", "None: follow the other XIDs/SXids (report if seen alone)", "sympathetic"))
    unknown = bits - _X74_IGNORE - _X74_HW - _X74_SI - _X74_ECC - _X74_SYMPATHETIC
    if unknown:
        classes.append(
            ("Critical", "Reset the GPU and report to NVIDIA", f"undocumented bits {sorted(unknown)}")
        )
    if len(regs) >= 5 and not classes and {b for b in range(32) if regs[4] >> b & 1} & _X74_REG5_THRESHOLD:
        classes.append(("Info", "None (ECC threshold crossed only)", "ECC threshold crossed"))
    out.subcode = f"link {m['link']}"
    if not classes:
        if any(regs[1:]):
            out.notes.append(
                "Only registers other than the first are set; NVIDIA's workflow does not decode them."
            )
            return
        out.severity, out.sre_action = "Info", "None"
        out.notes.append("Only ignorable bits set.")
        return
    worst = max(classes, key=lambda c: SEVERITY_ORDER[c[0]])
    out.severity, out.sre_action = worst[0], worst[1]
    out.notes.append(f"Link {m['link']} register 0 = {r0:#x}: " + ", ".join(c[2] for c in classes) + ".")


def _mask_value(pattern: str) -> tuple[int, int]:
    """A sheet pattern (32 chars, MSB first, '-' = any bit) as (mask, value) for ``intr & mask == value``."""
    return int(pattern.replace("0", "1").replace("-", "0"), 2), int(pattern.replace("-", "0"), 2)


@cache
def _nvlink5_table() -> dict[int, list[tuple[dict[str, Any], list[tuple[str, int, int]]]]]:
    table: dict[int, list[tuple[dict[str, Any], list[tuple[str, int, int]]]]] = {}
    for row in nvlink5_patterns():
        encodings = [(label, *_mask_value(row[key])) for key, label in _ENCODINGS]
        table.setdefault(int(row["xid"]), []).append((row, encodings))
    return table


def _match_rows(xid: int, intr: int, status: int) -> tuple[list[dict[str, Any]], str]:
    """The sheet rows whose IntrInfo pattern (V2 first, then V1) and ErrorStatus match, and the encoding.

    NETIR interrupt and link-event rows carry ErrorStatus 0: the sheet does not check the status there.
    No V1 pattern matches another row's V2 pattern (a test checks it), so trying V2 first only labels
    the 150 watchdog row, whose two patterns are identical. Several rows match when V1 cannot tell
    units apart (the TLW pipes share one V1 pattern)."""
    for label_index in range(len(_ENCODINGS)):
        rows = []
        label = _ENCODINGS[label_index][1]
        for row, encodings in _nvlink5_table().get(xid, []):
            _, mask, value = encodings[label_index]
            if intr & mask != value:
                continue
            row_status = int(row["error_status"], 16)
            if row_status == status or (
                row_status == 0 and row["unit"].startswith(("NETIR/NETIR_INT", "NETIR_LINK_EVT"))
            ):
                rows.append(row)
        if rows:
            return rows, label
    return [], ""


def _nvlink5(out: Decoded, xid: int, message: str, related: set[int], caused_by: int | None) -> None:
    m = _NVLINK5_RE.search(message)
    if not m:
        out.notes.append("No IntrInfo/ErrorStatus words in the message: catalog default (reset the GPU).")
        return
    intr, status = int(m["intr"], 16), int(m["status"], 16)
    if xid == 150 and status == 0xFFFFFFFF:  # "MSE Degraded" row of the catalog page
        status = 0
    rows, encoding = _match_rows(xid, intr, status)
    if not rows:
        out.notes.append(
            f"IntrInfo {intr:#010x} / ErrorStatus {status:#010x} not in NVIDIA's decode sheet: catalog default."
        )
        return
    row = max(rows, key=lambda r: SEVERITY_ORDER[derive_action(r["immediate_bucket"])[0]])
    immediate = row["immediate_bucket"]
    if row.get("alt_immediate_bucket"):
        immediate = f"{immediate} (alt: {row['alt_immediate_bucket']})"
    out.bucket, out.investigatory_bucket = immediate, row["investigatory_bucket"]
    out.severity, out.sre_action = derive_action(immediate, row["investigatory_bucket"])
    if row["severity"].startswith("Link Fatal") and out.severity == "Critical":
        out.sre_action = "Drain the GPU's workloads and reset the GPU"
    out.subcode = " or ".join(dict.fromkeys(r["unit"] for r in rows))
    if len(rows) > 1:
        out.notes.append(f"The {encoding} IntrInfo word does not tell {out.subcode} apart.")
    out.notes.append(
        f"{out.subcode} ({encoding} IntrInfo {intr:#010x}, ErrorStatus {status:#010x}): {row['severity']}, "
        f"{row['hw_sw']}; investigate: {row['investigatory_bucket']}."
    )


_HANDLERS = {48: _xid48, 45: _xid45, 154: _xid154, 74: _xid74}
