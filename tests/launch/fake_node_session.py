#!/usr/bin/env python3
"""Stands in for `k8s-gpu-mcp connect node/NAME` in the cluster-session unit tests.

argv: NODE STATE_DIR [ok|operator|xid48|image-pull]. ok: runs the real agent (mock T4) on our stdin/stdout, like
the syringe relaying to the pod; records NODE.opened, and NODE.deleted when it ends (stdin EOF or
SIGTERM), as the syringe deletes its pod. image-pull: says what the syringe says and exits 5.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

node, state, scenario = sys.argv[1], Path(sys.argv[2]), (sys.argv[3:] or ["ok"])[0]
with (state / f"{node}.opened").open("a") as f:
    f.write(f"{time.monotonic()}\n")
if scenario == "image-pull":
    sys.stderr.write(
        f"k8s-gpu-mcp connect: error: image 'bad' cannot be pulled on node {node!r} (ErrImagePull): no such host\n"
    )
    (state / f"{node}.deleted").write_text("never created")
    sys.exit(5)

args = ["--profile", "t4"]
if scenario == "operator":  # H100 GPU 1's sysfs reset file in a test tree: nothing real is touched
    trees = state / f"{node}-trees"
    (trees / "sys/bus/pci/devices/0000:64:00.0").mkdir(parents=True, exist_ok=True)
    (trees / "sys/bus/pci/devices/0000:64:00.0/reset").write_text("")
    (trees / "host").mkdir(exist_ok=True)
    args = ["--profile", "h100-sxm5-80gb-x8", "--mode", "operator", "--sys-root", str(trees / "sys"),
            "--host-root", str(trees / "host")]  # fmt: skip
if scenario == "xid48":  # the e2e tier's XID 48 scenario on the H100 profile
    args = ["--profile", "h100-sxm5-80gb-x8", "--scenario",
            str(Path(__file__).resolve().parents[1] / "e2e" / "scenarios" / "xid48.yaml")]  # fmt: skip
agent = subprocess.Popen([sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode=mock", "--log-level", "WARNING",
                          *args], env={**os.environ, "NODE_NAME": node})  # fmt: skip


def stop(*_: object) -> None:
    agent.terminate()  # the main thread's wait() returns; no wait() here (Popen's lock is held)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, stop)
agent.wait()
with (state / f"{node}.deleted").open("a") as f:
    f.write(f"{time.monotonic()}\n")
