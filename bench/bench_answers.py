"""Answer sizes (issue 14): bytes of every node tool's default (summary) and detail=full answer, as the
text content an MCP client hands the model, on the default 8-GPU H100 profile and every bundled
scenario (on the profile it names), next to the goals: every summary at most 4 KB, get_gpu_health at
most 3 KB when all is well, a whole gpu-triage of one node under 16 KB. KB here is 1,024 bytes; every
figure is in bytes.

Calls go through the SDK's in-memory client (the same CallToolResult a stdio or HTTP client gets)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import anyio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from mcp.client import Client  # noqa: E402

from k8s_gpu_mcp.config import Settings  # noqa: E402
from k8s_gpu_mcp.prompts import triage_calls  # noqa: E402
from k8s_gpu_mcp.server import AgentApp  # noqa: E402

PROFILE = "h100-sxm5-80gb-x8"
TOOLS = {
    "get_gpu_health": "health",
    "snapshot_ecc": "ecc",
    "analyze_xid_errors": "xid",
    "get_gpu_inventory": "inventory",
    "get_gpu_telemetry": "telemetry",
    "inspect_topology": "topology",
    "list_gpu_processes": "processes",
}
SUMMARY_MAX = 4096
ALL_WELL_HEALTH_MAX = 3072
TRIAGE_MAX = 16384
# The captures never printed NVLink error counters (the mock answers NoData: unknown, never healthy),
# so the default node is never "all is well". This overlay reads them as zero: the all-is-well node.
ZERO = {"replay": 0, "recovery": 0, "crc_flit": 0, "crc_data": 0}
COUNTERS_ZERO = {
    "name": "nvlink-counters-zero",
    "description": "bench overlay: every NVLink error counter of the H100 profile reads 0",
    "profile": PROFILE,
    "gpus": {str(i): {"nvlinks": {str(link): {"errors": ZERO} for link in range(18)}} for i in range(8)},
}


def text_bytes(result: Any) -> int:
    return sum(len(c.text.encode()) for c in result.content if hasattr(c, "text"))


async def measure(scenario: str | None) -> dict[str, Any]:
    # a scenario runs on the profile it names (mig-instance-ecc: the A100 in MIG mode); none: the H100
    profile = None if scenario else PROFILE
    app = AgentApp(Settings(nvml_mode="mock", profile=profile, scenario=scenario, log_level="ERROR"))
    out: dict[str, Any] = {"summary": {}, "full": {}, "status": {}}
    try:
        async with Client(app.server) as client:
            for tool in TOOLS:
                summary = await client.call_tool(tool, {})
                full = await client.call_tool(tool, {"detail": "full"})
                out["summary"][tool] = text_bytes(summary)
                out["full"][tool] = text_bytes(full)
                out["status"][tool] = (summary.structured_content or {}).get("status")
            triage = 0
            for tool, args in triage_calls("bench-node"):
                triage += text_bytes(await client.call_tool(tool, args))
            out["triage"] = triage
    finally:
        app.close()
    return out


def row(sizes: dict[str, int]) -> str:
    return ", ".join(f"{TOOLS[t]} {sizes[t]:,}" for t in TOOLS)


def run() -> dict[str, Any]:
    os.environ.setdefault("NODE_NAME", "bench-node")
    os.environ.pop("KUBERNETES_SERVICE_HOST", None)
    scenarios = sorted(p.stem for p in (REPO / "src/k8s_gpu_mcp/scenarios").glob("*.yaml"))
    overlay = Path(os.environ.get("TMPDIR", "/tmp")) / "k8s-gpu-mcp-bench-counters-zero.json"
    overlay.write_text(json.dumps(COUNTERS_ZERO))
    results: dict[str, Any] = {}
    out: dict[str, Any] = {"goals": "summary <= 4,096 bytes per tool; health summary <= 3,072 when all is "
                           "well; gpu-triage (7 calls) < 16,384 bytes"}  # fmt: skip
    worst: tuple[int, str] = (0, "")
    over: list[str] = []
    triage_worst: tuple[int, str] = (0, "")
    for name in [None, *scenarios]:
        label = name or f"default ({PROFILE})"
        r = results[label] = anyio.run(measure, name)
        out[f"{label}: summary bytes"] = row(r["summary"])
        out[f"{label}: full bytes"] = row(r["full"])
        out[f"{label}: gpu-triage bytes"] = f"{r['triage']:,}"
        for tool, size in r["summary"].items():
            worst = max(worst, (size, f"{TOOLS[tool]} on {label}"))
            if size > SUMMARY_MAX:
                over.append(f"{TOOLS[tool]} on {label} ({size:,})")
        triage_worst = max(triage_worst, (r["triage"], label))
    well = anyio.run(measure, str(overlay))
    overlay.unlink()
    out["all is well (overlay: NVLink counters 0): summary bytes"] = row(well["summary"])
    out["all is well: statuses"] = ", ".join(f"{TOOLS[t]} {s}" for t, s in well["status"].items())
    out["largest summary"] = f"{worst[0]:,} bytes ({worst[1]})"
    out["summaries over 4 KB"] = "; ".join(over) or "none"
    out["largest gpu-triage"] = f"{triage_worst[0]:,} bytes ({triage_worst[1]})"
    out["verdict:every summary <= 4 KB on the default node and every bundled scenario"] = not over
    out["verdict:get_gpu_health summary <= 3 KB when all is well"] = (
        well["summary"]["get_gpu_health"] <= ALL_WELL_HEALTH_MAX
        and well["status"]["get_gpu_health"] == "healthy"
    )
    out["verdict:gpu-triage of one node < 16 KB on the default node and every bundled scenario"] = (
        triage_worst[0] < TRIAGE_MAX
    )
    return out


if __name__ == "__main__":
    sys.stdout.write(json.dumps(run(), indent=2) + "\n")
