"""NVIDIA's investigatory workflows, evaluated per GPU over the events of the analysis window.

A single XID's immediate bucket says what to do right now; NVIDIA's workflows look at the pattern
the XIDs form on one GPU (``shared/reference/xid_catalog.md``, "Workflows"). Each rule below names
the pattern it saw and gives that GPU's XID its advice (severity + action), which then replaces
the per-event advice for that XID on that GPU in the summary and the recommendation:

* WORKFLOW_XID_13: a burst on one GPC/TPC across different SMs, or repeats on the same SM, points
  at hardware (DCGM diagnostics, then field diagnostics); otherwise check the application.
* WORKFLOW_XID_31: repeated MMU faults on one GPU from different applications point at hardware;
  one application, or the same application on several GPUs, points at the application.
* WORKFLOW_XID_45: alone, restart Fabric Manager; with other XIDs on the GPU, act on those.
* WORKFLOW_XID_48: alone, reset the GPU; with XID 63 drain and reset (the remap takes effect);
  with XID 64 the ECC verdict ``replace``; SRAM errors: check the SRAM threshold flag.
* WORKFLOW_NVLINK_ERR (XID 74): ECC/parity errors (first register bits 4/5) more than twice on one
  link: report to NVIDIA.
* XID_154: the last recovery action the driver printed for the GPU is the action.
* XIDs 63/64 (not workflows, but the same evidence as the ECC counters): the ECC verdict's action
  (``diagnose.ecc.XID_VERDICT``), so analyze_xid_errors and snapshot_ecc agree.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable

from ..diagnose.ecc import ACTIONS as ECC_ACTIONS
from ..diagnose.ecc import XID_VERDICT
from ..vocabulary import XID_STATUS
from .catalog import SEVERITY_ORDER, Severity
from .models import Workflow, XidEvent

HARDWARE_DIAG = (
    "Drain the GPU's workloads and run DCGM diagnostics (dcgmi diag -r 3) then NVIDIA field diagnostics "
    "on this GPU; contact NVIDIA support if they fail"
)
RECURRING_COUNT = 3  # the same hardware XID this often on one GPU -> replace the GPU
REPLACE_ACTION = "Drain the node and replace the GPU (recurring hardware XID; contact NVIDIA support)"
ECC_SEVERITY: dict[str, Severity] = {"reset-required": "Critical", "replace": "Fatal"}
_SM_RE = re.compile(r"GPC (\d+), TPC (\d+), SM (\d+)")
_LINK74_RE = re.compile(r"link\s*(-?\d+)", re.I)
X74_REPORT_AFTER = 2  # NVIDIA: ECC/parity on a link, report if seen more than twice

Rule = Callable[[list[XidEvent], dict[int, list[XidEvent]]], Workflow | None]


def _gpu_key(e: XidEvent | Workflow) -> str:
    return str(e.index) if e.index is not None else (e.pci_bus_id or "?")


def _finding(
    name: str, xid: int, evs: list[XidEvent], pattern: str, severity: Severity, action: str
) -> Workflow:
    return Workflow(
        workflow=name,
        xid=xid,
        index=evs[0].index,
        pci_bus_id=evs[0].pci_bus_id,
        count=len(evs),
        pattern=pattern,
        status=XID_STATUS[severity],
        catalog_severity=severity,
        sre_action=action,
    )


def _occurrence(e: XidEvent) -> tuple[object, object]:
    """One fault: the driver prints several lines per XID 13 at the same time for the same process."""
    return (e.timestamp.replace(microsecond=0) if e.timestamp else e.raw, e.pid)


def _xid13(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow:
    sms: dict[tuple[str, str], set[str]] = defaultdict(set)
    times: dict[tuple[str, str, str], set[tuple[object, object]]] = defaultdict(set)
    for e in evs:
        for gpc, tpc, sm in _SM_RE.findall(e.raw or ""):
            sms[(gpc, tpc)].add(sm)
            times[(gpc, tpc, sm)].add(_occurrence(e))
    for (gpc, tpc), seen in sorted(sms.items()):
        if len(seen) >= 2:
            pattern = f"burst on GPC {gpc}, TPC {tpc} across SMs {', '.join(sorted(seen, key=int))}: points at hardware"
            return _finding("WORKFLOW_XID_13", 13, evs, pattern, "Critical", HARDWARE_DIAG)
    for (gpc, tpc, sm), seen_at in sorted(times.items()):
        if len(seen_at) >= 2:
            pattern = f"repeats on the same SM (GPC {gpc}, TPC {tpc}, SM {sm}): points at hardware"
            return _finding("WORKFLOW_XID_13", 13, evs, pattern, "Critical", HARDWARE_DIAG)
    pattern = "solo, or no repeating GPC/TPC/SM: check the application"
    action = (
        "Restart the workload and debug it (compute-sanitizer, cuda-gdb); report to NVIDIA if a known-good "
        "application hits it"
    )
    return _finding("WORKFLOW_XID_13", 13, evs, pattern, "Warning", action)


def _app(e: XidEvent) -> str | None:
    return e.process or (f"pid {e.pid}" if e.pid else None)


def _xid31(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow:
    mine = {a for e in evs if (a := _app(e))}
    elsewhere = {
        a for e in by_xid.get(31, []) if _gpu_key(e) != _gpu_key(evs[0]) and (a := _app(e)) is not None
    }
    if len(evs) >= 2 and len(mine) >= 2:
        pattern = (
            f"repeated MMU faults on this GPU from {len(mine)} different applications: points at hardware"
        )
        return _finding("WORKFLOW_XID_31", 31, evs, pattern, "Critical", HARDWARE_DIAG)
    if len(evs) >= 2 and mine & elsewhere:
        pattern = "the same application faults on several GPUs: check the application"
    elif len(evs) >= 2 and not mine:
        pattern = "repeated on this GPU, applications unknown: check the application first"
    elif len(evs) >= 2:
        pattern = "repeated by one application on this GPU: check the application first"
    else:
        pattern = "solo: check the application"
    action = (
        "Restart the workload and check the application; run DCGM diagnostics on this GPU if faults persist"
    )
    return _finding("WORKFLOW_XID_31", 31, evs, pattern, "Warning", action)


def _xid45(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow:
    others = sorted(
        {x for x, xs in by_xid.items() if x != 45 for e in xs if _gpu_key(e) == _gpu_key(evs[0])}
        | {e.caused_by_xid for e in evs if e.caused_by_xid is not None}
    )
    if others:
        listed = ", ".join(map(str, others))
        return _finding(
            "WORKFLOW_XID_45", 45, evs, f"with XID {listed} on this GPU", "Info", f"None: act on XID {listed}"
        )
    action = "Restart Fabric Manager if the node has NVSwitches, otherwise none"
    return _finding("WORKFLOW_XID_45", 45, evs, "solo", "Warning", action)


def _on_gpu(by_xid: dict[int, list[XidEvent]], key: str, *codes: int) -> bool:
    return any(_gpu_key(e) == key for c in codes for e in by_xid.get(c, []))


def _xid48(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow:
    key = _gpu_key(evs[0])
    sram = _on_gpu(by_xid, key, 172) or any("SRAM" in (e.raw or "") for e in evs)
    tail = (
        "; SRAM error: check the SRAM threshold flag (nvidia-smi -q -d ECC), field diagnostics if set"
        if sram
        else ""
    )
    if _on_gpu(by_xid, key, 64):
        verdict = XID_VERDICT[64]
        pattern = "with XID 64 (row-remap failure): the ECC verdict is replace"
        return _finding(
            "WORKFLOW_XID_48", 48, evs, pattern + tail, ECC_SEVERITY[verdict], ECC_ACTIONS[verdict]
        )
    if _on_gpu(by_xid, key, 63):
        pattern = "with XID 63 (row remap recorded): drain and reset so the remap takes effect"
        return _finding(
            "WORKFLOW_XID_48", 48, evs, pattern + tail, "Fatal", "Drain the node and reset the GPU"
        )
    if len(evs) >= RECURRING_COUNT:
        pattern = f"recurring: {len(evs)} times on this GPU in the window"
        return _finding("WORKFLOW_XID_48", 48, evs, pattern + tail, "Fatal", REPLACE_ACTION)
    action = "Reset the GPU (drain its workloads first); run field diagnostics if it recurs"
    return _finding("WORKFLOW_XID_48", 48, evs, "solo" + tail, "Critical", action)


def _ecc_xid(code: int) -> Rule:
    def rule(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow:
        verdict = XID_VERDICT[code]
        pattern = f"same evidence as the ECC counters: verdict {verdict} (snapshot_ecc gives the same action)"
        return _finding(
            f"ECC_{verdict.upper().replace('-', '_')}",
            code,
            evs,
            pattern,
            ECC_SEVERITY[verdict],
            ECC_ACTIONS[verdict],
        )

    return rule


def _xid74(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow | None:
    per_link: dict[str, int] = defaultdict(int)
    for e in evs:
        if any("ECC/parity" in n for n in e.notes) and (m := _LINK74_RE.search(e.subcode or "")):
            per_link[m[1]] += 1
    busy = sorted((link for link, n in per_link.items() if n > X74_REPORT_AFTER), key=int)
    if not busy:
        return None
    pattern = (
        f"ECC/parity errors more than {X74_REPORT_AFTER} times on link {', '.join(busy)}: report to NVIDIA"
    )
    worst = max(evs, key=lambda e: SEVERITY_ORDER[e.catalog_severity])
    severity: Severity = (
        "Critical"
        if SEVERITY_ORDER[worst.catalog_severity] < SEVERITY_ORDER["Critical"]
        else worst.catalog_severity
    )
    return _finding(
        "WORKFLOW_NVLINK_ERR",
        74,
        evs,
        pattern,
        severity,
        "Reset the GPU and report to NVIDIA (recurring NVLink ECC/parity errors)",
    )


def _xid154(evs: list[XidEvent], by_xid: dict[int, list[XidEvent]]) -> Workflow | None:
    dated = [e for e in evs if e.subcode]
    if not dated:
        return None
    last = dated[-1]  # events arrive in time order
    pattern = f"the driver's latest recovery action for this GPU is {last.subcode}"
    return _finding("XID_154", 154, evs, pattern, last.catalog_severity, last.sre_action)


RULES: dict[int, Rule] = {
    13: _xid13, 31: _xid31, 45: _xid45, 48: _xid48, 63: _ecc_xid(63), 64: _ecc_xid(64), 74: _xid74, 154: _xid154,
}  # fmt: skip


def evaluate(events: list[XidEvent]) -> list[Workflow]:
    """The workflow findings of each GPU, one per (GPU, XID) that has a rule."""
    by_xid: dict[int, list[XidEvent]] = defaultdict(list)
    for e in events:
        by_xid[e.xid].append(e)
    out = []
    for xid, rule in RULES.items():
        per_gpu: dict[str, list[XidEvent]] = defaultdict(list)
        for e in by_xid.get(xid, []):
            per_gpu[_gpu_key(e)].append(e)
        for evs in per_gpu.values():
            if (found := rule(evs, by_xid)) is not None:
                out.append(found)
    return out


def apply(events: list[XidEvent], findings: list[Workflow]) -> None:
    """Each finding's advice becomes the advice of its XID's events on that GPU (with a note)."""
    by_key = {(f.xid, _gpu_key(f)): f for f in findings}
    for e in events:
        f = by_key.get((e.xid, _gpu_key(e)))
        if f is None:
            continue
        e.catalog_severity, e.status, e.sre_action = f.catalog_severity, f.status, f.sre_action
        e.notes.append(f"{f.workflow} over the window on this GPU: {f.pattern}.")
