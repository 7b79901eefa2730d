"""Invites (auth.md, Invites): tokens, the lazy expiry, the invite e-mail and the state checks."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from typing import Any

import asyncpg

from voyagent.config import Settings
from voyagent.errors import ApiError
from voyagent.ids import new_id
from voyagent.services import audit
from voyagent.services.email_messages import Message, action_link, describe_duration, header_text

STATUSES = ("pending", "accepted", "revoked", "expired")
INVITE_FIELDS = ("id", "tenant_id", "email", "role", "status", "expires_at", "created_at", "accepted_at",
                 "revoked_at", "invited_by_user_id")


def new_token() -> tuple[str, str]:
    """A fresh ``(token, token_hash)``: 43 base64url characters (32 random bytes) and their SHA-256 hex."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """Lowercase hex SHA-256 of the token, as stored in ``invites.token_hash``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def summary(row: Any) -> dict[str, Any]:
    """The InviteSummary of a row (never the token or its hash)."""
    return {field: row[field] for field in INVITE_FIELDS}


def invite_message(settings: Settings, token: str, *, tenant_name: str, inviter_name: str, inviter_email: str,
                   role: str) -> Message:
    """The ``invite`` e-mail: the link once on its own line, the inviter named, the validity stated."""
    link = action_link(settings, "/accept-invite", token)
    # Names are stored as given; inside the body a CR/LF could start a line that looks like a second link.
    agency, inviter = header_text(tenant_name), header_text(inviter_name)
    body = (
        "Hello,\n"
        "\n"
        f"{inviter} ({header_text(inviter_email)}) has invited you to join {agency} on Voyagent "
        f"with the role {role}.\n"
        "\n"
        "To accept the invitation and choose your password, open this link:\n"
        "\n"
        f"{link}\n"
        "\n"
        f"The link is valid for {describe_duration(settings.invite_ttl_days * 86_400)} and can be used once.\n"
        "If you did not expect this invitation, you can ignore this message.\n"
    )
    return Message("invite", f"You are invited to join {agency} on Voyagent", body, link)


async def create(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, inviter_id: uuid.UUID, email: str,
                 role: str, ttl_days: int) -> tuple[Any, str]:
    """Insert a pending invite and its audit event (caller's transaction); returns (row, plaintext token)."""
    if await sql.pending_invite_exists(conn, tenant_id=tenant_id, email=email):
        raise ApiError(409, "invite_already_exists")
    if await sql.user_email_exists(conn, email=email):
        raise ApiError(409, "email_already_registered")
    token, token_hash = new_token()
    row = await sql.insert_invite(conn, id=new_id(), tenant_id=tenant_id,
                                  invited_by_user_id=inviter_id, email=email, role=role, token_hash=token_hash,
                                  ttl_days=ttl_days)
    if row is None:  # a concurrent request created the pending invite first
        raise ApiError(409, "invite_already_exists")
    await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=inviter_id, kind="invite.created",
                            inputs={"invite_id": str(row["id"]), "email": email, "role": role})
    return row, token


def check_usable(invite: Any) -> None:
    """Lookup/accept order: unknown → 404, expired → 400 invite_expired, used/revoked → 400 invite_not_pending."""
    if invite is None:
        raise ApiError(404, "invite_not_found")
    if invite["status"] == "expired" or (invite["status"] == "pending" and invite["is_past_expiry"]):
        raise ApiError(400, "invite_expired")
    if invite["status"] != "pending":
        raise ApiError(400, "invite_not_pending")


async def revoke(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, invite_id: uuid.UUID,
                 actor_id: uuid.UUID) -> Any:
    """Revoke a pending invite and audit it (caller's transaction); 404 or 409 otherwise."""
    row = await sql.revoke_pending_invite(conn, id=invite_id, tenant_id=tenant_id)
    if row is None:
        if await sql.invite_exists(conn, id=invite_id, tenant_id=tenant_id):
            raise ApiError(409, "invite_not_pending")
        raise ApiError(404, "invite_not_found")
    await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=actor_id, kind="invite.revoked",
                            inputs={"invite_id": str(invite_id), "email": row["email"]})
    return row
