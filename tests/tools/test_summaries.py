"""Every node tool's summary (the default) against its own detail=full answer, on the default 8-GPU H100
mock node and every bundled scenario: the verdict leads, every GPU that is not healthy is a problem with
the evidence that proves it, and the size stays what an assistant's context can take."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.diagnose import node
from k8s_gpu_mcp.server import AgentApp
from k8s_gpu_mcp.tools import processes as processes_tool
from k8s_gpu_mcp.tools import telemetry as telemetry_tool
from k8s_gpu_mcp.vocabulary import STATUS_RANK, worst

SCENARIOS = [
    None,
    *sorted(p.stem for p in (Path(__file__).parents[2] / "src/k8s_gpu_mcp/scenarios").glob("*.yaml")),
]
NODE_TOOLS = (
    "get_gpu_health",
    "snapshot_ecc",
    "analyze_xid_errors",
    "get_gpu_inventory",
    "get_gpu_telemetry",
    "inspect_topology",
    "list_gpu_processes",
)
SUMMARY_MAX = 4096  # issue 14: every summary at most 4 KB of text content on the default 8-GPU node
ALL_WELL_HEALTH_MAX = 3072  # and get_gpu_health at most 3 KB when all is well
# The captures never printed NVLink error counters, so the mock answers NoData and every H100 GPU is
# unknown (never healthy). This overlay reads them as zero: the node where all is well. A test
# construct, not a capture.
COUNTERS_ZERO = {
    "name": "nvlink-counters-zero",
    "description": "test overlay: every NVLink error counter of the H100 profile reads 0",
    "profile": "h100-sxm5-80gb-x8",
    "gpus": {
        str(i): {
            "nvlinks": {
                str(link): {"errors": {"replay": 0, "recovery": 0, "crc_flit": 0, "crc_data": 0}}
                for link in range(18)
            }
        }
        for i in range(8)
    },
}


async def answers(app: AgentApp) -> dict[str, tuple[str, dict[str, Any], dict[str, Any]]]:
    """tool -> (summary text content, summary structured, full structured)."""
    out = {}
    async with Client(app.server) as client:
        for tool in NODE_TOOLS:
            summary = await client.call_tool(tool, {})
            full = await client.call_tool(tool, {"detail": "full"})
            assert not summary.is_error and not full.is_error, (tool, summary.content, full.content)
            out[tool] = (summary.content[0].text, summary.structured_content, full.structured_content)
    return out


def check_head(tool: str, data: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """The head every node tool shares; returns the problems by GPU index."""
    assert list(data)[:3] == ["status", "action", "detail"], (tool, list(data)[:5])
    assert data["status"] in STATUS_RANK and data["action"].strip()
    problems = {p["index"]: p for p in data["problems"]}
    healthy = [g["index"] for g in data["healthy_gpus"]]
    counts = data["counts"]
    assert len(problems) == len(data["problems"]) and not set(problems) & set(healthy), tool
    assert counts["gpus"] == len(problems) + len(healthy), (tool, counts)
    assert counts["healthy"] == len(healthy)
    assert counts["unknown"] == sum(1 for p in problems.values() if p["status"] == "unknown")
    assert data["status"] == worst(p["status"] for p in problems.values()), tool
    for index, p in problems.items():
        assert p["status"] != "healthy" and p["reason"].strip(), (tool, p)
        for key in ("uuid", "pci_bus_id"):
            assert key in p, (tool, p)  # one way to name a GPU
        if "same_as" in p:  # said once, at the GPU it points to
            first = problems[p["same_as"]]
            assert first["status"] == p["status"] and first["evidence"] and "same_as" not in first, (tool, p)
        else:
            assert p["evidence"], (tool, index, p)
            assert all(e["status"] in STATUS_RANK and e["finding"].strip() for e in p["evidence"])
            if p["status"] != "lost":  # what a summary leaves to full never takes the evidence of the status
                assert any(e["status"] == p["status"] for e in p["evidence"]), (tool, p)
    return problems


STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?")


def untimed(text: str) -> str:
    """Mock scenario XIDs are dated relative to now: the summary and full calls see other seconds."""
    return STAMP.sub("<time>", text)


def evidence_of(problems: dict[int, dict[str, Any]], index: int) -> list[str]:
    p = problems[index]
    p = problems[p["same_as"]] if "same_as" in p else p
    return [untimed(e["finding"]) for e in p["evidence"]]


def gpu_range(text: str) -> set[int]:
    """ "0, 2-7" -> {0, 2, 3, 4, 5, 6, 7}"""
    out: set[int] = set()
    for part in text.split(", "):
        lo, _, hi = part.partition("-")
        out |= set(range(int(lo), int(hi or lo) + 1))
    return out


def named_unavailable(summary: dict[str, Any], index: int, message: str) -> bool:
    """An unread check of a GPU that is worse than unknown: the summary names it in `unavailable`
    (its NVML reason, for a GPU range that includes this one) rather than in the GPU's evidence."""
    for why in summary["unavailable"].values():
        reason, _, gpus = why.rpartition(" (GPU ")
        if reason and reason in message and index in gpu_range(gpus.rstrip(")")):
            return True
    return False


