"""A real GPU-less node for the e2e tier: containerd + runc + the real kubelet (v1.20.2, built with the
kube-apiserver by tests/e2e/apiserver_build.sh), registered with the tier's API server.

Everything lives under one work dir with private sockets, so it never meets a system containerd or
the test kubelet. ``stop()`` undoes what the kubelet does to the host: pods and containers, the
daemons, mounts under the work dir, KUBE-* iptables chains, the sysctls it sets, and its cgroups.
Settings this sandbox needs (see docs/kubernetes.md, "The real-node tier"): the cgroupfs driver,
``restrict_oom_score_adj`` (root here has no CAP_SYS_RESOURCE), no swap check, a loopback-only CNI
(hostNetwork pods only; a node without any CNI config stays NotReady), and the node IP on eth0, not
loopback (the API server must reach the kubelet for attach).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.e2e.cluster import ADMIN_TOKEN, Cluster, cache_dir, free_port

KUBELET_SYSCTLS = ("vm.overcommit_memory", "kernel.panic", "kernel.panic_on_oops")
CGROUP_ROOT = Path("/sys/fs/cgroup")
GPU_LABELS = {  # what GPU Feature Discovery would label the node with (the agent runs the mock fleet)
    "nvidia.com/gpu.present": "true",
    "nvidia.com/gpu.count": "8",
    "nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3",
}


def realnode_cache() -> Path:
    return cache_dir() / "realnode"


def find_kubelet() -> Path | None:
    path = cache_dir() / "kubelet"
    return path if path.is_file() else None


def node_ip() -> str:
    """The first global IPv4 address (the kubelet refuses a loopback node IP)."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True,
                         text=True, check=True).stdout  # fmt: skip
    match = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", out)
    if not match:
        raise RuntimeError("no global IPv4 address for the kubelet's node IP")
    return match.group(1)


def _sh(*cmd: str, check: bool = False, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=timeout)


def _kube_chains() -> set[tuple[str, str]]:
    chains: set[tuple[str, str]] = set()
    for table in ("filter", "nat", "mangle"):
        out = _sh("iptables", "-t", table, "-S").stdout
        chains |= {(table, m) for m in re.findall(r"^-N (KUBE-\S+)", out, flags=re.M)}
    return chains


def _kube_cgroups() -> set[Path]:
    found: set[Path] = set()
    for controller in CGROUP_ROOT.iterdir() if CGROUP_ROOT.is_dir() else ():
        for name in ("kubepods", "k8s.io"):
            if (controller / name).is_dir():
                found.add(controller / name)
    return found


