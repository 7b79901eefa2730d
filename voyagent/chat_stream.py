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
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
from aiohttp import web

from voyagent import edge
from voyagent.agent import backends
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
    TURN_LOCK,
    TURN_RUNNER,
)
from voyagent.services.event_log import parse_last_event_id, replay_valid
from voyagent.services import messages
from voyagent.services.frame_hub import Subscription
from voyagent.services.turn_lock import turn_in_progress
from voyagent.sse import Relay, open_stream


async def respond(request: web.Request, session: asyncpg.Record, body: dict[str, Any]) -> web.StreamResponse:
    """The whole answer for an existing session of the caller's tenant."""
    app = request.app
    session_id: uuid.UUID = session["id"]
    header = request.headers.get("Last-Event-ID", "")
    with app[FRAME_HUB].subscribe(session_id) as subscription:
        if header:
            relay = await _replay(app, subscription, session, header)
            if relay is not None:
                return await _stream(request, relay)
        turn_id = await _admit_turn(request, session, body, replay_failed=bool(header))
        return await _stream(request, Relay(subscription, heartbeat=app[SETTINGS].sse_heartbeat, turn=turn_id))


async def _replay(app: web.Application, subscription: Subscription, session: asyncpg.Record,
                  header: str) -> Relay | None:
    """The relay of a valid ``Last-Event-ID`` (§3.3); None when it is not valid."""
    last_event_id = parse_last_event_id(header)
    if last_event_id is None or last_event_id < 0:
        return None
    log, session_id = app[EVENT_LOG], session["id"]
    snapshot = await log.snapshot(session_id, after=last_event_id)
    if not replay_valid(last_event_id, snapshot, session["last_event_id"]):
        return None
    if snapshot.live is not None:
        app[FRAME_HUB].follow(subscription, max([last_event_id, *(frame.id for frame in snapshot.frames)]))
    return Relay(subscription, heartbeat=app[SETTINGS].sse_heartbeat, turn=snapshot.live, after=last_event_id,
                 backlog=snapshot.frames, check_live=lambda after: app[FRAME_HUB].snapshot(session_id, after))


async def _admit_turn(request: web.Request, session: asyncpg.Record, body: dict[str, Any], *,
                      replay_failed: bool) -> str:
    """§2 step 1 (b)–(e), then the turn's start; its id."""
    app, principal = request.app, request[PRINCIPAL]
    session_id: uuid.UUID = session["id"]
    lock = app[TURN_LOCK]
    token = await lock.acquire(session_id)
    if token is None:
        raise turn_in_progress()
    turn_id = new_turn_id()
    try:
        # A delete that committed between the first read and the lock leaves no row: read it again under the lock
        # (its last_event_id is then the floor of the turn's ids). When the backend can run, the same statement
        # sweeps the session's approvals (step 1d) and reads what the turn needs (settings, unconsumed approvals).
        ready = backends.is_ready(app[AGENT_BACKEND])
        async with app[DATABASE].connection() as conn:
            if ready:
                session = await messages.admit_turn(conn, app[QUERIES], tenant_id=principal.tenant_id,
                                                    session_id=session_id)
            else:
                await messages.get_turn_session(conn, app[QUERIES], tenant_id=principal.tenant_id,
                                                session_id=str(session_id))
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
        await lock.release(session_id, token)
        raise
    app[TURN_RUNNER].start(TurnStart(
        session_id=session_id, tenant_id=principal.tenant_id, user_id=principal.user_id, role=principal.role,
        turn_id=turn_id, message=body.get("message") or "", lock_token=token, floor=session["last_event_id"],
        replay_failed=replay_failed, settings=settings, resume=session["unconsumed_approvals"], quota=quota))
    return turn_id


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
