"""Render docs/tools.md from the live tools/list (read-only and operator mode), and write
src/k8s_gpu_mcp/tools/manifest.json: per tool module and mode the tools it registers, and per tool what
the SDK itself derives for tools/list (the agent lists tools from it and imports a tool's module on its
first call; see tools/_manifest.py).

Usage: python scripts/gen_tools_doc.py. tests/test_docs.py fails when either file drifts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.server import AgentApp
from k8s_gpu_mcp.tools._manifest import Manifest, tool_spec

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "tools.md"
MANIFEST = REPO / "src" / "k8s_gpu_mcp" / "tools" / "manifest.json"
MODES = ("read-only", "operator")


def _app(mode: str, manifest: Manifest | None = None) -> AgentApp:
    return AgentApp(Settings(nvml_mode="mock", mode=mode, log_level="ERROR"), manifest=manifest)  # type: ignore[arg-type]


def _listed(mode: str, manifest: Manifest | None = None) -> list[Any]:
    """tools/list as a client sees it; ``manifest={}`` has the SDK derive everything at start."""
    app = _app(mode, manifest)
    try:
        return anyio.run(app.server.list_tools)
    finally:
        app.close()


def manifest() -> Manifest:
    """Every tool module registered eagerly in each mode, recorded as the SDK derives it."""
    modules: dict[str, dict[str, list[str]]] = {}
    tools: dict[str, Any] = {}
    for mode in MODES:
        app = _app(mode, manifest={})
        try:
            for name, tool in sorted(app.sdk_tools.items()):
                modules.setdefault(app.module_of[name], {m: [] for m in MODES})[mode].append(name)
                tools[name] = tool_spec(tool)
        finally:
            app.close()
    return {"modules": dict(sorted(modules.items())), "tools": dict(sorted(tools.items()))}


def render_manifest() -> str:
    return json.dumps(manifest(), indent=1) + "\n"


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
    MANIFEST.write_text(render_manifest())
    DOC.write_text(render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
