"""Generate ``src/k8s_gpu_mcp/xid/nvlink5_patterns.json``: NVIDIA's "XID 144-150 Decode" sheet with
both IntrInfo encodings (V1, drivers before R575; V2, R575 and later).

NVIDIA publishes the sheet in its XID catalog workbook
(https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html). The public project
leptonai/gpud mirrors that workbook machine-readably, V1 patterns included, in
``components/accelerator/nvidia/xid/catalog_generated.go``. This script reads only the data
fields of that file's ``nvlinkRules`` table (xid, unit, the two patterns, error status, buckets,
severity, HW/SW) and writes them as our own JSON; no code or prose is taken.

Usage::

    python scripts/gen_nvlink5_patterns.py GPUD_GIT_DIR [COMMIT]     # a clone or bare mirror of gpud
    python scripts/gen_nvlink5_patterns.py --go-file catalog_generated.go
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

GO_PATH = "components/accelerator/nvidia/xid/catalog_generated.go"
OUT = Path(__file__).resolve().parents[1] / "src" / "k8s_gpu_mcp" / "xid" / "nvlink5_patterns.json"
_FIELD = re.compile(r'(\w+): ("(?:[^"\\]|\\.)*"|0x[0-9a-fA-F]+|\d+)')
_PATTERN = re.compile(r"^[01-]{32}$")
_KEEP = {
    "Xid": "xid",
    "Unit": "unit",
    "IntrinfoPatternV1": "intr_info_v1",
    "IntrinfoPatternV2": "intr_info_v2",
    "ErrorStatus": "error_status",
    "Resolution": "immediate_bucket",
    "Action2": "alt_immediate_bucket",
    "Investigatory": "investigatory_bucket",
    "Severity": "severity",
    "HwSw": "hw_sw",
}


def _value(text: str) -> str | int:
    if text.startswith('"'):
        return json.loads(text)  # Go and JSON string escapes agree for this data
    return int(text, 16) if text.startswith("0x") else int(text)


def parse_rules(go_source: str) -> list[dict[str, str | int | None]]:
    """The rows of the ``nvlinkRules`` table, one dict per ``{...}`` literal."""
    start = go_source.index("var nvlinkRules")
    body = go_source[start : go_source.index("\n}", start)]
    rows = []
    for line in body.splitlines():
        line = line.strip()
        if not line.startswith("{Xid:"):
            continue
        fields = {k: _value(v) for k, v in _FIELD.findall(line)}
        row: dict[str, str | int | None] = {ours: fields.get(theirs) for theirs, ours in _KEEP.items()}
        for key in ("intr_info_v1", "intr_info_v2"):
            if not _PATTERN.match(str(row[key])):
                raise ValueError(
                    f"row {row['xid']} {row['unit']}: {key} {row[key]!r} is not a 32-bit pattern"
                )
        row["error_status"] = f"{int(row['error_status'] or 0):#010x}"
        row["alt_immediate_bucket"] = row["alt_immediate_bucket"] or None
        rows.append(row)
    if not rows:
        raise ValueError("no nvlinkRules rows found")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("git_dir", nargs="?", help="a clone or bare mirror of leptonai/gpud")
    ap.add_argument("commit", nargs="?", default="HEAD")
    ap.add_argument("--go-file", help="read catalog_generated.go from this path instead")
    args = ap.parse_args()
    if args.go_file:
        text, commit = Path(args.go_file).read_text(encoding="utf-8"), None
    elif args.git_dir:
        git = ["git", "-C", args.git_dir]
        commit = subprocess.check_output([*git, "rev-parse", args.commit], text=True).strip()
        text = subprocess.check_output([*git, "show", f"{commit}:{GO_PATH}"], text=True)
    else:
        ap.error("give GPUD_GIT_DIR or --go-file")
    generated = re.search(r"Generated at (\S+)\. Source: (\S+)", text)
    doc = {
        "schema": 1,
        "source": "NVIDIA XID catalog, sheet 'XID 144-150 Decode' "
        + (
            generated[2]
            if generated
            else "https://docs.nvidia.com/deploy/xid-errors/analyzing-xid-catalog.html"
        ),
        "via": {
            "repository": "https://github.com/leptonai/gpud",
            "path": GO_PATH,
            "commit": commit,
            "mirrored_at": generated[1] if generated else None,
        },
        "generated_by": "scripts/gen_nvlink5_patterns.py",
        "pattern_notes": "32 characters, most significant bit first; '-' = any bit. V1: drivers before R575; "
        "V2: R575 and later. error_status 0x00000000 on NETIR rows: the status word is not checked.",
        "rows": parse_rules(text),
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    sys.stderr.write(f"wrote {OUT} ({len(doc['rows'])} rows)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
