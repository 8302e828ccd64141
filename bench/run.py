"""make bench: every figure next to its reference, both measured in this run.

Writes .bench/report.json and refreshes docs/benchmarks.md. Not part of make test.
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import statistics
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from stdio_rpc import StdioPeer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
AGENT_BASE = [PY, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode", "mock", "--log-level", "WARNING"]
AGENT = [*AGENT_BASE, "--profile", "h100-sxm5-80gb-x8"]
MINIMAL = [PY, str(Path(__file__).parent / "minimal_server.py")]
ENV = {"NODE_NAME": "bench-node"}


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


START_RATIO_MAX = 1.25  # issue 18: cold start and first answers within 1.25x the minimal SDK server's


def cold_start(runs: int = 20) -> dict[str, Any]:
    """Process start to initialize reply, median of 20 (at least the 10 asked for); agent and minimal
    server interleaved so both see the same machine noise."""
    agent, floor = [], []
    for _ in range(runs):
        for argv, bucket in ((AGENT, agent), (MINIMAL, floor)):
            peer = StdioPeer(argv, ENV)
            bucket.append(peer.initialize())
            peer.close()
    a, f = statistics.median(agent), statistics.median(floor)
    return {
        "agent_median_s": round(a, 4),
        "minimal_sdk_server_median_s": round(f, 4),
        "ratio": round(a / f, 3),
        "target_ratio_max": START_RATIO_MAX,
        "runs": runs,
    }


def first_answer(
    tools: tuple[str, ...] = ("get_gpu_telemetry", "get_gpu_health"), runs: int = 10
) -> dict[str, Any]:
    """Process start to the first tool result, next to the minimal server's start to its first ping:
    the start-up measure that matters (every tool registers at start; a client always calls one)."""
    out: dict[str, Any] = {}
    for tool in tools:
        agent, floor = [], []
        for _ in range(runs):
            for argv, name, args, bucket in (
                (AGENT, tool, {}, agent),
                (MINIMAL, "ping", {"value": 1}, floor),
            ):
                peer = StdioPeer(argv, ENV)
                peer.initialize()
                peer.call(name, args)
                bucket.append(peer.elapsed())
                peer.close()
        a, f = statistics.median(agent), statistics.median(floor)
        out[f"{tool} median s"] = round(a, 4)
        out[f"{tool} vs minimal server's first ping"] = f"{a / f:.3f}x (ping {f:.4f} s)"
        out[f"verdict:first {tool} <= {START_RATIO_MAX}x minimal server's first ping"] = (
            a / f <= START_RATIO_MAX
        )
    out["runs"] = runs
    return out


def round_trip(
    tool: str, arguments: dict[str, Any], calls: int = 300, agent_argv: list[str] = AGENT
) -> dict[str, Any]:
    agent = StdioPeer(agent_argv, ENV)
    floor = StdioPeer(MINIMAL, ENV)
    agent.initialize()
    floor.initialize()
    for _ in range(20):  # warm-up
        agent.call(tool, arguments)
        floor.call("ping", {"value": 1})
    tool_s, ping_s = [], []
    for _ in range(calls):
        tool_s.append(agent.call(tool, arguments))
        ping_s.append(floor.call("ping", {"value": 1}))
    agent.close()
    floor.close()
    p50, ref50 = percentile(tool_s, 50), percentile(ping_s, 50)
    return {
        "tool": tool,
        "p50_ms": round(p50 * 1000, 3),
        "p99_ms": round(percentile(tool_s, 99) * 1000, 3),
        "trivial_p50_ms": round(ref50 * 1000, 3),
        "trivial_p99_ms": round(percentile(ping_s, 99) * 1000, 3),
        "p50_ratio": round(p50 / ref50, 3),
        "target_p50_ratio_max": 2.0,
        "calls": calls,
    }


READ_ONLY_TOOLS = [
    "get_gpu_inventory",
    "get_gpu_telemetry",
    "get_gpu_health",
    "analyze_xid_errors",
    "snapshot_ecc",
    "inspect_topology",
    "list_gpu_processes",
]


def tool_latencies(calls: int = 150) -> dict[str, Any]:
    """Every read-only tool on the 8-GPU profile with the XID 48 scenario, next to the trivial tool."""
    argv = [*AGENT_BASE, "--scenario", "ecc-dbe-xid48"]
    out: dict[str, Any] = {}
    for tool in READ_ONLY_TOOLS:
        r = round_trip(tool, {}, calls, argv)
        out[f"{tool} p50/p99 ms"] = f"{r['p50_ms']} / {r['p99_ms']}"
        out[f"{tool} p50 vs trivial"] = f"{r['p50_ratio']}x (trivial p50 {r['trivial_p50_ms']} ms)"
    return out


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory(soak_calls: int = 10_000) -> dict[str, Any]:
    """Idle RSS next to the minimal SDK server's, then RSS after a soak of mixed calls."""
    agent = StdioPeer(AGENT, ENV)
    floor = StdioPeer(MINIMAL, ENV)
    agent.initialize()
    floor.initialize()
    idle, floor_idle = rss_kib(agent.proc.pid), rss_kib(floor.proc.pid)
    mix = [
        ("get_gpu_telemetry", {}),
        ("get_gpu_inventory", {"gpus": [0]}),
        ("get_gpu_health", {}),
        ("snapshot_ecc", {"gpus": [1]}),
        ("analyze_xid_errors", {}),
    ]
    for n in range(soak_calls):
        agent.call(*mix[n % len(mix)])
    after = rss_kib(agent.proc.pid)
    agent.close()
    floor.close()
    return {
        "agent_idle_rss_mib": round(idle / 1024, 1),
        "minimal_sdk_server_idle_rss_mib": round(floor_idle / 1024, 1),
        "agent_rss_after_soak_mib": round(after / 1024, 1),
        "soak_calls": soak_calls,
        "soak_growth_percent": round(100 * (after - idle) / idle, 1),
    }


