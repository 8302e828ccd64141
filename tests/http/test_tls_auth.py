"""TLS (self-signed, made here with the openssl CLI), certificate reload, token reload, metrics."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
import threading
import urllib.request
from pathlib import Path

import pytest

from k8s_gpu_mcp.http.auth import Token, TokenError, bearer
from k8s_gpu_mcp.http.security import HttpConfigError, host_patterns, is_loopback, require_auth_rule
from k8s_gpu_mcp.http.tls import ReloadingTls, TlsError
from k8s_gpu_mcp.metrics import ToolMetrics
from tests.http.conftest import TOKEN

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI")


def make_cert(folder: Path, name: str, cn: str = "localhost") -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={cn}",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def client_context(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


def test_https_with_a_self_signed_certificate(serve_http, tmp_path):
    cert, key = make_cert(tmp_path, "server")
    ctx = client_context(cert)
    agent = serve_http(
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        env={"K8S_GPU_MCP_TOKEN": TOKEN},
        scheme="https",
        context=ctx,
    )
    body = json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "tools/call",
            "params": {"name": "get_gpu_inventory", "arguments": {}},
        }
    ).encode()
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "authorization": f"Bearer {TOKEN}",
    }
    request = urllib.request.Request(agent.url, body, headers, method="POST")
    with urllib.request.urlopen(request, timeout=30, context=ctx) as r:
        assert json.loads(r.read())["result"]["structuredContent"]["gpu_count"] == 8
    with pytest.raises(OSError):  # a client that does not trust the certificate is refused
        urllib.request.urlopen(agent.base + "/healthz", timeout=10, context=ssl.create_default_context())


def test_tls_cert_without_key_is_refused(tmp_path):
    from k8s_gpu_mcp.config import Settings
    from k8s_gpu_mcp.http.serve import load_tls

    cert, _ = make_cert(tmp_path, "a")
    with pytest.raises(HttpConfigError, match="go together"):
        load_tls(Settings(tls_cert=str(cert)))
    with pytest.raises(TlsError, match="cannot load TLS certificate"):
        ReloadingTls(str(tmp_path / "missing.crt"), str(tmp_path / "missing.key"))


def _peer_cn(port: int, ca: Path) -> str:
    ctx = client_context(ca)
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
            subject = dict(item[0] for item in tls.getpeercert()["subject"])
            return subject["commonName"]


def test_certificate_is_reloaded_for_new_connections(tmp_path):
    first_cert, first_key = make_cert(tmp_path, "first", cn="first")
    second_cert, second_key = make_cert(tmp_path, "second", cn="second")
    live_cert, live_key = tmp_path / "tls.crt", tmp_path / "tls.key"
    shutil.copy(first_cert, live_cert)
    shutil.copy(first_key, live_key)
    tls = ReloadingTls(str(live_cert), str(live_key))
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    port_box: list[int] = []
    stop = asyncio.Event()

    async def serve() -> None:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=tls.context)
        port_box.append(server.sockets[0].getsockname()[1])
        ready.set()
        await stop.wait()
        server.close()

    thread = threading.Thread(target=lambda: loop.run_until_complete(serve()), daemon=True)
    thread.start()
    ready.wait(10)
    port = port_box[0]
    assert _peer_cn(port, first_cert) == "first"
    assert tls.maybe_reload() is False  # unchanged files: nothing to do
    shutil.copy(second_key, live_key)
    shutil.copy(second_cert, live_cert)
    import os

    os.utime(live_cert, ns=(1, 1))  # make sure the mtime differs whatever the clock granularity
    assert tls.maybe_reload() is True
    assert _peer_cn(port, second_cert) == "second"
    # a broken pair (cert without its key) is refused and the live context keeps serving
    shutil.copy(first_cert, live_cert)
    os.utime(live_cert, ns=(2, 2))
    with pytest.raises(ssl.SSLError):
        tls.maybe_reload()
    assert _peer_cn(port, second_cert) == "second"
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def test_token_file_is_reread_when_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "token"
    path.write_text("one")
    token = Token(path=str(path))
    assert token.matches("one") and not token.matches("two")
    path.write_text("two")
    import os

    os.utime(path, ns=(5, 5))
    monkeypatch.setattr("k8s_gpu_mcp.http.auth.time.monotonic", lambda: 1e9)  # past the 1 s check interval
    assert token.matches("two") and not token.matches("one")


def test_token_sources_and_errors(tmp_path):
    assert Token.from_settings(None, {}) is None
    assert Token.from_settings(None, {"K8S_GPU_MCP_TOKEN": " abc "}).matches("abc")  # type: ignore[union-attr]
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(TokenError, match="empty"):
        Token.from_settings(str(tmp_path / "empty"), {})
    with pytest.raises(TokenError, match="cannot read token file"):
        Token.from_settings(str(tmp_path / "absent"), {})
    assert (
        bearer("Bearer x") == "x"
        and bearer("bearer  y ") == "y"
        and bearer("Basic x") is None
        and bearer(None) is None
    )


def test_bind_rules_and_host_patterns():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("10.0.0.1")
    require_auth_rule("127.0.0.1", has_token=False, insecure_no_auth=False)
    require_auth_rule("0.0.0.0", has_token=True, insecure_no_auth=False)
    require_auth_rule("0.0.0.0", has_token=False, insecure_no_auth=True)
    with pytest.raises(HttpConfigError, match="refusing"):
        require_auth_rule("0.0.0.0", has_token=False, insecure_no_auth=False)
    assert host_patterns(["10.0.0.1", "fd00::1", "svc:*"]) == [
        "10.0.0.1",
        "10.0.0.1:*",
        "[fd00::1]",
        "[fd00::1]:*",
        "svc:*",
    ]


@pytest.mark.anyio
async def test_in_flight_gauge_counts_a_running_call():
    metrics = ToolMetrics(namespace="t")
    seen: list[float] = []

    async def slow_tool() -> int:
        seen.append(metrics.in_flight.labels("slow_tool")._value.get())
        return 1

    def failing_tool() -> int:
        raise ValueError("boom")

    wrapped = metrics.instrument(slow_tool)
    assert wrapped.__name__ == "slow_tool" and await wrapped() == 1
    assert seen == [1.0] and metrics.in_flight.labels("slow_tool")._value.get() == 0
    with pytest.raises(ValueError):
        metrics.instrument(failing_tool)()
    text = metrics.render()[0].decode()
    assert 't_tool_requests_total{status="ok",tool="slow_tool"} 1.0' in text
    assert 't_tool_requests_total{status="error",tool="failing_tool"} 1.0' in text
