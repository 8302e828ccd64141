"""cordon_node, uncordon_node and drain_gpu_node: the Kubernetes half of the remediation loop.

Operator mode only (destructive), one node per call, and only the node this agent runs on: the
advice "cordon and drain the node" becomes a confirmed, audited call instead of a hand-typed kubectl.
Each call asks the user (elicitation, else ``confirm=true``), writes its audit line before it acts,
and has a ``dry_run`` that shows what it would do. The plan and the API calls are in ``k8s/drain.py``.

No ``from __future__ import annotations``: the SDK resolves the ``Resolve(...)`` markers in these
signatures at registration (as in ``_remediation.py``).
"""

from typing import TYPE_CHECKING, Annotated, Any, Literal

import anyio
from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import Field, StrictInt, StrictStr

from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import DESTRUCTIVE, Source, clip, source
from k8s_gpu_mcp.tools._confirm import (
    INVALID,
    NO_ELICITATION,
    NOT_NEEDED,
    Approval,
    Auditor,
    AuditRecord,
    Confirm,
    DryRun,
    Refusal,
    can_elicit,
    confirmation,
)

if TYPE_CHECKING:
    from k8s_gpu_mcp.k8s.drain import PodPlan
    from k8s_gpu_mcp.server import AgentApp

MAX_GRACE_S = 3600
LISTED_IN_QUESTION = 10  # pods named in the confirmation question; the rest are counted

NodeName = Annotated[StrictStr, Field(description="the node to act on: the node this agent runs on")]


class NodeOpResult(ToolModel):
    source: Source
    node: str
    outcome: Literal["cordoned", "uncordoned", "unchanged", "dry-run"]
    unschedulable_before: bool | None
    confirmation: str
    audit: AuditRecord


class PodDrain(ToolModel):
    namespace: str
    name: str
    gpus: int = Field(description="GPUs or MIG instances the pod requests")
    action: Literal["evict", "skip"]
    why: str
    outcome: Literal["evicted", "blocked", "gone", "failed"] | None = Field(
        None, description="what the Eviction API answered; null for a skipped pod or a dry run"
    )
    message: str | None = None


class DrainResult(ToolModel):
    source: Source
    node: str
    outcome: Literal["drained", "partial", "dry-run"]
    cordoned: bool = Field(description="the node is unschedulable after this call")
    evicted: int
    blocked: int = Field(
        description="evictions a PodDisruptionBudget refused; retry later or relax the budget"
    )
    failed: int
    skipped: int
    pods: list[PodDrain]
    action: str = Field(description="the next step")
    confirmation: str
    audit: AuditRecord


def _api() -> Any:
    from k8s_gpu_mcp.k8s.client import default_api

    return default_api()


def _own_node(app: "AgentApp", node: str) -> str:
    """These tools act on the agent's own node only: one node per call, the one whose GPUs it reads."""
    mine = app.backend.node_name
    if node != mine:
        raise Refusal(
            f"this agent runs on node {mine!r} and acts only on it, not on {clip(node)}; "
            "reach that node's agent (connect cluster, or connect node/NAME) to act there"
        )
    return node


def _k8s(fn: Any, *args: Any) -> Any:
    from k8s_gpu_mcp.k8s.client import K8sError

    try:
        return fn(*args)
    except K8sError as exc:
        raise Refusal(str(exc)) from None


def _plan(app: "AgentApp", node: str, all_pods: bool) -> "list[PodPlan]":
    from k8s_gpu_mcp.k8s.drain import plan_drain

    return plan_drain(_k8s(_api().list_pods, node), all_pods=all_pods)


def drain_question(node: str, plans: "list[PodPlan]", grace_seconds: int | None) -> str:
    evict = [p for p in plans if p.action == "evict"]
    named = ", ".join(f"{p.namespace}/{p.name} ({p.gpus} GPU)" for p in evict[:LISTED_IN_QUESTION])
    more = f" and {len(evict) - LISTED_IN_QUESTION} more" if len(evict) > LISTED_IN_QUESTION else ""
    grace = f"{grace_seconds} s" if grace_seconds is not None else "each pod's own"
    return (
        f"Drain node {node}: cordon it, then evict {len(evict)} pod{'s' if len(evict) != 1 else ''} "
        f"through the Eviction API (PodDisruptionBudgets are honoured; grace period {grace})?\n"
        + (f"pods: {named}{more}" if evict else "no pod needs evicting")
    )


