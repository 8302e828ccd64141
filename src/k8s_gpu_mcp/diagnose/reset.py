"""GPU reset preconditions: pure rules over the GPU's reset state and what the host offers.

Each precondition is ok (True), not met (False) or unknown (None, with why); a blocking one that is
not True refuses the reset. Unknown is never taken as met: a process list NVML could not read blocks
the reset as surely as a listed process does.
"""

from __future__ import annotations

from dataclasses import dataclass

from k8s_gpu_mcp.gpu.readings import ResetState

PEERS_NOT_CHECKED = (
    "not checked (out of scope): processes on other GPUs using this GPU's memory over NVLink/P2P, and "
    "NVSwitch/Fabric Manager requirements on HGX systems; nvidia-smi refuses when it sees them, the "
    "sysfs reset does not"
)


@dataclass(frozen=True)
class Precondition:
    """One GPU reset precondition: whether it holds, whether it blocks, and why."""

    name: str
    ok: bool | None  # None: it could not be checked
    blocking: bool  # the reset is refused while this is not ok
    detail: str


def preconditions(
    state: ResetState, method: str | None, looked: list[str], mock_real_paths: list[str] | None
) -> list[Precondition]:
    """The checks, in the order they are reported.

    ``method``: how the reset would run (described), None when no method was found (``looked``: where
    one was looked for). ``mock_real_paths``: on the mock fleet, which of the host paths the reset
    would use are the machine's real ones (``/``, ``/sys``, ``/host``); None on real NVML."""
    out: list[Precondition] = []
    why = state.unavailable
    if state.lost:
        out.append(Precondition("gpu_reachable", False, True, f"NVML: {why.get('*')}"))
    out.append(_processes(state))
    out.append(_mig(state))
    persistence = state.persistence_mode
    out.append(
        Precondition(
            "persistence_mode",
            True if persistence is not None else None,
            False,
            f"persistence mode {'on' if persistence else 'off'}: reported only; nvidia-smi refuses, with a "
            "message shown in 'output', when the driver needs it changed"
            if persistence is not None
            else f"unreadable: {why.get('persistence_mode')}",
        )
    )
    out.append(
        Precondition(
            "reset_method",
            method is not None,
            True,
            method if method is not None else f"no reset method: {'; '.join(looked)}",
        )
    )
    if method is not None and mock_real_paths is not None:
        real = mock_real_paths
        out.append(
            Precondition(
                "mock_safety",
                not real,
                True,
                f"mock backend with real host paths {real}: the reset would touch real hardware; point "
                "--sys-root and --host-root at a test tree"
                if real
                else "mock backend on a test tree",
            )
        )
    out.append(Precondition("peers", None, False, PEERS_NOT_CHECKED))
    return out


def _processes(state: ResetState) -> Precondition:
    pids = state.process_pids
    if pids is None:
        why = state.unavailable
        detail = "; ".join(v for k, v in why.items() if "processes" in k or k == "*") or "unreadable"
        return Precondition("no_processes", None, True, f"cannot list processes: {detail}")
    listed = f"NVML lists pids {pids}: kill them first (kill_gpu_process)"
    return Precondition("no_processes", not pids, True, listed if pids else "none listed")


def _mig(state: ResetState) -> Precondition:
    mig = state.mig_mode_current
    why = state.unavailable.get("mig_mode_current", "")
    if mig is None and why.startswith("NotSupported"):
        return Precondition("mig", True, True, "this GPU has no MIG")
    if mig is None:
        return Precondition("mig", None, True, f"MIG mode unreadable: {why}")
    detail = (
        "MIG enabled: destroy its compute and GPU instances first (nvidia-smi mig -dci; -dgi)"
        if mig
        else "MIG disabled"
    )
    pending = state.mig_mode_pending
    if pending is not None and pending != mig:
        detail += f"; pending MIG mode {'enabled' if pending else 'disabled'} takes effect with this reset"
    return Precondition("mig", not mig, True, detail)


def blocking(checks: list[Precondition]) -> list[Precondition]:
    """The checks that refuse the reset: blocking and not proven ok."""
    return [c for c in checks if c.blocking and c.ok is not True]