PER_GPU_LINKS = {"inactive_links", "unknown_links", "uneven_links"}  # diagnose/topology.PER_GPU_LINK_KINDS


def node_says(node_action: str, index: int, action: str) -> bool:
    """The node's action names this GPU with its action: an unknown GPU's "verify", or its remedy (the
    drain clause the node's step covers taken off, the -i of GPUs sharing it merged)."""
    if action.startswith("Verify what could not be read"):
        m = re.search(r"verify GPUs? ([0-9, and]+)", node_action)
        return m is not None and str(index) in re.split(r", | and ", m.group(1).strip())
    text = re.sub(rf"-i {index}\b", "-i <gpu>", node.remedy(action))
    merged = re.sub(r"-i \d+(?: and -i \d+)*", "-i <gpu>", node_action)
    return any(
        str(index) in re.split(r", | and ", m.group(1)) and merged.startswith(f": {text}", m.end())
        for m in re.finditer(r"GPUs? (\d+(?:, \d+)*(?: and \d+)?)", merged)
    )


def check_evidence(
    tool: str, summary: dict[str, Any], full: dict[str, Any], problems: dict[int, Any]
) -> None:
    """Each GPU the full answer shows not healthy is a problem whose evidence says why."""
    gpus = full.get("gpus") or []
    if tool == "get_gpu_health":
        for g in gpus:
            assert (g["status"] == "healthy") == (g["index"] not in problems), (tool, g["index"])
            worse = (
                g["index"] in problems
                and STATUS_RANK[problems[g["index"]]["status"]] > STATUS_RANK["unknown"]
            )
            own_links = [
                untimed(r["message"]) for r in g["reasons"] if r["evidence"].get("kind") in PER_GPU_LINKS
            ]
            for r in g["reasons"]:
                if worse and r["severity"] == "unknown":
                    assert named_unavailable(summary, g["index"], r["message"]), (g["index"], r["message"])
                elif r["evidence"].get("kind") == "uneven_pairs" and untimed(r["message"]) not in evidence_of(
                    problems, g["index"]
                ):  # as inspect_topology: left out only where the GPU's own link finding says the cause
                    assert set(own_links) & set(evidence_of(problems, g["index"])), (g["index"], r["message"])
                elif r["severity"] != "info":
                    assert untimed(r["message"]) in evidence_of(problems, g["index"]), (
                        g["index"],
                        r["message"],
                    )
    elif tool == "snapshot_ecc":
        for g in gpus:
            assert (g["status"] == "healthy") == (g["index"] not in problems), (tool, g["index"])
            for r in g["reasons"]:
                if r["level"] != "info":
                    assert any(r["text"] in f for f in evidence_of(problems, g["index"])), r["text"]
    elif tool == "analyze_xid_errors":
        for row in full.get("xids") or []:
            if row["index"] is not None and row["status"] != "healthy":
                assert problems[row["index"]]["status"] != "healthy"
                assert any(f"XID {row['xid']}" in f for f in evidence_of(problems, row["index"])), row
    elif tool == "get_gpu_inventory":
        for g in gpus:
            if g["lost"]:
                assert problems[g["index"]]["status"] == "lost"
        models = [i for m in summary["models"] for i in m["gpus"]]
        assert sorted(models) == sorted(g["index"] for g in gpus if not g["lost"])
    elif tool == "get_gpu_telemetry":
        assert len(summary["readings"]) == len(gpus)
        for g in gpus:
            reasons = telemetry_tool.reasons(telemetry_tool.GpuTelemetry(**g))
            bad = [r for r in reasons if r.severity != "info"]
            assert bool(bad or g["lost"]) == (g["index"] in problems), (tool, g["index"])
            for r in [] if g["lost"] else bad:  # a lost GPU's evidence is the loss
                assert r.message in evidence_of(problems, g["index"])
    elif tool == "inspect_topology":
        shown = {f["message"] for f in summary["findings"]}
        per_gpu_links = PER_GPU_LINKS
        for f in full["findings"]:
            said = f"{f['message']}: {f['consequence']}"
            in_problems = any(said in evidence_of(problems, i) for i in f["gpus"] if i in problems)
            if f["severity"] == "info":  # as get_gpu_health's info reasons: not owed to a summary
                assert f["message"] not in shown, f
                continue
            if f["kind"] == "uneven_pairs" and not (f["message"] in shown or in_problems):
                # left out only where each short GPU's own link finding is in its evidence (the cause)
                for g in f["gpus"]:
                    causes = [e for e in full["findings"] if e["kind"] in per_gpu_links and g in e["gpus"]]
                    assert any(
                        f"{c['message']}: {c['consequence']}" in evidence_of(problems, g) for c in causes
                    ), f
                continue
            assert f["message"] in shown or in_problems, f
        for g in gpus:
            if g["lost"]:
                assert problems[g["index"]]["status"] == "lost"
        full_problems = {p["index"]: p for p in full["problems"]}
        for index, p in problems.items():  # a GPU's action is there, or the node's action says it
            action = full_problems[index].get("action")
            if "same_as" in p:
                continue
            if "action" not in p and action:
                assert node_says(summary["action"], index, action), (index, action, summary["action"])
            else:
                assert p.get("action") == action, index
    elif tool == "list_gpu_processes":
        for g in gpus:
            zombies = [p for p in g["processes"] or [] if p["zombie"]]
            for z in zombies:
                assert any(str(z["pid"]) in f for f in evidence_of(problems, g["index"])), z
            if g["processes"] is None:
                assert g["index"] in problems
            reasons = processes_tool.reasons(processes_tool.GpuProcessList(**g))
            assert bool([r for r in reasons if r.severity != "info"] or g["lost"]) == (g["index"] in problems)


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", SCENARIOS)
async def test_every_summary_leads_with_the_verdict_and_carries_the_evidence(make_app, scenario):
    # each scenario on the profile it names (the MIG one needs its A100 in MIG mode); none: the H100
    for tool, (text, summary, full) in (await answers(make_app(None, scenario=scenario))).items():
        assert json.loads(text) == summary  # the text content is the structured content
        assert summary["detail"] == "summary" and full["detail"] == "full"
        every = "events" if tool == "analyze_xid_errors" else "gpus"
        assert every not in summary and every in full, tool  # full keeps every GPU's evidence
        problems = check_head(tool, summary)
        full_problems = check_head(tool, full)
        assert full["status"] == summary["status"] and full["action"] == summary["action"], tool
        assert {i: p["status"] for i, p in full_problems.items()} == {
            i: p["status"] for i, p in problems.items()
        }
        check_evidence(tool, summary, full, problems)
        assert len(text.encode()) <= SUMMARY_MAX, (tool, scenario, len(text.encode()))


