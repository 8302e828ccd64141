"""Clock-event ("throttle") reason decoding and interpretation.

Bit values are NVML's ``nvmlClocksEventReason*`` (and the ``nvmlClocksThrottleReason*`` aliases
for 0x200/0x400). Unknown bits are named, never dropped.

Some reasons are normal operation, and are named so (``expected``), not raised as a fault:
NVML documents SW power cap as "the clocks have been optimized to ensure not to exceed currently
set power limits", so a busy GPU held at its enforced limit is doing what the limit asks; and on an
idle card (P8 or deeper, or NVML's GPU-idle bit) the power controller's bit is an idle artifact.
Thresholds and their sources: docs/health.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from k8s_gpu_mcp.gpu.nvml_constants import CLOCK_EVENT_REASONS

_BY_BIT = {bit: name for name, bit in CLOCK_EVENT_REASONS.items()}

Category = Literal["thermal", "power", "hw_slowdown", "sync_boost", "app_clocks", "other", "none"]

# Most severe first: the first active cause names the category and leads the explanation.
_PRIORITY: list[tuple[str, Category, str]] = [
    ("hw_thermal_slowdown", "thermal", "HW thermal slowdown"),
    ("hw_power_brake_slowdown", "power", "HW power brake slowdown"),
    ("hw_slowdown", "hw_slowdown", "HW slowdown"),
    ("sw_thermal_slowdown", "thermal", "SW thermal slowdown"),
    ("sw_power_cap", "power", "SW power cap"),
    ("reliability", "other", "Reliability limit"),
    ("board_limit", "other", "Board limit"),
    ("sync_boost", "sync_boost", "Sync boost"),
    ("applications_clocks_setting", "app_clocks", "Applications clocks setting"),
    ("display_clock_setting", "other", "Display clock setting"),
]


def decode_reasons(mask: int) -> list[str]:
    """Names of the set bits, lowest bit first; unknown bits as ``unknown_0x...``."""
    names = []
    bit = 1
    while bit <= mask:
        if mask & bit:
            names.append(_BY_BIT.get(bit, f"unknown_0x{bit:x}"))
        bit <<= 1
    return names


# Power readings are averages while the controller acts on the instantaneous draw, so a GPU being
# held at its limit reads a little below it: within this share of the enforced limit counts as "at".
AT_LIMIT_SHARE = 0.9
IDLE_PSTATE = 8  # P8 and deeper: NVML's idle performance states
# Reasons that are settings or normal power management, never a fault on their own.
EXPECTED_CAUSES = {"sw_power_cap", "sync_boost", "applications_clocks_setting", "display_clock_setting"}


@dataclass(frozen=True)
class ThrottleInputs:
    """The readings a throttle verdict needs (reasons mask, clocks, temperature, power)."""

    mask: int | None
    sm_clock_mhz: int | None = None
    max_sm_clock_mhz: int | None = None
    temperature_c: int | None = None
    slowdown_c: int | None = None
    power_w: float | None = None
    power_limit_w: float | None = None
    unreadable_reason: str | None = None
    pstate: int | None = None  # P-state number (0 fastest, 8 idle, ...), None when unknown


@dataclass(frozen=True)
class Throttling:
    """Whether the GPU is throttled, by what, and whether that is expected."""

    active: bool | None
    causes: list[str]
    category: Category | None
    explanation: str
    expected: str | None = None  # why the active reasons are normal operation; None when they are not


def _clock_text(i: ThrottleInputs) -> str:
    if i.sm_clock_mhz is None:
        return "SM clock unknown"
    if i.max_sm_clock_mhz is None:
        return f"SM {i.sm_clock_mhz} MHz"
    return f"SM {i.sm_clock_mhz} of {i.max_sm_clock_mhz} MHz"


def _evidence(category: Category, i: ThrottleInputs) -> str:
    parts = [_clock_text(i)]
    if category == "thermal" and i.temperature_c is not None:
        slowdown = f" (slowdown at {i.slowdown_c} C)" if i.slowdown_c is not None else ""
        parts.append(f"at {i.temperature_c} C{slowdown}")
    if category == "power" and i.power_w is not None:
        limit = f" of {i.power_limit_w:.0f}" if i.power_limit_w is not None else ""
        parts.append(f"drawing {i.power_w:.0f}{limit} W")
    return " ".join(parts)


def interpret(i: ThrottleInputs) -> Throttling:
    """Turn a reason mask plus the evidence around it into one verdict an SRE can read."""
    if i.mask is None:
        why = f": {i.unreadable_reason}" if i.unreadable_reason else ""
        return Throttling(None, [], None, f"Throttling: Unknown (clock-event reasons unreadable{why})")
    idle_bit = bool(i.mask & CLOCK_EVENT_REASONS["gpu_idle"])
    causes = [name for name in decode_reasons(i.mask) if name != "gpu_idle"]
    if not causes:
        if idle_bit and _clocks_lowered(i):
            return Throttling(
                False,
                [],
                "none",
                f"Throttling: None (GPU idle, clocks lowered because nothing runs: {_clock_text(i)})",
            )
        if idle_bit:
            return Throttling(
                False, [], "none", f"Throttling: None (nothing runs; {_clock_text(i)}, not lowered)"
            )
        return Throttling(False, [], "none", f"Throttling: None ({_clock_text(i)})")
    labels: list[str] = []
    category: Category = "other"
    for name, cat, label in _PRIORITY:
        if name in causes:
            if not labels:
                category = cat
            labels.append(label)
    labels += [name for name in causes if name.startswith("unknown_")]
    if category == "hw_slowdown" and "hw_thermal_slowdown" in causes:
        category = "thermal"
    text = ", ".join(labels)
    expected = _expected(causes, idle_bit, i)
    tail = f" ({expected})" if expected else ""
    return Throttling(
        True, causes, category, f"Throttling: Active, {text}: {_evidence(category, i)}{tail}", expected
    )


def _clocks_lowered(i: ThrottleInputs) -> bool:
    """Below the GPU's own max SM clock; unknown clocks are not claimed lowered."""
    return (
        i.sm_clock_mhz is not None and i.max_sm_clock_mhz is not None and i.sm_clock_mhz < i.max_sm_clock_mhz
    )


def _expected(causes: list[str], idle_bit: bool, i: ThrottleInputs) -> str | None:
    """Why these reasons are normal operation, or None: SW power cap at the limit under load, or
    on an idle card; settings (sync boost, application or display clocks) are never faults."""
    if not set(causes) <= EXPECTED_CAUSES:
        return None
    if "sw_power_cap" not in causes:
        return "a clock setting, not a fault"
    idle = idle_bit or (i.pstate is not None and i.pstate >= IDLE_PSTATE)
    if idle:
        state = f"P{i.pstate}" if i.pstate is not None else "idle"
        return f"idle artifact: the card is {state}, the power cap bit means nothing while no work runs"
    if i.power_w is not None and i.power_limit_w and i.power_w >= AT_LIMIT_SHARE * i.power_limit_w:
        return "normal under load: the power controller holds the GPU at its enforced limit"
    if i.power_w is None or not i.power_limit_w:
        return "power management to the enforced limit (draw or limit unreadable)"
    return (
        f"power management below the limit ({i.power_w / i.power_limit_w:.0%} of it on average): "
        "load spikes reach the limit between samples"
    )
