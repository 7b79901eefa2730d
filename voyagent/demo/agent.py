"""The offline agent as the demo drives it: the server's own turn runner, gateway, tools and resume step, in
this process, on a simulated clock.

Everything a turn does is what ``POST /chat/sessions/{id}/messages`` would do, except the stream: no client
listens, so the turn's frames stay in an in-process event log and ``sessions.last_event_id`` carries the id
counter on (a client's first turn on a demo session continues from it). The tools, the approvals, the tenant
turn quota and the documents all read the simulated time, so a year of agency life is played in seconds and
lands on the dates it would have had.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from voyagent.agent.events import new_turn_id
from voyagent.agent.gateway import ToolGateway, ToolServices
from voyagent.agent.offer_cache import create_offer_cache
from voyagent.agent.offline import OfflineBackend
from voyagent.agent.resume import resume
from voyagent.agent.runtime import TurnRunner, TurnStart
from voyagent.agent.sandbox import SandboxSupplier
from voyagent.config import Settings
from voyagent.demo.people import Agency, Member
from voyagent.services import messages
from voyagent.services.event_log import create_event_log
from voyagent.services.frame_hub import FrameHub
from voyagent.services.turn_lease import create_turn_leases
from voyagent.services.turn_lock import LocalTurnLock
from voyagent.services.turn_quota import LocalTurnQuota

# Approvals the demo leaves undecided wait a week for a human (the server's lifetime is minutes): a visitor of
# the demo finds them pending.
DEMO_APPROVAL_TTL_SECONDS = 7 * 24 * 3600


class SimulatedClock:
    def __init__(self, now: dt.datetime) -> None:
        self.current = now

    def now(self) -> dt.datetime:
        return self.current

    def milliseconds(self) -> int:
        return int(self.current.timestamp() * 1000)


class DemoAgent:
    """``say(session, member, message, at)``: one turn, run to its end; its events."""

    def __init__(self, database: Any, sql: Any, settings: Settings, agency: Agency, clock: SimulatedClock) -> None:
        self.database, self.sql, self.agency, self.clock = database, sql, agency, clock
        self.events = create_event_log(None, settings.redis_prefix, settings.sse_replay_buffer_cap,
                                       settings.turn_timeout)
        self.leases = create_turn_leases(LocalTurnLock(settings.turn_timeout), self.events)
        tools = ToolServices(database=database, sql=sql, supplier=SandboxSupplier(0),
                             offers=create_offer_cache(None, settings.redis_prefix, settings.offer_ttl),
                             approval_ttl_seconds=DEMO_APPROVAL_TTL_SECONDS, clock=clock.now)
        self.hub = FrameHub(self.events)
        self.runner = TurnRunner(
            database=database, sql=sql, leases=self.leases, hub=self.hub,
            quota=LocalTurnQuota(clock=clock.milliseconds), backend=OfflineBackend(database, sql),
            gateway_factory=lambda context, emit: ToolGateway(tools, context, emit), resume=resume,
            count_turn=lambda backend, outcome: None, turn_timeout=settings.turn_timeout)

    async def say(self, session_id: uuid.UUID, member: Member, message: str, at: dt.datetime) -> list[dict[str, Any]]:
        self.clock.current = at
        turn_id = new_turn_id()
        admission = await self.leases.acquire(session_id, turn_id)
        if admission is None:
            raise RuntimeError(f"demo session {session_id} has a turn running")
        async with self.database.connection() as conn:
            session = await messages.get_turn_session(conn, self.sql, tenant_id=self.agency.tenant_id,
                                                      session_id=session_id)
        await self.events.begin(session_id, turn_id)
        return await self.runner.start(TurnStart(
            session_id=session_id, tenant_id=self.agency.tenant_id, user_id=member.user_id, role=member.role,
            turn_id=turn_id, message=message, lease=admission.lease, floor=session["last_event_id"]))

    async def close(self) -> None:
        await self.hub.close()
