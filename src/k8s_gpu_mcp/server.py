"""The agent: settings + backend + an MCPServer with every tool module registered."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
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
        self.server = MCPServer(
            "k8s-gpu-mcp",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        )
        self.metrics = ToolMetrics()
        self.tool_names: list[str] = []
        self.closers: list[Callable[[], None]] = []
        self._register_tools()

    def _register_tools(self) -> None:
        from k8s_gpu_mcp import prompts, resources
        from k8s_gpu_mcp.tools import tool_modules

        for module in tool_modules():
            module.register(self)
        prompts.register(self)
        resources.register(self)
        self.tool_names.sort()
        log.info(
            "tools registered",
            extra={"tools": self.tool_names, "mode": self.settings.mode, "backend": self.backend.kind},
        )

    def add_tool(self, fn: Callable[..., Any], *, title: str, annotations: ToolAnnotations) -> None:
        """Register one tool; its docstring is the description the AI client reads.

        Over HTTP every call is counted in ``self.metrics`` (requests by status, latency, in flight)
        for ``/metrics``; over stdio nothing scrapes them, so nothing is recorded.
        """
        description = inspect.cleandoc(fn.__doc__ or "")
        wrapped = self.metrics.instrument(fn) if self.settings.transport == "http" else fn
        self.server.add_tool(
            wrapped, title=title, description=description, annotations=annotations, structured_output=True
        )
        self.tool_names.append(fn.__name__)

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutdown must finish whatever one closer does
                log.exception("closer failed")


def build_app(settings: Settings) -> AgentApp:
    return AgentApp(settings)
