"""HTTP handlers of the chat endpoints (endpoints.md, Chat), the SSE turn included (``voyagent.chat_stream``)."""

from __future__ import annotations

import contextlib

import asyncpg
from aiohttp import web

from voyagent import chat_stream
from voyagent.edge import respond_once
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import BODY, CURSORS, DATABASE, EVENT_LOG, PRINCIPAL, QUERIES, QUERY, TURN_LOCK
from voyagent.services import sessions


async def list_chat_sessions(request: web.Request) -> web.Response:
    """GET /chat/sessions — the tenant's sessions, newest first, with offset or keyset paging."""
    tenant_id = request[PRINCIPAL].tenant_id
    paging = sessions.LISTING.paging(request.app[CURSORS], request[QUERY], tenant_id, {})
    async with request.app[DATABASE].connection() as conn:
        rows, total = await sessions.list_sessions(conn, tenant_id=tenant_id, page=paging.page)
    return json_response(paging.envelope(rows, total, sessions.list_item, items_key="sessions"))


async def create_chat_session(request: web.Request) -> web.Response:
    """POST /chat/sessions — 201 ``{"session_id"}``; honours Idempotency-Key."""
    principal = request[PRINCIPAL]

    async def create(conn: asyncpg.Connection) -> tuple[int, dict]:
        row = await sessions.create_session(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                            actor_id=principal.user_id)
        return 201, {"session_id": str(row["id"])}

    return await respond_once(request, create)


async def get_chat_session(request: web.Request) -> web.Response:
    """GET /chat/sessions/{session_id} — the summary, after the session's lazy approval sweep."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].transaction() as conn:
        summary = await sessions.get_summary(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                             session_id=request.match_info["session_id"])
    return json_response(summary)


async def rename_chat_session(request: web.Request) -> web.Response:
    """PATCH /chat/sessions/{session_id} — trimmed title, 1–200 characters, checked before the lookup."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].transaction() as conn:
        summary = await sessions.rename_session(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                                session_id=request.match_info["session_id"],
                                                title=request[BODY]["title"])
    return json_response(summary)


async def delete_chat_session(request: web.Request) -> web.Response:
    """DELETE /chat/sessions/{session_id} — 204; 409 while a turn runs. The turn lock the service takes is
    released only after the transaction has ended (the exit stack closes after it)."""
    principal = request[PRINCIPAL]
    app = request.app
    async with contextlib.AsyncExitStack() as until_committed:
        async with app[DATABASE].transaction() as conn:
            await sessions.delete_session(conn, app[QUERIES], tenant_id=principal.tenant_id,
                                          session_id=request.match_info["session_id"], turn_lock=app[TURN_LOCK],
                                          events=app[EVENT_LOG], until_committed=until_committed)
    return web.Response(status=204)


async def send_chat_message(request: web.Request) -> web.StreamResponse:
    """POST /chat/sessions/{session_id}/messages — a replay or a new turn, answered as an SSE stream."""
    session_id = sessions.parse_session_id(request.match_info["session_id"])
    return await chat_stream.respond(request, session_id, request[BODY])


HANDLERS: dict[str, Handler] = {
    "list_chat_sessions": list_chat_sessions,
    "create_chat_session": create_chat_session,
    "get_chat_session": get_chat_session,
    "rename_chat_session": rename_chat_session,
    "delete_chat_session": delete_chat_session,
    "send_chat_message": send_chat_message,
}
