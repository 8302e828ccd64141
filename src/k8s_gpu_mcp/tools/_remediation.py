"""kill_gpu_process and reset_gpu: operator-mode remediation, confirmed by a human and audited.

The tools here; planning in ``_remediation_plan.py`` (its reset preconditions are the pure rules of
``diagnose/reset.py``), acting in ``_remediation_act.py``.

Registered only with ``--mode=operator``. Both tools re-check their target right before acting,
ask the user through MCP elicitation when the client supports it (else require ``confirm=true``),
support ``dry_run``, and write one audit line per attempt (see ``docs/security.md``).

No ``from __future__ import annotations`` here: the SDK resolves the ``Resolve(...)`` markers
in these signatures at registration, and closures are only visible to it as live objects.
"""

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from mcp.server.elicitation import ElicitationResult
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.resolve import Elicit, Resolve
from pydantic import BeforeValidator, Field, StrictInt, StrictStr

from k8s_gpu_mcp.gpu.reset_state import read_reset_state
from k8s_gpu_mcp.models import ToolModel
from k8s_gpu_mcp.tools._common import DESTRUCTIVE, Source, source
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
from k8s_gpu_mcp.tools._remediation_act import KillResult, execute_kill, run_reset
from k8s_gpu_mcp.tools._remediation_plan import (
    MAX_GRACE_S,
    KillTarget,
    Precondition,
    blocking,
    kill_question,
    one_gpu,
    plan_kill,
    reset_preconditions,
    reset_question,
)
from k8s_gpu_mcp.tools.verify import ResetRecord
from k8s_gpu_mcp.vocabulary import upper_word

if TYPE_CHECKING:
    from k8s_gpu_mcp.server import AgentApp

OneGpu = Annotated[
    StrictInt | StrictStr | None,
    Field(description="GPU index, UUID or PCI bus id"),
]


# ---- models ----------------------------------------------------------------------------------
class ResetResult(ToolModel):
    source: Source
    outcome: str = Field(description="dry-run, done or failed")
    gpu: int
    uuid: str | None
    pci_bus_id: str | None
    preconditions: list[Precondition]
    method: str | None = Field(description="what runs: the nvidia-smi command line or the sysfs write")
    confirmation: str
    output: str | None = None
    state_before: dict[str, Any]
    state_after: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)
    audit: AuditRecord


