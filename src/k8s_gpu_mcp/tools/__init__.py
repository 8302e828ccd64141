"""MCP tools, one module each. A module joins the server by defining ``register(app)``.

Modules whose name starts with ``_`` are helpers, not tools.
"""

from __future__ import annotations

import pkgutil


def tool_module_names() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
