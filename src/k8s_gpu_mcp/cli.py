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
from typing import Any

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.config import ENV_PREFIX, SESSION_ENV, SESSION_IDLE_EXIT_S, Settings, options

# (flag, Settings field, choices, help) per command group, generated from the declarations on
# the Settings fields (config.option); defaults come from Settings.
OptionRow = tuple[str, str, tuple[str, ...] | None, str]


def option_rows(cls: type, *groups: str) -> list[OptionRow]:
    return [(opt.flag, name, opt.choices, opt.help) for name, _, opt in options(cls, *groups)]


AGENT_OPTIONS = option_rows(Settings, "agent", "log")
SERVE_OPTIONS = option_rows(Settings, "serve")
GATEWAY_OPTIONS = option_rows(Settings, "gateway")
TRUE_WORDS, FALSE_WORDS = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def add_options(parser: argparse.ArgumentParser, cls: type, *groups: str, resolved: bool = False) -> None:
    """One argparse option per field of ``cls`` declared (config.option) in ``groups``, with its env
    var and default in the help. ``resolved``: the parsed value is final (env var, else the field's
    default, as the argparse default); otherwise None when not given, for :func:`values_from`."""
    for name, f, opt in options(cls, *groups):
        default = f.default
        env = opt.env_name(name)
        given = os.environ.get(env) if resolved else None
        start = _from_env(env, given, default, opt.choices) if given is not None else default
        flags = [opt.short, opt.flag] if opt.short else [opt.flag]
        if isinstance(default, bool):
            parser.add_argument(
                *flags,
                dest=name,
                action="store_const",
                const=not default,
                default=start if resolved else None,
                help=f"{opt.help} [env {env}=1]",
            )
            continue
        shown = f"; default {default:g}" if isinstance(default, float) else f"; default {default}"
        parser.add_argument(
            *flags,
            dest=name,
            choices=opt.choices,
            type=type(default) if isinstance(default, int | float) else str,
            default=start if resolved else None,
            help=f"{opt.help} [env {env}{shown if default is not None or not resolved else ''}]",
        )


def _from_env(env: str, value: str, default: Any, choices: tuple[str, ...] | None) -> Any:
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


def values_from(cls: type, args: argparse.Namespace, environ: dict[str, str] | None = None) -> dict[str, Any]:
    """The declared fields of ``cls``: flags win over env vars, which win over defaults (left out)."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    for name, f, opt in options(cls):
        value = getattr(args, name, None)
        env = opt.env_name(name)
        if value is None and env in environ:
            value = _from_env(env, environ[env], f.default, opt.choices)
        if value is not None:
            values[name] = value
    return values


def settings_from(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Settings:
    """Flags win over env vars, which win over defaults. Bad env values fail like bad flags."""
    return Settings(**values_from(Settings, args, environ))


COMMANDS = ("serve", "tools", "call", "gateway")  # parsed here (connect: launch/)


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser. ``command``: only that command's options are declared (a start parses
    one command; the others' options cost milliseconds of argparse). None: all of them."""

    def wanted(name: str) -> bool:
        return command is None or command == name

    parser = argparse.ArgumentParser(
        prog="k8s-gpu-mcp",
        description="Just-in-time SRE diagnostic agent for NVIDIA GPU nodes, spoken to over MCP.",
    )
    parser.add_argument("--version", action="version", version=f"k8s-gpu-mcp {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the MCP agent (stdio by default)")
    if wanted("serve"):
        add_options(serve, Settings, "serve", "agent", "log")

    tools = sub.add_parser("tools", help="list the tools this configuration exposes")
    if wanted("tools"):
        add_options(tools, Settings, "agent", "log")
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
    if wanted("call"):
        call.add_argument("tool", help="tool name (see 'k8s-gpu-mcp tools')")
        call.add_argument("--args", default="{}", help="tool arguments as a JSON object")
        add_options(call, Settings, "agent", "log")

    gateway = sub.add_parser(
        "gateway",
        help="run the cluster gateway: the node tools fanned out to every agent, plus cluster-wide tools",
    )
    if wanted("gateway"):
        add_options(gateway, Settings, "serve", "gateway", "log")
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
        from k8s_gpu_mcp.launch import cluster_cli

        return cluster_cli.main(argv[1:])
    if argv[:2] == ["connect", "gateway"]:
        from k8s_gpu_mcp.launch import bridge

        return bridge.main(argv[2:])
    if argv and argv[0] == "connect":
        from k8s_gpu_mcp.launch import syringe

        return syringe.main(argv[1:])
    args = build_parser(argv[0] if argv and argv[0] in COMMANDS else None).parse_args(argv)
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
