"""The agent: settings + backend + an MCPServer with every tool module registered at start.

Every module in ``tools/`` that defines ``register(app)`` adds its tools through ``AgentApp.add_tool``.
Destructive tools (``destructiveHint``) are dropped outside operator mode, whatever module adds them,
so read-only mode never lists one. A module whose tools are all destructive says so in
``OPERATOR_TOOLS`` and is not registered at all outside operator mode (tools/remediation.py).
``tests/golden/`` holds the ``tools/list`` snapshot of each mode.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import ValidationError

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.config import Settings
from k8s_gpu_mcp.gpu.backend import Backend, open_backend
from k8s_gpu_mcp.metrics import ToolMetrics
from k8s_gpu_mcp.models import ToolModel
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
        self.server = AgentServer(
            self,
            "k8s-gpu-mcp",
            version=__version__,
            instructions=INSTRUCTIONS,
            log_level=settings.log_level.upper(),
        )
        self.xid_watcher = _start_xid_watcher(self)
        for module in modules:
            if chosen is not None and toolset_of(module) not in chosen:
                continue
            operator_tools = getattr(module, "OPERATOR_TOOLS", None)
            if operator_tools is not None and not self.settings.operator:
                self.dropped.extend(operator_tools)  # not even imported: see tools/remediation.py
                continue
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
        wrapped = compact_text(fn)
        if self.settings.transport == "http":
            wrapped = self.metrics.instrument(wrapped)
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


def compact_text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """The text content of a tool's answer is its structured content as compact JSON: the model
    reads the same fields, without the SDK's indentation (a third of the bytes of an indented
    answer). The wrapper keeps the name, docstring and signature the SDK reads."""

    def answer(result: Any) -> Any:
        if not isinstance(result, ToolModel):  # a CallToolResult or InputRequiredResult passes as is
            return result
        data = result.model_dump(mode="json", by_alias=True)
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return CallToolResult(content=[TextContent(type="text", text=text)], structured_content=data)

    if inspect.iscoroutinefunction(fn):

        @functools.wraps(fn)
        async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
            return answer(await fn(*args, **kwargs))

        return async_wrapper

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return answer(fn(*args, **kwargs))

    return wrapper


class AgentServer(MCPServer):
    """The MCP server with errors an assistant can act on: a tool this mode leaves out says which
    mode has it, an argument name the tool does not take is refused, and a bad argument value is
    one sentence naming the argument, what was wrong and what is valid (no validation dump)."""

    def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._app = app
        self._schemas: dict[str, dict[str, Any]] | None = None

    async def _input_schemas(self) -> dict[str, dict[str, Any]]:
        if self._schemas is None:
            self._schemas = {t.name: t.input_schema for t in await self.list_tools()}
        return self._schemas

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        schemas = await self._input_schemas()
        if name not in schemas:
            raise ToolError(missing_tool(self._app, name, sorted(schemas)))
        schema = schemas[name]
        known = schema.get("properties", {})
        unknown = [key for key in arguments if key not in known]
        if unknown:
            raise ToolError(
                f"{name} takes no argument {', '.join(clip_name(k) for k in unknown[:3])}; "
                f"its arguments: {', '.join(known) or 'none'}"
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_error(name, exc.__cause__, known)) from exc.__cause__
            prefix = f"Error executing tool {name}: "
            if str(exc).startswith(prefix):  # the tool's own sentence, named by the tool
                raise ToolError(f"{name}: {str(exc).removeprefix(prefix)}") from exc.__cause__
            raise


def clip_name(key: object) -> str:
    text = repr(key)
    return text if len(text) <= 40 else f"{text[:40]}..."


def missing_tool(app: Any, name: str, tools: list[str]) -> str:
    """Why ``name`` is not here: operator mode has it, a --toolsets choice left it out, or no such tool.
    ``app`` is an AgentApp or a fleet app (gateway, connect cluster): ``dropped`` lists the
    destructive tools it left out, ``operator_flag`` says what serves them."""
    if name in app.dropped:
        flag = getattr(app, "operator_flag", "--mode operator")
        return f"{name} needs {flag}: this server runs read-only, where remediation tools are not served"
    if getattr(app.settings, "toolsets", None):
        return (
            f"no tool {clip_name(name)} here: this agent serves only --toolsets {app.settings.toolsets}; "
            f"tools: {', '.join(tools)}"
        )
    return f"no tool {clip_name(name)}; tools: {', '.join(tools)}"


def argument_error(tool: str, error: ValidationError, properties: dict[str, Any]) -> str:
    """A pydantic argument error as one sentence: the argument, what was wrong, what is valid."""
    errors = error.errors()
    first = errors[0]
    arg = str(first["loc"][0]) if first["loc"] else "arguments"
    prop = properties.get(arg, {})
    if first["type"] == "missing":
        return f"{tool}: argument {arg!r} is required: {prop.get('description', 'see the tool schema')}"
    from k8s_gpu_mcp.tools._common import clip

    text = f"{tool}: argument {arg!r} = {clip(first.get('input'), 48)} is not valid"
    enum = valid_values(prop)
    if enum:
        return f"{text}; valid: {enum}"
    wrong = first["msg"].removeprefix("Value error, ")
    if len(errors) > 1:
        wrong = "not one of the accepted forms"
    valid = (first.get("ctx") or {}).get("expected") or prop.get("description")
    text = f"{text} ({wrong[:120]})"
    return f"{text}; valid: {str(valid)[:240]}" if valid else text


def valid_values(prop: dict[str, Any]) -> str | None:
    """An enum's values, or a number's bounds, from the argument's JSON schema."""
    for option in [prop, *prop.get("anyOf", [])]:
        if "enum" in option:
            return " or ".join(str(v) for v in option["enum"]) + " (any case)"
    bounds = [
        f">= {prop['minimum']}" if "minimum" in prop else "",
        f"<= {prop['maximum']}" if "maximum" in prop else "",
    ]
    if any(bounds):
        return f"an integer {' and '.join(b for b in bounds if b)}"
    return None


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
