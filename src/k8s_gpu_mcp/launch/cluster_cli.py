"""``connect cluster``'s command line: its options (declared once, as for ``connect node/NAME``),
the parser and the entry point. Light: ``--help`` and a bad flag are answered without importing the
MCP SDK (launch/cluster.py).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, field

from k8s_gpu_mcp.cli import add_options
from k8s_gpu_mcp.config import LogLevel, Mode, option
from k8s_gpu_mcp.launch import syringe

DEFAULT_IDLE_TIMEOUT_S = 600.0
DEFAULT_MAX_SESSIONS = 16
DEFAULT_NODE_TIMEOUT_S = 180.0  # pod start (image pull included) + the call
DEFAULT_CALL_TIMEOUT_S = 900.0  # a whole call, every wave


@dataclass
class ClusterOptions(syringe.PodOptions):
    mode: str = option(
        "read-only", "--mode", "read-only, or operator: kill_gpu_process/reset_gpu on one named node per call",
        "pod", Mode,
    )  # fmt: skip
    idle_timeout: float = option(
        DEFAULT_IDLE_TIMEOUT_S, "--idle-timeout",
        "close a node's session (and delete its pod) after this many idle seconds", "cluster",
    )  # fmt: skip
    max_sessions: int = option(
        DEFAULT_MAX_SESSIONS, "--max-sessions", "debugger pods alive at once; larger calls run in waves",
        "cluster",
    )  # fmt: skip
    node_timeout: float = option(
        DEFAULT_NODE_TIMEOUT_S, "--node-timeout", "seconds one node may take, pod start included", "cluster"
    )
    call_timeout: float = option(
        DEFAULT_CALL_TIMEOUT_S, "--call-timeout",
        "seconds one tool call may take over all its nodes and waves", "cluster",
    )  # fmt: skip
    preflight: bool = True
    log_level: str = option("WARNING", "--log-level", "JSON log lines on stderr", "cluster", LogLevel)
    serve_args: list[str] = field(default_factory=list)


def build_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="One local MCP server (stdio) for the whole cluster: API-only tools, and node tools that "
        "start the agent on a node with `kubectl debug` when a call needs it, and remove it when idle or "
        "when the client exits. Arguments after `--` are appended to `k8s-gpu-mcp serve` in each pod.",
    )
    p.add_argument("target", metavar="cluster", choices=["cluster"], help="the literal word cluster")
    add_options(p, ClusterOptions, "pod", "cluster", resolved=True)
    p.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip each session's node and RBAC checks",
    )
    return p


def parse_args(argv: Sequence[str], prog: str = "k8s-gpu-mcp connect") -> ClusterOptions:
    argv, extra = syringe.split_serve_args(argv)
    ns = build_parser(prog).parse_args(argv)
    if ns.max_sessions < 1:
        build_parser(prog).error("--max-sessions must be at least 1")
    return ClusterOptions(
        image=ns.image, namespace=ns.namespace, context=ns.context, kubeconfig=ns.kubeconfig, mode=ns.mode,
        timeout=ns.timeout, kubectl=ns.kubectl, idle_timeout=ns.idle_timeout, max_sessions=ns.max_sessions,
        node_timeout=ns.node_timeout, call_timeout=ns.call_timeout, preflight=ns.preflight,
        log_level=ns.log_level, serve_args=extra,
    )  # fmt: skip


def main(argv: Sequence[str], prog: str = "k8s-gpu-mcp connect") -> int:
    """Entry point of ``k8s-gpu-mcp connect cluster`` (argv starts with ``cluster``)."""
    from k8s_gpu_mcp.logs import configure_logging

    opts = parse_args(argv, prog)
    configure_logging(opts.log_level)
    import anyio

    from k8s_gpu_mcp.launch.cluster import ClusterApp, serve

    app = ClusterApp(opts)
    try:
        anyio.run(serve, app)
    except KeyboardInterrupt:
        pass
    return 0
