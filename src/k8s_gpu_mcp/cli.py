"""Command line: ``serve`` (the agent), ``tools`` (list them), ``call`` (one tool, JSON out),
``gateway`` (cluster fan-out) and ``connect`` (stdio bridges).

Every option also reads an environment variable, named in ``--help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from k8s_gpu_mcp import __version__

ENV_PREFIX = "K8S_GPU_MCP_"

# (flag, Settings field, choices, help). Defaults come from Settings.
AGENT_OPTIONS: list[tuple[str, str, tuple[str, ...] | None, str]] = [
    ("--mode", "mode", ("read-only", "operator"), "read-only, or operator to enable remediation tools"),
    (
        "--nvml-mode",
        "nvml_mode",
        ("auto", "real", "mock"),
        "auto: real NVML if it initializes, else the mock fleet (never inside Kubernetes)",
    ),
    ("--profile", "profile", None, "mock fleet profile name or JSON path (implies mock data)"),
    ("--scenario", "scenario", None, "fault scenario YAML/JSON overlaid on the profile (implies mock data)"),
    (
        "--kernel-log",
        "kernel_log",
        None,
        "read kernel messages from this file instead of /dev/kmsg, journalctl or dmesg",
    ),
    (
        "--toolsets",
        "toolsets",
        None,
        "comma-separated toolsets to list (core, xid, processes, k8s, remediation); default: all of them "
        "(remediation needs --mode operator)",
    ),
    (
        "--xid-log-files",
        "xid_log_files",
        None,
        "comma-separated kernel log files a client may name in analyze_xid_errors(source=...); "
        "no other file is read",
    ),
    (
        "--boot-time",
        "boot_time",
        None,
        "boot time (RFC 3339 or epoch seconds) of the host and boot that wrote --kernel-log and "
        "--xid-log-files, to date their uptime stamps; default: only the log's own wall-clock lines",
    ),
    ("--audit-log", "audit_log", None, "append a JSON line per remediation attempt to this file"),
    ("--host-root", "host_root", None, "where the host's root filesystem is mounted (kubectl debug: /host)"),
    ("--proc-root", "proc_root", None, "the /proc to read process and cgroup data from"),
    ("--sys-root", "sys_root", None, "the /sys to use for PCI resets"),
    (
        "--log-level",
        "log_level",
        ("DEBUG", "INFO", "WARNING", "ERROR"),
        "log level for the JSON lines on stderr",
    ),
]
# A connect node/... session: kubectl debug keeps the container's stdin open after the attach ends, so
# no EOF ever arrives; an agent that hears nothing for this long stops (its pod with it).
SESSION_IDLE_EXIT_S = 900.0
SERVE_OPTIONS: list[tuple[str, str, tuple[str, ...] | None, str]] = [
    (
        "--transport",
        "transport",
        ("stdio", "http"),
        "stdio (default; for kubectl debug and local clients) or http (streamable HTTP at /mcp)",
    ),
    (
        "--idle-exit",
        "idle_exit",
        None,
        "stdio: answer what was read and exit once no message arrived for this many seconds and no "
        "request is running; 0: never (in a connect node/... debug pod, where an attach that is gone "
        f"sends no EOF, 0 means {SESSION_IDLE_EXIT_S:g})",
    ),
    ("--host", "host", None, "HTTP bind address; a non-loopback address requires a token"),
    ("--port", "port", None, "HTTP port"),
    (
        "--token-file",
        "token_file",
        None,
        "file holding the bearer token for /mcp and /metrics (re-read when it changes); "
        "or put the token itself in env K8S_GPU_MCP_TOKEN",
    ),
    (
        "--insecure-no-auth",
        "insecure_no_auth",
        None,
        "serve HTTP on a non-loopback address without a token (only behind another auth layer)",
    ),
    ("--tls-cert", "tls_cert", None, "TLS certificate chain (PEM); reloaded when the file changes"),
    ("--tls-key", "tls_key", None, "TLS private key (PEM), with --tls-cert"),
    (
        "--allowed-hosts",
        "allowed_hosts",
        None,
        "comma-separated Host headers accepted on /mcp (DNS-rebinding guard; 'name:*' for any port, "
        "'*' to disable); default: loopback names, POD_IP and the hostname",
    ),
    (
        "--allowed-origins",
        "allowed_origins",
        None,
        "comma-separated Origin headers accepted on /mcp; default: loopback origins",
    ),
]
GATEWAY_OPTIONS: list[tuple[str, str, tuple[str, ...] | None, str]] = [
    (
        "--agents",
        "agents",
        None,
        "static agent list, YAML or JSON: [{node, url, labels}]; default: discover agent pods "
        "through the Kubernetes API",
    ),
    ("--agent-namespace", "agent_namespace", None, "namespace of the agent pods"),
    ("--agent-selector", "agent_selector", None, "label selector of the agent pods"),
    (
        "--agent-daemonset",
        "agent_daemonset",
        None,
        "DaemonSet (in --agent-namespace) that must control an agent pod for it to be trusted",
    ),
    ("--agent-port", "agent_port", None, "agents' HTTP port"),
    ("--agent-scheme", "agent_scheme", ("http", "https"), "agents' URL scheme"),
    (
        "--agent-token-file",
        "agent_token_file",
        None,
        "bearer token the gateway sends to agents; or the token itself in env K8S_GPU_MCP_AGENT_TOKEN",
    ),
    ("--agent-ca-file", "agent_ca_file", None, "CA bundle to verify agents' TLS certificates"),
    ("--node-timeout", "node_timeout", None, "seconds one node may take, retries included"),
    ("--concurrency", "concurrency", None, "nodes called at once"),
    ("--retries", "retries", None, "retries of an idempotent read after a connection failure"),
    (
        "--breaker-failures",
        "breaker_failures",
        None,
        "consecutive failures that open a node's circuit breaker",
    ),
    ("--breaker-reset", "breaker_reset", None, "seconds an open breaker waits before one probe call"),
    (
        "--gateway-operator",
        "gateway_operator",
        None,
        "list kill_gpu_process and reset_gpu on the gateway: exactly one node per call, confirmed by the "
        "user through elicitation, audited with the caller and correlation id (agents need --mode operator)",
    ),
]
LOG_OPTION = [opt for opt in AGENT_OPTIONS if opt[1] == "log_level"]
ALL_OPTIONS = AGENT_OPTIONS + SERVE_OPTIONS + GATEWAY_OPTIONS
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _add_options(
    parser: argparse.ArgumentParser, options: list[tuple[str, str, tuple[str, ...] | None, str]]
) -> None:
    from k8s_gpu_mcp.config import Settings

    defaults = Settings()
    for flag, field, choices, help_text in options:
        default = getattr(defaults, field)
        env = env_name(field)
        if isinstance(default, bool):
            parser.add_argument(
                flag,
                dest=field,
                action="store_const",
                const=True,
                default=None,
                help=f"{help_text} [env {env}=1]",
            )
            continue
        parser.add_argument(
            flag,
            dest=field,
            choices=choices,
            type=type(default) if isinstance(default, int | float) else str,
            default=None,
            help=f"{help_text} [env {env}; default {default}]",
        )


def _from_env(name: str, value: str, default: Any, choices: tuple[str, ...] | None) -> Any:
    env = env_name(name)
    if choices and value not in choices:
        raise SystemExit(f"k8s-gpu-mcp: {env}={value!r} is not one of {', '.join(choices)}")
    if isinstance(default, bool):
        if value.strip().lower() not in TRUE_WORDS + FALSE_WORDS:
            raise SystemExit(f"k8s-gpu-mcp: {env}={value!r} is not a boolean (1/0, true/false)")
        return value.strip().lower() in TRUE_WORDS
    if isinstance(default, int | float):
        kind = type(default)
        try:
            return kind(value)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise SystemExit(f"k8s-gpu-mcp: {env}={value!r} is not {what}") from None
    return value


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Any:
    """Flags win over env vars, which win over defaults. Bad env values fail like bad flags."""
    from k8s_gpu_mcp.config import Settings

    environ = dict(os.environ) if environ is None else environ
    choices = {field: ch for _, field, ch, _ in ALL_OPTIONS}
    values: dict[str, Any] = {}
    for f in fields(Settings):
        value = getattr(args, f.name, None)
        if value is None and env_name(f.name) in environ:
            value = _from_env(f.name, environ[env_name(f.name)], f.default, choices.get(f.name))
        if value is not None:
            values[f.name] = value
    return Settings(**values)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="k8s-gpu-mcp",
        description="Just-in-time SRE diagnostic agent for NVIDIA GPU nodes, spoken to over MCP.",
    )
    parser.add_argument("--version", action="version", version=f"k8s-gpu-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP agent (stdio by default)")
    _add_options(serve, SERVE_OPTIONS + AGENT_OPTIONS)

    tools = sub.add_parser("tools", help="list the tools this configuration exposes")
    _add_options(tools, AGENT_OPTIONS)
    tools.add_argument("--json", action="store_true", help="print the full tools/list entries as JSON")

    # Parsed by launch/syringe.py (main() hands it the rest of argv); listed here for --help.
    sub.add_parser(
        "connect",
        help="connect cluster: one MCP server for the whole cluster, agents started on demand; "
        "connect node/NAME: start the agent there with kubectl debug and relay MCP over stdio; "
        "connect gateway: relay stdio to the cluster gateway (connect cluster --help, connect node/x --help, "
        "connect gateway --help)",
        add_help=False,
    )

    call = sub.add_parser("call", help="run one tool in-process and print its structured result as JSON")
    call.add_argument("tool", help="tool name (see 'k8s-gpu-mcp tools')")
    call.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    _add_options(call, AGENT_OPTIONS)

    gateway = sub.add_parser(
        "gateway",
        help="run the cluster gateway: the node tools fanned out to every agent, plus cluster-wide tools",
    )
    _add_options(gateway, SERVE_OPTIONS + GATEWAY_OPTIONS + LOG_OPTION)
    return parser


def _fail(message: str, code: int = 2) -> int:
    sys.stderr.write(f"k8s-gpu-mcp: {message}\n")
    return code


def _open_app(settings: Any) -> Any:
    from k8s_gpu_mcp.gpu.backend import BackendError
    from k8s_gpu_mcp.gpu.fleet import FleetError
    from k8s_gpu_mcp.server import AgentApp, ToolsetError

    try:
        return AgentApp(settings)
    except (BackendError, FleetError, ToolsetError) as exc:
        raise SystemExit(_fail(str(exc))) from None


def stdio_idle_exit(settings: Any) -> float | None:
    """Seconds of silence after which a stdio agent stops; None: never. --idle-exit, else on in the
    pod a connect node/... session created (its env marks it), off elsewhere."""
    from k8s_gpu_mcp.launch.syringe import SESSION_ENV

    if settings.idle_exit:
        return float(settings.idle_exit)
    return SESSION_IDLE_EXIT_S if os.environ.get(SESSION_ENV) else None


def _run_serve(settings: Any) -> int:
    app = _open_app(settings)
    try:
        if settings.transport == "http":
            from k8s_gpu_mcp.http.serve import run_agent

            return run_agent(app)
        import anyio

        from k8s_gpu_mcp.transport.stdio import serve_stdio

        anyio.run(serve_stdio, app.server, stdio_idle_exit(settings))
    except KeyboardInterrupt:
        pass
    finally:
        app.close()
    return 0


def _run_tools(settings: Any, as_json: bool) -> int:
    import anyio

    app = _open_app(settings)
    try:
        listed = anyio.run(app.server.list_tools)
    finally:
        app.close()
    if as_json:
        payload = [t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in listed]
        sys.stdout.write(json.dumps(payload, indent=2) + "\n")
    else:
        for tool in listed:
            first = (tool.description or "").strip().split("\n")[0]
            sys.stdout.write(f"{tool.name}\t{first}\n")
    return 0


def _run_call(settings: Any, tool: str, raw_args: str) -> int:
    import anyio
    from mcp.client import Client

    try:
        arguments = json.loads(raw_args)
    except json.JSONDecodeError as exc:
        return _fail(f"--args is not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        return _fail("--args must be a JSON object, e.g. '{\"gpus\": [0]}'")
    app = _open_app(settings)

    async def run() -> Any:
        async with Client(app.server) as client:
            return await client.call_tool(tool, arguments)

    try:
        result = anyio.run(run)
    finally:
        app.close()
    if result.is_error:
        message = " ".join(getattr(c, "text", "") for c in result.content)
        return _fail(message, 1)
    sys.stdout.write(json.dumps(result.structured_content, indent=2, default=str) + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:2] == ["connect", "cluster"]:
        from k8s_gpu_mcp.launch import cluster

        return cluster.main(argv[1:])
    if argv[:2] == ["connect", "gateway"]:
        from k8s_gpu_mcp.launch import bridge

        return bridge.main(argv[2:])
    if argv and argv[0] == "connect":
        from k8s_gpu_mcp.launch import syringe

        return syringe.main(argv[1:])
    args = build_parser().parse_args(argv)
    settings = settings_from(args)
    if (
        args.command in ("call", "tools")
        and args.log_level is None
        and env_name("log_level") not in os.environ
    ):
        # one-shot shell commands: their answer is on stdout or in the error line; keep stderr quiet
        settings = dataclasses.replace(settings, log_level="WARNING")

    from k8s_gpu_mcp.logs import configure_logging

    configure_logging(settings.log_level)
    if args.command == "serve":
        return _run_serve(settings)
    if args.command == "tools":
        return _run_tools(settings, args.json)
    if args.command == "gateway":
        from k8s_gpu_mcp.gateway.server import run_gateway

        return run_gateway(settings)
    return _run_call(settings, args.tool, args.args)