def extra_sections() -> dict[str, Callable[[], dict[str, Any]]]:
    """Benchmarks contributed by other layers (bench/<name>.py with a `run() -> dict`)."""
    sections: dict[str, Callable[[], dict[str, Any]]] = {}
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        sections[path.stem.removeprefix("bench_")] = importlib.import_module(path.stem).run
    return sections


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu": _cpu_model(),
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make bench` (bench/run.py); do not edit by hand. Each figure stands next to the",
        "reference it is compared with, measured in the same run on the same machine.",
        "",
        f"- Date: {m['date']}",
        f"- Machine: {m['cpu']}, {m['cpu_count']} cores, {m['platform']}, Python {m['python']}",
        f"- Sections run on that date: {', '.join(report.get('sections_run') or report['results'])}"
        " (the others are kept from the previous report)",
        "",
    ]
    for name, section in report["results"].items():
        lines += [f"## {name}", "", "| metric | value |", "| --- | --- |"]
        lines += [f"| {k} | {v} |" for k, v in section.items()]
        lines.append("")
    verdicts = report.get("verdicts", {})
    if verdicts:
        lines += ["## Targets", "", "| target | met |", "| --- | --- |"]
        lines += [f"| {k} | {'yes' if v else 'NO'} |" for k, v in verdicts.items()]
        lines.append("")
    return "\n".join(lines)


BASE_SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {
    "cold_start": cold_start,
    "first_answer": first_answer,
    "telemetry_round_trip": lambda: round_trip("get_gpu_telemetry", {}, calls=1000),
    "tool_latencies": tool_latencies,
    "memory": memory,
}


def previous_results(path: Path) -> dict[str, dict[str, Any]]:
    """The sections of an earlier report (docs/benchmarks.md), to keep those not re-run."""
    results: dict[str, dict[str, Any]] = {}
    current: dict[str, Any] | None = None
    for line in path.read_text().splitlines() if path.exists() else []:
        if line.startswith("## "):
            name = line[3:].strip()
            current = None if name == "Targets" else results.setdefault(name, {})
        elif (
            current is not None
            and line.startswith("| ")
            and line not in ("| metric | value |", "| --- | --- |")
        ):
            key, _, value = line[2:-2].partition(" | ")
            current[key] = {"True": True, "False": False}.get(value, value)
    return results


def main(argv: list[str] | None = None) -> int:
    """``--only a,b``: run those sections and keep the others from the last report (make bench SECTIONS=a,b)."""
    args = list(sys.argv[1:] if argv is None else argv)
    sections = {**BASE_SECTIONS, **extra_sections()}
    only = args[args.index("--only") + 1].split(",") if "--only" in args else list(sections)
    unknown = [name for name in only if name not in sections]
    if unknown:
        sys.stderr.write(f"unknown bench sections {unknown}; known: {', '.join(sections)}\n")
        return 2
    doc = REPO / "docs" / "benchmarks.md"
    results = previous_results(doc) if "--only" in args else {}
    for name in sections:
        if name in only:
            results[name] = sections[name]()
    results = {name: results[name] for name in sections if name in results}
    verdicts = {}
    if "cold_start" in results and "telemetry_round_trip" in results:
        verdicts[f"cold start <= {START_RATIO_MAX}x minimal SDK server"] = (
            float(results["cold_start"]["ratio"]) <= START_RATIO_MAX
        )
        verdicts["get_gpu_telemetry p50 <= 2x trivial tool"] = (
            float(results["telemetry_round_trip"]["p50_ratio"]) <= 2.0
        )
    for section in results.values():
        for key, value in section.items():
            if key.startswith("verdict:"):
                verdicts[key.removeprefix("verdict:")] = value is True
    report = {"machine": machine(), "results": results, "verdicts": verdicts, "sections_run": only}
    out = REPO / ".bench"
    out.mkdir(exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=2))
    doc.write_text(render_markdown(report))
    sys.stderr.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
