"""The tool gateway (chat-and-agent.md §6.2): every backend's tool calls go through ``ToolGateway.invoke``.

One call: ``tool_use`` → input schema (``invalid_input``) → the tool's approval roles (``permission_denied``, with a
``rejected`` audit row) → the tool's preconditions (their codes, nothing written) → either a pending approval
(``approval_request``; the turn then calls no further tool) or the execution (``tool_result``). A side-effecting
execution is one transaction: the audit row ``started``, the effects, the row ``succeeded``/``failed`` (and, for
an approved call, the approval's ``consumed_at``, written by the resume step through ``execute_approved``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from typing import Any, Awaitable, Callable, Sequence

import asyncpg

from voyagent.agent import toolbox
from voyagent.agent.events import event, new_tool_call_id
from voyagent.agent.interface import ToolOutcome
from voyagent.ids import new_id
from voyagent.services import approvals, audit
from voyagent.services.approvals import ApprovalRow
from voyagent.services.billing import Posting
from voyagent.services.itinerary_items import Where
from voyagent.services.tools import TOOLS, ToolFailure, ToolSpec

log = logging.getLogger(__name__)

Emit = Callable[[dict[str, Any]], Awaitable[None]]
# ToolOutcome.kind → the ``outcome`` label of voyagent_agent_tool_calls_total (operations.md §3)
COUNTED = {"success": "success", "error": "error", "permission_denied": "permission_denied",
           "approval_needed": "approval_requested"}
UNKNOWN_TOOL_LABEL = "unknown"  # a name outside the registry is not a label value (bounded cardinality)
APPROVAL_EXPIRED = "approval_expired"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


@dataclasses.dataclass(frozen=True, slots=True)
class ToolServices:
    """What the tools need, built once per app: the database, the named queries, the offer cache, the sandbox
    supplier, the approval lifetime, the tool-call counter of operations.md §3 and a clock."""

    database: Any  # voyagent.db.Database
    sql: Any  # voyagent.queries.Queries
    offers: Any  # voyagent.agent.offer_cache.OfferCache
    supplier: Any  # voyagent.agent.sandbox.SandboxSupplier
    approval_ttl_seconds: int
    count_tool_call: Callable[[str, str], None] = lambda tool, outcome: None
    clock: Callable[[], dt.datetime] = utc_now


@dataclasses.dataclass(frozen=True, slots=True)
class ToolContext:
    """Who calls, in which session and turn."""

    tenant_id: uuid.UUID
    session_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    turn_id: str


class ToolGateway:
    """One turn's gateway: ``specs()`` and ``invoke(name, input)``; events go to ``emit`` as they happen."""

    def __init__(self, services: ToolServices, context: ToolContext, emit: Emit) -> None:
        self.services = services
        self.context = context
        self.emit = emit
        self.where = Where(context.tenant_id, context.session_id)
        self.awaiting_approval: str | None = None  # the approval this turn paused on (§6.2 step 5)

    def specs(self) -> Sequence[ToolSpec]:
        return list(TOOLS.values())

    async def send(self, kind: str, **fields: Any) -> None:
        """Emit one event of this turn (the gateway's own and the resume step's)."""
        await self.emit(event(kind, self.context.session_id, self.context.turn_id, **fields))

    async def invoke(self, name: str, tool_input: Any) -> ToolOutcome:
        """§6.2 for one call, its events emitted; after an approval request the turn's further calls are refused
        without events (only ``final`` may follow an ``approval_request``)."""
        if self.awaiting_approval is not None:
            return ToolOutcome("error", ToolFailure(
                "approval_pending", f"this turn waits for approval {self.awaiting_approval}").output())
        tool_call_id = new_tool_call_id()
        await self.send("tool_use", tool_name=name, tool_call_id=tool_call_id,
                        tool_input=tool_input if isinstance(tool_input, dict) else {})
        outcome = await self._procedure(name, tool_input, tool_call_id)
        self.services.count_tool_call(name if name in TOOLS else UNKNOWN_TOOL_LABEL, COUNTED[outcome.kind])
        if outcome.kind == "approval_needed":
            self.awaiting_approval = outcome.approval_id
            await self.send("approval_request", tool_name=name, tool_call_id=tool_call_id,
                            approval_id=outcome.approval_id, approval_summary=outcome.output["approval_summary"])
        else:
            await self.send("tool_result", tool_name=name, tool_call_id=tool_call_id, tool_output=outcome.output)
        return outcome

    async def _procedure(self, name: str, tool_input: Any, tool_call_id: str) -> ToolOutcome:
        spec = TOOLS.get(name)
        try:
            if spec is None:
                raise ToolFailure("unknown_tool", f"there is no tool named {name[:64]!r}")
            clean = spec.validated(tool_input)
            if not spec.allows(self.context.role):
                return await self._refuse(spec, clean)
            if name in toolbox.READ_TOOLS:
                return ToolOutcome("success", await toolbox.READ_TOOLS[name].run(self.services, self.where, clean))
            tool = toolbox.WRITE_TOOLS[name]
            if spec.approval_required:
                return await self._request_approval(spec, tool, clean, tool_call_id)
            async with self.services.database.transaction() as conn:
                subject = await tool.check(self.services, self.where, conn, clean)  # refused: nothing written
                output = await self._audited(conn, spec, tool, clean, subject, None)
        except ToolFailure as failure:
            return ToolOutcome("error", failure.output())
        return ToolOutcome("success" if output.get("ok") else "error", output)

    async def _refuse(self, spec: ToolSpec, clean: dict[str, Any]) -> ToolOutcome:
        """§6.2 step 3: the role may not request the tool; a ``rejected`` audit row says so."""
        detail = f"role {self.context.role} may not request {spec.name}"
        async with self.services.database.transaction() as conn:
            await audit.write_event(
                conn, self.services.sql, tenant_id=self.context.tenant_id, actor_id=self.context.user_id,
                kind=spec.name, actor_kind="agent", status="rejected", inputs=clean,
                entity_refs={"session_id": str(self.context.session_id)}, error=f"permission_denied: {detail}",
                driver=spec.driver, approval_required=True)
        return ToolOutcome("permission_denied", ToolFailure("permission_denied", detail).output())

    async def _request_approval(self, spec: ToolSpec, tool: Any, clean: dict[str, Any],
                                tool_call_id: str) -> ToolOutcome:
        """§6.2 steps 4–5: the preconditions, then the pending approval with its §6.3 summary."""
        async with self.services.database.transaction() as conn:
            subject = await tool.check(self.services, self.where, conn, clean)
            summary = tool.summary(clean, subject)
            row = await approvals.request_approval(
                conn, self.services.sql, tenant_id=self.context.tenant_id, session_id=self.context.session_id,
                turn_id=self.context.turn_id, tool_name=spec.name, tool_call_id=tool_call_id, payload=clean,
                summary=summary, ttl_seconds=self.services.approval_ttl_seconds, now=self.services.clock())
        return ToolOutcome("approval_needed", {"approval_id": row.id, "approval_summary": summary},
                           approval_id=row.id)

    async def _audited(self, conn: asyncpg.Connection, spec: ToolSpec, tool: Any, clean: dict[str, Any],
                       subject: Any, approval: ApprovalRow | None) -> dict[str, Any]:
        """The audit row ``started``, the effects (unless ``subject`` is the re-check's ``ToolFailure``), the row
        ``succeeded`` or ``failed``: all in ``conn``'s transaction. Returns the tool output."""
        refs: dict[str, Any] = {"session_id": str(self.context.session_id)}
        posting = None
        if approval is not None:
            refs["approval_id"] = approval.id
        failure = subject if isinstance(subject, ToolFailure) else None
        if tool.document is not None and failure is None:
            source = f"{spec.name}:{approval.id if approval is not None else self.context.turn_id}"
            posting = Posting(new_id(), source, self.services.clock())
            refs[tool.document] = str(posting.document_id)
        event_id = await audit.write_event(
            conn, self.services.sql, tenant_id=self.context.tenant_id, actor_id=self.context.user_id,
            kind=spec.name, actor_kind="agent", status="started", inputs=clean, entity_refs=refs, driver=spec.driver,
            approval_required=spec.approval_required,
            approved_by=approval.resolved_by_user_id if approval is not None else None,
            approved_at=approval.resolved_at if approval is not None else None, completed=False)
        if failure is None:
            try:
                async with conn.transaction():  # a savepoint: a refused effect leaves nothing behind
                    output = await tool.execute(self.services, self.where, conn, clean, subject, posting)
            except ToolFailure as refused:
                failure = refused
            else:
                await audit.finish_event(conn, self.services.sql, tenant_id=self.context.tenant_id,
                                         event_id=event_id, status="succeeded", outputs=output,
                                         completed_at=self.services.clock())
                return output
        output = failure.output()
        await audit.finish_event(conn, self.services.sql, tenant_id=self.context.tenant_id, event_id=event_id,
                                 status="failed", outputs=output, error=failure.code,
                                 completed_at=self.services.clock())
        return output

    async def execute_approved(self, row: ApprovalRow) -> dict[str, Any] | None:
        """A granted approval's call (§6.5): the supplier's wait (hold, book), then one transaction that claims the
        approval (``consumed_at``), re-checks the preconditions and runs the tool with its audit row. Returns the
        tool output, or None when another turn consumed the approval first."""
        spec = TOOLS.get(row.tool_name)
        tool = toolbox.WRITE_TOOLS.get(row.tool_name)
        if spec is None or tool is None:  # not a row the agent wrote: consumed, reported as a failure
            async with self.services.database.transaction() as conn:
                if not await self._consume(conn, row):
                    return None
            return ToolFailure("unknown_tool", f"there is no tool named {row.tool_name[:64]!r}").output()
        if spec.driver == "sandbox":
            await self.services.supplier.wait()
        async with self.services.database.transaction() as conn:
            if not await self._consume(conn, row):
                return None
            try:
                clean = spec.validated(row.payload)
                subject = await tool.check(self.services, self.where, conn, clean)
            except ToolFailure as failure:
                clean, subject = (row.payload if isinstance(row.payload, dict) else {}), failure
            output = await self._audited(conn, spec, tool, clean, subject, row)
        self.services.count_tool_call(spec.name, "success" if output.get("ok") else "error")
        return output

    async def record_denial(self, row: ApprovalRow) -> bool:
        """A rejected (audit ``rejected``) or expired (audit ``cancelled``, ``approval_expired``) approval,
        consumed in the same transaction. False when another turn consumed it first."""
        spec = TOOLS.get(row.tool_name)
        expired = row.status == "expired"
        async with self.services.database.transaction() as conn:
            if not await self._consume(conn, row):
                return False
            await audit.write_event(
                conn, self.services.sql, tenant_id=self.context.tenant_id, actor_id=self.context.user_id,
                kind=row.tool_name, actor_kind="agent", status="cancelled" if expired else "rejected",
                inputs=row.payload if isinstance(row.payload, dict) else {},
                entity_refs={"session_id": str(row.session_id), "approval_id": row.id},
                error=APPROVAL_EXPIRED if expired else None, driver=spec.driver if spec is not None else None,
                approval_required=True)
        return True

    async def _consume(self, conn: asyncpg.Connection, row: ApprovalRow) -> bool:
        claimed = await self.services.sql.consume_approval(conn, id=row.id, tenant_id=self.context.tenant_id,
                                                           now=self.services.clock())
        if claimed is None:
            log.warning("approval %s was consumed by another turn", row.id)
        return claimed is not None
