"""The app-level steps of ``POST /chat/sessions/{id}/messages`` (chat-and-agent.md §2–§3): replay or new turn.

The stream subscribes to the session's live frames before anything else is read, so a frame produced while the
request looks at the buffer is either in what it read or in its queue. Then:

* a valid ``Last-Event-ID`` → replay: the buffered frames after it, then the running turn's live frames (from
  another worker too: the hub follows the session's Redis Stream) up to its ``final``;
* otherwise the pre-stream checks in the contract's order (the turn lock: 503 / 409, then the session read again
  under it: a delete may have committed since; the backend: 503; the
  approval sweep and the ``approvals`` map: 404 / 403 / 409; the event log's live marker: 503), each failure
  releasing the lock; then the turn starts as a task of its own and the stream relays it up to its ``final``.
  The read under the lock is one statement that also sweeps the approvals and reads what the turn would otherwise
  read again (the tenant's settings, whether any approval awaits the resume step): the first frame comes sooner.

With Redis the lock is the turn's lease (``services/turn_lease.py``): a turn that died with its worker is closed
here (``error "internal_error"`` + ``final``, once) by whoever meets it first: the next turn's admission, a replay,
or a stream waiting on it after a silence; and right after Redis lost its state a missing counter is believed only
once running turns had the time to re-assert theirs.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg
from aiohttp import web

from voyagent import edge
from voyagent.agent import backends, events
from voyagent.agent.events import new_turn_id
from voyagent.agent.runtime import TurnStart
from voyagent.errors import ApiError
from voyagent.keys import (
    AGENT_BACKEND,
    DATABASE,
    EVENT_LOG,
    FRAME_HUB,
    METRICS,
    PRINCIPAL,
    QUERIES,
    SETTINGS,
    TURN_LEASES,
    TURN_RUNNER,
)
from voyagent.services.event_log import Snapshot, parse_last_event_id, replay_valid
from voyagent.services import messages
from voyagent.services.frame_hub import Subscription
from voyagent.services.turn_lease import CHECK_SECONDS
from voyagent.services.turn_lock import turn_in_progress
from voyagent.sse import CheckLive, Relay, open_stream

log = logging.getLogger(__name__)


async def respond(request: web.Request, session_id: uuid.UUID, body: dict[str, Any]) -> web.StreamResponse:
    """The whole answer: ``404 session_not_found`` unless the session is the caller's tenant's. A new turn reads
    the session once, under its lock (§2's order holds: a lock that cannot be taken reads it first, so a missing
    session is still a 404 before a 503 or a 409); a replay reads it before anything else."""
    app = request.app
    header = request.headers.get("Last-Event-ID", "")
    with app[FRAME_HUB].subscribe(session_id) as subscription:
        if header:
            session = await _read_session(request, session_id)
            relay = await _replay(app, subscription, session, header)
            if relay is not None:
                return await _stream(request, relay)
        turn_id, session = await _admit_turn(request, session_id, body, replay_failed=bool(header))
        return await _stream(request, Relay(subscription, heartbeat=app[SETTINGS].sse_heartbeat, turn=turn_id,
                                            check_live=_check_live(app, session)))


async def _read_session(request: web.Request, session_id: uuid.UUID) -> asyncpg.Record:
    """The session (id, title, last_event_id); ``404 session_not_found`` when it is not the tenant's."""
    app = request.app
    async with app[DATABASE].connection() as conn:
        return await messages.get_turn_session(conn, app[QUERIES], tenant_id=request[PRINCIPAL].tenant_id,
                                               session_id=session_id)


async def _replay(app: web.Application, subscription: Subscription, session: asyncpg.Record,
                  header: str) -> Relay | None:
    """The relay of a valid ``Last-Event-ID`` (§3.3); None when it is not valid."""
    last_event_id = parse_last_event_id(header)
    if last_event_id is None or last_event_id < 0:
        return None
    snapshot = await _read_live(app, session, last_event_id)
    if not replay_valid(last_event_id, snapshot, session["last_event_id"]):
        return None
    if snapshot.live is not None:
        app[FRAME_HUB].follow(subscription, max([last_event_id, *(frame.id for frame in snapshot.frames)]))
    return Relay(subscription, heartbeat=app[SETTINGS].sse_heartbeat, turn=snapshot.live, after=last_event_id,
                 backlog=snapshot.frames, check_live=_check_live(app, session, throttled=True),
                 check_every=CHECK_SECONDS if app[EVENT_LOG].shared else None)


async def _read_live(app: web.Application, session: asyncpg.Record, after: int, *, shared: bool = False) -> Snapshot:
    """The session's log after ``after`` as a replay must see it: a counter missing right after Redis lost its
    state is read again once running turns re-asserted theirs, and a turn that died holding the session is
    closed first. ``shared``: the first read may be the one another stream of this worker made moments ago
    (``FrameHub.snapshot``: what keeps thousands of waiting streams to one read per session); the reads after a
    wait or a close are the log's own."""
    event_log, leases, session_id = app[EVENT_LOG], app[TURN_LEASES], session["id"]
    if shared:
        snapshot = await app[FRAME_HUB].snapshot(session_id, after)
    else:
        snapshot = await event_log.snapshot(session_id, after=after)
    if snapshot.last_id == 0 and await leases.settle(session_id):
        snapshot = await event_log.snapshot(session_id, after=after)
    if snapshot.live is not None and await close_dead_turn(app, session_id, snapshot.live, token="",
                                                           floor=session["last_event_id"]):
        snapshot = await event_log.snapshot(session_id, after=after)
    return snapshot


