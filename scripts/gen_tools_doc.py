"""Render docs/tools.md from the live tools/list (read-only and operator mode), and write the
tools/list snapshot of each mode to tests/golden/tools_list.<mode>.json (golden test data: a change to a
tool's name, arguments, annotations or output schema shows up as a diff there).

Usage: python scripts/gen_tools_doc.py. tests/test_docs.py fails when any of these files drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "tools.md"
GOLDEN = REPO / "tests" / "golden"
MODES = ("read-only", "operator")


def _listed(mode: str) -> list[Any]:
    """tools/list as a client sees it."""
    app = AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR"))  # type: ignore[arg-type]
    try:
        return anyio.run(app.server.list_tools)
    finally:
        app.close()


def snapshot_path(mode: str) -> Path:
    return GOLDEN / f"tools_list.{mode}.json"


def render_snapshot(mode: str) -> str:
    tools = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in _listed(mode)]
    return json.dumps(sorted(tools, key=lambda t: t["name"]), indent=1, sort_keys=True) + "\n"


def _params(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        default = "required" if name in required else f"default `{json.dumps(spec.get('default'))}`"
        rows.append(f"| `{name}` | {default} | {spec.get('description', '').replace('|', '/')} |")
    return rows


def vocabulary() -> list[str]:
    """The one vocabulary, from vocabulary.py: the fields, the status scale, the XID severities."""
    from k8s_gpu_mcp import vocabulary as v

    lines = [
        "## Vocabulary",
        "",
        "Every node tool answers with the same head, in this order, and means the same thing by each",
        "word (`src/k8s_gpu_mcp/vocabulary.py`):",
        "",
        "| field | meaning |",
        "| --- | --- |",
        *[f"| `{name}` | {text} |" for name, text in v.FIELDS.items()],
        "",
        "`detail` on every node tool:",
        "",
        "| detail | answer |",
        "| --- | --- |",
        *[f"| `{name}` | {text} |" for name, text in v.DETAIL_MEANING.items()],
        "",
        "The status scale, least to most severe (one scale for every tool, every GPU and every node):",
        "",
        "| status | meaning |",
        "| --- | --- |",
        *[
            f"| `{name}` | {v.STATUS_MEANING[name]} |"
            for name in sorted(v.STATUS_RANK, key=v.STATUS_RANK.get)
        ],
        "",
        "NVIDIA's XID catalog severities on that scale:",
        "",
        "| XID catalog severity | status |",
        "| --- | --- |",
        *[f"| {name} | `{status}` |" for name, status in v.XID_STATUS.items()],
        "",
        "Reasons that mean *not there by design*, left out of summaries: "
        + ", ".join(f"`{p}...`" for p in v.BY_DESIGN)
        + ". Every other reason in `unavailable` is a check that could not be made.",
        "",
        "Arguments: enumerations (`detail`, `min_severity`, `signal`) accept any case. An argument the tool does not",
        "take is refused, and a bad value is answered with one sentence naming the argument, what was wrong",
        "and what is valid. A tool this mode leaves out says which mode has it (`reset_gpu needs --mode",
        "operator`).",
        "",
    ]
    return lines


def render() -> str:
    read_only = _listed("read-only")
    operator_only = [t for t in _listed("operator") if t.name not in {r.name for r in read_only}]
    lines = [
        "# Tools",
        "",
        "Generated from the live `tools/list` by `scripts/gen_tools_doc.py`; `tests/test_docs.py` fails",
        "when this file drifts from the code. Every tool returns `structuredContent` matching its",
        "published `outputSchema`, and every result carries `source` (backend, mock profile/scenario,",
        "driver, node, time).",
        "",
        *vocabulary(),
    ]
    for heading, tools in (
        ("Read-only tools", read_only),
        ("Operator-mode tools (`--mode=operator`)", operator_only),
    ):
        lines += [f"## {heading}", ""]
        if not tools:
            lines += ["None.", ""]
        for tool in sorted(tools, key=lambda t: t.name):
            hints = tool.annotations
            flags = [
                n
                for n, v in (
                    ("read-only", hints.read_only_hint),
                    ("idempotent", hints.idempotent_hint),
                    ("destructive", hints.destructive_hint),
                )
                if v
            ]
            lines += [
                f"### `{tool.name}`",
                "",
                f"*{tool.title}*; hints: {', '.join(flags) or 'none'}.",
                "",
                tool.description or "",
                "",
            ]
            params = _params(tool.input_schema)
            if params:
                lines += ["| argument | | meaning |", "| --- | --- | --- |", *params, ""]
            output = tool.output_schema or {}
            lines += [
                f"Output: `{output.get('title', 'object')}` with fields "
                + ", ".join(f"`{k}`" for k in output.get("properties", {}))
                + ".",
                "",
            ]
    return "\n".join(lines)


def main() -> int:
    GOLDEN.mkdir(exist_ok=True)
    for mode in MODES:
        snapshot_path(mode).write_text(render_snapshot(mode))
    DOC.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
