"""The agent: settings + backend + an MCPServer with every tool module registered."""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from importlib.resources import files as resources_files
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gpu.backend import Backend, open_backend
from k8s_gpu_mcp.metrics import ToolMetrics

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "k8s-gpu-mcp reads NVIDIA GPU hardware state on this Kubernetes node through NVML and the kernel log. "
    "Start with get_gpu_health or get_gpu_inventory; use analyze_xid_errors for crashes and hangs. "
    "Every result carries `source`: when source.mock is true the data is a simulated fleet, not real hardware. "
    "Fields that could not be read are null, with the reason in `unavailable`; never read null as healthy."
)


class AgentApp:
    """What tools see: the settings, the opened hardware backend, and the MCP server."""

    def __init__(self, settings: Settings, backend: Backend | None = None):
        self.settings = settings
        self.backend = backend if backend is not None else open_backend(settings)
        self.metrics = ToolMetrics()
        self.tool_names: list[str] = []
        self.closers: list[Callable[[], None]] = []
        self._tools: list[Tool] = []
        from k8s_gpu_mcp.tools import tool_modules

        for module in tool_modules():
            module.register(self)
        self.server = MCPServer(
            "k8s-gpu-mcp",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level=settings.log_level.upper(),  # type: ignore[arg-type]
            tools=self._tools,
        )
        from k8s_gpu_mcp import prompts, resources

        prompts.register(self)
        resources.register(self)
        self.tool_names.sort()
        log.info(
            "tools registered",
            extra={"tools": self.tool_names, "mode": self.settings.mode, "backend": self.backend.kind},
        )

    def add_tool(self, fn: Callable[..., Any], *, title: str, annotations: ToolAnnotations) -> None:
        """Register one tool; its docstring is the description the AI client reads.

        The output schema is the SDK's for the return annotation (a pydantic model), read from the
        generated ``tools/output_schemas.json`` when it is there so start-up skips building it.
        Over HTTP every call is counted in ``self.metrics`` (requests by status, latency, in flight)
        for ``/metrics``; over stdio nothing scrapes them, so nothing is recorded.
        """
        description = inspect.cleandoc(fn.__doc__ or "")
        wrapped = self.metrics.instrument(fn) if self.settings.transport == "http" else fn
        self._tools.append(build_tool(wrapped, title=title, description=description, annotations=annotations))
        self.tool_names.append(fn.__name__)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutdown must finish whatever one closer does
                log.exception("closer failed")


@functools.cache
def cached_output_schemas() -> dict[str, Any]:
    try:
        return json.loads((resources_files("k8s_gpu_mcp.tools") / "output_schemas.json").read_text())
    except FileNotFoundError:
        return {}


def build_tool(fn: Callable[..., Any], *, title: str, description: str, annotations: ToolAnnotations) -> Tool:
    """The SDK's Tool for ``fn``; with a cached output schema the model itself is built on first use."""
    schema = cached_output_schemas().get(fn.__name__)
    if schema is None:  # a new tool, or no cache: let the SDK derive it now
        return Tool.from_function(
            fn, title=title, description=description, annotations=annotations, structured_output=True
        )
    tool = Tool.from_function(
        fn, title=title, description=description, annotations=annotations, structured_output=False
    )
    tool.fn_metadata.output_model = inspect.signature(fn, eval_str=True).return_annotation
    tool.fn_metadata.output_schema = schema
    return tool
