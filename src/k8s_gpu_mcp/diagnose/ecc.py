"""GPU memory (ECC) verdict, pure: counters in, ``healthy | monitor | reset-required | replace | unknown`` out.

Rules (docs/health.md has the reasoning and sources):

* replace: row-remapping failure; SRAM threshold exceeded; retired pages at NVIDIA's RMA level
  (60 of the 64 a board can retire); lifetime uncorrectable errors beyond what the repair mechanism
  can ever absorb (64 retired pages, 512 remapped rows).
* reset-required: a pending row remap or page retirement (it takes effect on GPU reset); uncorrectable
  errors since the last reset (volatile), per NVIDIA's XID 48 workflow.
* monitor: earlier uncorrectable errors, retired pages or uncorrectable remaps already in effect;
  banks with few or no spare rows left; a storm of corrected (single-bit) errors since the last reset
  (NVIDIA's XID 92 "High single-bit ECC error rate" and DCGM's SBE checks watch for the same).
* unknown: nothing wrong was found, but a signal that decides the verdict could not be read (ECC off,
  uncorrectable counters, or the repair mechanism). An unread counter is never taken as 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from k8s_gpu_mcp.gpu.nvml_constants import ARCH_AMPERE

EccVerdict = Literal["healthy", "monitor", "reset-required", "replace", "unknown"]
Level = Literal["info", "monitor", "reset-required", "replace"]
RANK: dict[str, int] = {
    "healthy": 0,
    "info": 0,
    "unknown": 1,
    "monitor": 2,
    "reset-required": 3,
    "replace": 4,
}
RETIRED_PAGES_RMA = 60  # NVIDIA's RMA guidance for page retirement (the board holds at most 64)
RETIREMENT_CAPACITY = 64  # pages page retirement can ever take out
REMAP_CAPACITY = 512  # rows row remapping can ever remap for uncorrectable errors
# Corrected errors since the last reset that make a GPU worth watching. NVML keeps no rate, so the
# since-reset (volatile) count stands in for it. DCGM's own SBE rate limit (DCGM_LIMIT_MAX_SBE_RATE
# 10) is marked a placeholder in its source; 1000 is far above background noise (the real captures
# hold 0-353) and well below the storms behind XID 92. docs/health.md has the reasoning.
CORRECTED_STORM = 1000
ACTIONS: dict[str, str] = {
    "healthy": "No action.",
    "unknown": "Read ECC on the host (nvidia-smi -q -d ECC,ROW_REMAPPER,PAGE_RETIREMENT) before trusting this GPU.",
    "monitor": "Keep the GPU in service; re-check ECC and remapped rows / retired pages for growth.",
    "reset-required": "Drain the GPU's workloads and reset it (nvidia-smi -r -i <gpu>, or reboot the node) so the "
    "pending repair takes effect; re-check ECC after the reset.",
    "replace": "Cordon and drain the node, run NVIDIA field diagnostics on this GPU and open an RMA.",
}

# XIDs that report the same evidence as the counters: 63 records a row remap, which takes effect only
# after a GPU reset (= remap_pending); 64 is a remap failure (= remap_failure, NVIDIA's RMA criterion).
# analyze_xid_errors gives these XIDs this verdict's action, so both tools advise the same.
XID_VERDICT: dict[int, EccVerdict] = {63: "reset-required", 64: "replace"}


@dataclass(frozen=True)
class EccState:
    """What the verdict needs; ``None`` means NVML could not read it (reason in ``unreadable``)."""

    ecc_enabled: bool | None = None
    ecc_pending: bool | None = None
    volatile_corrected: int | None = None
    volatile_uncorrected: int | None = None
    aggregate_corrected: int | None = None
    aggregate_uncorrected: int | None = None
    sram_threshold_exceeded: bool | None = None
    repair: Literal["page_retirement", "row_remapping"] | None = None
    retired_sbe: int | None = None
    retired_dbe: int | None = None
    retired_pending: bool | None = None
    remap_correctable: int | None = None
    remap_uncorrectable: int | None = None
    remap_pending: bool | None = None
    remap_failure: bool | None = None
    histogram: dict[str, int] | None = None
    unreadable: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reason:
    """One line of an ECC verdict, at its level."""

    level: Level
    text: str


@dataclass(frozen=True)
class Verdict:
    """The ECC verdict of one GPU: the word, why, the next step, and what was unknown."""

    verdict: EccVerdict
    reasons: list[Reason]
    action: str
    unknown: list[str]  # what could not be read, "field: reason"


def repair_mechanism(architecture: int | None) -> Literal["page_retirement", "row_remapping"] | None:
    """Ampere (NVML arch 7) and later remap rows; earlier GPUs retire pages."""
    if architecture is None:
        return None
    return "row_remapping" if architecture >= ARCH_AMPERE else "page_retirement"


def judge(s: EccState) -> Verdict:
    reasons = _replace(s) + _reset(s) + _monitor(s) + _info(s)
    unknown = _unknown(s)
    worst = max((r.level for r in reasons), key=RANK.__getitem__, default="info")
    verdict: EccVerdict = "healthy" if worst == "info" else worst  # type: ignore[assignment]
    if verdict == "healthy" and unknown:
        verdict = "unknown"
    reasons.sort(key=lambda r: -RANK[r.level])
    return Verdict(verdict, reasons, ACTIONS[verdict], unknown)


def _pages(s: EccState) -> int | None:
    if s.retired_sbe is None and s.retired_dbe is None:
        return None
    return (s.retired_sbe or 0) + (s.retired_dbe or 0)


def _capacity(s: EccState) -> int:
    """How many uncorrectable errors the board's repair mechanism can ever contain."""
    return RETIREMENT_CAPACITY if s.repair == "page_retirement" else REMAP_CAPACITY


