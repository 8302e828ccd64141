"""``k8s-gpu-mcp connect node/NAME``: inject the agent into a node with ``kubectl debug`` and relay MCP.

The MCP client runs this locally (``{"command": "k8s-gpu-mcp", "args": ["connect", "node/gpu-node-5"]}``);
it starts ``kubectl debug node/NAME --profile=sysadmin -i --quiet -- k8s-gpu-mcp serve ...``, relays
stdin/stdout byte for byte (stdout carries nothing else), forwards stderr, watches the debugger pod
for image-pull errors and start-up timeouts, and deletes the pod when the session ends.
Nothing stays in the cluster when no one is asking:

- the client going away ends the session: stdin is relayed by this process, and at its EOF kubectl's
  stdin is closed and, if the agent has not ended ``EOF_GRACE_S`` later, kubectl is stopped (the
  kubectl stream does not always carry the EOF to the agent); a broken stdout pipe ends it too;
- a signal at any point (before the pod exists included) ends the session and deletes the pod;
- a SIGKILL of this process is covered by a watcher process: it holds the read end of a pipe that
  only this process can write to, and when that pipe closes without a "done" line, it stops kubectl
  and deletes the session's pod (at most ``ORPHAN_RETRIES`` looks over ~10 s for one still being made).
"""

from __future__ import annotations

import argparse
import array
import fcntl
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from k8s_gpu_mcp import __version__
from k8s_gpu_mcp.cli import add_options
from k8s_gpu_mcp.config import SESSION_ENV, Mode, option

IMAGE_REPOSITORY = "ghcr.io/k8s-gpu-mcp/k8s-gpu-mcp"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"
DEBUG_CONTAINER = "debugger"  # the container name kubectl debug node/... gives its pod
DEFAULT_TIMEOUT_S = 120.0
POLL_S = 0.5
EOF_GRACE_S = 5.0  # after the client's EOF, how long the agent may take to end by itself
ORPHAN_RETRIES = 5
ORPHAN_RETRY_S = 2.0
# A node name is a DNS-1123 subdomain (lower case, digits, '-', '.'; at most 253): nothing that
# kubectl could read as a flag, nor a path.
NODE_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
# serve flags the launcher sets itself; after `--` they (or an abbreviation argparse would expand to
# them) are refused rather than appended, so `-- --mode=operator` cannot beat `--mode read-only`
FIXED_SERVE_FLAGS = ("--mode", "--host-root", "--transport")

# Exit codes besides the agent's own (passed through from kubectl).
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NODE_NOT_FOUND = 3
EXIT_FORBIDDEN = 4
EXIT_IMAGE_PULL = 5
EXIT_TIMEOUT = 6
EXIT_UNREACHABLE = 7

IMAGE_ERRORS = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"}
START_ERRORS = {"CreateContainerConfigError", "CreateContainerError", "RunContainerError", "CrashLoopBackOff"}
UNREACHABLE_HINTS = ("Unable to connect to the server", "connection refused", "no such host", "i/o timeout")
LOGS_FALLBACK = b"falling back to streaming logs"


