"""A real, throw-away Kubernetes control plane for the e2e tier: etcd + kube-apiserver on 127.0.0.1.

Random free ports, a temp dir, our own CA (so clients verify TLS), static tokens for an admin, a
user with no permissions, and a few service accounts, and a private KUBECONFIG (never the user's).
The kube-apiserver binary comes from tests/e2e/apiserver_build.sh (see docs/kubernetes.md).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "apiserver_build.sh"
ADMIN_TOKEN = "e2e-admin-token"
VIEWER_TOKEN = "e2e-viewer-token"  # authenticated, no RBAC grants at all
SRE_TOKEN = "e2e-sre-token"  # user sre-alice in group `sre`: gets only what docs/kubernetes.md binds
# Service accounts the test kubelet can "mount" into pods: (namespace, name).
SERVICE_ACCOUNTS = [
    ("default", "default"),
    ("k8s-gpu-mcp", "default"),
    ("k8s-gpu-mcp", "k8s-gpu-mcp"),
    ("node-ops-e2e", "operator"),  # tests/e2e/test_node_ops_e2e.py binds it to the shipped operator roles
]


def cache_dir() -> Path:
    """Where apiserver_build.sh caches the binary."""
    env = os.environ.get("K8S_GPU_MCP_E2E_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "k8s-gpu-mcp"


def find_apiserver() -> Path | None:
    """The cached kube-apiserver (or K8S_GPU_MCP_KUBE_APISERVER), if built."""
    env = os.environ.get("K8S_GPU_MCP_KUBE_APISERVER")
    path = Path(env) if env else cache_dir() / "kube-apiserver"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def sa_token(namespace: str, name: str) -> str:
    """The static bearer token that authenticates as system:serviceaccount:NS:NAME."""
    return f"e2e-sa-{namespace}-{name}"


def free_port() -> int:
    """A TCP port that was free a moment ago on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_ca(d: Path) -> None:
    """ca.crt/ca.key in d."""
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "3", "-subj", "/CN=k8s-gpu-mcp-e2e-ca", cwd=d,
    )  # fmt: skip


