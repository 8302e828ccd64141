"""Who may reach ``/mcp``: the bind-address auth rule and the Host/Origin allow lists.

The SDK's own DNS-rebinding guard matches ``name:*`` by prefix, so ``localhost:80.evil.com`` passes
it; ``HostOriginGuard`` parses the header into a host and a numeric port and compares exactly.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

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


@dataclass(frozen=True)
class _Allowed:
    """One allow-list entry: a scheme (origins only), a lower-case host, and a port or ``*``."""

    scheme: str
    host: str
    port: str  # "*" (any port or none), "" (no port), or digits


def _split_authority(authority: str) -> tuple[str, str] | None:
    """``host[:port]`` -> (lower-case host, port); None unless the port is 1-5 digits or ``*``."""
    if authority.startswith("["):
        end = authority.find("]")
        if end < 0:
            return None
        host, rest = authority[: end + 1], authority[end + 1 :]
    else:
        host, sep, port = authority.partition(":")
        rest = sep + port
    if rest and not (rest[0] == ":" and (rest[1:] == "*" or (rest[1:].isdigit() and len(rest) <= 6))):
        return None
    if not host or any(c in host for c in "/@?#\\ ") or (":" in host and not host.startswith("[")):
        return None
    return host.lower(), rest[1:]


def _allowed(entries: list[str], with_scheme: bool) -> list[_Allowed]:
    out = []
    for entry in entries:
        scheme, sep, authority = entry.partition("://") if with_scheme else ("", "", entry)
        if with_scheme and not sep:
            continue
        parts = _split_authority(authority)
        if parts is not None:
            out.append(_Allowed(scheme.lower(), parts[0], parts[1]))
    return out


def _matches(allowed: list[_Allowed], scheme: str, value: str) -> bool:
    parts = _split_authority(value)
    if parts is None:
        return False
    host, port = parts
    if port == "*":
        return False  # a literal "*" is never a port a client sends
    return any(a.scheme == scheme and a.host == host and (a.port == "*" or a.port == port) for a in allowed)


class HostOriginGuard:
    """421 for a Host outside the list, 403 for an Origin outside it, on the protected paths.

    Exact matching: ``name`` or ``name:*`` allows that host with any numeric port; ``name:8080``
    that port only. An Origin is ``scheme://host[:port]`` and nothing else."""

    def __init__(self, app: ASGIApp, hosts: list[str], origins: list[str], prefixes: tuple[str, ...]):
        self.app, self.prefixes = app, prefixes
        self.hosts = _allowed(hosts, with_scheme=False)
        self.origins = _allowed(origins, with_scheme=True)

    def allows(self, host: str | None, origin: str | None) -> int:
        """0 when allowed, else the HTTP status to answer."""
        if not host or not _matches(self.hosts, "", host):
            return 421
        if origin:
            scheme, sep, authority = origin.partition("://")
            if not sep or not _matches(self.origins, scheme.lower(), authority):
                return 403
        return 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        headers = {k: v.decode("latin-1") for k, v in scope["headers"] if k in (b"host", b"origin")}
        status = self.allows(headers.get(b"host"), headers.get(b"origin"))
        if status == 0:
            await self.app(scope, receive, send)
            return
        body = b"Invalid Host header" if status == 421 else b"Invalid Origin header"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})


def host_guard(
    app: ASGIApp,
    bind_host: str,
    allowed_hosts: str | None,
    allowed_origins: str | None,
    prefixes: tuple[str, ...],
    environ: Mapping[str, str] | None = None,
) -> ASGIApp:
    """The DNS-rebinding guard over ``app``; ``*`` in the hosts list turns it off."""
    hosts = split_list(allowed_hosts) if allowed_hosts is not None else default_hosts(bind_host, environ)
    if "*" in hosts:
        return app
    origins = split_list(allowed_origins) if allowed_origins is not None else []
    if allowed_origins is None:
        origins = [f"{scheme}://{h}:*" for h in LOOPBACK_HOSTS for scheme in ("http", "https")]
    return HostOriginGuard(app, host_patterns(hosts), origins, prefixes)


def require_auth_rule(host: str, has_token: bool, insecure_no_auth: bool) -> None:
    """Refuse a non-loopback bind without a token unless --insecure-no-auth was given explicitly."""
    if has_token or insecure_no_auth or is_loopback(host):
        return
    raise HttpConfigError(
        f"refusing to serve HTTP on {host} without authentication: give a token with --token-file "
        "(env K8S_GPU_MCP_TOKEN_FILE) or env K8S_GPU_MCP_TOKEN, or pass --insecure-no-auth explicitly "
        "if another layer (a mesh, a proxy) authenticates callers"
    )
