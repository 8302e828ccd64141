"""The one vocabulary every answer uses (tools, gateway, prompts), documented in docs/tools.md.

An assistant reads many tools; each word here means the same thing in all of them:

* ``status``: one scale, per GPU and per node (a node's status is its worst GPU's);
* ``action``: the next step, one sentence;
* ``index``, ``uuid``, ``pci_bus_id``: how a GPU is named (NVML's index, UUID and bus id form);
* ``unavailable``: what could not be read, and why (``field -> reason``); unknown is never healthy;
* ``not_supported``: what this GPU model or mode never has (L1 ECC on Hopper, NVLink on a PCIe
  card, fan on a passive board): not a failure, so summaries leave it out and ``full`` counts it once.

XID catalog severities are mapped onto ``status`` in :data:`XID_STATUS`, the one table for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

Status = Literal["healthy", "unknown", "warning", "degraded", "critical", "lost"]
STATUS_RANK: dict[str, int] = {
    "healthy": 0,
    "unknown": 1,
    "warning": 2,
    "degraded": 3,
    "critical": 4,
    "lost": 5,
}
STATUS_MEANING: dict[str, str] = {
    "healthy": "every check this tool makes passed",
    "unknown": "a check that decides the answer could not be read (see unavailable); never healthy",
    "warning": "works, but needs a look (near a limit, a warning XID, a zombie, an unreadable signal)",
    "degraded": "works with reduced capability (throttled, link down, a repair pending a reset)",
    "critical": "do not run work on it: an RMA criterion or a fatal XID; drain the node",
    "lost": "fell off the bus: NVML reports the GPU lost",
}
# What a piece of evidence checked (an enum in every output schema): get_gpu_health's components and
# the other tools' own checks.
Check = Literal[
    "thermal", "power", "throttling", "memory", "xid", "nvlink", "pcie", "processes", "lost",
    "mig", "fabric", "topology", "inventory",
]  # fmt: skip
# NVIDIA's XID catalog words (xid/catalog.py) on the one status scale.
XID_STATUS: dict[str, Status] = {
    "Info": "healthy",
    "Warning": "warning",
    "Critical": "degraded",
    "Fatal": "critical",
}
# A health reason's severity (diagnose/health.py) on the status scale: an info reason is a note.
SEVERITY_STATUS: dict[str, Status] = {
    "info": "healthy",
    "unknown": "unknown",
    "warning": "warning",
    "degraded": "degraded",
    "critical": "critical",
}
# The words every node tool's answer uses, each with one meaning (rendered into docs/tools.md).
FIELDS: dict[str, str] = {
    "status": "the node's or a GPU's place on the status scale below (a node's status is its worst GPU's)",
    "action": "the next step, one sentence: for the node at the top, for one GPU in its problem "
    "(inspect_topology's summary leaves out a GPU's action that the node's action already says)",
    "detail": "summary (the default) or full: which answer this is",
    "problems": "every GPU that is not healthy, most severe first: status, reason (one line), evidence "
    "(check, status, finding, readings) and action; `same_as` points at a GPU whose problem this one "
    "repeats word for word; in a summary a GPU worse than unknown lists the evidence that decides it, "
    "and the checks it could not make are named in `unavailable`",
    "healthy_gpus": "the GPUs that passed every check the tool makes, named only",
    "counts": "gpus, healthy, unknown (a deciding check could not be read) and not_healthy (warning or worse)",
    "index": "NVML's GPU index",
    "uuid": "NVML's GPU UUID (GPU-...)",
    "pci_bus_id": "the GPU's PCI bus id in NVML's form (00000000:3B:00.0); the kernel log's short form "
    "(0000:3b:00) is accepted wherever a GPU is selected",
    "unavailable": "what could not be read, and why (`field: reason`); a null value is unknown, never healthy",
    "not_supported": "detail=full only: the fields this GPU model or mode never has, counted once (NVML "
    "NotSupported); summaries leave them out because they are not failures",
    "source": "where the answer came from: backend (nvml or mock), profile and scenario when mock, "
    "driver, node, time",
}
DETAIL_MEANING: dict[str, str] = {
    "summary": "the default: status and action first, then only the GPUs that are not healthy with the "
    "evidence, one line per GPU or per item where the tool has readings, the counts, and what could "
    "not be read",
    "full": "every reading of every GPU, as the tool has always returned it, plus the head above",
}
NOT_SUPPORTED = "NotSupported"
# Reasons that say a field does not apply here, by design, rather than that a read failed: NVML's
# NotSupported, a link end that is an NVSwitch or not one of this node's GPUs (gpu/links.py), and a
# section that does not apply in the GPU's mode (NotApplicable: MIG devices while MIG is off).
NOT_APPLICABLE = "NotApplicable:"
BY_DESIGN = (NOT_SUPPORTED, "NotRead: the link ends at an NVSwitch", "NotAGpu:", NOT_APPLICABLE)


def _lower(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


def upper_word(value: Any) -> Any:
    """An input enum written in capitals (kill_gpu_process's TERM, KILL, INT) read in any case."""
    return value.strip().upper() if isinstance(value, str) else value


DetailLevel = Literal["summary", "full"]
Detail = Annotated[
    DetailLevel,
    BeforeValidator(_lower),
    Field(
        description="summary (default): node status and action, then only the GPUs that are not healthy "
        "with their evidence, and the counts; full: every reading of every GPU"
    ),
]


def worst(statuses: Iterable[Status], default: Status = "healthy") -> Status:
    """The most severe status on the scale (a node's status is its worst GPU's)."""
    return max(statuses, key=STATUS_RANK.__getitem__, default=default)


def is_not_supported(reason: str) -> bool:
    """NVML's NotSupported: this model or mode never has the field (not a failed read)."""
    return reason.startswith(NOT_SUPPORTED)


def is_by_design(reason: str) -> bool:
    """A field this GPU, mode or link never has (summaries leave it out): never a failed read."""
    return reason.startswith(BY_DESIGN)
