"""Issuing API keys (endpoints.md, POST /auth/api-keys): a fresh secret, its row and its audit event."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg

from voyagent.ids import new_id
from voyagent.jsonio import timestamp
from voyagent.services import api_key_auth, audit

PREFIX_ATTEMPTS = 5


async def create_key(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, creator_id: uuid.UUID, name: str,
                     scopes: list[str], expires_in_days: int | None) -> tuple[str, asyncpg.Record]:
    """Insert a key in the caller's transaction: the plaintext (shown once) and its row. The prefix is the lookup
    index, so a taken one is drawn again."""
    for _ in range(PREFIX_ATTEMPTS):
        plaintext, prefix = api_key_auth.generate_key()
        row = await sql.insert_api_key(conn, id=new_id(), tenant_id=tenant_id, created_by_user_id=creator_id,
                                       name=name, prefix=prefix, key_hash=api_key_auth.hash_key(plaintext),
                                       scopes=scopes, expires_in_days=expires_in_days)
        if row is not None:
            break
    else:
        raise RuntimeError("no free API-key prefix after several attempts")
    await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=creator_id, kind="api_key.created",
                            inputs={"api_key_id": str(row["id"]), "name": row["name"], "prefix": prefix,
                                    "scopes": scopes, "expires_at": timestamp(row["expires_at"])})
    return plaintext, row
