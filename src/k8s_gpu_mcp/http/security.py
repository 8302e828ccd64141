"""Who may reach ``/mcp``: the bind-address auth rule and the Host/Origin allow lists."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping

from mcp.server.transport_security import TransportSecuritySettings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class HttpConfigError(ValueError):
    """The HTTP options are unsafe or inconsistent: the message is for the operator."""


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def split_list(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _bracket(host: str) -> str:
    """A bare IPv6 address gets the brackets a Host header carries; anything else is kept."""
    try:
        return f"[{host}]" if ipaddress.ip_address(host).version == 6 else host
    except ValueError:
        return host


def host_patterns(names: list[str]) -> list[str]:
    """Each name with and without a port: the SDK matches ``name`` exactly and ``name:*`` by prefix."""
    patterns: list[str] = []
    for name in names:
        name = _bracket(name)
        for pattern in (name, name if name.endswith(":*") else f"{name}:*"):
            if pattern not in patterns:
                patterns.append(pattern)
    return patterns


def default_hosts(bind_host: str, environ: Mapping[str, str] | None = None) -> list[str]:
    """Loopback names, the bind address when it is a specific one, and in a pod its IP and hostname."""
    environ = os.environ if environ is None else environ
    names = list(LOOPBACK_HOSTS)
    if bind_host not in ("0.0.0.0", "::", ""):
        names.append(bind_host)
    if environ.get("POD_IP"):
        names.append(environ["POD_IP"])
        names.append(socket.gethostname())
    return names


def transport_security(
    bind_host: str,
    allowed_hosts: str | None,
    allowed_origins: str | None,
    environ: Mapping[str, str] | None = None,
) -> TransportSecuritySettings:
    """The SDK's DNS-rebinding guard: a Host outside the list gets 421, an Origin outside it 403."""
    hosts = split_list(allowed_hosts) if allowed_hosts is not None else default_hosts(bind_host, environ)
    if "*" in hosts:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    origins = split_list(allowed_origins) if allowed_origins is not None else []
    if allowed_origins is None:
        origins = [f"{scheme}://{h}:*" for h in LOOPBACK_HOSTS for scheme in ("http", "https")]
        origins += [f"{scheme}://{h}" for h in LOOPBACK_HOSTS for scheme in ("http", "https")]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=host_patterns(hosts), allowed_origins=origins
    )


def require_auth_rule(host: str, has_token: bool, insecure_no_auth: bool) -> None:
    """Refuse a non-loopback bind without a token unless --insecure-no-auth was given explicitly."""
    if has_token or insecure_no_auth or is_loopback(host):
        return
    raise HttpConfigError(
        f"refusing to serve HTTP on {host} without authentication: give a token with --token-file "
        "(env K8S_GPU_MCP_TOKEN_FILE) or env K8S_GPU_MCP_TOKEN, or pass --insecure-no-auth explicitly "
        "if another layer (a mesh, a proxy) authenticates callers"
    )
