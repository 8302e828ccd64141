"""kill_gpu_process and reset_gpu: registered in operator mode only (--mode=operator).

The implementation lives in ``_remediation.py`` and is imported only when operator mode is on, so a
read-only agent (the default) neither lists these tools nor loads their code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp


def register(app: AgentApp) -> None:
    if not app.settings.operator:
        return
    from k8s_gpu_mcp.tools import _remediation

    _remediation.register(app)
