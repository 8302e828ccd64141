"""Generate ``src/k8s_gpu_mcp/xid/catalog.json`` from the XID reference markdown.

Usage: ``python scripts/build_xid_catalog.py [REFERENCE_MD] [OUTPUT_JSON]``.
Default reference: ``tests/fixtures/reference/xid_catalog.md`` (a copy of ``../shared/reference/xid_catalog.md``).
The JSON stores NVIDIA's buckets verbatim; severity and SRE action are derived in code
(``k8s_gpu_mcp.xid.catalog.derive_action``), never stored.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_REFERENCE = ROOT / "tests" / "fixtures" / "reference" / "xid_catalog.md"
DEFAULT_OUTPUT = ROOT / "src" / "k8s_gpu_mcp" / "xid" / "catalog.json"
MAX_CODE = 176
ARCHITECTURES = ("A100", "H100", "B100", "GB200")
_EMPTY = {"", "—", "-", "(blank in C)"}

# Paraphrases of the catalog's free-text guidance for the codes whose bucket cell is free text.
_FREE_TEXT_NOTES = {
    162: "Power-smoothing circuitry is available again; informational.",
    163: "Power-smoothing circuitry switched off; no reset needed, remove the thermal cause or reload the driver.",
    164: "Power-smoothing circuitry is near the end of its life; plan a GPU replacement if power smoothing is required.",
    165: "Power-smoothing circuitry lifetime is exhausted; plan a GPU replacement if power smoothing is required.",
    166: "Encrypted NVLink traffic arrived before the link was set up for it; confidential-computing systems only.",
    167: "Fatal PCIe timeout between host and GPU.",
    168: "Errors found in the write-protected region: GPU memory capacity is reduced; enable ECC or reboot with a shifted WPR.",
    169: "The SEC2 micro-controller halted.",
    170: "Unexpected NVLink interrupt in confidential-computing mode; confidential-computing systems only.",
    171: "Companion to XID 48 saying the uncorrectable error was in DRAM; act on the XID 48.",
    172: "Companion to XID 48 saying the uncorrectable error was in SRAM; act on the XID 48 (check the SRAM threshold flag).",
}


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _section(text: str, heading_prefix: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith(heading_prefix))
    out = []
    for ln in lines[start + 1 :]:
        if ln.startswith("## "):
            break
        out.append(ln)
    return out


def _rows(lines: list[str]) -> list[list[str]]:
    return [_cells(ln) for ln in lines if re.match(r"^\|\s*\d+\s*\|", ln)]


def _bucket(cell: str) -> str | None:
    return None if cell in _EMPTY else cell


def _origin(detail: str) -> str:
    d = detail.upper()
    for prefix, origin in (
        ("UNUSED", "unused"),
        ("N/A", "unused"),
        ("MIXED", "mixed"),
        ("APP", "application"),
        ("SYMPATHETIC", "sympathetic"),
        ("INFORMATIONAL", "informational"),
        ("TEST", "test"),
        ("CONFIG", "config"),
        ("HW", "hardware"),
        ("FW", "firmware"),
        ("DRIVER/FW", "firmware"),
        ("DRIVER", "driver"),
        ("SW", "software"),
    ):
        if d.startswith(prefix):
            return origin
    return "unknown"


def parse_reference(text: str) -> dict:
    """Parse the reference markdown into the catalog document (pure; used by the tests too)."""
    detail = {int(r[0]): r for r in _rows(_section(text, "## 3."))}
    xids = []
    for r in _rows(_section(text, "## 4.")):
        code = int(r[0])
        mnemonic, c_desc, applies, imm, inv, origin_detail = r[1].strip("`"), r[2], r[3], r[4], r[5], r[6]
        in_catalog = c_desc != "(not in the catalog copy)"
        flags = applies.split("/") if in_catalog else []
        d = detail.get(code)
        if code in _FREE_TEXT_NOTES:
            desc = _FREE_TEXT_NOTES[code]
        elif d is not None:
            desc = d[12]
        elif c_desc == "Unused":
            desc = "Listed as unused on A100 and newer GPUs; report it to NVIDIA support if it appears."
        elif not in_catalog:
            desc = "Defined in the driver header but not yet in NVIDIA's XID catalog."
        else:
            desc = f"{c_desc}; usual origin: {origin_detail}."
        xids.append(
            {
                "code": code,
                "mnemonic": mnemonic,
                "catalog_description": c_desc if in_catalog else None,
                "description": desc,
                "architectures": [a for a, f in zip(ARCHITECTURES, flags, strict=False) if f == "Y"],
                "immediate_bucket": _bucket(imm),
                "investigatory_bucket": _bucket(inv),
                "xid154_linkage": _bucket(d[6]) if d is not None else None,
                "origin": _origin(origin_detail),
                "origin_detail": origin_detail,
                "in_catalog": in_catalog,
                "documented": True,
            }
        )
    known = {x["code"] for x in xids}
    for code in range(1, MAX_CODE + 1):
        if code not in known:
            xids.append(
                {
                    "code": code,
                    "mnemonic": None,
                    "catalog_description": None,
                    "description": "No public description found; look the code up in NVIDIA's XID catalog.",
                    "architectures": [],
                    "immediate_bucket": None,
                    "investigatory_bucket": None,
                    "xid154_linkage": None,
                    "origin": "unknown",
                    "origin_detail": "unknown",
                    "in_catalog": False,
                    "documented": False,
                }
            )
    xids.sort(key=lambda x: x["code"])
    decode = [
        {
            "xid": int(r[0]),
            "unit": r[1].strip("`"),
            "intr_info_pattern": r[2].strip("`"),
            "error_status": r[3],
            "immediate_bucket": r[4],
            "investigatory_bucket": r[5],
            "severity": r[6],
            "hw_sw": r[7],
        }
        for r in _rows(_section(text, "## 10."))
    ]
    return {
        "schema": 1,
        "source": "NVIDIA XID catalog (https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html), "
        "driver header nverror.h; compiled in shared/reference/xid_catalog.md",
        "generated_by": "scripts/build_xid_catalog.py",
        "xids": xids,
        "nvlink5_decode": decode,
    }


def main(argv: list[str]) -> int:
    ref = Path(argv[1]) if len(argv) > 1 else DEFAULT_REFERENCE
    out = Path(argv[2]) if len(argv) > 2 else DEFAULT_OUTPUT
    doc = parse_reference(ref.read_text(encoding="utf-8"))
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {out} ({len(doc['xids'])} xids, {len(doc['nvlink5_decode'])} decode rows)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