def _check_live(app: web.Application, session: asyncpg.Record, *, throttled: bool = False) -> CheckLive:
    """What a waiting stream asks after a silence (``throttled``: once a second per session in this worker).
    ``after`` is then an id this server sent: when Redis lost the session and no turn re-asserted it, the
    counter is set back to it and stored, so the next turn never issues an id a client already holds."""
    session_id = session["id"]

    async def check(after: int) -> Snapshot | None:
        if throttled and not app[FRAME_HUB].check_due(session_id, CHECK_SECONDS):
            return None
        snapshot = await _read_live(app, session, after, shared=True)
        if snapshot.last_id == 0 and after > 0 and await app[TURN_LEASES].reseed(session_id, after):
            log.warning("session %s: Redis lost its log and no turn re-asserted it; its counter starts again at "
                        "%d, the last id a stream was sent", session_id, after)
            await _store_last_event_id(app, session_id, after)
        return snapshot

    return check


async def close_dead_turn(app: web.Application, session_id: uuid.UUID, turn_id: str, *, token: str,
                          floor: int) -> bool:
    """End the story of a turn whose worker died (§2: exactly one ``final`` per turn): ``error
    "internal_error"`` and ``final`` appended for it unless it lives (or another caller did it); True when this
    call did, the frames then handed to this worker's streams and the final's id stored."""
    error = events.encode(events.event("error", session_id, turn_id, error_message="internal_error"))
    final = events.encode(events.event("final", session_id, turn_id))
    frames = await app[TURN_LEASES].close_dead(session_id, turn_id, token=token, floor=floor, error=error,
                                               final=final)
    if not frames:
        return False
    log.warning("turn %s of session %s died holding its session (its worker was lost): closed with "
                "internal_error and final", turn_id, session_id)
    for frame in frames:
        app[FRAME_HUB].publish(session_id, frame)
    await _store_last_event_id(app, session_id, frames[-1].id)
    return True


async def _store_last_event_id(app: web.Application, session_id: uuid.UUID, last_id: int) -> None:
    try:
        async with app[DATABASE].connection() as conn:
            await messages.store_last_event_id(conn, app[QUERIES], session_id=session_id, last_id=last_id)
    except Exception as exc:  # the counter in Redis has it; sessions.last_event_id is only its floor
        log.warning("could not store the last event id of session %s: %s", session_id, exc)


async def _admit_turn(request: web.Request, session_id: uuid.UUID, body: dict[str, Any], *,
                      replay_failed: bool) -> tuple[str, asyncpg.Record]:
    """§2 step 1 (a)–(e), then the turn's start; its id and the session as read under the lock."""
    app, principal = request.app, request[PRINCIPAL]
    leases = app[TURN_LEASES]
    turn_id = new_turn_id()
    try:
        admission = await leases.acquire(session_id, turn_id)
    except ApiError:  # 503 redis_unreachable: but a session that is not the tenant's is a 404 first
        await _read_session(request, session_id)
        raise
    if admission is None:
        await _read_session(request, session_id)
        raise turn_in_progress()
    lease = admission.lease
    try:
        # The session is read under the lock (404 when it is not the tenant's, or a delete committed before the
        # lock; its last_event_id is then the floor of the turn's ids). When the backend can run, the same
        # statement sweeps the session's approvals (step 1d) and reads what the turn needs (settings, unconsumed
        # approvals).
        ready = backends.is_ready(app[AGENT_BACKEND])
        async with app[DATABASE].connection() as conn:
            if ready:
                session = await messages.admit_turn(conn, app[QUERIES], tenant_id=principal.tenant_id,
                                                    session_id=session_id)
            else:
                session = await messages.get_turn_session(conn, app[QUERIES], tenant_id=principal.tenant_id,
                                                          session_id=session_id)
        if admission.dead_turn is not None:
            await close_dead_turn(app, session_id, admission.dead_turn, token=lease.token,
                                  floor=session["last_event_id"])
        if not ready:
            raise ApiError(503, "agent_runtime_unavailable")
        decisions = body.get("approvals") or {}
        if decisions:
            async with edge.forbidden_recorded(request):
                await edge.apply_approvals_map(app[DATABASE], app[QUERIES], tenant_id=principal.tenant_id,
                                               session_id=session_id, decisions=decisions,
                                               resolver_id=principal.user_id, resolver_role=principal.role)
        settings = messages.admitted_settings(session)
        quota = await app[TURN_RUNNER].begin(session_id, turn_id, principal.tenant_id, settings)
    except BaseException:
        await leases.release(lease)
        raise
    app[TURN_RUNNER].start(TurnStart(
        session_id=session_id, tenant_id=principal.tenant_id, user_id=principal.user_id, role=principal.role,
        turn_id=turn_id, message=body.get("message") or "", lease=lease, floor=session["last_event_id"],
        replay_failed=replay_failed, settings=settings, resume=session["unconsumed_approvals"], quota=quota))
    return turn_id, session


async def _stream(request: web.Request, relay: Relay) -> web.StreamResponse:
    """The ``200`` event stream, counted in voyagent_sse_open_streams while it is open."""
    gauge = request.app[METRICS].sse_open_streams
    gauge.inc()
    try:
        response = await open_stream(request)
        await relay.run(response)  # ends the body too
        return response
    finally:
        gauge.dec()