def make_cert(d: Path, name: str, sans: str) -> tuple[Path, Path]:
    """name.crt/name.key signed by d/ca.crt, with subjectAltName sans."""
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
             "-subj", f"/CN={name}", cwd=d)  # fmt: skip
    (d / f"{name}.ext").write_text(f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\n")
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", f"{name}.crt", "-days", "3", "-extfile", f"{name}.ext", cwd=d)  # fmt: skip
    return d / f"{name}.crt", d / f"{name}.key"


@dataclass
class Cluster:
    """A running control plane. `kubectl()` always uses the private kubeconfig."""

    workdir: Path
    port: int
    kubeconfig: Path
    ca_file: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def server(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """Process environment for kubectl and the launcher: private KUBECONFIG, no proxies."""
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["KUBECONFIG"] = str(self.kubeconfig)
        env["HOME"] = str(self.workdir / "home")
        return env

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this cluster and return the completed process (text)."""
        proc = subprocess.run(
            ["kubectl", *args], input=input, capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
        return proc

    def apply(self, *objs: dict[str, Any]) -> None:
        """kubectl apply the given objects."""
        self.kubectl(
            "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objs)})
        )

    def get_json(self, *args: str) -> dict[str, Any]:
        """kubectl get ... -o json, parsed."""
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def write_kubeconfig(self, path: Path, token: str, namespace: str | None = None) -> Path:
        """A kubeconfig for one bearer token (what the test kubelet hands to pods, for example)."""
        ctx: dict[str, Any] = {"cluster": "e2e", "user": "u"}
        if namespace:
            ctx["namespace"] = namespace
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "e2e",
                    "cluster": {"server": self.server, "certificate-authority": str(self.ca_file)},
                }
            ],
            "users": [{"name": "u", "user": {"token": token}}],
            "contexts": [{"name": "e2e", "context": ctx}],
            "current-context": "e2e",
        }
        path.write_text(json.dumps(cfg))
        return path

    def stop(self) -> None:
        for p in reversed(self.procs):
            if p.poll() is None:
                p.terminate()
        for p in reversed(self.procs):
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _wait_ready(url: str, ca: Path, token: str, procs: list[subprocess.Popen[bytes]], timeout: float) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited with {p.returncode} before {url} was ready")
        req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=2) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError) as e:
            last = str(e)
        time.sleep(0.2)
    raise TimeoutError(f"{url} not ready after {timeout}s: {last}")


def start_cluster(workdir: Path, apiserver: Path, timeout: float = 90) -> Cluster:
    """Start etcd and kube-apiserver under workdir and wait until /readyz answers and `default` exists."""
    if shutil.which("etcd") is None:
        raise RuntimeError("etcd not found: run tests/e2e/apiserver_build.sh (installs etcd-server)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "home").mkdir(exist_ok=True)
    pki = workdir / "pki"
    pki.mkdir()
    make_ca(pki)
    crt, key = make_cert(
        pki, "apiserver", "IP:127.0.0.1,DNS:localhost,IP:10.96.0.1,DNS:kubernetes.default.svc"
    )
    _openssl("genrsa", "-out", "sa.key", "2048", cwd=pki)
    _openssl("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    rows = [
        f"{ADMIN_TOKEN},admin,admin-uid,system:masters",
        f"{VIEWER_TOKEN},viewer,viewer-uid",
        f"{SRE_TOKEN},sre-alice,sre-uid,sre",
    ]
    for ns, name in SERVICE_ACCOUNTS:
        groups = f"system:serviceaccounts,system:serviceaccounts:{ns}"
        rows.append(f'{sa_token(ns, name)},system:serviceaccount:{ns}:{name},sa-{ns}-{name}-uid,"{groups}"')
    (pki / "tokens.csv").write_text("\n".join(rows) + "\n")

    client_port, peer_port, port = free_port(), free_port(), free_port()
    logs = workdir / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    etcd_url = f"http://127.0.0.1:{client_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    procs.append(
        subprocess.Popen(
            ["etcd", "--name", "e2e", "--data-dir", str(workdir / "etcd"), "--listen-client-urls", etcd_url,
             "--advertise-client-urls", etcd_url, "--listen-peer-urls", peer_url,
             "--initial-advertise-peer-urls", peer_url, "--initial-cluster", f"e2e={peer_url}",
             "--unsafe-no-fsync", "--log-level", "warn"],
            stdout=subprocess.DEVNULL, stderr=open(logs / "etcd.log", "wb"),
        )
    )  # fmt: skip
    procs.append(
        subprocess.Popen(
            [str(apiserver), f"--etcd-servers={etcd_url}", "--bind-address=127.0.0.1", f"--secure-port={port}",
             f"--tls-cert-file={crt}", f"--tls-private-key-file={key}", f"--client-ca-file={pki / 'ca.crt'}",
             "--insecure-port=0", f"--token-auth-file={pki / 'tokens.csv'}", "--authorization-mode=RBAC",
             "--service-account-issuer=https://kubernetes.default.svc", f"--service-account-key-file={pki / 'sa.pub'}",
             f"--service-account-signing-key-file={pki / 'sa.key'}", "--service-cluster-ip-range=10.96.0.0/16",
             "--disable-admission-plugins=ServiceAccount", "--advertise-address=127.0.0.1",
             "--allow-privileged=true", "--endpoint-reconciler-type=none",
             "--kubelet-preferred-address-types=InternalIP", f"--cert-dir={workdir / 'certs'}", "--v=1"],
            stdout=subprocess.DEVNULL, stderr=open(logs / "kube-apiserver.log", "wb"),
        )
    )  # fmt: skip
    kubeconfig = workdir / "kubeconfig"
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority": str(pki / "ca.crt"),
                },
            }
        ],
        "users": [
            {"name": "admin", "user": {"token": ADMIN_TOKEN}},
            {"name": "viewer", "user": {"token": VIEWER_TOKEN}},
            {"name": "sre", "user": {"token": SRE_TOKEN}},
        ],
        "contexts": [
            {"name": "admin", "context": {"cluster": "e2e", "user": "admin"}},
            {"name": "viewer", "context": {"cluster": "e2e", "user": "viewer"}},
            {"name": "sre", "context": {"cluster": "e2e", "user": "sre"}},
        ],
        "current-context": "admin",
    }
    kubeconfig.write_text(json.dumps(cfg))
    cluster = Cluster(workdir=workdir, port=port, kubeconfig=kubeconfig, ca_file=pki / "ca.crt", procs=procs)
    try:
        _wait_ready(f"{cluster.server}/readyz", pki / "ca.crt", ADMIN_TOKEN, procs, timeout)
        _wait_ready(f"{cluster.server}/api/v1/namespaces/default", pki / "ca.crt", ADMIN_TOKEN, procs, 30)
    except BaseException:
        cluster.stop()
        raise
    return cluster
