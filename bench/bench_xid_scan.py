"""make bench section: XID log scan throughput vs grep -F -c 'NVRM: Xid', and the worst case of
issue 20 (a 256 MiB file with no newline): peak RSS next to an idle interpreter, time next to grep
(see xid_scan.py). Run alone: ``cd bench && python -c 'import bench_xid_scan as b; print(b.run())'``."""

from __future__ import annotations

from typing import Any

from xid_scan import measure, measure_worst_case


def run() -> dict[str, Any]:
    result: dict[str, Any] = dict(measure())
    result["target_ratio_min"] = 0.8
    result["verdict:xid scan >= 0.8x grep -F -c"] = result["ratio"] >= 0.8
    worst = measure_worst_case()
    result.update(worst)
    # bounded: the scan's RSS growth is a small, fixed fraction of a no-newline file (buffer ~8 MiB)
    result["verdict:no-newline file: RSS growth <= 0.1x the file"] = worst["worst_rss_growth_vs_file"] <= 0.1
    return result
