"""The agent turn (chat-and-agent.md §2 steps 2–8): a task of its own, decoupled from the HTTP connection.

The handler runs the pre-stream checks, holds the turn lock and starts the turn here; from then on the turn runs
to completion whether or not anybody listens. Every event it produces is numbered and buffered by the session's
event log, then handed to the streams of this worker (``FrameHub``); a stream is only a reader.

Order of a turn: the ``replay_failed`` frame when the request asked for it; the tenant quota (hour before minute)
and the backend's own refusal (daily budget), each refusing with ``error`` + ``final`` and storing nothing; the
title rule and the user message; the resume step; the backend; then, whatever happened, the assistant message,
the lock released, ``final`` appended (its id stored as ``sessions.last_event_id``) and published. Steps between
the quota and the backend run under ``VOYAGENT_AGENT_TURN_TIMEOUT_SECONDS`` (→ ``error "turn_timeout"``); an
unexpected exception becomes ``error "internal_error"`` (its traceback logged, never sent). Exactly one
``final`` per turn, always last.

Shutdown (operations.md §1.4): running turns get ``SHUTDOWN_GRACE`` seconds, then their deadline is brought
forward to now, so they end like a timed-out turn, with ``turn_timeout`` and ``final``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from typing import Any, Awaitable, Callable, Literal, Mapping, Sequence

from voyagent.agent import events
from voyagent.agent.gateway import Emit, ToolContext
from voyagent.agent.interface import Backend, ResumedApproval, TenantAgentSettings, Tools, Turn, reads_history
from voyagent.db import Database
from voyagent.services import messages, tenant_settings
from voyagent.services.event_log import EventLog, RedisEventLog
from voyagent.services.frame_hub import FrameHub
from voyagent.services.turn_lock import TurnLock
from voyagent.services.turn_quota import RedisTurnQuota, Refusal, TurnQuota

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # operations.md §1.4
FINISH_GRACE = 5.0  # after the deadline was brought forward: time to store and send the final
BACKEND_KINDS = ("text_delta", "error")  # §10.1: all a backend may yield

NOT_TAKEN = "not taken"  # the quota is taken by the turn itself
QuotaVerdict = Refusal | None | Literal["not taken"]
GatewayFactory = Callable[[ToolContext, Emit], Tools]
Resume = Callable[[Any], Awaitable[Sequence[ResumedApproval]]]
CountTurn = Callable[[str, str], None]  # (backend, outcome) → voyagent_agent_turns_total


@dataclasses.dataclass(frozen=True, slots=True)
class TurnStart:
    """A turn the handler admitted: who, where, the message, the lock it holds, and the id floor."""

    session_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    turn_id: str
    message: str
    lock_token: str
    floor: int  # sessions.last_event_id when the turn was admitted
    replay_failed: bool = False
    settings: Mapping[str, Any] | None = None  # the tenant's settings read at admission; None: read them here
    resume: bool = True  # False: the session had no unconsumed approval at admission, the resume step is skipped
    quota: QuotaVerdict = NOT_TAKEN  # step 3's verdict when ``TurnRunner.begin`` took it already


class _RunningTurn:
    """One turn's state: the events it emitted and its deadline (brought forward at shutdown)."""

    def __init__(self, runner: TurnRunner, start: TurnStart) -> None:
        self.runner = runner
        self.start = start
        self.events: list[dict[str, Any]] = []
        self.deadline: asyncio.Timeout | None = None
        self.expire_requested = False

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return events.event(kind, self.start.session_id, self.start.turn_id, **fields)

    async def emit(self, ev: dict[str, Any]) -> None:
        """Number and buffer the event, then hand it to this worker's streams."""
        start = self.start
        frame = await self.runner.log.append(start.session_id, events.encode(ev), turn=start.turn_id, final=False,
                                             floor=start.floor)
        self.events.append(ev)
        self.runner.hub.publish(start.session_id, frame)

    def kinds(self) -> set[str]:
        """Kinds of the turn's own events (not the synthetic replay_failed frame before them)."""
        return {ev["kind"] for ev in self.events if ev["turn_id"] == self.start.turn_id}

    def expire(self) -> None:
        """End the turn's work now, as if its timeout had passed."""
        self.expire_requested = True
        deadline = self.deadline
        if deadline is not None and deadline.when() is not None:
            try:
                deadline.reschedule(asyncio.get_running_loop().time())
            except RuntimeError:  # already left: the turn is finishing
                pass


