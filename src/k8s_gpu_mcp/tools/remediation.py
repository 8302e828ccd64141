"""kill_gpu_process and reset_gpu (implementation in ``_remediation.py``).

Both are destructive, so ``AgentApp.add_tool`` registers them only with ``--mode=operator``; a read-only
agent (the default) never lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "remediation"


def register(app: AgentApp) -> None:
    from k8s_gpu_mcp.tools import _remediation

    _remediation.register(app)
