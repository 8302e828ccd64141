"""verify_gpu_after_reset: did the reset fix the GPU? The check between reset_gpu and uncordon_node.

Each check is true, false, or null with the reason it could not be made (never "passed" unread):
the GPU answers, no row remap or page retirement still waits for a reset, no remap failed, the
volatile uncorrected ECC counter (which a reset clears) is zero, no XID hit the GPU since the reset,
and every NVLink the GPU has is up. When this agent ran the reset, the state reset_gpu read before it
is returned beside the state now.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, StrictInt, StrictStr

from k8s_gpu_mcp.gpu.adapter import GpuLost, GpuRef
from k8s_gpu_mcp.gpu.readings import NvLinkReading, ResetState
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import READ_ONLY, Source, select_gpus, source

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

TOOLSET = "remediation"
DEFAULT_WINDOW = timedelta(hours=1)  # XIDs looked at when this agent did not run the reset


@dataclass(frozen=True)
class ResetRecord:
    """What reset_gpu saw just before a reset it ran (kept in ``AgentApp.resets`` by GPU index)."""

    at: datetime
    state_before: ResetState


class Check(ToolModel):
    name: Literal["gpu_present", "remap_pending", "retired_pages_pending", "remap_failure",
                  "volatile_uncorrected_ecc", "xids_since_reset", "nvlinks_up"]  # fmt: skip
    ok: bool | None = Field(description="null: the check could not be made (see detail)")
    detail: str


class VerifyResult(ToolModel):
    source: Source
    index: int
    uuid: str | None
    pci_bus_id: str | None
    outcome: Literal["verified", "failed", "unknown"] = Field(
        description="verified: every check passed; failed: one failed; unknown: one could not be made "
        "(an outcome, like the remediation tools'; `status` is kept for the one health scale)"
    )
    checks: list[Check]
    reset_at: datetime | None = Field(description="when this agent reset the GPU; null if it did not")
    since: datetime = Field(description="start of the XID window checked")
    state_before: dict[str, Any] | None = Field(None, description="reset_gpu's reading before the reset")
    state_now: dict[str, Any]
    action: str


def _flag(name: Any, value: bool | None, bad: str, good: str, why: str | None) -> Check:
    if value is None:
        return Check(name=name, ok=None, detail=f"could not be read: {why or 'unknown'}")
    return Check(name=name, ok=not value, detail=bad if value else good)


def _checks(app: "AgentApp", ref: GpuRef, since: datetime) -> tuple[list[Check], ResetState]:
    from k8s_gpu_mcp.gpu.links import read_nvlinks
    from k8s_gpu_mcp.gpu.reset_state import read_reset_state
    from k8s_gpu_mcp.tools import ecc as ecc_tool

    state = read_reset_state(app.backend.adapter, ref)
    if state.lost:
        why = state.unavailable.get("*", "GpuIsLost")
        return [Check(name="gpu_present", ok=False, detail=f"the GPU is lost: {why}")], state
    try:
        ecc, _ = ecc_tool.snapshot(app, ref)
        links = read_nvlinks(app.backend.adapter, ref, {})
    except GpuLost as lost:
        lost_check = Check(name="gpu_present", ok=False, detail=f"the GPU was lost during the checks: {lost}")
        return [lost_check], state
    checks = [Check(name="gpu_present", ok=True, detail="NVML answers for the GPU")]
    checks += _repair_checks(state, ecc)
    checks.append(_ecc_check(state))
    checks.append(_xid_check(app, ref, since))
    checks.append(_link_check(links))
    return checks, state


def _repair_checks(state: ResetState, ecc: Any) -> list[Check]:
    """Ampere and later remap rows, earlier GPUs retire pages: the other mechanism does not apply."""
    why = state.unavailable
    rows = ecc.remapped_rows
    if ecc.repair_mechanism == "page_retirement":
        na = "not applicable: this GPU retires pages"
        remap = [
            Check(name="remap_pending", ok=True, detail=na),
            Check(name="remap_failure", ok=True, detail=na),
        ]
    else:
        remap = [
            _flag("remap_pending", state.remapped_rows_pending, "a row remap still waits for a reset",
                  "no row remap pending", why.get("remapped_rows_pending")),
            _flag("remap_failure", rows.failure if rows else None, "a row remap failed: NVIDIA's RMA criterion",
                  "no remap failure", ecc.unavailable.get("remapped_rows") or why.get("remapped_rows_pending")),
        ]  # fmt: skip
    if ecc.repair_mechanism == "row_remapping":
        pages = Check(name="retired_pages_pending", ok=True, detail="not applicable: this GPU remaps rows")
    else:
        pages = _flag("retired_pages_pending", state.retired_pages_pending,
                      "a page retirement still waits for a reset", "no page retirement pending",
                      why.get("retired_pages_pending"))  # fmt: skip
    return [*remap, pages]


def _ecc_check(state: ResetState) -> Check:
    unc = state.ecc_volatile_uncorrected
    if unc is None:
        why = state.unavailable.get("ecc_volatile_uncorrected")
        return Check(name="volatile_uncorrected_ecc", ok=None, detail=f"could not be read: {why}")
    plural = "s" if unc != 1 else ""
    return Check(name="volatile_uncorrected_ecc", ok=unc == 0,
                 detail=f"{unc} uncorrected error{plural} since the last reset or driver load")  # fmt: skip


def _xid_check(app: "AgentApp", ref: GpuRef, since: datetime) -> Check:
    from k8s_gpu_mcp.tools.xid import collect_xids

    xids, _ = collect_xids(app, since=since.isoformat(), gpus=[ref.index])
    mine = [s for s in xids.xids if s.index == ref.index]
    if not mine:
        return Check(name="xids_since_reset", ok=True, detail=f"none since {since.isoformat()}")
    listed = ", ".join(f"XID {s.xid} x{s.count}" for s in mine)
    return Check(name="xids_since_reset", ok=False, detail=f"since {since.isoformat()}: {listed}")


def _link_check(links: list[NvLinkReading]) -> Check:
    """NVML's link state: 1 active, 0 inactive, None unreadable."""
    if not links:
        return Check(name="nvlinks_up", ok=True, detail="the GPU has no NVLinks NVML reports")
    down = [lk.link for lk in links if lk.state is not None and not lk.state]
    unread = [lk.link for lk in links if lk.state is None]
    if down:
        return Check(name="nvlinks_up", ok=False, detail=f"links {down} of {len(links)} not up")
    if unread:
        return Check(name="nvlinks_up", ok=None, detail=f"link state unreadable on links {unread}")
    return Check(name="nvlinks_up", ok=True, detail=f"all {len(links)} links up")


