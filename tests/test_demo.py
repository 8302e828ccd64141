"""make demo tells the product's story: XID 48 found, and the answer is to drain the node."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_demo_ends_with_drain_the_node():
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "Why is the training job on node-5 stuck?" in out
    assert "GPU 0 [critical]: XID 48 (Double Bit ECC Error)" in out
    assert "MOCK data" in out
    assert "Drain the node" in out.split("Assistant:")[-1]
