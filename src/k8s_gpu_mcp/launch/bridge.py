"""``k8s-gpu-mcp connect gateway``: a stdio MCP server that relays to the gateway's HTTP endpoint.

For MCP clients that only launch commands: each JSON-RPC line on stdin becomes one POST to the
gateway (stateless streamable HTTP); every message of the reply (progress notifications on the SSE
stream, then the response) is written to stdout as one line. With ``--namespace/--service`` the
gateway is reached through ``kubectl port-forward`` (its output never touches stdout).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from k8s_gpu_mcp.cli import add_options
from k8s_gpu_mcp.config import option
from k8s_gpu_mcp.http.auth import TOKEN_ENV, Token, TokenError

FORWARDING_RE = re.compile(rb"Forwarding from 127\.0\.0\.1:(\d+)")
PROTOCOL_VERSION = "2025-06-18"


@dataclass(frozen=True)
class BridgeOptions:
    """`connect gateway` options, each declared once (flag, help, env var, default)."""

    url: str | None = option(None, "--url", "gateway MCP URL", "bridge", env="K8S_GPU_MCP_GATEWAY_URL")
    namespace: str = option(
        "k8s-gpu-mcp", "--namespace", "namespace of the gateway Service", "bridge",
        env="K8S_GPU_MCP_GATEWAY_NAMESPACE",
    )  # fmt: skip
    service: str = option(
        "k8s-gpu-mcp-gateway", "--service", "gateway Service to port-forward to", "bridge",
        env="K8S_GPU_MCP_GATEWAY_SERVICE",
    )  # fmt: skip
    service_port: int = option(
        8080, "--service-port", "the Service's port", "bridge", env="K8S_GPU_MCP_GATEWAY_SERVICE_PORT"
    )
    context: str | None = option(None, "--context", "kubeconfig context", "bridge")
    kubectl: str = option("kubectl", "--kubectl", "kubectl binary", "bridge")
    token_file: str | None = option(
        None, "--token-file", f"bearer token file for the gateway (or the token itself in env {TOKEN_ENV})",
        "bridge",
    )  # fmt: skip
    timeout: float = option(
        300.0, "--timeout", "seconds one request may take", "bridge", env="K8S_GPU_MCP_GATEWAY_TIMEOUT"
    )


def build_parser(prog: str = "k8s-gpu-mcp connect gateway") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n")[0].strip("`"))
    add_options(p, BridgeOptions, "bridge", resolved=True)
    return p


def _say(message: str) -> None:
    sys.stderr.write(f"k8s-gpu-mcp connect gateway: {message}\n")
    sys.stderr.flush()


def sse_messages(text: str) -> list[Any]:
    out = []
    for event in text.replace("\r\n", "\n").split("\n\n"):
        data = "\n".join(line[5:].lstrip() for line in event.split("\n") if line.startswith("data:"))
        if data:
            out.append(json.loads(data))
    return out


class Bridge:
    def __init__(self, url: str, token: Token | None, timeout: float):
        import httpx2

        self.url, self.token = url, token
        self.client = httpx2.AsyncClient(timeout=httpx2.Timeout(timeout, connect=10.0))
        self.lock = asyncio.Lock()
        self.out = sys.stdout.buffer

    async def emit(self, message: Any) -> None:
        async with self.lock:
            self.out.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")
            self.out.flush()

    def headers(self) -> dict[str, str]:
        h = {
            "content-type": "application/json",
            "accept": "application/json, text/event-stream",
            "mcp-protocol-version": PROTOCOL_VERSION,
        }
        if self.token is not None:
            h["authorization"] = f"Bearer {self.token.value}"
        return h

    async def relay(self, line: bytes) -> None:
        try:
            message = json.loads(line)
        except ValueError:
            await self.emit(
                {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}
            )
            return
        request_id = message.get("id") if isinstance(message, dict) else None
        try:
            async with self.client.stream("POST", self.url, content=line, headers=self.headers()) as reply:
                body = (await reply.aread()).decode("utf-8", "replace")
                if reply.status_code == 202:
                    return
                if reply.status_code != 200:
                    raise RuntimeError(f"gateway answered HTTP {reply.status_code}: {body[:200]}")
                ctype = reply.headers.get("content-type", "")
                messages = sse_messages(body) if ctype.startswith("text/event-stream") else [json.loads(body)]
        except Exception as exc:
            if request_id is not None:
                error = {"code": -32603, "message": f"gateway {self.url} unreachable: {exc}"}
                await self.emit({"jsonrpc": "2.0", "id": request_id, "error": error})
            else:
                _say(f"notification not delivered: {exc}")
            return
        for msg in messages:
            await self.emit(msg)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=1 << 24)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        tasks: set[asyncio.Task[None]] = set()
        while line := await reader.readline():
            if line.strip():
                task = asyncio.create_task(self.relay(line))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        await self.client.aclose()
        return 0


def _drain(stream: Any) -> None:
    for _ in stream:
        pass


def port_forward(args: argparse.Namespace) -> tuple[subprocess.Popen[bytes], str]:
    """``kubectl port-forward svc/SVC :PORT``; returns the process and the local MCP URL."""
    cmd = [args.kubectl, "port-forward", "-n", args.namespace, f"svc/{args.service}", f":{args.service_port}"]
    if args.context:
        cmd += ["--context", args.context]
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=sys.stderr)
    except FileNotFoundError:
        raise SystemExit(
            _fail(f"{args.kubectl} not found; pass --url to reach the gateway directly")
        ) from None
    assert proc.stdout is not None
    for line in proc.stdout:
        if m := FORWARDING_RE.search(line):
            # keep draining ("Handling connection for ...") so kubectl never blocks on a full pipe
            threading.Thread(target=_drain, args=(proc.stdout,), daemon=True).start()
            return proc, f"http://127.0.0.1:{m.group(1).decode()}/mcp"
    proc.wait()
    raise SystemExit(
        _fail(f"kubectl port-forward to svc/{args.service} in {args.namespace} exited ({proc.returncode})")
    )


def _fail(message: str) -> int:
    _say(f"error: {message}")
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        token = Token.from_settings(args.token_file)
    except TokenError as exc:
        return _fail(str(exc))
    proc = None
    url = args.url
    if not url:
        proc, url = port_forward(args)
        _say(f"port-forward to svc/{args.service} in {args.namespace}: {url}")
    try:
        return asyncio.run(Bridge(url, token, args.timeout).run())
    except KeyboardInterrupt:
        return 130
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
