"""Agent settings: one frozen dataclass built from CLI flags and ``K8S_GPU_MCP_*`` env vars."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["read-only", "operator"]
NvmlMode = Literal["auto", "real", "mock"]
Transport = Literal["stdio", "http"]

DEFAULT_PROFILE = "h100-sxm5-80gb-x8"


@dataclass(frozen=True)
class Settings:
    transport: Transport = "stdio"
    mode: Mode = "read-only"
    nvml_mode: NvmlMode = "auto"
    profile: str | None = None
    scenario: str | None = None
    log_level: str = "INFO"
    kernel_log: str | None = None
    audit_log: str | None = None
    host_root: str = "/host"
    proc_root: str = "/proc"
    sys_root: str = "/sys"
    host: str = "127.0.0.1"
    port: int = 8080

    @property
    def operator(self) -> bool:
        return self.mode == "operator"
