#!/usr/bin/env python3
"""Stands in for `k8s-gpu-mcp connect node/NAME` in the cluster-session unit tests.

argv: NODE STATE_DIR [ok|image-pull]. ok: runs the real agent (mock T4) on our stdin/stdout, like
the syringe relaying to the pod; records NODE.opened, and NODE.deleted when it ends (stdin EOF or
SIGTERM), as the syringe deletes its pod. image-pull: says what the syringe says and exits 5.
"""

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

agent = subprocess.Popen([sys.executable, "-m", "k8s_gpu_mcp", "serve", "--nvml-mode=mock", "--profile", "t4",
                          "--log-level", "WARNING"])  # fmt: skip


def stop(*_: object) -> None:
    agent.terminate()  # the main thread's wait() returns; no wait() here (Popen's lock is held)


for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, stop)
agent.wait()
with (state / f"{node}.deleted").open("a") as f:
    f.write(f"{time.monotonic()}\n")