@pytest.mark.anyio
async def test_all_is_well_health_summary_is_short_and_healthy(make_app):
    results = await answers(make_app(scenario=COUNTERS_ZERO))
    text, summary, _ = results["get_gpu_health"]
    assert summary["status"] == "healthy" and summary["problems"] == [] and summary["counts"]["healthy"] == 8
    assert summary["action"].startswith("No action")
    assert len(text.encode()) <= ALL_WELL_HEALTH_MAX, len(text.encode())
    assert all(results[t][1]["status"] == "healthy" for t in NODE_TOOLS)


@pytest.mark.anyio
async def test_unread_nvlink_counters_are_unknown_and_said_not_dropped(make_app):
    """The captures never had NVLink error counters: that is a check not made (unknown), not a field
    the GPU lacks by design, so the summary names it in problems and unavailable."""
    results = await answers(make_app())
    for tool in ("get_gpu_health", "inspect_topology"):
        summary = results[tool][1]
        assert summary["status"] == "unknown" and summary["counts"]["unknown"] == 8, tool
        assert "NoData" in summary["unavailable"]["nvlink.errors"], tool
        assert "NVLink error counters unreadable" in summary["problems"][0]["evidence"][0]["finding"]


@pytest.mark.anyio
async def test_not_supported_by_design_is_left_out_of_summaries_and_counted_once_in_full(make_app):
    results = await answers(make_app("t4"))
    for tool in ("get_gpu_health", "snapshot_ecc", "get_gpu_telemetry", "get_gpu_inventory"):
        _, summary, full = results[tool]
        answer = {k: v for k, v in summary.items() if k != "source"}  # source: the node-level stamp
        assert "NotSupported" not in json.dumps(answer), tool
        if full.get("not_supported"):
            assert full["not_supported"]["count"] >= len(full["not_supported"]["calls"]) > 0


