"""Opaque refresh tokens (auth.md, Refresh and rotation): stored as SHA-256, single use, rotated per family."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any

import asyncpg

from voyagent.config import Settings
from voyagent.ids import new_id

USER_AGENT_MAX = 255
IP_MAX = 64


def new_token() -> str:
    """43 base64url characters (32 random bytes, no padding)."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> bytes:
    """The stored form: the 32-byte SHA-256 of the token."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


@dataclasses.dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a token was issued to (stored with it, truncated to the column sizes)."""

    user_agent: str | None
    ip: str | None


async def create(conn: asyncpg.Connection, sql: Any, settings: Settings, *, user_id: uuid.UUID,
                 client: ClientInfo, family_id: uuid.UUID | None = None) -> str:
    """Insert a fresh token (a new family unless ``family_id`` is given) and return its plaintext."""
    token = new_token()
    expires_at = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=settings.refresh_ttl)
    await sql.insert_refresh_token(
        conn, id=new_id(), user_id=user_id, family_id=family_id or new_id(), token_hash=digest(token),
        expires_at=expires_at, user_agent=(client.user_agent or None) and client.user_agent[:USER_AGENT_MAX],
        ip=(client.ip or None) and client.ip[:IP_MAX])
    return token


@dataclasses.dataclass(frozen=True, slots=True)
class Rotation:
    """A successful exchange: the new refresh token and the user's current identity for the access token."""

    refresh_token: str
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: str
    email: str


async def rotate(conn: asyncpg.Connection, sql: Any, settings: Settings, token: str,
                 client: ClientInfo) -> Rotation | None:
    """Exchange ``token`` for a new one in its family, or None (``401 invalid_refresh_token``).

    Presenting a token that was already rotated (or losing the race to rotate it) revokes the whole family;
    the caller must commit before answering 401, so that revocation sticks.
    """
    row = await sql.get_refresh_token_by_hash(conn, token_hash=digest(token))
    # An unknown token also covers "user or tenant gone": the rows cascade away with their user.
    if row is None or row["expires_at"] <= dt.datetime.now(dt.timezone.utc):
        return None
    if row["revoked_at"] is not None:
        if row["revoke_reason"] == "rotated":
            await sql.revoke_refresh_family(conn, family_id=row["family_id"])
        return None
    if await sql.revoke_refresh_token_rotated(conn, id=row["id"]) is None:
        await sql.revoke_refresh_family(conn, family_id=row["family_id"])
        return None
    new = await create(conn, sql, settings, user_id=row["user_id"], client=client, family_id=row["family_id"])
    return Rotation(new, row["user_id"], row["tenant_id"], row["role"], row["email"])


async def revoke_signed_out(conn: asyncpg.Connection, sql: Any, token: str) -> None:
    """Revoke ``token`` (reason ``signed_out``) if it exists and is active."""
    await sql.revoke_refresh_token_signed_out(conn, token_hash=digest(token))


async def revoke_all_for_user(conn: asyncpg.Connection, sql: Any, user_id: uuid.UUID) -> None:
    """Revoke every active token of the user (reason ``password_reset``)."""
    await sql.revoke_user_refresh_tokens(conn, user_id=user_id)
