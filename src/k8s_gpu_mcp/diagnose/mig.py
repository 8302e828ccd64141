"""MIG verdicts, pure: the GPU's MIG mode and each MIG device, as health reasons (component ``mig``).

NVML keeps one ECC counter per MIG device: volatile uncorrectable SRAM errors since the last reset
(the NVML reference, nvmlDeviceGetMemoryErrorCounter: "per instance information is currently only
supported for non-DRAM uncorrectable volatile errors"). A non-zero count names the instance whose
work saw the error; NVIDIA's XID catalog says what follows (XID 94: contained, restart the
application; XID 95: uncontained, reset the GPU). Row-remapper queries are not answered while MIG
is enabled, so that part of the memory verdict is unknown in MIG mode, never healthy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from k8s_gpu_mcp.diagnose.health import Reason
from k8s_gpu_mcp.gpu.mig import MigDevice, MigState

SRAM_ACTION = (
    "Check this GPU's XIDs (analyze_xid_errors): a contained error (XID 94) needs only the instance's "
    "application restarted; an uncontained one (XID 95) needs the GPU drained and reset (nvidia-smi -r -i <gpu>)"
)
PENDING_ACTION = (
    "Drain the GPU and reset it (nvidia-smi -r -i <gpu>) to apply the pending MIG mode, or set it back"
)
EMPTY_ACTION = "Create the MIG instances (nvidia-smi mig -cgi <profiles> -C, or the MIG manager's config), or disable MIG"
REMAP_IN_MIG = (
    "unknown in MIG mode: NVML does not answer row-remapper queries while MIG is enabled with active "
    "instances"
)


def describe(dev: MigDevice) -> str:
    where = f"GI {dev.gpu_instance_id}/CI {dev.compute_instance_id}"
    return f"MIG {dev.profile or 'profile unknown'} ({where}, {dev.uuid or 'uuid unknown'})"


def profiles_text(devices: tuple[MigDevice, ...]) -> str:
    return profiles_text_of(d.profile for d in devices)


def profiles_text_of(profiles: Iterable[str | None]) -> str:
    """``4x 1g.20gb``, ``1x 3g.40gb, 2x 2g.20gb``; an empty layout is ``none``."""
    counts = Counter(p or "unknown" for p in profiles)
    return ", ".join(f"{n}x {p}" for p, n in sorted(counts.items())) or "none"


def reasons(state: MigState) -> list[Reason]:
    """The MIG reasons of one GPU; none for a GPU without MIG or with MIG off and no change pending."""
    out: list[Reason] = []
    mode_why = state.unavailable.get("mig_mode")
    if state.mode_current is None:
        if mode_why and not mode_why.startswith("NotSupported"):
            out.append(Reason("mig", "unknown", f"MIG mode unreadable: {mode_why}", {"why": mode_why}))
        return out
    if state.mode_pending is not None and state.mode_pending != state.mode_current:
        out.append(Reason("mig", "warning", f"MIG mode change pending ({_on(state.mode_current)} now, "
                          f"{_on(state.mode_pending)} after the next GPU reset)",
                          {"current": state.mode_current, "pending": state.mode_pending}, PENDING_ACTION))  # fmt: skip
    if not state.enabled:
        return out
    if state.devices is None:
        why = state.unavailable.get("devices", "not read")
        out.append(Reason("mig", "unknown", f"MIG is enabled but its devices could not be listed: {why}",
                          {"why": why}))  # fmt: skip
        return out
    if not state.devices:
        out.append(Reason("mig", "warning", "MIG is enabled but no MIG device exists: no workload can use this GPU",
                          {"max_devices": state.max_devices}, EMPTY_ACTION))  # fmt: skip
        return out
    for dev in state.devices:
        ev = {"mig_device": dev.index, "uuid": dev.uuid, "profile": dev.profile, "gpu_instance_id": dev.gpu_instance_id,
              "compute_instance_id": dev.compute_instance_id, "sram_uncorrected_volatile": dev.sram_uncorrected_volatile}  # fmt: skip
        if dev.sram_uncorrected_volatile:
            out.append(Reason("mig", "degraded", f"{describe(dev)}: {dev.sram_uncorrected_volatile} uncorrectable "
                              "SRAM ECC error(s) since the last reset", ev, SRAM_ACTION))  # fmt: skip
        elif dev.sram_uncorrected_volatile is None:
            why = dev.unavailable.get("sram_uncorrected_volatile", "not read")
            if not why.startswith("NotSupported"):
                out.append(Reason("mig", "unknown", f"{describe(dev)}: its ECC counter is unreadable: {why}",
                                  {**ev, "why": why}))  # fmt: skip
    out.append(Reason("mig", "info", f"MIG enabled: {len(state.devices)} device(s), {profiles_text(state.devices)}",
                      {"devices": [d.uuid or d.index for d in state.devices]}))  # fmt: skip
    return out


def _on(flag: bool) -> str:
    return "enabled" if flag else "disabled"
