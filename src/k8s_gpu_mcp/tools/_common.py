"""What every tool shares: the ``source`` stamp, GPU selection, annotation presets, and the summary
shape every node tool answers with (docs/tools.md, "Vocabulary")."""

import json
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal, Protocol, TypeVar, cast

from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import ToolAnnotations
from pydantic import Field, StrictInt, StrictStr

from k8s_gpu_mcp.diagnose import health
from k8s_gpu_mcp.gpu.pci import kernel_bus_id
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.vocabulary import (
    NOT_SUPPORTED,
    SEVERITY_STATUS,
    STATUS_RANK,
    Check,
    DetailLevel,
    Status,
    is_by_design,
    is_not_supported,
    worst,
)

if TYPE_CHECKING:
    from k8s_gpu_mcp.gpu.adapter import GpuRef
    from k8s_gpu_mcp.server import AgentApp

READ_ONLY = ToolAnnotations(
    readOnlyHint=True, idempotentHint=True, openWorldHint=False, destructiveHint=False
)
DESTRUCTIVE = ToolAnnotations(
    readOnlyHint=False, idempotentHint=False, openWorldHint=False, destructiveHint=True
)

GpuSelector = Annotated[
    list[StrictInt | StrictStr] | StrictInt | StrictStr | None,
    Field(
        description="GPU indexes (0, 1, ...), UUIDs ('GPU-...') or PCI bus ids, one or a list; omit for every GPU."
    ),
]


class Source(ToolModel):
    """Where a result came from. ``mock`` is true whenever the data is not from real hardware."""

    backend: Literal["nvml", "mock"]
    mock: bool
    profile: str | None = Field(None, description="mock fleet profile, when mock")
    scenario: str | None = Field(None, description="fault scenario overlaid on the profile, when mock")
    driver_version: str | None
    cuda_version: str | None
    nvml_version: str | None
    node: str
    collected_at: datetime
    unavailable: dict[str, str] = Field(
        default_factory=dict, description="node-level reads that failed (versions, GPU enumeration), with why"
    )


def source(app: "AgentApp") -> Source:
    from k8s_gpu_mcp.gpu.backend import source_fields

    return Source(**source_fields(app.backend))


def select_gpus(app: "AgentApp", gpus: list[int | str] | int | str | None) -> "list[GpuRef]":
    """Resolve a selector to GPUs, or raise a ToolError that lists the valid choices."""
    refs = app.backend.adapter.gpus()
    if gpus is None:
        return refs
    if isinstance(gpus, int | str) and not isinstance(gpus, bool):
        gpus = [gpus]
    if not isinstance(gpus, list) or not gpus:
        raise ToolError(f"'gpus' must be a non-empty list of indexes or UUIDs; {valid_choices(refs)}")
    chosen: list[GpuRef] = []
    for item in gpus:
        match = _match(refs, item)
        if match is None:
            raise ToolError(f"unknown GPU {clip(item)}; {valid_choices(refs)}")
        if match not in chosen:
            chosen.append(match)
    return chosen


def _match(refs: "list[GpuRef]", item: int | str) -> "GpuRef | None":
    if isinstance(item, bool):
        return None
    if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
        index = int(item)
        return next((r for r in refs if r.index == index), None)
    if isinstance(item, str):
        wanted = item.strip()
        for ref in refs:
            if ref.uuid and ref.uuid.lower() == wanted.lower():
                return ref
        short = kernel_bus_id(wanted)
        if short:
            return next((r for r in refs if r.short_bus_id == short), None)
    return None


