"""MCP tools, one module each. A module joins the server by defining ``register(app)``.

Modules whose name starts with ``_`` are helpers, not tools. A module names its toolset in ``TOOLSET``
(its own name when it has none); ``--toolsets`` lists only the tools of the toolsets it names, so an
assistant's context holds only what a deployment needs.
"""

from __future__ import annotations

import pkgutil
from types import ModuleType


def tool_module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def toolset_of(module: ModuleType) -> str:
    return str(getattr(module, "TOOLSET", module.__name__.rsplit(".", 1)[-1]))
