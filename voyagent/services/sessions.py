"""Chat session rows (chat-and-agent.md §1): what POST /chat/sessions and promote-to-session share."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from voyagent.ids import new_id


async def create_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID,
                         actor_id: uuid.UUID) -> asyncpg.Record:
    """Insert a session of the tenant (actor = the calling user, ``human``, title null) in the caller's transaction."""
    return await sql.insert_session(conn, id=new_id(), tenant_id=tenant_id, actor_id=actor_id)