def _statuses(schema: Any, path: str = "") -> list[tuple[str, Any]]:
    """Every property named `status` in a JSON schema, with its enum."""
    found: list[tuple[str, Any]] = []
    if isinstance(schema, dict):
        for name, prop in (schema.get("properties") or {}).items():
            if name == "status":
                enums = [prop.get("enum")] + [o.get("enum") for o in prop.get("anyOf", [])]
                found.append((f"{path}.{name}", next((e for e in enums if e), prop.get("type"))))
        for key, value in schema.items():
            found += _statuses(value, f"{path}.{key}" if key not in ("properties", "$defs") else path)
    elif isinstance(schema, list):
        for item in schema:
            found += _statuses(item, path)
    return found


# Kubernetes' own word: a node condition's status is "True", "False" or "Unknown" as the API says it.
NOT_THE_SCALE = {"NodeCondition.status"}
OTHER_NAMES = {"gpu_index", "bus_id", "node_status", "node_action", "recommendation", "not_read", "verdict"}
# An NVSwitch's PCI address, not a GPU's: the SXid event names the switch the kernel named.
NOT_A_GPU = {"SxidEvent.bus_id"}


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["read-only", "operator"])
async def test_one_status_scale_and_one_gpu_naming_across_all_tools(mode):
    app = AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR"))  # type: ignore[arg-type]
    try:
        async with Client(app.server) as client:
            tools = (await client.list_tools()).tools
    finally:
        app.close()
    scale = list(STATUS_RANK)
    seen = 0
    for tool in tools:
        schema = tool.output_schema or {}
        for where, enum in _statuses(schema):
            if where.removeprefix(".") in NOT_THE_SCALE:
                continue
            assert enum == scale, (tool.name, where, enum)
            seen += 1
        for other in OTHER_NAMES:
            for definition, body in {"": schema, **schema.get("$defs", {})}.items():
                if other in (body.get("properties") or {}) and f"{definition}.{other}" not in NOT_A_GPU:
                    pytest.fail(
                        f"{tool.name}: {definition}.{other} names what the vocabulary calls otherwise"
                    )
    assert seen >= 7 * 3  # every node tool's head, problems and evidence