def clip(value: object, limit: int = 64) -> str:
    """repr() of caller-supplied input, cut short: an error must not echo a megabyte back."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def valid_choices(refs: "list[GpuRef]") -> str:
    if not refs:
        return "this node has no GPUs that NVML can see"
    listed = ", ".join(f"{r.index} ({r.uuid or 'uuid unknown'})" for r in refs)
    return f"valid GPUs: {listed}"


class GpuName(ToolModel):
    """How every answer names a GPU."""

    index: int | None
    uuid: str | None
    pci_bus_id: str | None = Field(description="NVML form, e.g. 00000000:3B:00.0")


def gpu_name(ref: "GpuRef") -> GpuName:
    return GpuName(index=ref.index, uuid=ref.uuid, pci_bus_id=ref.bus_id)


class Evidence(ToolModel):
    check: Check = Field(description="what was checked")
    status: Status
    finding: str = Field(description="what was found, with the numbers")
    readings: dict[str, Any] = Field(
        default_factory=dict,
        description="the readings behind the finding (text the finding already says is not repeated)",
        exclude_if=lambda v: not v,
    )


def evidence(
    check: Check, status: Status, finding: str, readings: dict[str, Any], index: int | None = None
) -> Evidence:
    """An Evidence whose readings do not repeat the finding: a reading that is text the finding
    already contains (or a list of such text, or an empty list), or ``gpus`` naming just the GPU the
    problem is about, is left out; numbers, flags and nulls (unknown) always stay."""
    if index is not None and readings.get("gpus") == [index]:
        readings = {k: v for k, v in readings.items() if k != "gpus"}

    def said(value: Any) -> bool:
        if isinstance(value, str):
            return value == check or value in finding
        if isinstance(value, list):
            return all(isinstance(v, str) and v in finding for v in value)
        return False

    def unsaid(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: unsaid(v) for k, v in value.items() if not said(v)}
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return [unsaid(v) for v in value]
        return value

    return Evidence(check=check, status=status, finding=finding, readings=unsaid(readings))


HEADLINE_MAX = 90  # a reason longer than this is cut to its lead clause (the evidence says the rest)


def headline(message: str) -> str:
    """A finding's lead: the one-line reason a problem starts with (its evidence carries the rest).
    The first clause before "; "; of a long one, the shortest part before a ": " that can stand alone
    ("GPU 1: 1 of 18 NVLinks inactive (links 4)", "30720 MiB held by 1 zombie process (pid 42)")."""
    first = message.split("; ", 1)[0]
    if len(first) <= HEADLINE_MAX:
        return first
    cuts = [i for i in range(20, len(first)) if first.startswith(": ", i)]
    return first[: cuts[0]] if cuts else first


def window_start(since: str | None, now: datetime) -> datetime | None:
    """A tool's ``since`` as the start of its window (xid/analyze.parse_since; None: no lower bound),
    refused as one ToolError sentence when it does not parse or lies in the future."""
    from k8s_gpu_mcp.xid.analyze import SINCE_HELP, parse_since

    try:
        start = parse_since(since, now)
    except (ValueError, OverflowError):
        raise ToolError(f"invalid since {clip(since)}: use {SINCE_HELP}") from None
    if start is not None and start > now:
        raise ToolError(
            f"since {clip(since)} is in the future (now {now.isoformat(timespec='seconds')}): "
            'use a past RFC 3339 time or a duration like "24h"'
        )
    return start


def ranges(numbers: Iterable[int]) -> str:
    """0, 1, 2, 3, 5 -> "0-3, 5": GPU and link lists said short."""
    ordered = sorted(set(numbers))
    parts: list[str] = []
    start = prev = None
    for n in ordered:
        if prev is not None and n == prev + 1:
            prev = n
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = n
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


class GpuProblem(GpuName):
    """A GPU that is not healthy: the reason in one line, the evidence that proves it, the next step."""

    status: Status
    reason: str
    evidence: list[Evidence] = Field(default_factory=list, exclude_if=lambda v: not v)
    action: str | None = Field(
        None,
        description="this GPU's next step (inspect_topology's summary leaves it out where the node's action "
        "says it word for word)",
        exclude_if=lambda v: v is None,
    )
    same_as: int | None = Field(
        None,
        description="the GPU index whose problem this one repeats word for word: its reason, evidence and "
        "action are given there once, not again here",
        exclude_if=lambda v: v is None,
    )


class Counts(ToolModel):
    gpus: int
    healthy: int
    unknown: int = Field(description="GPUs whose status is unknown (a deciding check could not be read)")
    not_healthy: int = Field(description="GPUs at warning or worse")


class NotSupported(ToolModel):
    """Fields this GPU model or mode never has (NVML NotSupported), counted once for the node."""

    count: int = Field(description="per-GPU fields NVML answered NotSupported (each says just NotSupported)")
    calls: list[str] = Field(description="the NVML calls that answered NotSupported, each once")


def full_only(description: str) -> Any:
    """A field only ``detail="full"`` fills: left out of a summary rather than sent as null."""
    return Field(None, description=f"full only: {description}", exclude_if=lambda v: v is None)


class NodeAnswer(ToolModel):
    """The head of every node tool's answer: the verdict first, the evidence, then the counts."""

    status: Status = Field(description="the node's status: its worst GPU's, on the one scale")
    action: str = Field(description="the next step for the node")
    detail: DetailLevel = Field(description="summary: problems only; full: every reading (gpus)")
    problems: list[GpuProblem] = Field(description="every GPU that is not healthy, most severe first")
    healthy_gpus: list[GpuName] = Field(description="the GPUs that passed every check of this tool")
    counts: Counts
    unavailable: dict[str, str] = Field(
        default_factory=dict,
        description="checks that could not be made, and why (NotSupported-by-design fields are left out)",
    )


