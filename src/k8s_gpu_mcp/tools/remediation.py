"""The remediation toolset: kill_gpu_process and reset_gpu (``_remediation.py``), cordon_node,
uncordon_node and drain_gpu_node (``_node_ops.py``).

All five are destructive, so only ``--mode=operator`` serves them. Outside it ``AgentApp`` does not
call ``register``: a read-only agent (the default) never imports their planning, audit and
Kubernetes-write code (0.9% of the instructions from start to the first get_gpu_health
answer, counted with callgrind).
``OPERATOR_TOOLS`` names them for the error that says which mode has a tool; tests/test_server.py
checks it against what ``register`` adds.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "remediation"
OPERATOR_TOOLS = ("kill_gpu_process", "reset_gpu", "cordon_node", "uncordon_node", "drain_gpu_node")


def register(app: AgentApp) -> None:
    from k8s_gpu_mcp.tools import _node_ops, _remediation

    _remediation.register(app)
    _node_ops.register(app)
