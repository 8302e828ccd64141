"""The tool manifest: what ``tools/list`` says about every tool, generated from the code.

``tools/manifest.json`` holds, per tool module and mode, the tools its ``register(app)`` adds, and per
tool the name, title, description, annotations and the SDK's own input and output schemas. The agent
lists tools from it and imports a tool's module, and lets the SDK build the tool, on its first call.
``scripts/gen_tools_doc.py`` writes it; ``tests/test_docs.py`` fails when it drifts from the code.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from importlib.resources import files as resources_files
from typing import Any

from mcp.server.mcpserver.tools import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp_types import ToolAnnotations
from pydantic import PrivateAttr

MANIFEST = "manifest.json"
Manifest = dict[str, Any]


def load_manifest() -> Manifest:
    """The packaged manifest, or an empty one (every tool module is then registered at start)."""
    try:
        return json.loads((resources_files("k8s_gpu_mcp.tools") / MANIFEST).read_text())
    except FileNotFoundError:
        return {}


def tool_spec(tool: Tool) -> dict[str, Any]:
    """What ``tools/list`` publishes for an SDK tool, as manifest JSON."""
    return {
        "title": tool.title,
        "description": tool.description,
        "annotations": tool.annotations.model_dump(by_alias=True, exclude_none=True)
        if tool.annotations
        else None,
        "input_schema": tool.parameters,
        "output_schema": tool.output_schema,
    }


class DeferredTool(Tool):
    """A tool listed from the manifest. Its first call loads the real SDK tool, which then runs every call."""

    _load: Callable[[], Tool] = PrivateAttr()

    async def run(self, arguments: dict[str, Any], context: Any, convert_result: bool = False) -> Any:
        return await self._load().run(arguments, context, convert_result=convert_result)


def deferred_tool(name: str, spec: dict[str, Any], load: Callable[[], Tool]) -> DeferredTool:
    def not_loaded(**kwargs: Any) -> Any:  # the SDK calls run(), never fn; kept callable for completeness
        return load().fn(**kwargs)

    annotations = spec.get("annotations")
    tool = DeferredTool(
        fn=not_loaded,
        name=name,
        title=spec.get("title"),
        description=spec.get("description") or "",
        parameters=spec["input_schema"],
        fn_metadata=FuncMetadata(arg_model=ArgModelBase, output_schema=spec.get("output_schema")),
        is_async=True,
        annotations=ToolAnnotations.model_validate(annotations) if annotations is not None else None,
    )
    tool._load = load
    return tool