def _replace(s: EccState) -> list[Reason]:
    out = []
    if s.remap_failure:
        out.append(Reason("replace", "Row-remapping failure occurred: NVIDIA's RMA criterion for GPU memory "
                          "(a bank ran out of spare rows or a remapped row failed again)"))  # fmt: skip
    if s.sram_threshold_exceeded:
        out.append(
            Reason(
                "replace",
                "SRAM threshold exceeded: repeated uncorrectable SRAM errors, NVIDIA's RMA criterion",
            )
        )
    pages = _pages(s)
    if pages is not None and pages >= RETIRED_PAGES_RMA:
        out.append(Reason("replace", f"{pages} retired pages: at NVIDIA's RMA level ({RETIRED_PAGES_RMA}; "
                          f"the board can retire at most {RETIREMENT_CAPACITY})"))  # fmt: skip
    capacity = _capacity(s)
    unc = s.aggregate_uncorrected
    if unc is not None and unc > capacity:
        what = "retired pages" if s.repair == "page_retirement" else "remapped rows"
        out.append(Reason("replace", f"{unc} uncorrectable ECC errors over the board's life, more than the "
                          f"{capacity} {what} it can ever use to contain them: the memory keeps failing"))  # fmt: skip
    return out


def _reset(s: EccState) -> list[Reason]:
    out = []
    if s.remap_pending:
        out.append(
            Reason(
                "reset-required", "Row remap pending: the spare row is used only after a GPU reset (XID 63)"
            )
        )
    if s.retired_pending:
        out.append(Reason("reset-required", "Page retirement pending: the bad page is excluded only after a GPU "
                          "reset or driver reload"))  # fmt: skip
    if s.volatile_uncorrected:
        out.append(Reason("reset-required", f"{s.volatile_uncorrected} uncorrectable ECC errors since the last GPU "
                          "reset (volatile): NVIDIA's XID 48 workflow resets the GPU"))  # fmt: skip
    return out


def _monitor(s: EccState) -> list[Reason]:
    out = []
    if s.aggregate_uncorrected and s.aggregate_uncorrected <= _capacity(s):
        out.append(
            Reason(
                "monitor",
                f"{s.aggregate_uncorrected} uncorrectable ECC errors over the board's life (aggregate)",
            )
        )
    pages = _pages(s)
    if pages and pages < RETIRED_PAGES_RMA and not s.retired_pending:
        out.append(
            Reason("monitor", f"{pages} retired pages (SBE {s.retired_sbe}, DBE {s.retired_dbe}), in effect")
        )
    if s.remap_uncorrectable and not s.remap_pending:
        out.append(Reason("monitor", f"{s.remap_uncorrectable} rows remapped for uncorrectable errors, in effect "
                          "(spare rows are working as designed)"))  # fmt: skip
    if s.volatile_corrected is not None and s.volatile_corrected >= CORRECTED_STORM:
        out.append(Reason("monitor", f"{s.volatile_corrected} corrected (single-bit) ECC errors since the last "
                          f"reset (>= {CORRECTED_STORM}): a corrected-error storm; watch for XID 92/48, "
                          "retired pages or remapped rows"))  # fmt: skip
    hist = s.histogram or {}
    if hist.get("none") or hist.get("low"):
        out.append(Reason("monitor", f"Banks short of spare rows: {hist.get('low', 0)} low, {hist.get('none', 0)} "
                          "with none left; another uncorrectable error there ends in a remap failure"))  # fmt: skip
    return out


def _info(s: EccState) -> list[Reason]:
    out = []
    if s.remap_correctable:
        out.append(Reason("info", f"{s.remap_correctable} rows remapped for correctable errors"))
    if s.aggregate_corrected:
        out.append(Reason("info", f"{s.aggregate_corrected} corrected ECC errors over the board's life "
                          f"({s.volatile_corrected if s.volatile_corrected is not None else 'unknown'} since reset)"))  # fmt: skip
    if s.ecc_enabled is not None and s.ecc_pending is not None and s.ecc_enabled != s.ecc_pending:
        out.append(
            Reason(
                "info", f"ECC mode change pending ({'on' if s.ecc_pending else 'off'} after the next reset)"
            )
        )
    return out


def _unknown(s: EccState) -> list[str]:
    why = s.unreadable
    out = []
    if s.ecc_enabled is False:
        out.append("ecc: disabled, so memory errors are neither corrected nor counted")
    elif s.ecc_enabled is None:
        out.append(f"ecc mode: {why.get('mode', 'unreadable')}")
    for name, value in (
        ("volatile uncorrected", s.volatile_uncorrected),
        ("aggregate uncorrected", s.aggregate_uncorrected),
    ):
        if value is None and s.ecc_enabled is not False:
            key = name.replace(" ", ".") + ".total"
            out.append(f"{name}: {why.get(key, 'unreadable')}")
    if s.repair == "row_remapping" and s.remap_pending is None:
        out.append(f"remapped rows: {why.get('remapped_rows', 'unreadable')}")
    if s.repair == "page_retirement" and s.retired_pending is None:
        out.append(f"retired pages: {why.get('retired_pages.pending', 'unreadable')}")
    if s.repair is None and s.remap_pending is None and s.retired_pending is None:
        out.append("memory repair state: neither remapped rows nor retired pages could be read")
    return out