class LaunchError(Exception):
    """A failure with a message for the user and the exit code that goes with it."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class PodOptions:
    """The debugger-pod options `connect node/NAME` and `connect cluster` share, each declared once
    (flag, help, env var ``K8S_GPU_MCP_<FIELD>`` unless named, default)."""

    image: str = option(DEFAULT_IMAGE, "--image", "agent image", "pod")
    namespace: str | None = option(
        None, "--namespace", "namespace for the debugger pods (default: the context's)", "pod", short="-n"
    )
    context: str | None = option(None, "--context", "kubeconfig context", "pod")
    kubeconfig: str | None = option(
        None, "--kubeconfig", "kubeconfig file (default: KUBECONFIG or ~/.kube/config)", "pod"
    )
    mode: str = option("read-only", "--mode", "agent mode", "pod", Mode)
    timeout: float = option(
        DEFAULT_TIMEOUT_S, "--timeout", "seconds a debugger pod may take to run", "pod",
        env="K8S_GPU_MCP_CONNECT_TIMEOUT",
    )  # fmt: skip
    kubectl: str = option("kubectl", "--kubectl", "kubectl binary", "pod")


@dataclass
class Options(PodOptions):
    """Parsed ``connect`` arguments."""

    node: str = ""
    preflight: bool = True
    as_root: bool = True
    serve_args: list[str] = field(default_factory=list)


def build_parser(prog: str = "k8s-gpu-mcp connect") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description="Start the agent on a Kubernetes node with `kubectl debug` and speak MCP to it over stdio. "
        "Arguments after `--` are appended to `k8s-gpu-mcp serve` in the pod.",
        epilog=f"Exit codes: {EXIT_NODE_NOT_FOUND} node not found, {EXIT_FORBIDDEN} RBAC forbids it, "
        f"{EXIT_IMAGE_PULL} image cannot be pulled, {EXIT_TIMEOUT} pod not running in time, "
        f"{EXIT_UNREACHABLE} API server unreachable or kubectl missing; otherwise the agent's own.",
    )
    p.add_argument("target", metavar="node/NAME", help="the node to inject the agent into")
    add_options(p, PodOptions, "pod", resolved=True)
    p.add_argument(
        "--run-as-image-user",
        dest="as_root",
        action="store_false",
        help="keep the image's non-root user instead of root (then /dev/kmsg, and so kernel-log XIDs, "
        "and GPU reset are unavailable; NVML still works where /dev/nvidia* are world-readable)",
    )
    p.add_argument(
        "--no-preflight",
        dest="preflight",
        action="store_false",
        help="skip the node and RBAC checks (saves a few hundred ms)",
    )
    return p  # fmt: skip


def split_serve_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the launcher's arguments, the ones after the first ``--`` for `k8s-gpu-mcp serve` in the pod)."""
    argv = list(argv)
    if "--" not in argv:
        return argv, []
    cut = argv.index("--")
    return argv[:cut], argv[cut + 1 :]


def parse_args(argv: Sequence[str], prog: str = "k8s-gpu-mcp connect") -> Options:
    """Split at the first ``--`` (serve args) and parse the rest."""
    argv, extra = split_serve_args(argv)
    ns = build_parser(prog).parse_args(argv)
    kind, _, name = ns.target.rpartition("/")
    if kind not in ("", "node", "nodes", "no") or not name:
        build_parser(prog).error(f"target must be node/NAME, got {ns.target[:300]!r}")
    if len(name) > 253 or not NODE_NAME_RE.match(name):
        build_parser(prog).error(
            f"not a Kubernetes node name: {name[:80]!r} (lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit, at most 253 characters)"
        )
    if bad := fixed_flag_override(extra):
        build_parser(prog).error(
            f"{bad[:80]!r} after `--` would override a flag the launcher sets ({', '.join(FIXED_SERVE_FLAGS)}); "
            "use --mode before `--`"
        )
    return Options(
        node=name,
        image=ns.image,
        namespace=ns.namespace,
        context=ns.context,
        kubeconfig=ns.kubeconfig,
        mode=ns.mode,
        timeout=ns.timeout,
        kubectl=ns.kubectl,
        preflight=ns.preflight,
        as_root=ns.as_root,
        serve_args=extra,
    )


def fixed_flag_override(serve_args: Sequence[str]) -> str | None:
    """The first serve arg that names (or abbreviates) a flag the launcher fixes, else None."""
    for arg in serve_args:
        name = arg.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2 and any(f.startswith(name) for f in FIXED_SERVE_FLAGS):
            return arg
    return None


