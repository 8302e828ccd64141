"""A test kubelet (test code only, never shipped): enough of a kubelet for `kubectl debug node/... -i`.

It watches pods bound to its node and:
- image `local` (or `local/...`): runs the container's command as a local subprocess and marks the pod
  Running, then Succeeded/Failed when it exits;
- image on a `*.invalid` registry: reports ErrImagePull, then ImagePullBackOff (pods stay Pending);
- any other image: a simulated workload, Running with no process.
Deleting a pod kills its processes and removes the object (grace period 0), like the real kubelet.

Attach follows the real kubelet on stdin: a container with `stdin: true` but no `stdinOnce` (what
`kubectl debug -i` creates) never sees EOF; the attach ends when the client closes its stdin, not
when the container exits, and the exit code is not passed back. Only with `stdinOnce` does the
client's EOF close the container's stdin and the attach report the exit code.

It serves, over TLS on 127.0.0.1 (the node's daemonEndpoints port), what the API server proxies to:
`/attach/{ns}/{pod}/{container}` as a websocket with the `v5.channel.k8s.io`/`v4.channel.k8s.io`
channel protocol (frame = 1 channel byte + payload; 0 stdin, 1 stdout, 2 stderr, 3 status, 255 close),
and `/containerLogs/{ns}/{pod}/{container}`.

Pods get an emulated in-cluster service account: KUBERNETES_SERVICE_HOST/PORT and a token directory
(exported as K8S_GPU_MCP_SERVICE_ACCOUNT_DIR, since /var/run/secrets is not ours to write) holding the
static token for system:serviceaccount:NS:SA, so RBAC in the e2e cluster applies to the agent.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import signal
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.e2e.cluster import SERVICE_ACCOUNTS, Cluster, free_port, make_cert, sa_token

log = logging.getLogger("e2e.kubelet")
PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"]
STDIN, STDOUT, STDERR, STATUS, CLOSE = 0, 1, 2, 3, 255


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def image_kind(image: str) -> str:
    """'local' (run it), 'pull-error' (registry *.invalid) or 'simulated'."""
    if image == "local" or image.startswith("local/"):
        return "local"
    host = image.split("/", 1)[0] if "/" in image else ""
    if host.split(":", 1)[0].endswith(".invalid"):
        return "pull-error"
    return "simulated"


@dataclass
class Container:
    """One container of one pod, and its local process if it has one."""

    namespace: str
    pod: str
    name: str
    image: str
    stdin_once: bool = False
    proc: asyncio.subprocess.Process | None = None
    log: bytearray = field(default_factory=bytearray)
    sessions: list[asyncio.Queue[tuple[int, bytes] | None]] = field(default_factory=list)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    exit_code: int | None = None
    attached_once: bool = False
    started_at: str = field(default_factory=_now)


class TestKubelet:
    """Run with start()/stop(); everything happens on one asyncio loop in a daemon thread."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, cluster: Cluster, node: str, workdir: Path, path_prepend: list[str] | None = None
    ) -> None:
        self.cluster = cluster
        self.node = node
        self.workdir = workdir
        self.path_prepend = path_prepend or []
        self.port = free_port()
        self.containers: dict[tuple[str, str, str], Container] = {}
        self.known: set[tuple[str, str]] = set()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"kubelet-{node}", daemon=True)
        self._tasks: list[asyncio.Task[Any]] = []
        self._server: Any = None
        self._client: Any = None

    # lifecycle ---------------------------------------------------------------------------------
    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = self.cluster.ca_file.parent
        crt, key = make_cert(pki, f"kubelet-{self.node}", "IP:127.0.0.1,DNS:localhost")
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ssl.load_cert_chain(crt, key)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    async def _start(self) -> None:
        import httpx2
        from lightkube import AsyncClient, KubeConfig
        from websockets.asyncio.server import serve

        cfg = KubeConfig.from_file(str(self.cluster.kubeconfig)).get("admin")
        self._client = AsyncClient(cfg, timeout=httpx2.Timeout(10.0, read=90.0), trust_env=False)
        self._server = await serve(
            self._attach,
            "127.0.0.1",
            self.port,
            ssl=self._ssl,
            subprotocols=PROTOCOLS,  # type: ignore[arg-type]
            process_request=self._process_request,
            compression=None,
            max_size=None,
            ping_interval=None,
        )
        self._tasks.append(asyncio.create_task(self._watch()))

    async def _stop(self) -> None:
        for t in self._tasks:
            t.cancel()
        for c in list(self.containers.values()):
            await self._kill(c)
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._client is not None:
            await self._client.close()

    # pod lifecycle -------------------------------------------------------------------------------
    async def _watch(self) -> None:
        from lightkube.resources.core_v1 import Pod
        from lightkube.types import on_error_retry

        while True:
            try:
                async for typ, pod in self._client.watch(
                    Pod,
                    namespace="*",
                    fields={"spec.nodeName": self.node},
                    server_timeout=60,
                    on_error=on_error_retry,
                ):
                    try:
                        await self._on_pod(typ, pod)
                    except Exception:
                        log.exception("kubelet: handling %s %s failed", typ, pod.metadata.name)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("kubelet: watch failed; restarting")
                await asyncio.sleep(0.5)

    async def _on_pod(self, typ: str, pod: Any) -> None:
        from lightkube import ApiError
        from lightkube.resources.core_v1 import Pod

        ns, name = pod.metadata.namespace, pod.metadata.name
        key = (ns, name)
        if typ == "DELETED":
            await self._forget(key)
            return
        if pod.metadata.deletionTimestamp is not None:
            await self._forget(key)
            with contextlib.suppress(ApiError):
                await self._client.delete(Pod, name, namespace=ns, grace_period=0)
            return
        if key in self.known or (pod.status and pod.status.phase in ("Succeeded", "Failed")):
            return
        self.known.add(key)
        await self._run_pod(pod)

    async def _forget(self, key: tuple[str, str]) -> None:
        self.known.discard(key)
        for ckey in [k for k in self.containers if k[:2] == key]:
            await self._kill(self.containers.pop(ckey))

    async def _kill(self, c: Container) -> None:
        if c.proc is None or c.proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            c.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(c.proc.wait(), 3)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                c.proc.kill()
            await c.proc.wait()

    async def _run_pod(self, pod: Any) -> None:
        ns, name = pod.metadata.namespace, pod.metadata.name
        containers = pod.spec.containers
        kinds = {c.name: image_kind(c.image) for c in containers}
        if "pull-error" in kinds.values():
            await self._report_pull_error(pod, kinds)
            return
        poddir = self.workdir / f"{ns}_{name}"
        poddir.mkdir(parents=True, exist_ok=True)
        for spec in containers:
            c = Container(ns, name, spec.name, spec.image, stdin_once=bool(spec.stdinOnce))
            self.containers[(ns, name, spec.name)] = c
            argv = list(spec.command or []) + list(spec.args or [])
            if kinds[spec.name] == "local" and argv:
                env = self._env(pod, spec, poddir)
                c.proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.PIPE if spec.stdin else asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.PIPE,
                    env=env,
                    cwd=poddir,
                    start_new_session=True,
                )
                asyncio.create_task(self._supervise(pod, c))
        await self._patch_status(pod, phase="Running")

    def _env(self, pod: Any, spec: Any, poddir: Path) -> dict[str, str]:
        path = os.pathsep.join([*self.path_prepend, os.environ.get("PATH", "/usr/bin:/bin")])
        env = {"PATH": path, "HOME": str(poddir), "LANG": "C.UTF-8", "HOSTNAME": self.node}
        for k in ("COVERAGE_PROCESS_START", "PYTHONPATH"):
            if k in os.environ:
                env[k] = os.environ[k]
        env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
        env["KUBERNETES_SERVICE_PORT"] = str(self.cluster.port)
        sa = pod.spec.serviceAccountName or "default"
        ns = pod.metadata.namespace
        if (ns, sa) in SERVICE_ACCOUNTS and pod.spec.automountServiceAccountToken is not False:
            sadir = poddir / "serviceaccount"
            sadir.mkdir(exist_ok=True)
            (sadir / "token").write_text(sa_token(ns, sa))
            (sadir / "namespace").write_text(ns)
            (sadir / "ca.crt").write_bytes(self.cluster.ca_file.read_bytes())
            env["K8S_GPU_MCP_SERVICE_ACCOUNT_DIR"] = str(sadir)
        fields = {"spec.nodeName": self.node, "metadata.name": pod.metadata.name, "metadata.namespace": ns}
        for e in spec.env or []:
            if e.value is not None:
                env[e.name] = e.value
            elif e.valueFrom is not None and e.valueFrom.fieldRef is not None:
                env[e.name] = fields.get(e.valueFrom.fieldRef.fieldPath, "")
        return env

    async def _supervise(self, pod: Any, c: Container) -> None:
        assert c.proc is not None and c.proc.stdout is not None and c.proc.stderr is not None
        await asyncio.gather(self._pump(c, c.proc.stdout, STDOUT), self._pump(c, c.proc.stderr, STDERR))
        c.exit_code = await c.proc.wait()
        c.done.set()
        for q in list(c.sessions):
            q.put_nowait(None)
        if (c.namespace, c.pod, c.name) in self.containers:
            with contextlib.suppress(Exception):
                await self._patch_status(pod, phase="Succeeded" if c.exit_code == 0 else "Failed", exited=c)

    async def _pump(self, c: Container, stream: asyncio.StreamReader, channel: int) -> None:
        while chunk := await stream.read(65536):
            c.log += chunk
            for q in list(c.sessions):
                q.put_nowait((channel, chunk))

    async def _report_pull_error(self, pod: Any, kinds: dict[str, str]) -> None:
        for reason in ("ErrImagePull", "ImagePullBackOff"):
            statuses = []
            for spec in pod.spec.containers:
                state: dict[str, Any] = {"waiting": {"reason": "ContainerCreating"}}
                if kinds[spec.name] == "pull-error":
                    msg = (
                        f'rpc error: code = Unknown desc = failed to pull image "{spec.image}": no such host'
                    )
                    if reason == "ImagePullBackOff":
                        msg = f'Back-off pulling image "{spec.image}"'
                    state = {"waiting": {"reason": reason, "message": msg}}
                statuses.append(self._cstatus(spec, state, ready=False))
            await self._patch(pod, {"phase": "Pending", "hostIP": "127.0.0.1", "containerStatuses": statuses})
            await asyncio.sleep(1.0)

    @staticmethod
    def _cstatus(spec: Any, state: dict[str, Any], ready: bool) -> dict[str, Any]:
        return {
            "name": spec.name,
            "image": spec.image,
            "imageID": "",
            "ready": ready,
            "started": ready,
            "restartCount": 0,
            "state": state,
        }

    async def _patch_status(self, pod: Any, phase: str, exited: Container | None = None) -> None:
        now = _now()
        statuses = []
        for spec in pod.spec.containers:
            c = self.containers.get((pod.metadata.namespace, pod.metadata.name, spec.name))
            started = c.started_at if c else now
            if phase == "Running":
                state: dict[str, Any] = {"running": {"startedAt": started}}
            else:
                code = c.exit_code if c and c.exit_code is not None else 0
                state = {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": started,
                        "finishedAt": now,
                    }
                }
            statuses.append(self._cstatus(spec, state, ready=phase == "Running"))
        ready = "True" if phase == "Running" else "False"
        conditions = [
            {"type": t, "status": s, "lastTransitionTime": now}
            for t, s in (
                ("Initialized", "True"),
                ("Ready", ready),
                ("ContainersReady", ready),
                ("PodScheduled", "True"),
            )
        ]
        await self._patch(
            pod,
            {
                "phase": phase,
                "hostIP": "127.0.0.1",
                "podIP": "127.0.0.1",
                "startTime": now,
                "conditions": conditions,
                "containerStatuses": statuses,
            },
        )

    async def _patch(self, pod: Any, status: dict[str, Any]) -> None:
        from lightkube.resources.core_v1 import Pod
        from lightkube.types import PatchType

        await self._client.patch(
            Pod.Status,
            pod.metadata.name,
            {"status": status},
            namespace=pod.metadata.namespace,
            patch_type=PatchType.MERGE,
        )

    # HTTP endpoints --------------------------------------------------------------------------------
    def _process_request(self, connection: Any, request: Any) -> Any:
        from http import HTTPStatus

        parts = urlsplit(request.path).path.strip("/").split("/")
        if parts[0] == "containerLogs" and len(parts) == 4:
            c = self.containers.get((parts[1], parts[2], parts[3]))
            if c is None:
                return connection.respond(
                    HTTPStatus.NOT_FOUND, f"container {'/'.join(parts[1:])} not found\n"
                )
            resp = connection.respond(HTTPStatus.OK, "")
            resp.body = bytes(c.log)
            del resp.headers["Content-Length"]
            resp.headers["Content-Length"] = str(len(resp.body))
            return resp
        if parts[0] == "healthz":
            return connection.respond(HTTPStatus.OK, "ok")
        if parts[0] != "attach":
            return connection.respond(HTTPStatus.NOT_FOUND, f"test kubelet does not serve {request.path}\n")
        if "websocket" not in request.headers.get("Upgrade", "").lower():
            return connection.respond(
                HTTPStatus.BAD_REQUEST, "test kubelet serves attach over websockets only\n"
            )
        return None

    async def _attach(self, ws: Any) -> None:
        parts = urlsplit(ws.request.path).path.strip("/").split("/")
        query = parse_qs(urlsplit(ws.request.path).query)
        ns, pod, name = parts[1], parts[2], parts[-1]
        c = self.containers.get((ns, pod, name))
        if c is None or c.proc is None:
            why = "not found" if c is None else "has no process (simulated workload)"
            await self._send_status(ws, 1, f"container {ns}/{pod}/{name} {why}")
            return
        want_out = query.get("output", ["0"])[0] in ("1", "true")
        want_err = query.get("error", ["0"])[0] in ("1", "true")
        q: asyncio.Queue[tuple[int, bytes] | None] = asyncio.Queue()
        first = not c.attached_once
        c.attached_once = True
        if not c.done.is_set():
            c.sessions.append(q)
        else:
            q.put_nowait(None)
        reader = asyncio.create_task(self._read_stdin(ws, c))
        try:
            while (item := await self._next_output(q, reader, c)) is not None:
                channel, data = item
                if (channel == STDOUT and want_out) or (channel == STDERR and want_err):
                    await ws.send(bytes([channel]) + data)
            if c.stdin_once:
                await self._send_status(ws, c.exit_code or 0, None)
            else:
                # the real kubelet (kubectl debug: stdin without stdinOnce) ends the attach only when
                # the client's stdin closes, and passes no exit code back
                await reader
                await self._send_status(ws, 0, None)
        except Exception:
            log.debug("attach session ended", exc_info=True)
        finally:
            reader.cancel()
            if q in c.sessions:
                c.sessions.remove(q)
            if first and c.stdin_once:
                self._close_stdin(c)
            with contextlib.suppress(Exception):
                await ws.close()

    @staticmethod
    async def _next_output(
        q: asyncio.Queue[tuple[int, bytes] | None], reader: asyncio.Task[None], c: Container
    ) -> tuple[int, bytes] | None:
        """The next output frame; None when the output has ended, or (stdin without stdinOnce, as
        kubectl debug creates it) when the client closed its stdin: that ends the attach."""
        if c.stdin_once:
            return await q.get()
        getter = asyncio.ensure_future(q.get())
        await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
        if getter.done():
            return getter.result()
        getter.cancel()
        return None

    async def _read_stdin(self, ws: Any, c: Container) -> None:
        try:
            async for msg in ws:
                data = msg if isinstance(msg, bytes) else msg.encode()
                if not data:
                    continue
                if data[0] == STDIN and c.proc and c.proc.stdin and not c.proc.stdin.is_closing():
                    c.proc.stdin.write(data[1:])
                    await c.proc.stdin.drain()
                elif data[0] == CLOSE and data[1:2] == bytes([STDIN]):
                    if c.stdin_once:
                        self._close_stdin(c)
                    return  # without stdinOnce the container's stdin stays open: no EOF reaches it
        except Exception:
            log.debug("attach reader ended", exc_info=True)
        finally:
            if c.stdin_once:
                self._close_stdin(c)

    @staticmethod
    def _close_stdin(c: Container) -> None:
        if c.proc and c.proc.stdin and not c.proc.stdin.is_closing():
            c.proc.stdin.close()

    @staticmethod
    async def _send_status(ws: Any, code: int, message: str | None) -> None:
        if code == 0 and message is None:
            status: dict[str, Any] = {"metadata": {}, "status": "Success"}
        else:
            status = {
                "metadata": {},
                "status": "Failure",
                "message": message or f"command terminated with non-zero exit code: exit status {code}",
                "reason": "NonZeroExitCode",
                "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
            }
        with contextlib.suppress(Exception):
            await ws.send(bytes([STATUS]) + json.dumps(status).encode())
