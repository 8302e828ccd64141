"""Confirmation and audit shared by the remediation tools.

A destructive call runs only after a human said yes: through MCP elicitation when the client
supports it (asked even when the model passed ``confirm=true``), else through ``confirm=true``.
Every attempt is audited (see :mod:`k8s_gpu_mcp.audit`); an audit line that cannot be written
turns the attempt into a refusal.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field, StrictBool

from k8s_gpu_mcp.audit import AuditError, AuditLog, who_asked

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from k8s_gpu_mcp.server import AgentApp

DryRun = Annotated[StrictBool, Field(description="return the plan (or the checks) and do nothing")]
Confirm = Annotated[
    StrictBool,
    Field(description="the user agreed; required when the client cannot elicit (ignored when it can)"),
]

# What a confirmation resolver returns when it does not ask the human.
NOT_NEEDED = "not-needed"  # dry run: nothing will be done
NO_ELICITATION = "no-elicitation"  # the client cannot ask a human: confirm=true is required
INVALID = "invalid"  # the request will be refused anyway; the body says why


class Approval(BaseModel):
    """The form the human answers."""

    approve: bool = Field(description="Yes, do it")


class Refusal(Exception):
    """A remediation request that will not be carried out; the message says why."""


class AuditRecord(BaseModel):
    written: bool
    audit_log: str | None = Field(None, description="file the line was appended to, when configured")
    error: str | None = None


def can_elicit(ctx: Context[Any, Any]) -> bool:
    """The client declared form elicitation (a bare ``elicitation: {}`` counts, as in the SDK)."""
    try:
        caps = ctx.client_capabilities
    except Exception:  # no request context (a direct, in-process call)
        return False
    elicitation = caps.elicitation if caps is not None else None
    return elicitation is not None and (elicitation.form is not None or elicitation.url is None)


def confirmation(approval: Any, confirm: bool) -> str:
    """How the call was confirmed; raises Refusal when it was not."""
    if isinstance(approval, AcceptedElicitation):
        data = approval.data
        if isinstance(data, Approval):
            if data.approve:
                return "elicitation: approved by the user"
            raise Refusal("the user did not approve the action (elicitation answered approve=false)")
        if data == NO_ELICITATION:
            if confirm:
                return "confirm=true (the client does not support elicitation)"
            raise Refusal(
                "confirmation required: this client cannot ask the user (no MCP elicitation), so repeat "
                "the call with confirm=true once the user has agreed; dry_run=true shows the plan"
            )
        if data == NOT_NEEDED:
            return "not needed (dry run)"
        raise Refusal("the target changed while the confirmation was prepared; call again (dry_run shows it)")
    action = {"decline": "declined", "cancel": "cancelled"}.get(
        getattr(approval, "action", ""), "did not answer"
    )
    raise Refusal(f"the user {action} the confirmation request")


def requester(ctx: Context[Any, Any] | None) -> dict[str, str]:
    """Who asked for this call (see audit.who_asked), from the request's _meta and the client's name."""
    if ctx is None:
        return who_asked(None, None)
    try:
        request = ctx.request_context
    except ValueError:  # outside a request (a direct call in tests)
        return who_asked(None, None)
    params = request.session.client_params
    return who_asked(request.meta, params.client_info.name if params is not None else None)


class Auditor:
    """Writes the audit line for one tool call; refusal lines never hide the refusal itself."""

    def __init__(self, app: AgentApp, tool: str, args: dict[str, Any], ctx: Context[Any, Any] | None = None):
        self.log = AuditLog(app.settings.audit_log, app.backend.node_name)
        self.tool = tool
        self.args = args
        self.mock = app.backend.mock is not None
        self.who = requester(ctx)

    def record(self, outcome: str, **fields: Any) -> AuditRecord:
        """Write a line; raises AuditError (the caller must then not act)."""
        self.log.write(self.tool, outcome, args=self.args, mock=self.mock, **self.who, **fields)
        return AuditRecord(written=True, audit_log=self.log.path)

    def refuse(self, reason: str, **fields: Any) -> ToolError:
        """Audit a refusal and return the ToolError to raise."""
        try:
            self.record("refused", reason=reason, **fields)
        except AuditError as exc:
            return ToolError(f"refused: {reason} (and the audit line could not be written: {exc})")
        return ToolError(f"refused: {reason}")

    @contextmanager
    def deciding(self) -> Iterator[None]:
        """Around the checks and the approval line: a Refusal is audited and raised as a ToolError;
        an audit line that cannot be written refuses the action."""
        try:
            yield
        except Refusal as exc:
            raise self.refuse(str(exc)) from None
        except AuditError as exc:
            raise ToolError(
                f"refused: the audit line could not be written, so nothing was done: {exc}"
            ) from None

    def final(self, outcome: str, **fields: Any) -> AuditRecord:
        """The line after an action was carried out: a failure is reported, not raised."""
        try:
            return self.record(outcome, **fields)
        except AuditError as exc:
            return AuditRecord(written=False, audit_log=self.log.path, error=str(exc))