def register(app: "AgentApp") -> None:
    def ask_cordon(node: str, dry_run: bool, ctx: Context) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        return Elicit(
            f"Cordon node {node}? New pods will not be scheduled there; running pods stay.", Approval
        )

    def ask_uncordon(node: str, dry_run: bool, ctx: Context) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        return Elicit(
            f"Uncordon node {node}? The scheduler may place new pods, GPU jobs included, there.", Approval
        )

    async def set_cordon(
        tool: str, node: str, cordon: bool, approval: Any, dry_run: bool, confirm: bool, ctx: Context | None
    ) -> NodeOpResult:
        from k8s_gpu_mcp.k8s.drain import set_unschedulable

        auditor = Auditor(app, tool, {"node": clip(node), "dry_run": dry_run, "confirm": confirm}, ctx)
        with auditor.deciding():
            _own_node(app, node)
            if dry_run:
                before = _k8s(_api().get_node, node).get("spec", {}).get("unschedulable") is True
                record = auditor.record("dry-run", unschedulable_before=before)
                return NodeOpResult(
                    source=source(app), node=node, outcome="dry-run", unschedulable_before=before,
                    confirmation="not needed (dry run)", audit=record,
                )  # fmt: skip
            how = confirmation(approval, confirm)
            auditor.record("approved", confirmation=how)
            before = await anyio.to_thread.run_sync(_k8s, set_unschedulable, _api(), node, cordon)
        outcome = "unchanged" if before == cordon else ("cordoned" if cordon else "uncordoned")
        return NodeOpResult(
            source=source(app), node=node, outcome=outcome, unschedulable_before=before, confirmation=how,
            audit=auditor.final(outcome, unschedulable_before=before, confirmation=how),
        )  # fmt: skip

    async def cordon_node(
        node: NodeName,
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_cordon)],
        dry_run: DryRun = False,
        confirm: Confirm = False,
        ctx: Context | None = None,
    ) -> NodeOpResult:
        """Cordon this node (spec.unschedulable=true): the scheduler places no new pods on it, running
        pods keep running. The first step before draining or repairing a GPU node; undo it with
        uncordon_node. The user confirms through elicitation when the client supports it, else the call
        needs confirm=true, passed only after the user agreed. Audited."""
        return await set_cordon("cordon_node", node, True, approval, dry_run, confirm, ctx)

    async def uncordon_node(
        node: NodeName,
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_uncordon)],
        dry_run: DryRun = False,
        confirm: Confirm = False,
        ctx: Context | None = None,
    ) -> NodeOpResult:
        """Uncordon this node (spec.unschedulable=false) once its GPUs are verified healthy again: the
        scheduler may place pods on it. Confirmed (elicitation, else confirm=true) and audited."""
        return await set_cordon("uncordon_node", node, False, approval, dry_run, confirm, ctx)

    def ask_drain(
        node: str, all_pods: bool, grace_seconds: int | None, dry_run: bool, ctx: Context
    ) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        try:
            _own_node(app, node)
            plans = _plan(app, node, all_pods)
        except Refusal:
            return INVALID  # the call itself refuses, with the reason, before anyone is asked
        return Elicit(drain_question(node, plans, grace_seconds), Approval)

    async def drain_gpu_node(
        node: NodeName,
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_drain)],
        all_pods: Annotated[
            bool, Field(description="evict every evictable pod, not only those that use GPUs")
        ] = False,
        grace_seconds: Annotated[
            StrictInt | None,
            Field(description=f"termination grace period, 0 to {MAX_GRACE_S}; default: the pod's"),
        ] = None,
        dry_run: DryRun = False,
        confirm: Confirm = False,
        ctx: Context | None = None,
    ) -> DrainResult:
        """Drain this node's GPU work: cordon the node, then evict the pods that use GPUs (nvidia.com/gpu
        or MIG resources; all_pods=true for every pod) through the Eviction API, so PodDisruptionBudgets
        are honoured: a blocked eviction is reported, never forced. DaemonSet, static and finished pods
        are skipped. dry_run=true lists what would be evicted and why. Confirmed (elicitation, else
        confirm=true) and audited; per pod the API server's answer."""
        from k8s_gpu_mcp.k8s.drain import evict, set_unschedulable

        args = {"node": clip(node), "all_pods": all_pods, "grace_seconds": grace_seconds, "dry_run": dry_run,
                "confirm": confirm}  # fmt: skip
        auditor = Auditor(app, "drain_gpu_node", args, ctx)
        if grace_seconds is not None and not 0 <= grace_seconds <= MAX_GRACE_S:
            raise ToolError(f"grace_seconds must be 0 to {MAX_GRACE_S}, not {clip(grace_seconds)}")
        with auditor.deciding():
            _own_node(app, node)
            plans = await anyio.to_thread.run_sync(_plan, app, node, all_pods)
            listed = [p.namespace + "/" + p.name for p in plans if p.action == "evict"]
            if dry_run:
                record = auditor.record("dry-run", evict=listed)
                return _drain_result(app, node, "dry-run", None, plans, {}, "not needed (dry run)", record)
            how = confirmation(approval, confirm)
            auditor.record("approved", evict=listed, confirmation=how)
            await anyio.to_thread.run_sync(_k8s, set_unschedulable, _api(), node, True)
        answers: dict[tuple[str, str], tuple[str, str]] = {}
        for plan in plans:
            if plan.action == "evict":
                answers[(plan.namespace, plan.name)] = await anyio.to_thread.run_sync(
                    evict, _api(), plan.namespace, plan.name, grace_seconds
                )
        done = all(a[0] in ("evicted", "gone") for a in answers.values())
        outcome: Literal["drained", "partial"] = "drained" if done else "partial"
        counts = {k: sum(1 for a in answers.values() if a[0] == k) for k in ("evicted", "blocked", "failed")}
        record = auditor.final(outcome, confirmation=how, **counts)
        return _drain_result(app, node, outcome, True, plans, answers, how, record)

    for tool, title in (
        (cordon_node, "Cordon this node"),
        (uncordon_node, "Uncordon this node"),
        (drain_gpu_node, "Drain this node's GPU pods (Eviction API)"),
    ):
        app.add_tool(tool, title=title, annotations=DESTRUCTIVE)


