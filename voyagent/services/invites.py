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
from voyagent.services import audit, identity
from voyagent.services.email_messages import Message, action_link, describe_duration, header_text
from voyagent.services.passwords import check_strength
from voyagent.services.refresh_tokens import ClientInfo

STATUSES = ("pending", "accepted", "revoked", "expired")


def new_token() -> tuple[str, str]:
    """A fresh ``(token, token_hash)``: 43 base64url characters (32 random bytes) and their SHA-256 hex."""
    token = secrets.token_urlsafe(32)
    return token, hash_token(token)


def hash_token(token: str) -> str:
    """Lowercase hex SHA-256 of the token, as stored in ``invites.token_hash``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def summary(row: Any) -> dict[str, Any]:
    """The InviteSummary of a row (never the token or its hash)."""
    return {"id": str(row["id"]), "tenant_id": str(row["tenant_id"]), "email": row["email"], "role": row["role"],
            "status": row["status"], "expires_at": row["expires_at"], "created_at": row["created_at"],
            "accepted_at": row["accepted_at"], "revoked_at": row["revoked_at"],
            "invited_by_user_id": str(row["invited_by_user_id"])}


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
    if await sql.email_is_registered(conn, email=email):
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


async def usable_invite(conn: asyncpg.Connection, sql: Any, token: str) -> Any:
    """The invite a token names, after its lazy expiry sweep (committed on its own), checked by ``check_usable``."""
    token_hash = hash_token(token)
    await sql.expire_invite_by_token(conn, token_hash=token_hash)
    invite = await sql.get_invite_by_token(conn, token_hash=token_hash)
    check_usable(invite)
    return invite


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


async def acceptable_invite(conn: asyncpg.Connection, sql: Any, token_hash: str, password: str) -> Any:
    """The checks of ``POST /auth/accept-invite`` in the contract's order, on one snapshot, after the lazy expiry
    sweep (committed on its own): the invite, or 404 / 400 / 422 (weak password) / 409 (e-mail registered).

    On one snapshot, an invite used by a concurrent accept is reported as such (400), not as the e-mail that
    accept registered (409). ``conn`` must not be inside a transaction.
    """
    await sql.expire_invite_by_token(conn, token_hash=token_hash)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        invite = await sql.get_invite_by_token(conn, token_hash=token_hash)
        check_usable(invite)
        check_strength(password)
        if await sql.email_is_registered(conn, email=invite["email"]):
            raise ApiError(409, "email_already_registered")
    return invite


async def accept(conn: asyncpg.Connection, sql: Any, settings: Settings, invite: Any, *, token_hash: str,
                 password_hash: str, full_name: str, client: ClientInfo) -> dict[str, Any]:
    """Create the invited user (verified, in the inviter's tenant), use up the invite, sign in: AuthResponse.

    In the caller's transaction, which re-checks the invite under a row lock: of two concurrent accepts exactly
    one succeeds (the others get ``invite_not_pending``). The Argon2 hash was computed without a connection.
    """
    check_usable(await sql.lock_invite_by_token(conn, token_hash=token_hash))
    try:
        user = await sql.insert_user(conn, id=new_id(), tenant_id=invite["tenant_id"], email=invite["email"],
                                     display_name=full_name, role=invite["role"], password_hash=password_hash,
                                     email_verified=True)
    except asyncpg.UniqueViolationError:  # registered between the check and now
        raise ApiError(409, "email_already_registered") from None
    await sql.mark_invite_accepted(conn, id=invite["id"])
    await audit.write_event(conn, sql, tenant_id=invite["tenant_id"], actor_id=user["id"], kind="invite.accepted",
                            inputs={"invite_id": str(invite["id"]), "email": invite["email"], "role": invite["role"]})
    return await identity.issue_auth_response(conn, sql, settings, {**user, "tenant_name": invite["tenant_name"]},
                                              client)