class TurnRunner:
    """Starts turns as tasks and ends them at shutdown; collaborators injected (backend, gateway, resume)."""

    def __init__(self, *, database: Database, sql: Any, log_: EventLog, hub: FrameHub, lock: TurnLock,
                 quota: TurnQuota, backend: Backend, gateway_factory: GatewayFactory, resume: Resume,
                 count_turn: CountTurn, turn_timeout: float) -> None:
        self.database = database
        self.sql = sql
        self.log = log_
        self.hub = hub
        self.lock = lock
        self.quota = quota
        self.backend = backend
        self.gateway_factory = gateway_factory
        self.resume = resume
        self.count_turn = count_turn
        self.turn_timeout = turn_timeout
        self._turns: dict[asyncio.Task[None], _RunningTurn] = {}

    @property
    def running(self) -> int:
        return len(self._turns)

    async def begin(self, session_id: uuid.UUID, turn_id: str, tenant_id: uuid.UUID,
                    settings: Mapping[str, Any] | None) -> QuotaVerdict:
        """§2 step 1e: mark the turn live in the event log (``503 redis_unreachable`` when it cannot be written).
        With the tenant's settings known and both the log and the quota in Redis, step 3's quota is taken in the
        same round trip and its verdict returned (the turn emits it); otherwise ``NOT_TAKEN``."""
        if settings is not None and isinstance(self.log, RedisEventLog) and isinstance(self.quota, RedisTurnQuota):
            return await self.log.begin_taking_quota(session_id, turn_id, self.quota, tenant_id,
                                                     settings["rate_limit_per_minute"], settings["rate_limit_per_hour"])
        await self.log.begin(session_id, turn_id)
        return NOT_TAKEN

    def start(self, start: TurnStart) -> asyncio.Task[list[dict[str, Any]]]:
        """Run the turn in a task of its own (the caller's connection may go away at any time); the task's result
        is the events the turn emitted, ``final`` excepted (the demo reads what its turns did)."""
        turn = _RunningTurn(self, start)
        task = asyncio.get_running_loop().create_task(self._run(turn), name=f"turn-{start.turn_id}")
        self._turns[task] = turn
        task.add_done_callback(self._turns.pop)
        return task

    async def _run(self, turn: _RunningTurn) -> list[dict[str, Any]]:
        start = turn.start
        outcome = "error"
        try:
            if start.replay_failed:
                await turn.emit(events.event("error", start.session_id, events.REPLAY_TURN_ID,
                                             error_message=events.REPLAY_FAILED))
            deadline = turn.deadline = asyncio.timeout(self.turn_timeout)
            try:
                async with deadline:
                    if turn.expire_requested:
                        turn.expire()
                    outcome = await self._work(turn)
            except TimeoutError:
                if not deadline.expired():
                    raise  # a timeout of its own inside the turn (e.g. the pool): an internal error
                outcome = "timeout"
                await turn.emit(turn.event("error", error_message="turn_timeout"))
        except Exception:
            log.exception("turn %s of session %s failed", start.turn_id, start.session_id)
            outcome = "error"
            try:
                await turn.emit(turn.event("error", error_message="internal_error"))
            except Exception as exc:
                log.error("turn %s: could not send its internal_error event: %s", start.turn_id, exc)
        await self._finish(turn, outcome)
        return turn.events

    async def _work(self, turn: _RunningTurn) -> str:
        """Steps 3–7; the outcome label of voyagent_agent_turns_total."""
        start, sql = turn.start, self.sql
        row = start.settings
        if row is None:
            async with self.database.transaction() as conn:
                row = await tenant_settings.get_or_create(conn, sql, start.tenant_id)
        refusal = start.quota
        if refusal == NOT_TAKEN:
            refusal = await self.quota.take(start.tenant_id, row["rate_limit_per_minute"], row["rate_limit_per_hour"])
        if refusal is not None:
            await turn.emit(turn.event("error", error_message=f"rate_limited: {refusal}"))
            return "rate_limited"
        agent_settings = TenantAgentSettings(model=row["model"], system_prompt_suffix=row["system_prompt_suffix"],
                                             locale=row["locale"], default_currency=row["default_currency"])
        refuse_turn = getattr(self.backend, "refuse_turn", None)
        if refuse_turn is not None:
            reason = await refuse_turn(self._turn(start, agent_settings, (), ()))
            if reason:
                await turn.emit(turn.event("error", error_message=reason))
                return "budget_exceeded"
        async with self.database.connection() as conn:  # one statement
            await messages.store_user_message(conn, sql, session_id=start.session_id, message=start.message)
        gateway = self.gateway_factory(ToolContext(tenant_id=start.tenant_id, session_id=start.session_id,
                                                   user_id=start.user_id, role=start.role, turn_id=start.turn_id),
                                       turn.emit)
        resumed = await self.resume(gateway) if start.resume else ()
        if start.message.strip():
            stored: Sequence[dict[str, Any]] = ()
            if reads_history(self.backend):
                async with self.database.connection() as conn:
                    stored = await messages.history(conn, sql, session_id=start.session_id)
            async for ev in self.backend.run_turn(self._turn(start, agent_settings, stored, resumed), gateway):
                if not isinstance(ev, dict) or ev.get("kind") not in BACKEND_KINDS:
                    raise ValueError(f"backend {self.backend.name!r} yielded a forbidden event: {ev!r:.200}")
                await turn.emit(ev)
        kinds = turn.kinds()
        if "approval_request" in kinds:
            return "approval_requested"
        return "error" if "error" in kinds else "completed"

    @staticmethod
    def _turn(start: TurnStart, agent_settings: TenantAgentSettings, history: Sequence[dict[str, Any]],
              resumed: Sequence[ResumedApproval]) -> Turn:
        return Turn(session_id=start.session_id, tenant_id=start.tenant_id, user_id=start.user_id, role=start.role,
                    turn_id=start.turn_id, message=start.message, history=tuple(history), resumed=tuple(resumed),
                    settings=agent_settings)

    async def _finish(self, turn: _RunningTurn, outcome: str) -> None:
        """Step 8, each part on its own so that one failing never keeps the others (above all the final) back;
        the turn is counted before its final is out (whoever saw the final sees the count)."""
        start = turn.start
        blocks = messages.assistant_blocks(turn.events)
        if blocks:
            try:
                async with self.database.connection() as conn:  # one statement
                    await messages.store_assistant_message(conn, self.sql, session_id=start.session_id,
                                                           blocks=blocks)
            except Exception:
                log.exception("turn %s: could not store the assistant message", start.turn_id)
        await self.lock.release(start.session_id, start.lock_token)
        self.count_turn(self.backend.name, outcome)
        try:
            frame = await self.log.append(start.session_id, events.encode(turn.event("final")), turn=start.turn_id,
                                          final=True, floor=start.floor)
        except Exception as exc:
            log.error("turn %s of session %s: its final could not be buffered, its streams are closed: %s",
                      start.turn_id, start.session_id, exc)
            self.hub.end(start.session_id)
            return
        try:
            async with self.database.connection() as conn:
                await messages.store_last_event_id(conn, self.sql, session_id=start.session_id, last_id=frame.id)
        except Exception:
            log.exception("turn %s: could not store the session's last event id", start.turn_id)
        self.hub.publish(start.session_id, frame)

    async def shutdown(self, grace: float = SHUTDOWN_GRACE) -> None:
        """Give running turns ``grace`` seconds, then end the rest with ``turn_timeout`` and ``final``."""
        if self._turns:
            await asyncio.wait(set(self._turns), timeout=grace)
        if not self._turns:
            return
        log.warning("ending %d running turn(s) at shutdown", len(self._turns))
        for turn in self._turns.values():
            turn.expire()
        _, stuck = await asyncio.wait(set(self._turns), timeout=FINISH_GRACE)
        for task in stuck:
            task.cancel()
        if stuck:
            await asyncio.wait(stuck)