@dataclass
class RealNode:
    name: str
    workdir: Path
    cluster: Cluster
    ip: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    saved_sysctls: dict[str, str] = field(default_factory=dict)
    chains_before: set[tuple[str, str]] = field(default_factory=set)
    cgroups_before: set[Path] = field(default_factory=set)

    @property
    def socket(self) -> Path:
        return self.workdir / "ctrd" / "containerd.sock"

    def ctr(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return _sh("ctr", "-a", str(self.socket), "-n", "k8s.io", *args, timeout=timeout)

    def image_size(self, ref: str) -> int | None:
        """Bytes of the unpacked image as containerd reports it."""
        out = self.ctr("images", "ls").stdout
        for line in out.splitlines():
            if line.startswith(ref + " "):
                m = re.search(r"\s([\d.]+) (KiB|MiB|GiB)\s", line)
                if m:
                    return int(
                        float(m.group(1)) * {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[m.group(2)]
                    )
        return None

    def start(self, images: list[Path], timeout: float = 120) -> None:
        kubelet = find_kubelet()
        if kubelet is None:
            raise RuntimeError("kubelet not built: run tests/e2e/apiserver_build.sh")
        self.saved_sysctls = {k: _sh("sysctl", "-n", k).stdout.strip() for k in KUBELET_SYSCTLS}
        self.chains_before, self.cgroups_before = _kube_chains(), _kube_cgroups()
        logs = self.workdir / "logs"
        for d in ("ctrd/root", "ctrd/state", "cni/net.d", "cni/bin", "kubelet-root", "logs"):
            (self.workdir / d).mkdir(parents=True, exist_ok=True)
        (self.workdir / "cni/bin/loopback").symlink_to("/usr/lib/cni/loopback")
        (self.workdir / "cni/net.d/10-lo-only.conflist").write_text(
            json.dumps({"cniVersion": "0.4.0", "name": "lo-only", "plugins": [{"type": "loopback"}]})
        )
        config = _sh("containerd", "config", "default", check=True).stdout
        for old, new in (
            (r'^root = ".*"', f'root = "{self.workdir}/ctrd/root"'),
            (r'^state = ".*"', f'state = "{self.workdir}/ctrd/state"'),
            (r'address = "/run/containerd/containerd.sock"', f'address = "{self.socket}"'),
            (r'conf_dir = "/etc/cni/net.d"', f'conf_dir = "{self.workdir}/cni/net.d"'),
            (r'bin_dir = "/opt/cni/bin"', f'bin_dir = "{self.workdir}/cni/bin"'),
            (r"restrict_oom_score_adj = false", "restrict_oom_score_adj = true"),
        ):
            config, n = re.subn(old, new, config, flags=re.M)
            assert n, f"containerd config default has no {old!r}"
        (self.workdir / "containerd.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(self.workdir / "containerd.toml")])
        self._wait(lambda: self.ctr("version").returncode == 0, 30, "containerd")
        for tar in images:
            proc = self.ctr("images", "import", str(tar), timeout=300)
            if proc.returncode != 0:
                raise RuntimeError(f"ctr images import {tar}: {proc.stderr}")
        kubeconfig = self.cluster.write_kubeconfig(self.workdir / "kubeconfig", ADMIN_TOKEN)
        port, healthz = free_port(), free_port()
        (self.workdir / "kubelet-config.yaml").write_text(
            json.dumps(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "address": self.ip,
                    "port": port,
                    "readOnlyPort": 0,
                    "healthzBindAddress": "127.0.0.1",
                    "healthzPort": healthz,
                    "cgroupDriver": "cgroupfs",
                    "failSwapOn": False,
                    "makeIPTablesUtilChains": False,
                    "authentication": {"anonymous": {"enabled": True}, "webhook": {"enabled": False}},
                    "authorization": {"mode": "AlwaysAllow"},
                    "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                                     "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
                    "imageGCHighThresholdPercent": 100,
                    "imageGCLowThresholdPercent": 99,
                    "serializeImagePulls": False,
                    "resolvConf": "/etc/resolv.conf",
                }
            )
        )  # fmt: skip
        labels = ",".join(f"{k}={v}" for k, v in GPU_LABELS.items())
        self._spawn(
            "kubelet",
            [str(kubelet), f"--config={self.workdir / 'kubelet-config.yaml'}", f"--kubeconfig={kubeconfig}",
             "--container-runtime=remote", f"--container-runtime-endpoint=unix://{self.socket}",
             f"--root-dir={self.workdir / 'kubelet-root'}", f"--cert-dir={self.workdir / 'kubelet-root' / 'pki'}",
             f"--hostname-override={self.name}", f"--node-ip={self.ip}", f"--node-labels={labels}", "--v=1"],
        )  # fmt: skip
        self._wait(self.ready, timeout, f"node {self.name} Ready (log: {logs / 'kubelet.log'})")

    def ready(self) -> bool:
        proc = self.cluster.kubectl(
            "get", "node", self.name, "-o", 'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )  # fmt: skip
        return proc.stdout.strip() == "True"

    def _spawn(self, name: str, argv: list[str]) -> None:
        log = open(self.workdir / "logs" / f"{name}.log", "wb")  # noqa: SIM115 - the daemon owns it
        self.procs[name] = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait(self, ok: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ok():
                return
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}) while waiting for {what}")
            time.sleep(0.2)
        raise TimeoutError(f"{what}: not after {timeout}s")

    def pods(self) -> list[dict[str, Any]]:
        out = self.cluster.get_json("pods", "-A", "--field-selector", f"spec.nodeName={self.name}")
        return list(out["items"])

    def leftovers(self) -> dict[str, object]:
        """What this node left on the host after stop(): all of it should be empty."""
        return {
            "processes": [n for n, p in self.procs.items() if p.poll() is None],
            "mounts": self._mounts(),
            "iptables_chains": sorted(_kube_chains() - self.chains_before),
            "cgroups": sorted(str(p) for p in _kube_cgroups() - self.cgroups_before),
            "sysctls": {
                k: v for k, v in self.saved_sysctls.items() if _sh("sysctl", "-n", k).stdout.strip() != v
            },
        }

    def _mounts(self) -> list[str]:
        prefix = str(self.workdir)
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return [p for p in points if p == prefix or p.startswith(prefix + "/")]

    def stop(self) -> None:
        self.cluster.kubectl("delete", "pods", "-A", "--field-selector", f"spec.nodeName={self.name}",
                             "--grace-period=0", "--force", check=False, timeout=30)  # fmt: skip
        self._terminate("kubelet")
        if "containerd" in self.procs and self.procs["containerd"].poll() is None:
            for _ in range(2):
                for task in self.ctr("tasks", "ls", "-q").stdout.split():
                    self.ctr("tasks", "kill", "-s", "KILL", task)
                time.sleep(0.5)
                for task in self.ctr("tasks", "ls", "-q").stdout.split():
                    self.ctr("tasks", "rm", "-f", task)
            for container in self.ctr("containers", "ls", "-q").stdout.split():
                self.ctr("containers", "rm", container)
        self._terminate("containerd")
        for point in sorted(self._mounts(), key=len, reverse=True):
            _sh("umount", "-l", point)
        for table, chain in sorted(_kube_chains() - self.chains_before):
            rules = _sh("iptables", "-t", table, "-S").stdout.splitlines()
            for rule in rules:
                if rule.startswith("-A ") and f"-j {chain}" in rule:
                    _sh("iptables", "-t", table, *(["-D"] + rule.split()[1:]))
            _sh("iptables", "-t", table, "-F", chain)
        for table, chain in sorted(_kube_chains() - self.chains_before):
            _sh("iptables", "-t", table, "-X", chain)
        for key, value in self.saved_sysctls.items():
            if value:
                _sh("sysctl", "-q", "-w", f"{key}={value}")
        for top in sorted(_kube_cgroups() - self.cgroups_before):
            # cgroup v1 dirs always hold control files; an rmdir of one with no tasks still works
            dirs = sorted((p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True)
            for d in [*dirs, top]:
                try:
                    d.rmdir()
                except OSError:
                    pass
        self.cluster.kubectl("delete", "node", self.name, "--wait=false", check=False)
        shutil.rmtree(self.workdir / "ctrd", ignore_errors=True)

    def _terminate(self, name: str) -> None:
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