def fold_problems(problems: list[GpuProblem]) -> list[GpuProblem]:
    """A problem several GPUs share word for word (eight GPUs with one unreadable counter) is said
    once: the later GPUs point at the first with ``same_as`` and carry no copy of it."""
    first: dict[tuple[str, str, str | None, str], int | None] = {}
    out = []
    for p in problems:
        key = (p.status, p.reason, p.action, json.dumps([e.model_dump(mode="json") for e in p.evidence]))
        if key in first:
            out.append(GpuProblem(index=p.index, uuid=p.uuid, pci_bus_id=p.pci_bus_id, status=p.status,
                                  reason=f"same as GPU {first[key]}", same_as=first[key]))  # fmt: skip
        else:
            first[key] = p.index
            out.append(p)
    return out


def known_first(problem: GpuProblem) -> GpuProblem:
    """A summary's GPU that is already worse than unknown keeps the evidence that decides it; the
    checks it could not make are named in the answer's ``unavailable`` (per GPU), not again here."""
    known = [e for e in problem.evidence if e.status != "unknown"]
    if known and STATUS_RANK[problem.status] > STATUS_RANK["unknown"] and len(known) < len(problem.evidence):
        return problem.model_copy(update={"evidence": known})
    return problem


def node_head(
    detail: DetailLevel,
    gpus: Iterable[tuple[GpuName, Status]],
    problems: list[GpuProblem],
    action: str,
    unavailable: dict[str, str],
) -> dict[str, Any]:
    """The NodeAnswer fields from each GPU's status, its problems and what could not be read."""
    listed = list(gpus)
    statuses = [s for _, s in listed]
    if detail == "summary":
        problems = [known_first(p) for p in problems]
    problems = fold_problems(
        sorted(problems, key=lambda p: (-STATUS_RANK[p.status], p.index if p.index is not None else -1))
    )
    return {
        "status": worst(statuses),
        "action": action,
        "detail": detail,
        "problems": problems,
        "healthy_gpus": [name for name, s in listed if s == "healthy"],
        "counts": Counts(
            gpus=len(listed),
            healthy=statuses.count("healthy"),
            unknown=statuses.count("unknown"),
            not_healthy=sum(1 for s in statuses if STATUS_RANK[s] >= STATUS_RANK["warning"]),
        ),
        "unavailable": unavailable,
    }


def fold_unavailable(
    node: dict[str, str], per_gpu: dict[int, dict[str, str]], *, keep_not_supported: bool = False
) -> dict[str, str]:
    """Node-level reasons plus each GPU's, the same field and reason on several GPUs said once
    ("temperature_c": "NoPermission: ... (GPU 0, 1)"); NotSupported-by-design fields left out unless
    ``keep_not_supported`` (detail=full, where split_not_supported then counts them once)."""

    def kept(why: str) -> bool:
        return keep_not_supported or not is_by_design(why)

    out = {k: v for k, v in node.items() if kept(v)}
    folded: dict[tuple[str, str], list[int]] = {}
    for index, fields in per_gpu.items():
        for key, why in fields.items():
            if kept(why):
                folded.setdefault((key, why), []).append(index)
    for (key, why), indexes in folded.items():
        label = f"{why} (GPU {ranges(indexes)})"
        out[key if key not in out else f"{key} (GPU {indexes[0]})"] = label
    return out


def split_not_supported(model: ToolModel) -> NotSupported | None:
    """Shorten every NotSupported reason in ``model`` (recursively) to the bare word, the NVML calls
    said once in the returned count: the null keeps its reason, the reason is not repeated per GPU."""
    calls: set[str] = set()
    count = 0

    def walk(obj: Any) -> None:
        nonlocal count
        if isinstance(obj, ToolModel):
            unavailable = getattr(obj, "unavailable", None)
            if isinstance(unavailable, dict):
                for key, why in unavailable.items():
                    if isinstance(why, str) and is_not_supported(why):
                        call = why.removeprefix(NOT_SUPPORTED).strip(" :")
                        if call:
                            calls.add(call)
                        unavailable[key] = NOT_SUPPORTED
                        count += 1
            for name in type(obj).model_fields:
                if name != "unavailable":
                    walk(getattr(obj, name))
        elif isinstance(obj, list):
            for item in obj:
                walk(item)

    walk(model)
    return NotSupported(count=count, calls=sorted(calls)) if count else None


