"""The agent: settings + backend + an MCPServer with every tool module registered at start.

Every module in ``tools/`` that defines ``register(app)`` adds its tools through ``AgentApp.add_tool``.
Destructive tools (``destructiveHint``) are dropped outside operator mode, whatever module adds them,
so read-only mode never lists one. ``tests/golden/`` holds the ``tools/list`` snapshot of each mode.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gpu.backend import Backend, open_backend
from k8s_gpu_mcp.metrics import ToolMetrics
from k8s_gpu_mcp.tools import tool_module_names, toolset_of

if TYPE_CHECKING:
    from k8s_gpu_mcp.tools.verify import ResetRecord

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
        modules = [importlib.import_module(f"k8s_gpu_mcp.tools.{name}") for name in tool_module_names()]
        chosen = chosen_toolsets(settings.toolsets, {toolset_of(m) for m in modules})  # before any I/O
        self.settings = settings
        self.backend = backend if backend is not None else open_backend(settings)
        self.metrics = ToolMetrics()
        self.closers: list[Callable[[], None]] = []
        self.module_of: dict[str, str] = {}  # tool name -> the tool module that registers it
        self.dropped: list[str] = []  # destructive tools left out of read-only mode
        self.resets: dict[int, ResetRecord] = {}  # GPU index -> the last reset this agent ran
        self.server = MCPServer(
            "k8s-gpu-mcp",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level=settings.log_level.upper(),  # type: ignore[arg-type]
        )
        self.xid_watcher = _start_xid_watcher(self)
        for module in modules:
            if chosen is None or toolset_of(module) in chosen:
                self._registering = module.__name__.rsplit(".", 1)[-1]
                module.register(self)
        self.tool_names: list[str] = sorted(self.module_of)
        from k8s_gpu_mcp import prompts, resources

        prompts.register(self)
        resources.register(self)
        log.info(
            "tools registered",
            extra={"tools": self.tool_names, "mode": self.settings.mode, "backend": self.backend.kind},
        )

    def add_tool(self, fn: Callable[..., Any], *, title: str, annotations: ToolAnnotations) -> None:
        """Register one tool (called by a tool module's ``register(app)``); its docstring is the
        description the AI client reads, its return annotation (a pydantic model) the output schema.

        Outside operator mode a destructive tool is not registered at all. Over HTTP every call is
        counted in ``self.metrics`` (requests by status, latency, in flight) for ``/metrics``.
        """
        if annotations.destructive_hint and not self.settings.operator:
            self.dropped.append(fn.__name__)
            return
        wrapped = fn
        if self.settings.transport == "http":
            wrapped = self.metrics.instrument(fn)
            self.metrics.declare(fn.__name__)  # /metrics shows every tool at zero before its first call
        self.server.add_tool(
            wrapped,
            name=fn.__name__,
            title=title,
            description=inspect.cleandoc(fn.__doc__ or ""),
            annotations=annotations,
            structured_output=True,
        )
        self.module_of[fn.__name__] = self._registering

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutdown must finish whatever one closer does
                log.exception("closer failed")


class ToolsetError(ValueError):
    """``--toolsets`` names a toolset that no tool module declares."""


def chosen_toolsets(wanted: str | None, known: set[str]) -> set[str] | None:
    """The toolsets ``--toolsets`` names (None: all), or a clear error naming the valid ones."""
    if wanted is None or not wanted.strip():
        return None
    chosen = {name.strip().lower() for name in wanted.split(",") if name.strip()}
    unknown = sorted(chosen - known)
    if unknown:
        raise ToolsetError(
            f"--toolsets: unknown toolset {', '.join(repr(u[:40]) for u in unknown[:5])}; "
            f"valid: {', '.join(sorted(known))}"
        )
    return chosen


def _start_xid_watcher(app: AgentApp) -> Any:
    """The NVML XID watcher runs from start, whether or not an XID tool is ever called."""
    from k8s_gpu_mcp.xid.watcher import start_watcher

    watcher = start_watcher(app.backend)
    if watcher is not None:
        app.closers.append(watcher.stop)
    return watcher