def _problem(status: str, *evidence: tuple[str, str, str], action: str | None = None) -> Any:
    from k8s_gpu_mcp.tools._common import Evidence, GpuProblem

    return GpuProblem(
        index=1,
        uuid="GPU-1",
        pci_bus_id="00000000:64:00.0",
        status=status,  # type: ignore[arg-type]
        reason="r",
        evidence=[Evidence(check=c, status=s, finding=f) for c, s, f in evidence],  # type: ignore[arg-type]
        action=action,
    )


def test_the_node_verdict_names_the_gpus_whose_action_it_states():
    """inspect_topology's summary leaves out exactly these GPUs' actions (node.verdict's ``stated``)."""
    from k8s_gpu_mcp.diagnose.health import NVLINK_ACTION, UNKNOWN_ACTION, Assessment
    from k8s_gpu_mcp.diagnose.node import verdict

    def gpu(index: int, status: str, action: str) -> Assessment:
        return Assessment(
            index, status, 0, "", [], action, {"nvlink": "unread"} if status == "unknown" else {}
        )  # type: ignore[arg-type]

    own = NVLINK_ACTION.replace("<gpu>", "1")
    v = verdict([gpu(1, "degraded", own), gpu(0, "unknown", UNKNOWN_ACTION), gpu(2, "unknown", "Reseat it")])
    assert "GPU 1: Reset the GPU (nvidia-smi -r -i 1" in v.action and "verify GPUs 0 and 2" in v.action
    assert v.stated == {0, 1}  # GPU 2's own action ("Reseat it") is not what "verify" says
    merged = verdict(
        [gpu(1, "warning", "Free it (nvidia-smi -r -i 1)"), gpu(6, "warning", "Free it (nvidia-smi -r -i 6)")]
    )
    assert merged.action == "Keep the node in service. GPUs 1 and 6: Free it (nvidia-smi -r -i 1 and -i 6)."
    assert merged.stated == {1, 6}
    assert verdict([gpu(0, "unknown", UNKNOWN_ACTION), gpu(1, "unknown", UNKNOWN_ACTION)]).stated == {0, 1}
    lost = verdict([gpu(1, "lost", "Reboot"), gpu(2, "warning", "No action.")])
    assert lost.stated == frozenset()  # lost keeps its own; "No action." names no remedy


def test_restated_evidence_never_takes_the_evidence_of_the_status():
    from k8s_gpu_mcp.tools import topology as topology_tool

    pairs = topology_tool.TopologyFinding(
        kind="uneven_pairs", severity="degraded", gpus=[1], message="7 GPU pairs ...", consequence="slower"
    )
    links = topology_tool.TopologyFinding(
        kind="unknown_links",
        severity="info",
        gpus=[1],
        message="GPU 1: state of 2 NVLinks unreadable",
        consequence="c",
    )
    reading = topology_tool.TopologyReading.model_construct(findings=[pairs, links], fabric=None)
    degraded = _problem(
        "degraded",
        ("nvlink", "degraded", "7 GPU pairs ...: slower"),
        ("nvlink", "unknown", "GPU 1: state of 2 NVLinks unreadable: c"),
    )
    # the thin pairs are the only evidence of "degraded" (the unreadable links are unknown): they stay
    assert topology_tool.summary_problems([degraded], reading)[0].evidence == degraded.evidence
    inactive = ("nvlink", "degraded", "GPU 1: 1 of 18 NVLinks inactive (links 4): ...")
    both = _problem("degraded", inactive, ("nvlink", "degraded", "7 GPU pairs ...: slower"))
    assert [e.finding for e in topology_tool.summary_problems([both], reading)[0].evidence] == [inactive[2]]