LOST_REASON = "NVML reports the GPU lost"
UNKNOWN_ACTION = health.UNKNOWN_ACTION


def judge_gpu(
    name: GpuName, reasons: list[health.Reason], lost: str | None = None
) -> tuple[Status, GpuProblem | None, health.Assessment]:
    """One GPU's status on the scale from a tool's reasons (diagnose/health.Reason, the same rules
    and words as get_gpu_health): its problem as the summary shows it (None when healthy), and the
    assessment diagnose/node.py ranks into the node's action."""
    index = name.index if name.index is not None else -1
    if lost:
        reasons = [
            health.Reason("lost", "critical", f"{LOST_REASON}: {lost}", {"nvml": lost}, health.LOST_ACTION)
        ]
    shown = [r for r in reasons if r.severity != "info"]
    status: Status = "lost" if lost else worst(SEVERITY_STATUS[r.severity] for r in shown)
    action = next((r.action for r in shown if r.action and r.severity != "unknown"), None)
    if action is None and status == "unknown":
        action = UNKNOWN_ACTION
    if action:
        action = action.replace("<gpu>", str(index))
    unverified = {r.component: r.message for r in shown if r.severity == "unknown"}
    assessment = health.Assessment(index, status, 0, "", reasons, action or "No action.", unverified)
    if status == "healthy":
        return status, None, assessment
    problem = GpuProblem(
        **name.model_dump(),
        status=status,
        reason=headline(shown[0].message),
        evidence=[
            evidence(cast(Check, r.component), SEVERITY_STATUS[r.severity], r.message, r.evidence, index)
            for r in shown
        ],
        action=action,
    )
    return status, problem, assessment


class GpuAnswer(Protocol):
    """What a tool's per-GPU model carries for judging: its name, whether it is lost, why not read."""

    @property
    def index(self) -> int: ...
    @property
    def uuid(self) -> str | None: ...
    @property
    def pci_bus_id(self) -> str | None: ...
    @property
    def lost(self) -> bool: ...
    @property
    def unavailable(self) -> dict[str, str]: ...


G = TypeVar("G", bound=GpuAnswer)


def judge_each(
    gpus: Iterable[G], reasons_of: Callable[[G], list[health.Reason]]
) -> list[tuple[GpuName, Status, GpuProblem | None, health.Assessment]]:
    """judge_gpu for each GPU of a tool's answer, named as every answer names it (node_answer's input)."""
    judged = []
    for g in gpus:
        name = GpuName(index=g.index, uuid=g.uuid, pci_bus_id=g.pci_bus_id)
        judged.append((name, *judge_gpu(name, reasons_of(g), g.unavailable.get("*") if g.lost else None)))
    return judged


def node_answer(
    detail: DetailLevel,
    judged: list[tuple[GpuName, Status, GpuProblem | None, health.Assessment]],
    unavailable: dict[str, str],
    healthy_action: str,
    *,
    drop_stated_actions: bool = False,
) -> dict[str, Any]:
    """The NodeAnswer head from judge_gpu's results: the node's action ranked by diagnose/node.py.
    ``drop_stated_actions``: a summary leaves out each GPU's action that the node's action says."""
    from k8s_gpu_mcp.diagnose import node

    v = node.verdict([a for *_, a in judged])
    head = node_head(
        detail,
        [(name, s) for name, s, _, _ in judged],
        [p for _, _, p, _ in judged if p is not None],
        healthy_action if v.status == "healthy" else v.action,
        unavailable,
    )
    if drop_stated_actions and detail == "summary":
        head["problems"] = [
            p.model_copy(update={"action": None}) if p.action and p.index in v.stated else p
            for p in head["problems"]
        ]
    return head


def summary_only(description: str) -> Any:
    """A field only the summary fills (``full`` carries the same facts in its per-GPU evidence)."""
    return Field(None, description=f"summary only: {description}", exclude_if=lambda v: v is None)
