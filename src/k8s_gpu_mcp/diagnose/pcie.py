"""PCIe link health, pure: the trained link against the GPU's own maximum, and the replay counter.

* Width below the maximum (x8 on an x16 GPU) is a downtrained link: half the host bandwidth. Link
  width does not drop for power saving, so it counts at any load. The usual causes are a badly seated
  card, a riser or a slot wired narrower than the card.
* Generation below the maximum counts only while the GPU works: an idle GPU lowers its link speed to
  save power (nvidia-smi shows Gen1 on an idle P8 card), which is not a fault.
* Replays: the link layer re-sends a packet that arrived corrupted. The counter runs since the driver
  loaded, so a count alone says little (the real HGX H100 capture holds 106-174 per GPU). A rate says
  more: DCGM's PCIe health watch warns above 8 replays per minute (``DCGM_LIMIT_MAX_PCIREPLAY_RATE``,
  "the maximum recommended by RM"), measured here between two reads of the counter.
Thresholds and sources: docs/health.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

MAX_REPLAY_RATE_PER_MIN = 8  # DCGM_LIMIT_MAX_PCIREPLAY_RATE (dcgm_gpu_hardware_limits.h)
MIN_RATE_WINDOW_S = 1.0  # shorter windows turn one replay into a huge "rate"
PCIE_ACTION = (
    "Reseat the GPU or check its riser and slot at the next maintenance window; if replays keep rising "
    "or XID 79 appears, drain the GPU and have the slot and card inspected"
)
Severity = Literal["info", "warning", "unknown"]


@dataclass(frozen=True)
class PcieState:
    """One GPU's link as NVML reads it; ``None`` is unreadable (reason in ``unreadable``)."""

    curr_gen: int | None = None
    max_gen: int | None = None
    curr_width: int | None = None
    max_width: int | None = None
    replay: int | None = None
    replay_rate_per_min: float | None = None  # None until two reads at least MIN_RATE_WINDOW_S apart
    busy: bool | None = None  # work running (not idle); None when unknown
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PcieFinding:
    """A PCIe link or replay finding: severity, message, evidence, action."""

    severity: Severity
    message: str
    evidence: dict[str, Any]
    action: str | None = None


def replay_rate(previous: tuple[float, int] | None, now: tuple[float, int]) -> float | None:
    """Replays per minute between two (monotonic seconds, counter) reads; None when not measurable."""
    if previous is None:
        return None
    (t0, c0), (t1, c1) = previous, now
    if t1 - t0 < MIN_RATE_WINDOW_S or c1 < c0:  # a counter that went down was reset (driver reload)
        return None
    return (c1 - c0) * 60 / (t1 - t0)


def judge(s: PcieState) -> list[PcieFinding]:
    ev = {
        "link_gen": s.curr_gen,
        "max_link_gen": s.max_gen,
        "link_width": s.curr_width,
        "max_link_width": s.max_width,
        "replay_counter": s.replay,
        "replay_rate_per_min": round(s.replay_rate_per_min, 1) if s.replay_rate_per_min is not None else None,
    }
    out: list[PcieFinding] = []
    if s.curr_width is not None and s.max_width is not None and s.curr_width < s.max_width:
        out.append(PcieFinding("warning", f"PCIe link trained down to x{s.curr_width} of x{s.max_width}: "
                               f"{s.curr_width / s.max_width:.0%} of the host bandwidth", ev, PCIE_ACTION))  # fmt: skip
    if s.curr_gen is not None and s.max_gen is not None and s.curr_gen < s.max_gen and s.busy:
        out.append(PcieFinding("warning", f"PCIe link at Gen{s.curr_gen} of Gen{s.max_gen} while the GPU works "
                               "(an idle GPU lowers its link speed, a busy one should not)", ev, PCIE_ACTION))  # fmt: skip
    rate = s.replay_rate_per_min
    if rate is not None and rate > MAX_REPLAY_RATE_PER_MIN:
        out.append(PcieFinding("warning", f"PCIe replays rising at {rate:.0f}/min (DCGM warns above "
                               f"{MAX_REPLAY_RATE_PER_MIN}/min; counter {s.replay}): the link corrupts packets",
                               ev, PCIE_ACTION))  # fmt: skip
    elif s.replay:
        since = "" if rate is None else f", {rate:.1f}/min since the last check"
        out.append(PcieFinding("info", f"{s.replay} PCIe replays since the driver loaded{since}", ev))
    unread = [k for k in ("link_width", "max_link_width", "link_gen", "max_link_gen") if k in s.unreadable]
    if unread and not out:
        why = "; ".join(f"{k}: {s.unreadable[k]}" for k in unread)
        out.append(PcieFinding("unknown", f"PCIe link state not read ({why})", ev))
    return out