ACTIONS = {
    "remap_pending": "the reset did not apply the pending remap: reset again, or reboot the node",
    "retired_pages_pending": "the page retirement is still pending: reload the driver or reboot the node",
    "remap_failure": "cordon the node, run NVIDIA field diagnostics on this GPU and open an RMA",
    "volatile_uncorrected_ecc": "new uncorrected ECC errors after the reset: keep the node cordoned and check the GPU's health",
    "xids_since_reset": "XIDs after the reset: see analyze_xid_errors before returning the GPU to service",
    "nvlinks_up": "links stayed down after the reset: reseat or replace the GPU or baseboard",
    "gpu_present": "the GPU is lost: reboot the node; if it falls off the bus again, check PCIe, power and thermals",
}


def verify(app: "AgentApp", gpu: int | str) -> VerifyResult:
    ref = select_gpus(app, gpu)[0]
    record: ResetRecord | None = app.resets.get(ref.index)
    now = datetime.now(UTC)
    since = record.at if record else now - DEFAULT_WINDOW
    checks, state = _checks(app, ref, since)
    failed = [c for c in checks if c.ok is False]
    outcome: Literal["verified", "failed", "unknown"] = (
        "failed" if failed else "unknown" if any(c.ok is None for c in checks) else "verified"
    )
    if failed:
        action = "; ".join(dict.fromkeys(ACTIONS[c.name] for c in failed))
    elif outcome == "unknown":
        action = "not every check could be made (see checks): do not return the GPU to service on this alone"
    else:
        action = "verified: when every GPU on the node passes, return it to service (uncordon_node)"
    if record is None:
        action += f". This agent did not reset GPU {ref.index}: XIDs of the last hour were checked"
    return VerifyResult(
        source=source(app), index=ref.index, uuid=ref.uuid, pci_bus_id=ref.bus_id, outcome=outcome,
        checks=checks, reset_at=record.at if record else None, since=since,
        state_before=record.state_before.as_json() if record else None, state_now=state.as_json(),
        action=action,
    )  # fmt: skip


def register(app: "AgentApp") -> None:
    def verify_gpu_after_reset(
        gpu: Annotated[StrictInt | StrictStr, Field(description="GPU index, UUID or PCI bus id")],
    ) -> VerifyResult:
        """Check that a GPU reset fixed the GPU before it returns to service: the GPU answers, no row
        remap or page retirement is still pending, no remap failed, the volatile uncorrected ECC count
        is zero, no XID since the reset, and every NVLink is up. Each check is true, false or null (not
        readable, with why); outcome is verified only when all are true. When this agent ran reset_gpu,
        the state before the reset is returned too."""
        return verify(app, gpu)

    app.add_tool(verify_gpu_after_reset, title="Verify a GPU after its reset", annotations=READ_ONLY)
