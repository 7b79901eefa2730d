"""A turn's tool gateway on the real database and offer cache, its events collected in order.

``Harness.gateway()`` starts a turn (a fresh ``turn_id``) for a user in a session; ``events`` collects what the
gateway, the resume step and the backend emit, as the turn runner would relay them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from typing import Any

import asyncpg

from voyagent.agent.events import new_turn_id
from voyagent.agent.gateway import ToolContext, ToolGateway, ToolServices
from voyagent.agent.interface import TenantAgentSettings, Turn
from voyagent.agent.offline import OfflineBackend
from voyagent.agent.resume import resume
from voyagent.services.sessions import create_session


class Clock:
    """A UTC clock the test moves by hand (starts at the real time)."""

    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.timezone.utc)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclasses.dataclass
class Harness:
    services: ToolServices
    db: asyncpg.Connection  # a direct connection for arranging and checking rows
    clock: Clock
    counted: list[tuple[str, str]]
    events: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    async def emit(self, data: dict[str, Any]) -> None:
        self.events.append(data)

    async def new_session(self, user: Any) -> uuid.UUID:
        async with self.services.database.transaction() as conn:
            return (await create_session(conn, self.services.sql, tenant_id=user.tenant_id, actor_id=user.id))["id"]

    def gateway(self, user: Any, session_id: uuid.UUID, turn_id: str | None = None) -> ToolGateway:
        context = ToolContext(tenant_id=user.tenant_id, session_id=session_id, user_id=user.id, role=user.role,
                              turn_id=turn_id or new_turn_id())
        return ToolGateway(self.services, context, self.emit)

    def take(self) -> list[dict[str, Any]]:
        """The events so far (then forgotten)."""
        events, self.events = self.events, []
        return events

    async def turn(self, user: Any, session_id: uuid.UUID, message: str, turn_id: str | None = None
                   ) -> list[dict[str, Any]]:
        """One turn's resume step and offline command, as the runner drives them (without ``final``)."""
        gateway = self.gateway(user, session_id, turn_id)
        resumed = await resume(gateway)
        turn = Turn(session_id=session_id, tenant_id=user.tenant_id, user_id=user.id, role=user.role,
                    turn_id=gateway.context.turn_id, message=message, history=(), resumed=resumed,
                    settings=TenantAgentSettings(None, None, "en", "INR"))
        backend = OfflineBackend(self.services.database, self.services.sql)
        async for data in backend.run_turn(turn, gateway):
            assert data["kind"] in ("text_delta", "error"), data
            self.events.append(data)
        return self.take()


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]
