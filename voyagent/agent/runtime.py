"""The agent turn (chat-and-agent.md §2 steps 2–8): a task of its own, decoupled from the HTTP connection.

The handler runs the pre-stream checks, holds the turn lock and starts the turn here; from then on the turn runs
to completion whether or not anybody listens. Every event it produces is numbered and buffered by the session's
event log, then handed to the streams of this worker (``FrameHub``); a stream is only a reader.

Order of a turn: the ``replay_failed`` frame when the request asked for it; the tenant quota (hour before minute)
and the backend's own refusal (daily budget), each refusing with ``error`` + ``final`` and storing nothing; the
title rule and the user message; the resume step; the backend; then, whatever happened, the assistant message
(one that cannot be stored is an ``internal_error``), the lock released and ``final`` appended (one step with
Redis), the final's id stored as ``sessions.last_event_id`` (again until PostgreSQL takes it) and published. Every
frame goes through the turn's lease (``services/turn_lease.py``): a turn whose session was closed or taken over
meanwhile (``LeaseLost``) writes nothing more. Steps between
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
from voyagent.db import Database, DatabaseUnavailable
from voyagent.services import messages, tenant_settings
from voyagent.services.event_log import RedisEventLog
from voyagent.services.frame_hub import FrameHub
from voyagent.services.turn_lease import LeaseLost, TurnLease, TurnLeases
from voyagent.services.turn_quota import RedisTurnQuota, Refusal, TurnQuota

log = logging.getLogger(__name__)

SHUTDOWN_GRACE = 10.0  # operations.md §1.4
FINISH_GRACE = 5.0  # after the deadline was brought forward: time to store and send the final
STORE_PATIENCE = 15.0  # sessions.last_event_id is written again this long while PostgreSQL is away (a restart)
STORE_RETRY_PAUSE = 0.25
BACKEND_KINDS = ("text_delta", "error")  # §10.1: all a backend may yield

NOT_TAKEN = "not taken"  # the quota is taken by the turn itself
QuotaVerdict = Refusal | None | Literal["not taken"]
GatewayFactory = Callable[[ToolContext, Emit], Tools]
Resume = Callable[[Any], Awaitable[Sequence[ResumedApproval]]]
CountTurn = Callable[[str, str], None]  # (backend, outcome) → voyagent_agent_turns_total


@dataclasses.dataclass(frozen=True, slots=True)
class TurnStart:
    """A turn the handler admitted: who, where, the message, the lease it holds, and the id floor."""

    session_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    turn_id: str
    message: str
    lease: TurnLease
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
        self.lease = start.lease
        self.lease.floor = start.floor
        self.lease.on_lost = self.expire

    def event(self, kind: str, **fields: Any) -> dict[str, Any]:
        return events.event(kind, self.start.session_id, self.start.turn_id, **fields)

    async def emit(self, ev: dict[str, Any]) -> None:
        """Number and buffer the event, then hand it to this worker's streams."""
        frame = await self.runner.leases.append(self.lease, events.encode(ev), final=False)
        self.events.append(ev)
        self.runner.hub.publish(self.start.session_id, frame)

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

    def __init__(self, *, database: Database, sql: Any, leases: TurnLeases, hub: FrameHub,
                 quota: TurnQuota, backend: Backend, gateway_factory: GatewayFactory, resume: Resume,
                 count_turn: CountTurn, turn_timeout: float) -> None:
        self.database = database
        self.sql = sql
        self.leases = leases
        self.hub = hub
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
        event_log = self.leases.log  # the lease takes the lock; the live marker is still this step's
        if settings is not None and isinstance(event_log, RedisEventLog) and isinstance(self.quota, RedisTurnQuota):
            return await event_log.begin_taking_quota(session_id, turn_id, self.quota, tenant_id,
                                                     settings["rate_limit_per_minute"], settings["rate_limit_per_hour"])
        await event_log.begin(session_id, turn_id)
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
        try:
            await self._run_leased(turn)
        except LeaseLost:
            log.warning("turn %s of session %s ends silently: its session was closed or taken over meanwhile",
                        turn.start.turn_id, turn.start.session_id)
        finally:
            self.leases.let_go(turn.lease)
        return turn.events

    async def _run_leased(self, turn: _RunningTurn) -> None:
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
        except LeaseLost:
            raise
        except Exception:
            log.exception("turn %s of session %s failed", start.turn_id, start.session_id)
            outcome = "error"
            await self._internal_error(turn)
        await self._finish(turn, outcome)

    async def _internal_error(self, turn: _RunningTurn) -> None:
        """§2: one ``error "internal_error"`` per turn, whatever failed (the work, or storing its message)."""
        if any(ev.get("error_message") == "internal_error" for ev in turn.events):
            return
        try:
            await turn.emit(turn.event("error", error_message="internal_error"))
        except LeaseLost:
            raise
        except Exception as exc:
            log.error("turn %s: could not send its internal_error event: %s", turn.start.turn_id, exc)

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
        stored_last_id = await self._store_assistant_message(turn)
        if stored_last_id is None:
            outcome = "error"
            await self._internal_error(turn)
        self.count_turn(self.backend.name, outcome)
        try:  # the lock is released with the final (in one step with Redis)
            frame = await self.leases.append(turn.lease, events.encode(turn.event("final")), final=True)
        except LeaseLost:
            raise
        except Exception as exc:
            log.error("turn %s of session %s: its final could not be buffered, its streams are closed: %s",
                      start.turn_id, start.session_id, exc)
            self.hub.end(start.session_id)
            return
        stored = frame.id == stored_last_id or await self._store_last_event_id(start, frame.id)
        self.hub.publish(start.session_id, frame)
        if not stored:  # PostgreSQL away (a restart): the streams get their final now, the id is stored later
            await self._store_last_event_id(start, frame.id, patience=STORE_PATIENCE)

    async def _store_assistant_message(self, turn: _RunningTurn) -> int | None:
        """The assistant row, when the turn produced any block, with ``sessions.last_event_id`` set to the id its
        final is about to get (the next after its own last: it holds the session) in the same statement. Returns
        the ``last_event_id`` stored, 0 when none was (no row to store, or the row stored alone), None when the row
        could not be stored. When PostgreSQL refuses the two together, the row is tried alone (a database that is
        away is not asked twice): the final's id is then written after the final, as when the final got another id
        (another writer numbered meanwhile)."""
        start = turn.start
        blocks = messages.assistant_blocks(turn.events)
        if not blocks:
            return 0
        expected = turn.lease.last_id + 1
        for last_event_id in (expected, None):
            try:
                async with self.database.connection() as conn:  # one statement
                    await messages.store_assistant_message(conn, self.sql, session_id=start.session_id,
                                                           blocks=blocks, last_event_id=last_event_id)
                return last_event_id or 0
            except Exception as exc:
                if last_event_id is None or isinstance(exc, DatabaseUnavailable):
                    log.exception("turn %s: could not store the assistant message", start.turn_id)
                    return None
                log.warning("turn %s: the assistant row and last_event_id were refused together (%s); the row is "
                            "stored alone", start.turn_id, exc)
        return None

    async def _store_last_event_id(self, start: TurnStart, last_id: int, patience: float = 0.0) -> bool:
        """The final's id in ``sessions.last_event_id`` (never lowered; after a Redis restart it is the floor of
        the session's next ids), tried again for ``patience`` seconds; False when not stored."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + patience
        while True:
            try:
                async with self.database.connection() as conn:
                    await messages.store_last_event_id(conn, self.sql, session_id=start.session_id, last_id=last_id)
                return True
            except Exception:
                if loop.time() >= give_up:
                    if patience:
                        log.exception("turn %s: could not store the session's last event id", start.turn_id)
                    return False
            await asyncio.sleep(STORE_RETRY_PAUSE)

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
