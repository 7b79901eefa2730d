"""Chat sessions (chat-and-agent.md §1; endpoints.md, Chat): create, list, summary, rename and delete.

Every function takes the connection first and runs in the caller's transaction. A malformed, unknown or
other-tenant id is ``404 session_not_found`` everywhere.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from typing import Any

import asyncpg
from pypika import Table

from voyagent.errors import ApiError, not_found
from voyagent.ids import new_id, parse_uuid
from voyagent.listing import Listing
from voyagent.pagination import Page
from voyagent.services import approvals
from voyagent.services.event_log import EventLog
from voyagent.services.turn_lock import TurnLock, holding

MAX_TITLE_LENGTH = 200

_SESSIONS = Table("sessions").as_("s")  # as sql/lists/chat_sessions.sql names it
LISTING = Listing("chat_sessions", _SESSIONS, "created_at")


def session_not_found() -> ApiError:
    return not_found("session_not_found")


def parse_session_id(value: str) -> uuid.UUID:
    """The path's session id as a UUID (any letter case); anything else is ``404 session_not_found``."""
    parsed = parse_uuid(value)
    if parsed is None:
        raise session_not_found()
    return parsed


def checked_title(title: str) -> str:
    """The title trimmed of surrounding whitespace, 1–200 characters (``422 title_empty`` / ``title_too_long``)."""
    trimmed = title.strip()
    if not trimmed:
        raise ApiError(422, "title_empty")
    if len(trimmed) > MAX_TITLE_LENGTH:
        raise ApiError(422, "title_too_long")
    return trimmed


async def create_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID,
                         actor_id: uuid.UUID) -> asyncpg.Record:
    """Insert a session of the tenant (actor = the calling user, ``human``, title null); shared by
    POST /chat/sessions and promote-to-session, so both make identical rows."""
    return await sql.insert_session(conn, id=new_id(), tenant_id=tenant_id, actor_id=actor_id)


def list_item(row: asyncpg.Record) -> dict[str, Any]:
    """An item of GET /chat/sessions."""
    return {"id": str(row["id"]), "title": row["title"], "created_at": row["created_at"],
            "message_count": row["message_count"]}


async def list_sessions(conn: asyncpg.Connection, *, tenant_id: uuid.UUID,
                        page: Page) -> tuple[list[asyncpg.Record], int | None]:
    """Up to ``limit + 1`` sessions (created_at DESC, id DESC) and the exact total when asked for."""
    return await LISTING.fetch(conn, tenant_id, {}, page)


async def get_summary(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: str,
                      now: dt.datetime | None = None) -> dict[str, Any]:
    """The SessionSummary, after the lazy expiry sweep of the session's approvals (no message bodies)."""
    parsed = parse_session_id(session_id)
    row = await sql.get_session_summary(conn, id=parsed, tenant_id=tenant_id)
    if row is None:
        raise session_not_found()
    await approvals.expire_session(conn, sql, tenant_id=tenant_id, session_id=parsed, now=now)
    pending = await sql.list_session_pending_approvals(conn, session_id=parsed, tenant_id=tenant_id)
    return {"session_id": str(row["id"]), "tenant_id": str(row["tenant_id"]),
            "actor_id": None if row["actor_id"] is None else str(row["actor_id"]), "title": row["title"],
            "message_count": row["message_count"], "pending_approvals": [dict(item) for item in pending],
            "created_at": row["created_at"]}


async def rename_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: str,
                         title: str) -> dict[str, Any]:
    """Store the trimmed title (checked before the lookup, as endpoints.md orders it); the new SessionSummary."""
    title = checked_title(title)
    parsed = parse_session_id(session_id)
    if await sql.rename_session(conn, id=parsed, tenant_id=tenant_id, title=title) is None:
        raise session_not_found()
    return await get_summary(conn, sql, tenant_id=tenant_id, session_id=session_id)


async def delete_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: str,
                         turn_lock: TurnLock, events: EventLog,
                         until_committed: contextlib.AsyncExitStack) -> None:
    """Delete the session with its messages, approvals and itinerary items, unlink its enquiries and drop its
    SSE state, all in the caller's transaction; ``409 turn_in_progress`` while a turn holds the session.

    The session's turn lock is taken here and handed to ``until_committed``, which the caller closes after
    the transaction ends: no turn can start on the session between this check and the commit. The row lock
    taken first queues concurrent deletes, so the later ones answer 404, never the first one's 409.
    """
    parsed = parse_session_id(session_id)
    if await sql.lock_session(conn, id=parsed, tenant_id=tenant_id) is None:
        raise session_not_found()
    await until_committed.enter_async_context(holding(turn_lock, parsed))
    await sql.unlink_session_enquiries(conn, session_id=parsed, tenant_id=tenant_id)
    await sql.delete_session(conn, id=parsed, tenant_id=tenant_id)
    await events.drop(parsed)  # last: a Redis failure (503) still rolls the rows back
