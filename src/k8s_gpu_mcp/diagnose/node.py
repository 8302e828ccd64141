"""The node's verdict, pure: one ranked list of GPU findings, its text generated once.

The node step (cordon, drain, keep in service) is said once, from the worst GPU's status. Each GPU's
own remedy follows with any drain/cordon clause of its own removed (the node step already covers
it), GPUs that share a remedy are named together, and nothing is said twice. So a warning node never
reads "no drain needed" next to a GPU action that drains, and a critical one never says "drain"
twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from k8s_gpu_mcp.diagnose.health import LOST_ACTION, UNKNOWN_ACTION, Assessment
from k8s_gpu_mcp.vocabulary import STATUS_RANK, Status

_DRAIN_CLAUSE = re.compile(
    r"^(cordon and drain the node|cordon the node|drain the node|drain the gpu's (nccl jobs|workloads)|"
    r"drain the gpu|keep the gpu in service)(,? and|,| then|;)?\s*(then\s+)?",
    re.IGNORECASE,
)
NO_REMEDY = {"", "none", "no action", "no action."}


@dataclass(frozen=True)
class Ranked:
    """One GPU's finding in the node's list: its status and its own remedy."""

    index: int
    status: Status
    action: str
    unverified: tuple[str, ...] = ()  # components that could not be checked


def gpus_text(indexes: list[int]) -> str:
    """``GPU 3``, ``GPUs 3 and 5``, ``GPUs 1, 2 and 6``."""
    names = [str(i) for i in sorted(indexes)]
    if len(names) == 1:
        return f"GPU {names[0]}"
    return f"GPUs {', '.join(names[:-1])} and {names[-1]}"


def remedy(action: str) -> str:
    """A GPU action without its own drain/cordon clause; "" when nothing is left."""
    rest = _DRAIN_CLAUSE.sub("", action.strip(), count=1).strip().rstrip(".")
    if rest.lower() in NO_REMEDY:
        return ""
    return rest[0].upper() + rest[1:]


def ranked(gpus: list[Assessment]) -> list[Ranked]:
    """The GPUs that are not healthy, worst first, then by index."""
    bad = [g for g in gpus if g.status != "healthy"]
    bad.sort(key=lambda g: (-STATUS_RANK[g.status], g.index))
    return [Ranked(g.index, g.status, g.action, tuple(sorted(g.unverified))) for g in bad]


@dataclass(frozen=True)
class NodeVerdict:
    """The node's one status and action, and the GPUs whose action that text states."""

    status: Status
    action: str
    stated: frozenset[int]  # the GPUs whose own action the node's action says in full


def verdict(gpus: list[Assessment]) -> NodeVerdict:
    """The node's status (its worst GPU) and the SRE's next step, built from one ranked list, with
    the GPUs whose own action it states: each GPU whose remedy it names, and each unknown GPU whose
    action is only to verify it (the node's "verify GPU n" says that)."""
    findings = ranked(gpus)
    if not findings:
        return NodeVerdict("healthy", "No action: every GPU passed.", frozenset())
    status = findings[0].status
    worst = [f.index for f in findings if f.status == status]
    step = {
        "lost": f"{gpus_text(worst)} lost: {LOST_ACTION}",
        "critical": f"Cordon the node and drain the workloads on {gpus_text(worst)}",
        "degraded": f"Move workloads off {gpus_text(worst)} (or drain the node)",
        "warning": "Keep the node in service",
        "unknown": f"Keep the node in service, but verify {gpus_text(worst)} before trusting "
        f"{'it' if len(worst) == 1 else 'them'}",
    }[status]
    remedies: dict[str, list[int]] = {}
    for f in findings:
        if f.status == "lost" or f.status == "unknown":  # the node step covers both
            continue
        text = re.sub(rf"-i {f.index}\b", "-i <gpu>", remedy(f.action))  # the same remedy on another GPU
        if text:
            remedies.setdefault(text, []).append(f.index)
    # every unknown GPU is verified: in the step when the node is unknown, in a part otherwise
    stated = {i for idx in remedies.values() for i in idx}
    stated |= {f.index for f in findings if f.status == "unknown" and f.action == UNKNOWN_ACTION}
    unknown = [f for f in findings if f.status == "unknown" and status != "unknown"]
    parts = [
        f"{gpus_text(idx)}: {text.replace('-i <gpu>', '-i ' + ' and -i '.join(map(str, sorted(idx))))}"
        for text, idx in remedies.items()
    ]
    if unknown:
        checks = sorted({c for f in unknown for c in f.unverified})
        parts.append(f"verify {gpus_text([f.index for f in unknown])} (not checked: {', '.join(checks)})")
    if not parts:
        return NodeVerdict(status, f"{step}.", frozenset(stated))
    joiner = "; then " if status in ("critical", "degraded") else "; also " if status == "lost" else ". "
    return NodeVerdict(status, f"{step}{joiner}{'; '.join(parts)}.", frozenset(stated))
