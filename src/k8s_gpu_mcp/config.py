"""Agent settings: one frozen dataclass built from CLI flags and ``K8S_GPU_MCP_*`` env vars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["read-only", "operator"]
NvmlMode = Literal["auto", "real", "mock"]
Transport = Literal["stdio", "http"]

DEFAULT_PROFILE = "h100-sxm5-80gb-x8"
DEFAULT_AGENT_SELECTOR = (
    "app.kubernetes.io/name=k8s-gpu-mcp,app.kubernetes.io/component=agent"  # the shipped DaemonSet
)


@dataclass(frozen=True)
class Settings:
    transport: Transport = "stdio"
    mode: Mode = "read-only"
    nvml_mode: NvmlMode = "auto"
    profile: str | None = None
    scenario: str | None = None
    log_level: str = "INFO"
    toolsets: str | None = None  # comma-separated (tools/__init__.py); None: every toolset
    kernel_log: str | None = None
    xid_log_files: str | None = None  # comma-separated files analyze_xid_errors(source=...) may read
    boot_time: str | None = None  # boot time of the host that wrote --kernel-log / xid_log_files
    audit_log: str | None = None
    host_root: str = "/host"
    proc_root: str = "/proc"
    sys_root: str = "/sys"
    host: str = "127.0.0.1"
    port: int = 8080
    idle_exit: float = 0.0  # stdio: seconds without a message before the agent drains and exits; 0: off
    # HTTP transport (serve --transport http, gateway --transport http)
    token_file: str | None = None
    insecure_no_auth: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    allowed_hosts: str | None = None  # comma-separated; None: loopback names + POD_IP + hostname
    allowed_origins: str | None = None  # comma-separated; None: loopback origins
    # gateway
    agents: str | None = None  # static agent list (YAML/JSON); None: discover through the Kubernetes API
    agent_namespace: str = "k8s-gpu-mcp"
    agent_selector: str = DEFAULT_AGENT_SELECTOR
    agent_daemonset: str = "k8s-gpu-mcp"  # only pods this DaemonSet controls get the agent token
    agent_port: int = 8080
    agent_scheme: str = "http"
    agent_token_file: str | None = None
    agent_ca_file: str | None = None
    node_timeout: float = 5.0
    concurrency: int = 256
    retries: int = 2
    breaker_failures: int = 3
    breaker_reset: float = 30.0
    gateway_operator: bool = False  # the gateway lists kill_gpu_process/reset_gpu (one node per call)

    @property
    def operator(self) -> bool:
        return self.mode == "operator"