def _drain_result(
    app: "AgentApp",
    node: str,
    outcome: Literal["drained", "partial", "dry-run"],
    cordoned: bool | None,
    plans: "list[PodPlan]",
    answers: dict[tuple[str, str], tuple[str, str]],
    how: str,
    audit: AuditRecord,
) -> DrainResult:
    pods = []
    for p in plans:
        answer = answers.get((p.namespace, p.name))
        pods.append(
            PodDrain(
                namespace=p.namespace,
                name=p.name,
                gpus=p.gpus,
                action=p.action,
                why=p.why,
                outcome=answer[0] if answer else None,
                message=answer[1] if answer else None,
            )  # fmt: skip
        )
    count = {k: sum(1 for pod in pods if pod.outcome == k) for k in ("evicted", "blocked", "failed")}
    skipped = sum(1 for p in plans if p.action == "skip")
    if outcome == "dry-run":
        evict = sum(1 for p in plans if p.action == "evict")
        action = f"Would cordon {node} and evict {evict} pod{'s' if evict != 1 else ''}; call again without dry_run."
    elif count["blocked"] or count["failed"]:
        action = (
            f"{count['blocked']} eviction(s) blocked by a PodDisruptionBudget and {count['failed']} failed: "
            "the node stays cordoned; retry drain_gpu_node later or resolve the budget"
        )
    else:
        action = "Drained: repair or reset the GPUs, verify with get_gpu_health, then uncordon_node."
    return DrainResult(
        source=source(app), node=node, outcome=outcome, cordoned=bool(cordoned), evicted=count["evicted"],
        blocked=count["blocked"], failed=count["failed"], skipped=skipped, pods=pods, action=action,
        confirmation=how, audit=audit,
    )  # fmt: skip
