"""The tool gateway (chat-and-agent.md §6.2): every backend's tool calls go through ``ToolGateway.invoke``.

SKELETON — the interface only; the tools branch of issue 11 fills it in (schema check, role check, preconditions,
approval rows, execution with audit rows and effects).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any, Awaitable, Callable, Sequence

from voyagent.agent.interface import ToolOutcome

Emit = Callable[[dict[str, Any]], Awaitable[None]]


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

    def specs(self) -> Sequence[Any]:
        raise NotImplementedError

    async def invoke(self, name: str, tool_input: Any) -> ToolOutcome:
        raise NotImplementedError
