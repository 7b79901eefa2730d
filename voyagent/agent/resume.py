"""The resume step of a turn (chat-and-agent.md §6.5): decisions taken since the last turn are acted on once.

First the session's lazy expiry sweep; then every granted, rejected or expired approval not yet consumed, oldest
first: a grant runs the paused call (``approval_granted``, ``tool_result``, ``text_delta``), a rejection or an
expiry is reported (``approval_denied``, ``text_delta``). Each is consumed in the transaction that acts on it.
"""

from __future__ import annotations

from voyagent.agent import replies
from voyagent.agent.gateway import APPROVAL_EXPIRED, ToolGateway
from voyagent.agent.interface import ResumedApproval
from voyagent.services.approvals import ApprovalRow


async def resume(gateway: ToolGateway) -> list[ResumedApproval]:
    """Sweep the session's overdue approvals, then act on every decided, unconsumed one (events through the
    gateway's ``emit``); the outcomes, in order."""
    services, context = gateway.services, gateway.context
    async with services.database.connection() as conn:  # one statement: the sweep and the list
        rows = [ApprovalRow.from_record(record) for record in await services.sql.sweep_unconsumed_decisions(
            conn, tenant_id=context.tenant_id, session_id=context.session_id, now=services.clock())]
    resumed = []
    for row in rows:
        outcome = await (_grant(gateway, row) if row.status == "granted" else _deny(gateway, row))
        if outcome is not None:
            resumed.append(outcome)
    return resumed


async def _grant(gateway: ToolGateway, row: ApprovalRow) -> ResumedApproval | None:
    call = {"tool_name": row.tool_name, "tool_call_id": row.tool_call_id}
    await gateway.send("approval_granted", approval_id=row.id, **call)
    output = await gateway.execute_approved(row)
    if output is None:
        return None
    await gateway.send("tool_result", tool_output=output, **call)
    await gateway.send("text_delta", text=replies.result_text(row.tool_name, output))
    return ResumedApproval(row.id, row.tool_name, row.tool_call_id, "granted", output)


async def _deny(gateway: ToolGateway, row: ApprovalRow) -> ResumedApproval | None:
    if not await gateway.record_denial(row):
        return None
    expired = row.status == "expired"
    await gateway.send("approval_denied", approval_id=row.id, tool_name=row.tool_name, tool_call_id=row.tool_call_id,
                       error_message=APPROVAL_EXPIRED if expired else None)
    await gateway.send("text_delta", text=replies.denied_text(row.summary, expired))
    return ResumedApproval(row.id, row.tool_name, row.tool_call_id, "expired" if expired else "rejected", None)
