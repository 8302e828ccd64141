"""Server TLS whose certificate chain is reloaded when the files change (cert-manager rotation).

``load_cert_chain`` on a live ``SSLContext`` applies to every handshake that starts afterwards;
connections already open keep their session. A timer (``watch``) checks the files' mtimes.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

log = logging.getLogger(__name__)


class TlsError(ValueError):
    """The certificate or key cannot be used: the message is for the operator."""


class ReloadingTls:
    def __init__(self, cert: str, key: str):
        self.cert, self.key = Path(cert), Path(key)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._stamp: tuple[float, float] | None = None
        self.reloads = 0
        try:
            self.maybe_reload()
        except (OSError, ssl.SSLError) as exc:
            raise TlsError(f"cannot load TLS certificate {cert} / key {key}: {exc}") from exc

    def _mtimes(self) -> tuple[float, float]:
        return self.cert.stat().st_mtime_ns, self.key.stat().st_mtime_ns

    def maybe_reload(self) -> bool:
        """Load the chain if either file changed since the last load; True when it reloaded."""
        stamp = self._mtimes()
        if stamp == self._stamp:
            return False
        # Validate on a scratch context first: a failed load must not touch the live one.
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(self.cert, self.key)
        self.context.load_cert_chain(self.cert, self.key)
        self._stamp = stamp
        self.reloads += 1
        return True

    async def watch(self, interval_s: float = 5.0) -> None:
        """Poll the files forever; a half-written pair is retried on the next tick."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if self.maybe_reload():
                    log.info("TLS certificate reloaded", extra={"cert": str(self.cert)})
            except (OSError, ssl.SSLError) as exc:
                log.warning(
                    "TLS certificate reload failed; keeping the previous one", extra={"error": str(exc)}
                )
