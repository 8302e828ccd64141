"""Bearer-token auth for ``/mcp`` and ``/metrics``; the token comes from a file or an env var."""

from __future__ import annotations

import hmac
import json
import os
import time
from collections.abc import Mapping
from pathlib import Path

from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_ENV = "K8S_GPU_MCP_TOKEN"
PROTECTED_PREFIXES = ("/mcp", "/metrics")


class TokenError(ValueError):
    """The token cannot be loaded: the message is for the operator reading stderr."""


class Token:
    """The expected bearer token. A file-backed token is re-read (at most once a second) when its
    mtime changes, so a rotated Kubernetes Secret takes effect without a restart."""

    def __init__(self, value: str | None = None, path: str | None = None):
        self._path = Path(path) if path else None
        self._mtime: float | None = None
        self._checked = 0.0
        self._value = value.strip() if value else ""
        if self._path is not None:
            self._reload(force=True)
        if not self._value:
            raise TokenError(f"the token file {self._path} is empty" if self._path else "the token is empty")

    @classmethod
    def from_settings(
        cls, token_file: str | None, environ: Mapping[str, str] | None = None, env: str = TOKEN_ENV
    ) -> Token | None:
        """The token from ``token_file``, else from env ``env``; None when neither is set."""
        environ = os.environ if environ is None else environ
        if token_file:
            return cls(path=token_file)
        if environ.get(env, "").strip():
            return cls(value=environ[env])
        return None

    def _reload(self, force: bool = False) -> None:
        assert self._path is not None
        try:
            mtime = self._path.stat().st_mtime
            if force or mtime != self._mtime:
                value = self._path.read_text().strip()
                if value or force:
                    self._value, self._mtime = value, mtime
        except OSError as exc:
            if force:
                raise TokenError(f"cannot read token file {self._path}: {exc}") from exc
            # keep the last good token while a Secret update swaps the file

    @property
    def value(self) -> str:
        if self._path is not None and time.monotonic() - self._checked >= 1.0:
            self._checked = time.monotonic()
            self._reload()
        return self._value

    def matches(self, presented: str) -> bool:
        return hmac.compare_digest(presented.encode(), self.value.encode())


def bearer(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" and credentials.strip() else None


class BearerAuthMiddleware:
    """401 on protected paths unless ``Authorization: Bearer <token>`` matches; other paths pass."""

    def __init__(self, app: ASGIApp, token: Token | None, prefixes: tuple[str, ...] = PROTECTED_PREFIXES):
        self.app, self.token, self.prefixes = app, token, prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.token is None or scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        header = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), None)
        presented = bearer(header)
        if presented is not None and self.token.matches(presented):
            await self.app(scope, receive, send)
            return
        error = "invalid_token" if presented is not None else "missing_token"
        body = json.dumps({"error": error, "detail": "send Authorization: Bearer <token>"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", f'Bearer error="{error}"'.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
