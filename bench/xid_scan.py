"""Benchmark: XID scan of a 1M-line (~70 MB) kernel log vs ``grep -F -c 'NVRM: Xid'`` on the same file.

Generates the log under a temp dir (realistic filler, 0.1% XID lines), times both in the same run
(median of 7 interleaved runs, page cache warm for both) and prints one JSON line:
{"xid_scan_mb_s": ..., "grep_mb_s": ..., "ratio": ...}. grep's stdout is a pipe, not /dev/null:
GNU grep stops at the first match when its output is /dev/null.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

from k8s_gpu_mcp.xid.scan import scan_file  # noqa: E402

LINES = 1_000_000
XID_EVERY = 1000  # 0.1 %
# Kernel messages typical of a Kubernetes GPU node, with weights (most frequent first).
FILLER = (
    (30, "IPv6: ADDRCONF(NETDEV_CHANGE): veth{n:x}: link becomes ready"),
    (30, "cni0: port {p}(veth{n:x}) entered forwarding state"),
    (20, "device veth{n:x} entered promiscuous mode"),
    (20, "eth0: renamed from tmp{n:x}"),
    (15, 'audit: type=1400 audit({n}.123:{p}): apparmor="DENIED" operation="open" profile="cri-containerd"'),
    (10, "kauditd_printk_skb: {p} callbacks suppressed"),
    (5, "mlx5_core 0000:ab:00.0 mlx5_5: Port: 1 Link ACTIVE"),
    (5, "TCP: request_sock_TCP: Possible SYN flooding on port 10250. Sending cookies."),
    (3, "perf: interrupt took too long ({n} > 2500), lowering kernel.perf_event_max_sample_rate to 79750"),
    (2, "EXT4-fs (nvme0n1p{p}): mounted filesystem with ordered data mode. Quota mode: none."),
    (1, "XFS (nvme1n1): Mounting V5 Filesystem"),
    (1, "Memory cgroup out of memory: Killed process {n} (python3) total-vm:1234567kB, anon-rss:7654321kB"),
    (1, "NVRM: GPU at PCI:0000:3b:00: GPU-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"),
)
XIDS = (
    "NVRM: Xid (PCI:0000:3b:00): 48, pid={n}, name=python3, An uncorrectable double bit error (DBE) has been detected on GPU in the framebuffer at partition 4, subpartition 1.",
    "NVRM: Xid (PCI:0000:5d:00): 13, pid={n}, name=pt_main_thread, Graphics SM Warp Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter",
    "NVRM: Xid (PCI:0000:ab:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.",
)


def generate(path: Path) -> None:
    rng = random.Random(42)
    templates = [t for _, t in FILLER]
    weights = [w for w, _ in FILLER]
    with open(path, "w", encoding="utf-8") as f:
        for i in range(LINES):
            stamp = f"[{i * 0.0137:12.6f}] "
            if i % XID_EVERY == 0:
                text = XIDS[(i // XID_EVERY) % len(XIDS)]
            else:
                text = rng.choices(templates, weights)[0]
            f.write(stamp + text.format(n=i, p=i % 7) + "\n")


def _medians(a, b, rounds: int = 7) -> tuple[float, float]:
    """Median wall time of ``a`` and of ``b``, interleaved so both see the same machine load."""
    ta, tb = [], []
    for _ in range(rounds):
        for fn, out in ((a, ta), (b, tb)):
            t = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def measure() -> dict[str, float | int]:
    """Generate the log, time the scan and grep (interleaved medians), return the figures."""
    with tempfile.TemporaryDirectory(prefix="xid-bench-") as tmp:
        path = Path(tmp) / "kern.log"
        generate(path)
        size_mb = os.path.getsize(path) / 1e6
        expected = LINES // XID_EVERY

        def grep() -> None:
            out = subprocess.run(
                ["grep", "-F", "-c", "NVRM: Xid", str(path)], stdout=subprocess.PIPE, check=True
            )
            assert int(out.stdout) == expected

        def scan() -> None:
            assert len(scan_file(path).events) == expected

        grep(), scan()  # warm the page cache for both
        scan_s, grep_s = _medians(scan, grep)
    return {
        "xid_scan_mb_s": round(size_mb / scan_s, 1),
        "grep_mb_s": round(size_mb / grep_s, 1),
        "ratio": round(grep_s / scan_s, 3),
        "file_mb": round(size_mb, 1),
        "lines": LINES,
    }


WORST_MIB = 256  # issue 20: a file with no newline, full of 'X', once took the agent to GBs of RSS
_CHILD = """
import resource, sys, time
sys.path.insert(0, {src!r})
from k8s_gpu_mcp.xid.scan import scan_file
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
if {scan}:
    scan_file({path!r})
print(before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, time.perf_counter() - t)
"""


def _child(path: Path, scan: bool) -> tuple[float, float, float]:
    """(peak RSS MiB before the scan, after it, scan seconds) of a fresh interpreter."""
    src = str(Path(__file__).resolve().parent.parent / "src")
    code = _CHILD.format(src=src, path=str(path), scan=scan)
    out = subprocess.run([sys.executable, "-c", code], stdout=subprocess.PIPE, check=True, text=True)
    before, after, seconds = out.stdout.split()
    return int(before) / 1024, int(after) / 1024, float(seconds)


def measure_worst_case() -> dict[str, float | int]:
    """Peak RSS and time of scanning a WORST_MIB file with no newline, next to the same interpreter
    without the scan (RSS reference) and ``grep -F -c`` over the same file (time reference)."""
    with tempfile.TemporaryDirectory(prefix="xid-bench-worst-") as tmp:
        path = Path(tmp) / "no-newline.log"
        block = b"Xid X" * ((1 << 20) // 5)
        with open(path, "wb") as f:
            for _ in range(WORST_MIB):
                f.write(block)
        subprocess.run(["grep", "-F", "-c", "NVRM: Xid", str(path)], stdout=subprocess.PIPE, check=False)
        _, idle_rss, _ = _child(path, scan=False)
        _, peak_rss, scan_s = _child(path, scan=True)
        t = time.perf_counter()
        subprocess.run(["grep", "-F", "-c", "NVRM: Xid", str(path)], stdout=subprocess.PIPE, check=False)
        grep_s = time.perf_counter() - t
    return {
        "worst_file_mib": WORST_MIB,
        "worst_peak_rss_mib": round(peak_rss, 1),
        "worst_idle_rss_mib": round(idle_rss, 1),
        "worst_rss_growth_mib": round(peak_rss - idle_rss, 1),
        "worst_rss_growth_vs_file": round((peak_rss - idle_rss) / WORST_MIB, 3),
        "worst_scan_s": round(scan_s, 3),
        "worst_grep_s": round(grep_s, 3),
        "worst_ratio_vs_grep": round(grep_s / scan_s, 2) if scan_s else None,
    }


def main() -> int:
    sys.stdout.write(json.dumps(measure()) + "\n")
    sys.stdout.write(json.dumps(measure_worst_case()) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