# ---- registration ----------------------------------------------------------------------------
def register(app: "AgentApp") -> None:
    def identify_kill(pid: int, gpu: Any, signal: str, grace_seconds: int) -> Any:
        """The one plan per call: the question names its pid and start time, and the tool acts on
        that same plan (re-verified right before the signal), so an approval never carries over to
        a process that reused the pid. A Refusal is returned, for the tool to audit and raise."""
        try:
            return plan_kill(app, pid, gpu, signal, grace_seconds)
        except Refusal as exc:
            return exc

    def ask_kill(
        target: Annotated[Any, Resolve(identify_kill)],
        signal: str,
        grace_seconds: int,
        dry_run: bool,
        ctx: Context,
    ) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        if isinstance(target, Refusal):
            return INVALID
        return Elicit(kill_question(app, target, signal, grace_seconds), Approval)

    async def kill_gpu_process(
        pid: Annotated[StrictInt, Field(description="host pid, as list_gpu_processes shows it")],
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_kill)],
        asked: Annotated[Any, Resolve(identify_kill)],
        gpu: OneGpu = None,
        signal: Annotated[
            StrictStr,
            BeforeValidator(upper_word),
            Field(
                description="TERM, KILL or INT (any case)",
                json_schema_extra={"enum": ["TERM", "KILL", "INT"]},
            ),
        ] = "TERM",
        grace_seconds: Annotated[StrictInt, Field(description=f"0 to {MAX_GRACE_S}")] = 10,
        dry_run: DryRun = False,
        confirm: Confirm = False,
        ctx: Context | None = None,
    ) -> KillResult:
        """Stop a process that holds a GPU: send SIGTERM (or INT/KILL), wait grace_seconds, then SIGKILL
        if it is still running, and report the GPU memory freed as NVML reads it back. The pid must be
        on NVML's process list for a GPU of this node (checked again right before signalling); pass
        'gpu' to insist on which GPU. The user confirms through an elicitation prompt when the client
        supports it, else the call needs confirm=true, passed only after the user agreed; dry_run=true
        returns the plan without acting. Every attempt is audited."""
        args = {
            "pid": pid,
            "gpu": gpu,
            "signal": signal,
            "grace_seconds": grace_seconds,
            "dry_run": dry_run,
            "confirm": confirm,
        }
        auditor = Auditor(app, "kill_gpu_process", args, ctx)
        with auditor.deciding():
            if isinstance(asked, Refusal):
                raise asked
            target: KillTarget = asked
            plan = target.plan(signal, grace_seconds)
            if dry_run:
                record = auditor.record("dry-run", plan=plan.model_dump(mode="json"))
                return KillResult(
                    source=source(app),
                    outcome="dry-run",
                    plan=plan,
                    confirmation="not needed (dry run)",
                    audit=record,
                )
            how = confirmation(approval, confirm)
            auditor.record("approved", plan=plan.model_dump(mode="json"), confirmation=how)
        result = KillResult(
            source=source(app),
            outcome="failed",
            plan=plan,
            confirmation=how,
            audit=AuditRecord(written=False),
        )
        try:
            await execute_kill(app, target, signal, grace_seconds, result)
        except Refusal as exc:
            raise auditor.refuse(str(exc), plan=plan.model_dump(mode="json")) from None
        result.audit = auditor.final(
            result.outcome,
            plan=plan.model_dump(mode="json"),
            confirmation=how,
            signals_sent=result.signals_sent,
            exited=result.exited,
            memory_freed_mib=result.memory_freed_mib,
        )
        return result

    def ask_reset(gpu: Any, dry_run: bool, ctx: Context) -> Elicit[Approval] | str:
        if dry_run:
            return NOT_NEEDED
        if not can_elicit(ctx):
            return NO_ELICITATION
        try:
            ref = one_gpu(app, gpu)
        except Refusal:
            return INVALID
        state = read_reset_state(app.backend.adapter, ref)
        checks, method = reset_preconditions(app, ref, state)
        if blocking(checks):
            return INVALID
        return Elicit(reset_question(app, ref, method, state), Approval)

    async def reset_gpu(
        gpu: Annotated[StrictInt | StrictStr, Field(description="GPU index, UUID or PCI bus id")],
        approval: Annotated[ElicitationResult[Approval], Resolve(ask_reset)],
        dry_run: DryRun = False,
        confirm: Confirm = False,
        ctx: Context | None = None,
    ) -> ResetResult:
        """Reset one GPU (clears its contexts and volatile ECC counters, applies pending row remaps, page
        retirements and MIG mode) after checking and reporting each precondition: no processes on it, MIG
        disabled, a reset method available (the host's nvidia-smi --gpu-reset, else a sysfs PCI reset),
        and persistence mode (reported). Peer GPUs using its memory over NVLink are not checked. The user
        confirms through elicitation when the client supports it, else the call needs confirm=true, passed
        only after the user agreed; dry_run=true returns the checks and the method without acting. NVML
        state is read back afterwards. Every attempt is audited."""
        auditor = Auditor(app, "reset_gpu", {"gpu": gpu, "dry_run": dry_run, "confirm": confirm}, ctx)
        with auditor.deciding():
            ref = one_gpu(app, gpu)
            state = await anyio.to_thread.run_sync(read_reset_state, app.backend.adapter, ref)
            checks, method = reset_preconditions(app, ref, state)
            base = {
                "source": source(app),
                "gpu": ref.index,
                "uuid": ref.uuid,
                "pci_bus_id": ref.bus_id,
                "preconditions": checks,
                "method": method.describe() if method else None,
                "state_before": state.as_json(),
            }
            target = {"gpu": ref.index, "uuid": ref.uuid, "pci_bus_id": ref.bus_id, "method": base["method"]}
            if dry_run:
                record = auditor.record(
                    "dry-run", target=target, preconditions=[c.model_dump() for c in checks]
                )
                return ResetResult(
                    **base, outcome="dry-run", confirmation="not needed (dry run)", audit=record
                )
            failed = blocking(checks)
            if failed:
                raise Refusal("; ".join(f"{c.name}: {c.detail}" for c in failed))
            how = confirmation(approval, confirm)
            # Re-check right before acting: a process may have started since the question was asked.
            again = read_reset_state(app.backend.adapter, ref)
            if again.process_pids != []:
                raise Refusal(f"processes appeared on GPU {ref.index}: {again.process_pids}")
            auditor.record("approved", target=target, confirmation=how)
        assert method is not None
        reset_at = datetime.now(UTC)
        ok, output, after = await run_reset(app, ref, method)
        if ok:  # verify_gpu_after_reset compares with the state before and checks XIDs since then
            app.resets[ref.index] = ResetRecord(reset_at, state)
        notes = []
        if app.backend.mock is not None:
            notes.append(
                "mock backend: the fake NVML state does not change on reset; state_after is the simulated GPU as it was"
            )
        result = ResetResult(
            **base, outcome="done" if ok else "failed", confirmation=how, output=output, state_after=after,
            notes=notes, audit=AuditRecord(written=False),
        )  # fmt: skip
        result.audit = auditor.final(
            result.outcome, target=target, confirmation=how, output=output, state_after=after
        )
        return result

    app.add_tool(kill_gpu_process, title="Kill a GPU process", annotations=DESTRUCTIVE)
    app.add_tool(reset_gpu, title="Reset a GPU", annotations=DESTRUCTIVE)
