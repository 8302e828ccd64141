"""Agent settings: one frozen dataclass built from CLI flags and ``K8S_GPU_MCP_*`` env vars.

Each setting declares its flag, help and command group once, on its field (:func:`option`); the
env var is ``K8S_GPU_MCP_<FIELD>`` and the default is the field's. ``cli.py`` generates the parsers
from these declarations.
"""

from __future__ import annotations

from dataclasses import Field, dataclass, field, fields
from typing import Any, Literal, get_args

Mode = Literal["read-only", "operator"]
NvmlMode = Literal["auto", "real", "mock"]
Transport = Literal["stdio", "http"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
Scheme = Literal["http", "https"]

ENV_PREFIX = "K8S_GPU_MCP_"
DEFAULT_PROFILE = "h100-sxm5-80gb-x8"
DEFAULT_AGENT_SELECTOR = (
    "app.kubernetes.io/name=k8s-gpu-mcp,app.kubernetes.io/component=agent"  # the shipped DaemonSet
)
# A connect node/... session: kubectl debug keeps the container's stdin open after the attach ends, so
# no EOF ever arrives; an agent that hears nothing for this long stops (its pod with it).
SESSION_IDLE_EXIT_S = 900.0
SESSION_ENV = "K8S_GPU_MCP_SESSION"  # marks the pod a connect node/... session created (launch/syringe.py)


@dataclass(frozen=True)
class Option:
    """How one setting is given on the command line: ``flag`` (``--mode``), its help, its group
    (the commands that take it: agent, log, serve, gateway, ...), and the values it accepts (None:
    any value of the field's type)."""

    flag: str
    help: str
    group: str
    choices: tuple[str, ...] | None = None
    env: str | None = None  # None: ENV_PREFIX + the field name in capitals
    short: str | None = None  # e.g. -n

    def env_name(self, name: str) -> str:
        return self.env or ENV_PREFIX + name.upper()


def option(
    default: Any,
    flag: str,
    help: str,
    group: str,
    choices: Any = None,
    env: str | None = None,
    short: str | None = None,
) -> Any:
    """A dataclass field with its command-line declaration; ``choices`` may be a ``Literal`` type."""
    allowed = tuple(get_args(choices)) if choices is not None and not isinstance(choices, tuple) else choices
    return field(default=default, metadata={"option": Option(flag, help, group, allowed, env, short)})


def options(cls: type, *groups: str) -> list[tuple[str, Field[Any], Option]]:
    """(name, field, option) of every field of ``cls`` declared with :func:`option` in ``groups``."""
    out = []
    for f in fields(cls):
        opt = f.metadata.get("option")
        if opt is not None and (not groups or opt.group in groups):
            out.append((f.name, f, opt))
    return out


@dataclass(frozen=True)
class Settings:
    """Every setting of the agent: one field each, with its flag, env var, default and help."""

    transport: Transport = option(
        "stdio",
        "--transport",
        "stdio (default; for kubectl debug and local clients) or http (streamable HTTP at /mcp)",
        "serve",
        Transport,
    )
    mode: Mode = option(
        "read-only", "--mode", "read-only, or operator to enable remediation tools", "agent", Mode
    )
    nvml_mode: NvmlMode = option(
        "auto",
        "--nvml-mode",
        "auto: real NVML if it initializes, else the mock fleet (never inside Kubernetes)",
        "agent",
        NvmlMode,
    )
    profile: str | None = option(
        None, "--profile", "mock fleet profile name or JSON path (implies mock data)", "agent"
    )
    scenario: str | None = option(
        None, "--scenario", "fault scenario YAML/JSON overlaid on the profile (implies mock data)", "agent"
    )
    kernel_log: str | None = option(
        None,
        "--kernel-log",
        "read kernel messages from this file instead of /dev/kmsg, journalctl or dmesg",
        "agent",
    )
    toolsets: str | None = option(  # comma-separated (tools/__init__.py); None: every toolset
        None,
        "--toolsets",
        "comma-separated toolsets to list (core, xid, processes, k8s, remediation); default: all of them "
        "(remediation needs --mode operator)",
        "agent",
    )
    xid_log_files: str | None = option(
        None,
        "--xid-log-files",
        "comma-separated kernel log files a client may name in analyze_xid_errors(source=...); "
        "no other file is read",
        "agent",
    )
    boot_time: str | None = option(
        None,
        "--boot-time",
        "boot time (RFC 3339 or epoch seconds) of the host and boot that wrote --kernel-log and "
        "--xid-log-files, to date their uptime stamps; default: only the log's own wall-clock lines",
        "agent",
    )
    audit_log: str | None = option(
        None, "--audit-log", "append a JSON line per remediation attempt to this file", "agent"
    )
    host_root: str = option(
        "/host", "--host-root", "where the host's root filesystem is mounted (kubectl debug: /host)", "agent"
    )
    proc_root: str = option("/proc", "--proc-root", "the /proc to read process and cgroup data from", "agent")
    sys_root: str = option("/sys", "--sys-root", "the /sys to use for PCI resets", "agent")
    log_level: str = option("INFO", "--log-level", "log level for the JSON lines on stderr", "log", LogLevel)
    idle_exit: float = option(  # stdio: seconds without a message before the agent drains and exits
        0.0,
        "--idle-exit",
        "stdio: answer what was read and exit once no message arrived for this many seconds and no "
        "request is running; 0: never (in a connect node/... debug pod, where an attach that is gone "
        f"sends no EOF, 0 means {SESSION_IDLE_EXIT_S:g})",
        "serve",
    )
    # HTTP transport (serve --transport http, gateway --transport http)
    host: str = option(
        "127.0.0.1", "--host", "HTTP bind address; a non-loopback address requires a token", "serve"
    )
    port: int = option(8080, "--port", "HTTP port", "serve")
    token_file: str | None = option(
        None,
        "--token-file",
        "file holding the bearer token for /mcp and /metrics (re-read when it changes); "
        "or put the token itself in env K8S_GPU_MCP_TOKEN",
        "serve",
    )
    insecure_no_auth: bool = option(
        False,
        "--insecure-no-auth",
        "serve HTTP on a non-loopback address without a token (only behind another auth layer)",
        "serve",
    )
    tls_cert: str | None = option(
        None, "--tls-cert", "TLS certificate chain (PEM); reloaded when the file changes", "serve"
    )
    tls_key: str | None = option(None, "--tls-key", "TLS private key (PEM), with --tls-cert", "serve")
    allowed_hosts: str | None = option(  # None: loopback names + POD_IP + hostname
        None,
        "--allowed-hosts",
        "comma-separated Host headers accepted on /mcp (DNS-rebinding guard; 'name:*' for any port, "
        "'*' to disable); default: loopback names, POD_IP and the hostname",
        "serve",
    )
    allowed_origins: str | None = option(
        None,
        "--allowed-origins",
        "comma-separated Origin headers accepted on /mcp; default: loopback origins",
        "serve",
    )
    # gateway
    agents: str | None = option(  # None: discover through the Kubernetes API
        None,
        "--agents",
        "static agent list, YAML or JSON: [{node, url, labels}]; default: discover agent pods "
        "through the Kubernetes API",
        "gateway",
    )
    agent_namespace: str = option(
        "k8s-gpu-mcp", "--agent-namespace", "namespace of the agent pods", "gateway"
    )
    agent_selector: str = option(
        DEFAULT_AGENT_SELECTOR, "--agent-selector", "label selector of the agent pods", "gateway"
    )
    agent_daemonset: str = option(
        "k8s-gpu-mcp",
        "--agent-daemonset",
        "DaemonSet (in --agent-namespace) that must control an agent pod for it to be trusted",
        "gateway",
    )
    agent_port: int = option(8080, "--agent-port", "agents' HTTP port", "gateway")
    agent_scheme: str = option("http", "--agent-scheme", "agents' URL scheme", "gateway", Scheme)
    agent_token_file: str | None = option(
        None,
        "--agent-token-file",
        "bearer token the gateway sends to agents; or the token itself in env K8S_GPU_MCP_AGENT_TOKEN",
        "gateway",
    )
    agent_ca_file: str | None = option(
        None, "--agent-ca-file", "CA bundle to verify agents' TLS certificates", "gateway"
    )
    node_timeout: float = option(
        5.0, "--node-timeout", "seconds one node may take, retries included", "gateway"
    )
    concurrency: int = option(256, "--concurrency", "nodes called at once", "gateway")
    retries: int = option(
        2, "--retries", "retries of an idempotent read after a connection failure", "gateway"
    )
    breaker_failures: int = option(
        3, "--breaker-failures", "consecutive failures that open a node's circuit breaker", "gateway"
    )
    breaker_reset: float = option(
        30.0, "--breaker-reset", "seconds an open breaker waits before one probe call", "gateway"
    )
    gateway_operator: bool = option(
        False,
        "--gateway-operator",
        "list kill_gpu_process and reset_gpu on the gateway: exactly one node per call, confirmed by the "
        "user through elicitation, audited with the caller and correlation id (agents need --mode operator)",
        "gateway",
    )

    @property
    def operator(self) -> bool:
        return self.mode == "operator"
