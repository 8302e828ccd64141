"""How a GPU gets reset from inside a debug pod: the host's nvidia-smi, else a sysfs PCI reset.

``nvidia-smi --gpu-reset -i <bus id>`` is preferred: it checks for users of the GPU itself and
drives the driver's own reset sequence. The host binary is run by path (no chroot) with
``LD_LIBRARY_PATH`` pointing at the host's library directories, stdin and stdout never inherited
(stdout is the MCP wire). Without it, ``<sys_root>/bus/pci/devices/<bdf>/reset`` takes "1": a PCI
function reset by the kernel, which knows nothing about CUDA contexts.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

NVIDIA_SMI_PATHS = ("usr/bin/nvidia-smi", "usr/local/nvidia/bin/nvidia-smi", "usr/sbin/nvidia-smi")
HOST_LIB_DIRS = (
    "usr/lib/x86_64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "usr/lib64",
    "usr/lib",
    "usr/local/nvidia/lib64",
)
RESET_TIMEOUT_S = 120


@dataclass
class ResetMethod:
    """How a GPU reset would run here: the kind, the target, the command."""

    kind: str  # "nvidia-smi" | "sysfs"
    target: str  # the binary or the sysfs file
    command: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def describe(self) -> str:
        if self.kind == "nvidia-smi":
            lib = self.env.get("LD_LIBRARY_PATH", "")
            return f"LD_LIBRARY_PATH={lib} {' '.join(self.command)}"
        return f"echo 1 > {self.target}"


def sysfs_bdf(nvml_bus_id: str) -> str:
    """NVML ``00000000:53:00.0`` -> sysfs ``0000:53:00.0``."""
    domain, bus, rest = nvml_bus_id.strip().split(":")
    device, _, function = rest.partition(".")
    return f"{int(domain, 16):04x}:{int(bus, 16):02x}:{int(device, 16):02x}.{int(function or '0', 16)}"


def find_method(host_root: str, sys_root: str, nvml_bus_id: str) -> tuple[ResetMethod | None, list[str]]:
    """The reset method this node offers, and what was looked at (for the report)."""
    looked: list[str] = []
    for rel in NVIDIA_SMI_PATHS:
        binary = Path(host_root) / rel
        if binary.is_file() and os.access(binary, os.X_OK):
            libs = [str(Path(host_root) / d) for d in HOST_LIB_DIRS if (Path(host_root) / d).is_dir()]
            env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": os.pathsep.join(libs)}
            command = [str(binary), "--gpu-reset", "-i", nvml_bus_id]
            return ResetMethod("nvidia-smi", str(binary), command, env), looked
        looked.append(f"no executable {binary}")
    reset = Path(sys_root) / "bus" / "pci" / "devices" / sysfs_bdf(nvml_bus_id) / "reset"
    if reset.exists():
        return ResetMethod("sysfs", str(reset)), looked
    looked.append(f"no {reset}")
    return None, looked


def run_reset(method: ResetMethod) -> tuple[bool, str]:
    """Carry out the reset; (succeeded, what the method said)."""
    if method.kind == "nvidia-smi":
        try:
            proc = subprocess.run(
                method.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env=method.env,
                timeout=RESET_TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, f"{type(exc).__name__}: {exc}"
        output = proc.stdout.decode(errors="replace").strip()[-4000:]
        return proc.returncode == 0, f"exit {proc.returncode}: {output}"
    try:
        with open(method.target, "w") as f:
            f.write("1")
    except OSError as exc:
        return False, f"writing {method.target}: {exc}"
    return True, f"wrote 1 to {method.target}"
