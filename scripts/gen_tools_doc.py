"""Render docs/tools.md from the live tools/list (read-only and operator mode), and write
src/k8s_gpu_mcp/tools/output_schemas.json: the SDK's own output schema for every tool, which the
agent reads at start instead of deriving it (see server.build_tool).

Usage: python scripts/gen_tools_doc.py. tests/test_docs.py fails when either file drifts.
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
SCHEMAS = REPO / "src" / "k8s_gpu_mcp" / "tools" / "output_schemas.json"


def _listed(mode: str) -> list[Any]:
    app = AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR"))  # type: ignore[arg-type]
    try:
        return anyio.run(app.server.list_tools)
    finally:
        app.close()


def sdk_output_schemas() -> dict[str, Any]:
    """Every tool's output schema as the SDK derives it from the return annotation (no cache)."""
    from k8s_gpu_mcp import server

    original = server.cached_output_schemas
    server.cached_output_schemas = lambda: {}  # type: ignore[assignment]
    try:
        return {t.name: t.output_schema for t in _listed("operator")}
    finally:
        server.cached_output_schemas = original  # type: ignore[assignment]


def render_schemas() -> str:
    return json.dumps(sdk_output_schemas(), indent=1) + "\n"


def _params(schema: dict[str, Any]) -> list[str]:
    required = set(schema.get("required", []))
    rows = []
    for name, spec in schema.get("properties", {}).items():
        default = "required" if name in required else f"default `{json.dumps(spec.get('default'))}`"
        rows.append(f"| `{name}` | {default} | {spec.get('description', '').replace('|', '/')} |")
    return rows


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
    SCHEMAS.write_text(render_schemas())
    from k8s_gpu_mcp import server

    server.cached_output_schemas.cache_clear()
    DOC.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
