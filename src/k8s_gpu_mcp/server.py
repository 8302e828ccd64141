"""The agent: settings + backend + an MCPServer with every tool module registered.

Tools are listed from the generated manifest (``tools/_manifest.py``); a tool module is imported, and
its ``register(app)`` run, on the first call of one of its tools. A module the manifest does not know
(a new tool, before ``scripts/gen_tools_doc.py`` has run) is registered at start, as the SDK would.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import threading
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp_types import ToolAnnotations

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gpu.backend import Backend, open_backend
from k8s_gpu_mcp.metrics import ToolMetrics
from k8s_gpu_mcp.tools import tool_module_names
from k8s_gpu_mcp.tools._manifest import Manifest, deferred_tool, load_manifest, tool_spec

log = logging.getLogger(__name__)

INSTRUCTIONS = (
    "k8s-gpu-mcp reads NVIDIA GPU hardware state on this Kubernetes node through NVML and the kernel log. "
    "Start with get_gpu_health or get_gpu_inventory; use analyze_xid_errors for crashes and hangs. "
    "Every result carries `source`: when source.mock is true the data is a simulated fleet, not real hardware. "
    "Fields that could not be read are null, with the reason in `unavailable`; never read null as healthy."
)


class AgentApp:
    """What tools see: the settings, the opened hardware backend, and the MCP server.

    ``manifest=None`` reads the packaged manifest; ``manifest={}`` registers every tool module at start
    and lets the SDK derive every schema (what ``scripts/gen_tools_doc.py`` records).
    """

    def __init__(self, settings: Settings, backend: Backend | None = None, manifest: Manifest | None = None):
        self.settings = settings
        self.backend = backend if backend is not None else open_backend(settings)
        self.metrics = ToolMetrics()
        self.closers: list[Callable[[], None]] = []
        self.manifest = load_manifest() if manifest is None else manifest
        self.module_of: dict[str, str] = {}  # tool name -> the tool module that registers it
        self._built: dict[str, Tool] = {}  # SDK tools built by register(app)
        self._loaded: set[str] = set()
        self._loading = threading.RLock()
        self._registering: str | None = None
        self.xid_watcher = _start_xid_watcher(self)

        listed: list[Tool] = []
        for module in tool_module_names():
            names = self.manifest.get("modules", {}).get(module, {}).get(settings.mode)
            if names is None:
                self._load_module(module)
                listed += [self._built[n] for n, m in self.module_of.items() if m == module]
                continue
            for name in names:
                self.module_of[name] = module
                listed.append(deferred_tool(name, self.manifest["tools"][name], self._loader(name)))
        self.tool_names: list[str] = sorted(t.name for t in listed)
        if settings.transport == "http":
            for name in self.tool_names:  # /metrics shows every tool at zero, loaded or not
                self.metrics.declare(name)
        self.server = MCPServer(
            "k8s-gpu-mcp",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level=settings.log_level.upper(),  # type: ignore[arg-type]
            tools=listed,
        )
        from k8s_gpu_mcp import prompts, resources

        prompts.register(self)
        resources.register(self)
        log.info(
            "tools registered",
            extra={"tools": self.tool_names, "mode": self.settings.mode, "backend": self.backend.kind},
        )

    def add_tool(self, fn: Callable[..., Any], *, title: str, annotations: ToolAnnotations) -> None:
        """Register one tool (called by a tool module's ``register(app)``); its docstring is the
        description the AI client reads.

        The output schema is the SDK's for the return annotation (a pydantic model), taken from the
        manifest when it has the tool. Over HTTP every call is counted in ``self.metrics`` (requests
        by status, latency, in flight) for ``/metrics``; over stdio nothing scrapes them.
        """
        description = inspect.cleandoc(fn.__doc__ or "")
        wrapped = self.metrics.instrument(fn) if self.settings.transport == "http" else fn
        spec = self.manifest.get("tools", {}).get(fn.__name__)
        tool = build_tool(wrapped, title=title, description=description, annotations=annotations, spec=spec)
        if spec is not None and tool_spec(tool) != spec:
            log.warning(
                "tools/manifest.json is stale for this tool: run scripts/gen_tools_doc.py",
                extra={"tool": tool.name},
            )
        elif spec is None and self._registering in self.manifest.get("modules", {}):
            log.warning(
                "tools/manifest.json lists this tool's module but not the tool, so tools/list does not "
                "show it: run scripts/gen_tools_doc.py",
                extra={"tool": tool.name},
            )
        self._built[tool.name] = tool
        self.module_of[tool.name] = self._registering or fn.__module__

    @property
    def sdk_tools(self) -> dict[str, Tool]:
        """The SDK tools built so far by the tool modules' ``register(app)`` (all of them when eager)."""
        return dict(self._built)

    def _load_module(self, module: str) -> None:
        with self._loading:
            if module in self._loaded:
                return
            self._registering = module
            try:
                importlib.import_module(f"k8s_gpu_mcp.tools.{module}").register(self)
            finally:
                self._registering = None
            self._loaded.add(module)

    def _loader(self, name: str) -> Callable[[], Tool]:
        def load() -> Tool:
            self._load_module(self.module_of[name])
            tool = self._built.get(name)
            if tool is None:
                raise ToolError(
                    f"{name} is in tools/manifest.json but its module no longer registers it: "
                    "the manifest is stale (run scripts/gen_tools_doc.py)"
                )
            return tool

        return load

    def close(self) -> None:
        for close in reversed(self.closers):
            try:
                close()
            except Exception:  # shutdown must finish whatever one closer does
                log.exception("closer failed")


def _start_xid_watcher(app: AgentApp) -> Any:
    """The NVML XID watcher runs from start, whether or not an XID tool is ever called."""
    from k8s_gpu_mcp.xid.watcher import start_watcher

    watcher = start_watcher(app.backend)
    if watcher is not None:
        app.closers.append(watcher.stop)
    return watcher


def build_tool(
    fn: Callable[..., Any],
    *,
    title: str,
    description: str,
    annotations: ToolAnnotations,
    spec: dict[str, Any] | None = None,
) -> Tool:
    """The SDK's Tool for ``fn``; with the manifest's output schema the SDK skips deriving it."""
    if spec is None:  # a new tool, or no manifest: let the SDK derive it now
        return Tool.from_function(
            fn, title=title, description=description, annotations=annotations, structured_output=True
        )
    tool = Tool.from_function(
        fn, title=title, description=description, annotations=annotations, structured_output=False
    )
    tool.fn_metadata.output_model = inspect.signature(fn, eval_str=True).return_annotation
    tool.fn_metadata.output_schema = spec["output_schema"]
    return tool
