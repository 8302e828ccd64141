"""make bench section: XID log scan throughput vs grep -F -c 'NVRM: Xid' (see xid_scan.py)."""

from __future__ import annotations

from typing import Any

from xid_scan import measure


def run() -> dict[str, Any]:
    result: dict[str, Any] = dict(measure())
    result["target_ratio_min"] = 0.8
    result["verdict:xid scan >= 0.8x grep -F -c"] = result["ratio"] >= 0.8
    return result