class Kubectl:
    """kubectl with the session's --kubeconfig/--context (and -n where a namespace applies)."""

    def __init__(self, opts: PodOptions) -> None:
        self.opts = opts
        path = shutil.which(opts.kubectl)
        if path is None:
            raise LaunchError(
                f"kubectl not found ({opts.kubectl!r}); install kubectl or pass --kubectl PATH",
                EXIT_UNREACHABLE,
            )
        self.base = [path]
        if opts.kubeconfig:
            self.base += ["--kubeconfig", opts.kubeconfig]
        if opts.context:
            self.base += ["--context", opts.context]
        self.ns = ["-n", opts.namespace] if opts.namespace else []

    def argv(self, *args: str, namespaced: bool = False) -> list[str]:
        return [*self.base, *(self.ns if namespaced else []), *args]

    def popen(self, *args: str, namespaced: bool = False) -> subprocess.Popen[str]:
        return subprocess.Popen(
            self.argv(*args, namespaced=namespaced),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(
        self, *args: str, namespaced: bool = False, timeout: float = 30, detached: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """``detached``: in its own session, so a signal to our process group (an MCP client ending
        its server with killpg, a Ctrl-C) cannot cut it short; used for the pod's deletion."""
        return subprocess.run(
            self.argv(*args, namespaced=namespaced),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=detached,
        )


def _where(opts: PodOptions) -> str:
    return f"namespace {opts.namespace!r}" if opts.namespace else "the context's default namespace"


def classify_kubectl_error(stderr: str, opts: PodOptions, node: str | None = None) -> LaunchError:
    """Turn kubectl's stderr into a LaunchError with a clear message and exit code."""
    node = node if node is not None else getattr(opts, "node", "")
    text = stderr.strip()
    last = text.splitlines()[-1] if text else "(no output)"
    if any(h in text for h in UNREACHABLE_HINTS):
        return LaunchError(f"cannot reach the Kubernetes API server: {last}", EXIT_UNREACHABLE)
    if "NotFound" in text and "nodes" in text:
        return LaunchError(f"node {node!r} does not exist: {last}", EXIT_NODE_NOT_FOUND)
    if "unknown flag: --custom" in text:
        return LaunchError(
            "this kubectl has no `debug --custom` (needs kubectl >= 1.31) to run the agent as root; "
            "upgrade kubectl, or pass --run-as-image-user (no kernel-log XIDs, no GPU reset)",
            EXIT_UNREACHABLE,
        )
    if "PodSecurity" in text:
        return LaunchError(
            f"{_where(opts)} enforces Pod Security and rejects the privileged debugger pod: {last}. "
            "Use a namespace labelled pod-security.kubernetes.io/enforce=privileged "
            "(deploy/kubernetes/base creates 'k8s-gpu-mcp'): --namespace k8s-gpu-mcp",
            EXIT_FORBIDDEN,
        )
    if "forbidden" in text.lower():
        return LaunchError(f"RBAC forbids it: {last}", EXIT_FORBIDDEN)
    return LaunchError(f"kubectl failed: {last}")


RBAC_CHECKS = ("create pods", "create pods/attach", "delete pods")  # what a debugger pod session needs


def start_checks(k: Kubectl, node: str | None) -> dict[str, subprocess.Popen[str]]:
    """Start the pre-flight checks (the node, if named, and the session's RBAC), all at once. They only
    ask (``kubectl auth can-i`` stores nothing), so ``connect cluster`` starts them as it starts
    serving and reads them when the first node needs a session."""
    checks = {"node": k.popen("get", "node", node, "-o", "name")} if node else {}
    for name in RBAC_CHECKS:
        verb, resource = name.split(" ", 1)
        checks[name] = k.popen("auth", "can-i", verb, resource, namespaced=True)
    return checks


def preflight(k: Kubectl, opts: Options) -> list[str]:
    """Check the node and the RBAC this session needs, all at once. Returns warnings; raises LaunchError."""
    return finish_checks(start_checks(k, opts.node), opts, opts.node)


def finish_checks(
    checks: dict[str, subprocess.Popen[str]], opts: PodOptions, node: str = "", timeout_s: float = 60
) -> list[str]:
    """The checks' answers: warnings, or the LaunchError that names what is missing."""
    deadline = time.monotonic() + timeout_s
    try:
        results = {
            name: (p.communicate(timeout=max(0.1, deadline - time.monotonic())), p.returncode)
            for name, p in checks.items()
        }
    except subprocess.TimeoutExpired:
        for p in checks.values():
            p.kill()
            p.communicate()
        raise LaunchError(
            f"kubectl did not answer the pre-flight checks within {timeout_s:g}s: is the API server reachable?",
            EXIT_UNREACHABLE,
        ) from None
    if "node" in results:
        (_, node_err), node_rc = results.pop("node")
        if node_rc != 0:
            if "forbidden" in node_err.lower():
                raise LaunchError(
                    f"RBAC forbids 'get' on 'nodes' (node {node!r}): {node_err.strip()}", EXIT_FORBIDDEN
                )
            raise classify_kubectl_error(node_err, opts, node)
    warnings = []
    for name, ((out, err), _rc) in results.items():
        answer = out.strip()
        if answer == "yes":
            continue
        verb, resource = name.split(" ", 1)
        if any(h in err for h in UNREACHABLE_HINTS):
            raise LaunchError(f"cannot reach the Kubernetes API server: {err.strip()}", EXIT_UNREACHABLE)
        message = f"RBAC forbids {verb!r} on {resource!r} in {_where(opts)}"
        if name == "delete pods":
            warnings.append(f"{message}: the debugger pod cannot be removed afterwards; delete it yourself")
            continue
        raise LaunchError(
            f"{message}; kubectl debug node/... needs it (see docs/kubernetes.md, RBAC)", EXIT_FORBIDDEN
        )
    return warnings


def nvml_mode_flag(serve_args: Sequence[str]) -> str | None:
    """Real NVML in the pod, never a silent fallback; mock only when a profile/scenario asks for it.
    None when the serve args choose ``--nvml-mode`` themselves (given once, not overridden)."""
    if any(a.split("=", 1)[0] == "--nvml-mode" for a in serve_args):
        return None
    asks_mock = any(a.split("=", 1)[0] in ("--profile", "--scenario") for a in serve_args)
    return "--nvml-mode=mock" if asks_mock else "--nvml-mode=real"


ROOT_PROFILE = {"securityContext": {"runAsUser": 0, "runAsGroup": 0, "runAsNonRoot": False}}


def debug_argv(k: Kubectl, opts: Options, session: str, custom: str | None = None) -> list[str]:
    """The kubectl debug command line that starts the agent on the node.

    ``custom`` is a file with a partial container spec (``kubectl debug --custom``, kubectl >= 1.31)
    that makes the container run as root on top of the sysadmin profile: the image's default user is
    non-root, but /dev/kmsg (XIDs) and GPU reset need root.
    """
    serve = [
        "k8s-gpu-mcp",
        "serve",
        *filter(None, [nvml_mode_flag(opts.serve_args)]),
        f"--mode={opts.mode}",
        "--host-root=/host",
    ]
    serve += opts.serve_args
    return k.argv(
        "debug",
        f"node/{opts.node}",
        f"--image={opts.image}",
        "--profile=sysadmin",
        "-i",
        "--quiet",
        f"--env={SESSION_ENV}={session}",
        f"--env=NODE_NAME={opts.node}",
        *([f"--custom={custom}"] if custom else []),
        "--",
        *serve,
        namespaced=True,
    )


def _container_status(pod: dict[str, Any]) -> dict[str, Any]:
    for s in pod.get("status", {}).get("containerStatuses") or []:
        if s.get("name") == DEBUG_CONTAINER:
            return s
    return {}


def is_session_pod(pod: dict[str, Any], node: str, session: str) -> bool:
    """A pod kubectl debug created for this node and this session (by the session env marker)."""
    meta, spec = pod.get("metadata", {}), pod.get("spec", {})
    if spec.get("nodeName") != node or not meta.get("name", "").startswith("node-debugger-"):
        return False
    return any(
        e.get("name") == SESSION_ENV and e.get("value") == session
        for c in spec.get("containers", [])
        for e in c.get("env") or []
    )


def pod_problem(pod: dict[str, Any], opts: Options) -> LaunchError | None:
    """An unrecoverable start-up state of the debugger pod, or None while it may still come up."""
    waiting = _container_status(pod).get("state", {}).get("waiting") or {}
    reason, message = waiting.get("reason", ""), waiting.get("message", "")
    if reason in IMAGE_ERRORS:
        return LaunchError(
            f"image {opts.image!r} cannot be pulled on node {opts.node!r} ({reason}): {message or 'no details'}. "
            "Check the tag, the registry's reachability from the node and imagePullSecrets, or pass --image",
            EXIT_IMAGE_PULL,
        )
    if reason in START_ERRORS:
        return LaunchError(f"the agent container cannot start on node {opts.node!r} ({reason}): {message}")
    return None


def pod_summary(pod: dict[str, Any] | None) -> str:
    """One line on where a pod is stuck, for the timeout message."""
    if pod is None:
        return "the debugger pod was never seen"
    status = pod.get("status", {})
    waiting = _container_status(pod).get("state", {}).get("waiting") or {}
    parts = [f"pod {pod['metadata']['name']} is {status.get('phase', 'Pending')}"]
    if waiting:
        parts.append(f"container waiting: {waiting.get('reason')} {waiting.get('message', '')}".strip())
    for cond in status.get("conditions") or []:
        if cond.get("status") == "False" and cond.get("message"):
            parts.append(f"{cond['type']}: {cond['message']}")
    return "; ".join(parts)


class Session:
    """One kubectl debug session: relay, watch the pod, clean up."""

    def __init__(self, opts: Options, k: Kubectl) -> None:
        self.opts = opts
        self.k = k
        self.session = uuid.uuid4().hex[:16]
        self.proc: subprocess.Popen[bytes] | None = None
        self.pod_name: str | None = None
        self.pod_namespace: str | None = opts.namespace
        self.error: LaunchError | None = None
        self.stopping = threading.Event()
        self.running = threading.Event()
        self.relay_lock = threading.Lock()
        self.stdout_budget: int | None = None  # bytes still to relay once kubectl falls back to logs
        self.stderr_tail: deque[str] = deque(maxlen=20)
        self.lock = threading.Lock()
        self.stopping_by_signal = False
        self.watcher: subprocess.Popen[bytes] | None = None
        self.watcher_pipe: int | None = None  # write end: only this process holds it

    # threads -----------------------------------------------------------------------------------
    def _relay_stdout(self) -> None:
        """Copy kubectl's stdout to ours. Reads happen under ``relay_lock`` so that the stderr thread can
        count, at the moment kubectl announces its log fallback, exactly which bytes are still MCP."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        out = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLHUP)
        while True:
            poller.poll()
            with self.relay_lock:
                budget = self.stdout_budget
                data = os.read(fd, 65536 if not budget else min(65536, budget))
                if not data:
                    return
                if budget is not None:
                    data = data[:budget]
                    self.stdout_budget = budget - len(data)
            if not data:
                continue  # the log replay: drained and dropped, never relayed
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(out, view) :]
            except OSError:  # BrokenPipeError included: the client is gone
                self.stop()
                return

    def _cut_stdout(self) -> None:
        """kubectl gave up on attach and will replay the container's logs on stdout: relay only the
        bytes already in the pipe (the end of the MCP stream), drop everything after."""
        assert self.proc is not None and self.proc.stdout is not None
        with self.relay_lock:
            pending = array.array("i", [0])
            try:
                fcntl.ioctl(self.proc.stdout.fileno(), termios.FIONREAD, pending)
            except OSError:
                pending[0] = 0
            self.stdout_budget = pending[0]

    def _relay_stdin(self) -> None:
        """Copy our stdin to kubectl's. At EOF (the client is gone or done) close kubectl's stdin,
        then give the agent EOF_GRACE_S to end before stopping kubectl, so the session ends even
        when the kubectl stream does not pass the EOF on to the agent."""
        assert self.proc is not None and self.proc.stdin is not None
        sink = self.proc.stdin.fileno()
        try:
            while True:
                data = os.read(sys.stdin.fileno(), 65536)
                if not data:
                    break
                view = memoryview(data)
                while view:
                    view = view[os.write(sink, view) :]
        except OSError:  # kubectl ended (EPIPE), or stdin is unreadable
            pass
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        if self.proc.poll() is None and not self.stopping.wait(EOF_GRACE_S) and self.proc.poll() is None:
            _say(f"the client closed stdin and the agent did not end within {EOF_GRACE_S:g}s: stopping")
            self.stop()

    def _relay_stderr(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in iter(self.proc.stderr.readline, b""):
            if LOGS_FALLBACK in line and self.stdout_budget is None:
                self._cut_stdout()
            self.stderr_tail.append(line.decode(errors="replace"))
            try:
                sys.stderr.buffer.write(line)
                sys.stderr.buffer.flush()
            except (OSError, ValueError):
                pass

    def _find_pod(self) -> dict[str, Any] | None:
        res = self.k.run(
            "get",
            "pods",
            "--field-selector",
            f"spec.nodeName={self.opts.node}",
            "-o",
            "json",
            namespaced=True,
        )
        if res.returncode != 0:
            return None
        for pod in json.loads(res.stdout).get("items", []):
            if is_session_pod(pod, self.opts.node, self.session):
                return pod
        return None

    def _watch_pod(self) -> None:
        deadline = time.monotonic() + self.opts.timeout
        pod: dict[str, Any] | None = None
        while not self.stopping.wait(POLL_S):
            try:
                found = self._find_pod()
            except (subprocess.SubprocessError, json.JSONDecodeError, OSError):
                found = None
            if found is not None:
                pod = found
                with self.lock:
                    self.pod_name = pod["metadata"]["name"]
                    self.pod_namespace = pod["metadata"].get("namespace")
                state = _container_status(pod).get("state", {})
                if state.get("running") or state.get("terminated"):
                    self.running.set()
                    return
                problem = pod_problem(pod, self.opts)
                if problem is not None:
                    self._fail(problem)
                    return
            if time.monotonic() > deadline:
                self._fail(
                    LaunchError(
                        f"the agent pod did not start running on node {self.opts.node!r} within "
                        f"{self.opts.timeout:g}s ({pod_summary(pod)}); raise --timeout or check the node",
                        EXIT_TIMEOUT,
                    )
                )
                return

    def _fail(self, error: LaunchError) -> None:
        if self.error is None:
            self.error = error
        self.stop()

    def stop(self, *_: Any) -> None:
        """Ask kubectl to end (signal handler, broken pipe, pod failure)."""
        self.stopping.set()
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.terminate()
            except ProcessLookupError:
                pass

    # main ----------------------------------------------------------------------------------------
    def run(self) -> int:
        with tempfile.TemporaryDirectory(prefix="k8s-gpu-mcp-") as tmp:
            custom = None
            if self.opts.as_root:
                custom = os.path.join(tmp, "root.json")
                with open(custom, "w") as f:
                    json.dump(ROOT_PROFILE, f)
            return self._run(debug_argv(self.k, self.opts, self.session, custom))

    def _run(self, argv: list[str]) -> int:
        self._start_watcher()
        try:
            if self.stopping.is_set():  # a signal came before kubectl started: nothing to start
                self.stopping_by_signal = True
                return 128 + signal.SIGTERM
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
            )
            self._tell_watcher(f"pid {self.proc.pid}")
            if self.stopping.is_set():  # a signal while kubectl was being started
                self.stop()
            threads = [
                threading.Thread(target=self._relay_stdout, name="stdout", daemon=True),
                threading.Thread(target=self._relay_stderr, name="stderr", daemon=True),
                threading.Thread(target=self._watch_pod, name="watch", daemon=True),
                threading.Thread(target=self._relay_stdin, name="stdin", daemon=True),
            ]
            for t in threads:
                t.start()
            try:
                rc = self.proc.wait()
            finally:
                self.stopping.set()
                threads[0].join(timeout=5)
                threads[1].join(timeout=5)
                self.cleanup()
        finally:
            self._tell_watcher("done")
            self._close_watcher()
        if self.error is not None:
            raise self.error
        if rc != 0 and not self.running.is_set() and not self.stopping_by_signal:
            error = classify_kubectl_error("".join(self.stderr_tail), self.opts)
            if error.code != EXIT_ERROR:  # a recognised cause; otherwise the agent's own exit code
                raise error
        return rc if rc >= 0 else 128 - rc

    # the orphan watcher ------------------------------------------------------------------------------
    def _start_watcher(self) -> None:
        """A process in its own session that cleans up if this one dies without doing so (SIGKILL)."""
        read_end, write_end = os.pipe()  # both non-inheritable: kubectl never holds the write end
        spec = {
            "fd": read_end,
            "kubectl": self.k.argv(namespaced=True),
            "node": self.opts.node,
            "session": self.session,
        }
        try:
            self.watcher = subprocess.Popen(
                [sys.executable, "-m", "k8s_gpu_mcp.launch.syringe", "--orphan-watcher", json.dumps(spec)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # stdout is the MCP wire
                pass_fds=(read_end,),
                start_new_session=True,  # a Ctrl-C to our process group must not take it too
                # it only waits, and its start-up would compete with kubectl and the pod's agent
                # for the CPU on the first answer's path
                preexec_fn=lambda: os.nice(10),
            )
            self.watcher_pipe = write_end
        except OSError as exc:
            os.close(write_end)
            _say(f"warning: no orphan watcher ({exc}): if this process is killed, delete the pod yourself")
        finally:
            os.close(read_end)

    def _tell_watcher(self, line: str) -> None:
        if self.watcher_pipe is not None:
            try:
                os.write(self.watcher_pipe, f"{line}\n".encode())
            except OSError:
                pass

    def _close_watcher(self) -> None:
        if self.watcher_pipe is not None:
            os.close(self.watcher_pipe)
            self.watcher_pipe = None
        # not waited for: it reads "done" and exits by itself, and an MCP client gives its server
        # only ~2 s after closing stdin before it signals the whole process group

    def cleanup(self) -> None:
        """Delete the debugger pod this session created (found now if the watcher had not yet)."""
        with self.lock:
            name, ns = self.pod_name, self.pod_namespace
        if name is None:
            try:
                pod = self._find_pod()
            except (subprocess.SubprocessError, json.JSONDecodeError, OSError):
                pod = None
            if pod is None:
                return
            name, ns = pod["metadata"]["name"], pod["metadata"].get("namespace")
        args = ["delete", "pod", name, "--wait=false", "--ignore-not-found"]
        if ns:
            args += ["-n", ns]
        try:
            res = self.k.run(*args, timeout=30, detached=True)
        except subprocess.SubprocessError as exc:
            _say(f"warning: could not delete debugger pod {name}: {exc}")
            return
        if res.returncode != 0:
            _say(f"warning: could not delete debugger pod {name}: {res.stderr.strip()}")


def orphan_watcher(spec_json: str) -> int:
    """Wait on the launcher's pipe; if it closes without "done", stop kubectl and delete the pod."""
    spec = json.loads(spec_json)
    kubectl_pid, data = None, b""
    with os.fdopen(spec["fd"], "rb", buffering=0) as pipe:
        while chunk := pipe.read(4096):
            data += chunk
            for line in data.splitlines():
                if line.startswith(b"pid "):
                    kubectl_pid = int(line[4:])
            if b"done\n" in data:
                return 0
            data = data[-64:]
    if kubectl_pid is not None:
        try:
            os.kill(kubectl_pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
    base, node, session = spec["kubectl"], spec["node"], spec["session"]
    for attempt in range(ORPHAN_RETRIES):
        try:
            res = subprocess.run(
                [*base, "get", "pods", "--field-selector", f"spec.nodeName={node}", "-o", "json"],
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=30,
            )
            pods = json.loads(res.stdout).get("items", []) if res.returncode == 0 else []
        except (subprocess.SubprocessError, OSError, ValueError):
            pods = []
        mine = [p for p in pods if is_session_pod(p, node, session)]
        for pod in mine:
            name, ns = pod["metadata"]["name"], pod["metadata"].get("namespace")
            args = ["delete", "pod", name, "--wait=false", "--ignore-not-found", *(["-n", ns] if ns else [])]
            try:
                subprocess.run([*base, *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
                _say(f"the launcher died: deleted its debugger pod {name}")
            except (subprocess.SubprocessError, OSError) as exc:
                _say(f"the launcher died and its debugger pod {name} could not be deleted: {exc}")
        if mine:
            return 0
        if attempt < ORPHAN_RETRIES - 1:
            time.sleep(ORPHAN_RETRY_S)  # the pod may still be being created
    return 0


def _say(message: str) -> None:
    try:
        sys.stderr.write(f"k8s-gpu-mcp connect: {message}\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def main(argv: Sequence[str] | None = None, prog: str = "k8s-gpu-mcp connect") -> int:
    """Entry point of ``k8s-gpu-mcp connect`` (argv excludes ``connect``)."""
    opts = parse_args(sys.argv[1:] if argv is None else argv, prog)
    session: Session | None = None

    def on_signal(signum: int, _frame: Any) -> None:
        if session is not None:
            session.stopping_by_signal = True
            session.stop()
        else:
            raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        k = Kubectl(opts)
        if opts.preflight:
            for warning in preflight(k, opts):
                _say(f"warning: {warning}")
        session = Session(opts, k)
        return session.run()
    except LaunchError as exc:
        _say(f"error: {exc}")
        return exc.code
    except KeyboardInterrupt:
        return 130


def plugin_main() -> int:
    """``kubectl gpu-mcp node/NAME ...`` or ``kubectl gpu-mcp cluster ...`` (the kubectl-gpu_mcp plugin)."""
    if sys.argv[1:2] == ["cluster"]:
        from k8s_gpu_mcp.launch import cluster_cli

        return cluster_cli.main(sys.argv[1:], prog="kubectl gpu-mcp")
    return main(sys.argv[1:], prog="kubectl gpu-mcp")


if __name__ == "__main__" and sys.argv[1:2] == ["--orphan-watcher"]:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the terminal going away is the launcher's business
    sys.exit(orphan_watcher(sys.argv[2]))
