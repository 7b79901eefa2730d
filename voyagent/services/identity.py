"""The identity steps of auth.md (sign-up/in, tokens, profile, verification, reset, TOTP) over named SQL.

Each step takes the connection first (the handler owns the transaction) or, when it touches no database, no
connection at all; it returns plain data or raises the contract's ``ApiError``. Collaborators come as
arguments: ``settings`` and the ``TokenStore`` (Redis). Argon2 hashing and e-mail delivery stay with the
caller, outside any transaction, so a hash or an SMTP round trip never holds a connection.
"""

from __future__ import annotations

import dataclasses
import logging
import secrets
import uuid
from typing import Any, Mapping

import asyncpg

from voyagent.config import Settings
from voyagent.errors import ApiError, unauthorized
from voyagent.ids import new_id, parse_uuid
from voyagent.jsonio import timestamp
from voyagent.principal import Principal
from voyagent.services import audit, refresh_tokens, totp
from voyagent.services.email_messages import (
    Message,
    email_changed_message,
    password_reset_message,
    verification_message,
)
from voyagent.services.refresh_tokens import ClientInfo
from voyagent.services.token_store import TokenStore
from voyagent.services.tokens import decode_totp_token, mint_access_token, mint_totp_token

log = logging.getLogger("voyagent.identity")

UserRow = Mapping[str, Any]
Mail = tuple[str, Message]  # (to, message), sent by the caller after the commit

# auth.md: an intermediate token presented with this many wrong codes is burned.
MAX_WRONG_TOTP_CODES = 5


class WrongTotpCode(Exception):
    """The code is wrong: not 6 digits, no step of the window, or a step not later than the last accepted one."""


def warn_if_verification_skipped(settings: Settings) -> None:
    """At every start: say plainly what ``VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION=true`` gives away."""
    if settings.skip_email_verification:
        log.warning("VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION is true (development/testing only): new sign-ups are "
                    "verified without any e-mail, and POST /auth/request-password-reset and "
                    "POST /auth/send-verification-email return their token as debug_token, so anyone who knows "
                    "an address can reset its password")


def public_user(user: UserRow) -> dict[str, Any]:
    """PublicUser (endpoints.md): never a hash, a secret or a token."""
    return {
        "id": str(user["id"]),
        "email": user["email"],
        "full_name": user["display_name"],
        "role": user["role"],
        "tenant_id": str(user["tenant_id"]),
        "tenant_name": user["tenant_name"],
        "created_at": timestamp(user["created_at"]),
        "email_verified": user["email_verified"],
        "totp_enabled": user["totp_enabled"],
    }


def debug_token(settings: Settings, token: str | None) -> str | None:
    """The token echoed as ``debug_token`` (only while e-mail verification is skipped), else None."""
    return token if settings.skip_email_verification else None


def _access_token(settings: Settings, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, email: str) -> str:
    token, _, _ = mint_access_token(settings, user_id=user_id, tenant_id=tenant_id, role=role, email=email)
    return token


async def issue_auth_response(conn: asyncpg.Connection, sql: Any, settings: Settings, user: UserRow,
                              client: ClientInfo) -> dict[str, Any]:
    """A new token pair in a new refresh family, as AuthResponse (in the caller's transaction)."""
    refresh = await refresh_tokens.create(conn, sql, settings, user_id=user["id"], client=client)
    return {
        "access_token": _access_token(settings, user["id"], user["tenant_id"], user["role"], user["email"]),
        "refresh_token": refresh,
        "expires_in": settings.access_ttl,
        "user": public_user(user),
    }


async def mint_verification(tokens: TokenStore, settings: Settings, user_id: uuid.UUID,
                            email: str) -> tuple[str, Message]:
    """Store a verification token bound to the user and this e-mail; 503 when Redis cannot take it."""
    token = uuid.uuid4().hex
    await tokens.put("email_verify", token, {"user_id": str(user_id), "email": email}, settings.verification_ttl)
    return token, verification_message(settings, token)


# --- sign-up, sign-in, tokens ---------------------------------------------------------------------------


async def ensure_email_free(conn: asyncpg.Connection, sql: Any, email: str) -> None:
    """``409 email_already_registered`` when a user has this e-mail."""
    if await sql.email_is_registered(conn, email=email):
        raise ApiError(409, "email_already_registered")


async def sign_up(conn: asyncpg.Connection, sql: Any, settings: Settings, tokens: TokenStore, body: Mapping[str, Any],
                  password_hash: str, client: ClientInfo) -> tuple[dict[str, Any], Mail | None]:
    """Tenant, admin user, settings and a token pair (caller's transaction): AuthResponse and the verification
    mail to send after the commit. The token is stored before the commit: a 503 there creates nothing."""
    tenant_id = await sql.insert_tenant(conn, id=new_id(), display_name=body["agency_name"])
    await sql.insert_default_tenant_settings(conn, tenant_id=tenant_id)
    try:
        row = await sql.insert_user(conn, id=new_id(), tenant_id=tenant_id, email=body["email"],
                                    display_name=body["full_name"], role="agency_admin", password_hash=password_hash,
                                    email_verified=settings.skip_email_verification)
    except asyncpg.UniqueViolationError:  # registered concurrently
        raise ApiError(409, "email_already_registered") from None
    user = {**row, "tenant_name": body["agency_name"]}
    response = await issue_auth_response(conn, sql, settings, user, client)
    if user["email_verified"]:
        return response, None
    _, message = await mint_verification(tokens, settings, user["id"], user["email"])
    return response, (user["email"], message)


def totp_required(settings: Settings, user: UserRow) -> ApiError:
    """``401 totp_required`` carrying the intermediate token for ``POST /auth/sign-in-totp``."""
    token = mint_totp_token(settings, user_id=user["id"])
    return ApiError(401, "totp_required", extra={"totp_token": token})


@dataclasses.dataclass(frozen=True, slots=True)
class TotpTicket:
    """A verified intermediate token; its ``jti`` is spent when the sign-in completes."""

    user_id: uuid.UUID
    jti: str
    exp: int


async def verify_totp_token(settings: Settings, tokens: TokenStore, token: str) -> TotpTicket:
    """The ticket of a valid, unused intermediate token, else ``401 invalid_totp_token``."""
    claims = decode_totp_token(settings, token)
    if claims is None or await tokens.is_revoked(claims["jti"]):
        raise ApiError(401, "invalid_totp_token")
    return TotpTicket(uuid.UUID(claims["sub"]), claims["jti"], int(claims["exp"]))


async def user_of_ticket(conn: asyncpg.Connection, sql: Any, ticket: TotpTicket) -> asyncpg.Record:
    """The user an intermediate token names; ``401 invalid_totp_token`` when it is gone."""
    user = await sql.get_user_by_id(conn, id=ticket.user_id)
    if user is None:
        raise ApiError(401, "invalid_totp_token")
    return user


async def count_totp_attempt(tokens: TokenStore, ticket: TotpTicket) -> int:
    """Count one code presented with the intermediate token *before* it is compared (auth.md: five wrong codes
    burn the token). However many requests race, at most ``MAX_WRONG_TOTP_CODES`` codes are ever compared per
    token; a request beyond them finds the token used up (``401 invalid_totp_token``) and denies it again."""
    attempt = await tokens.count_totp_attempt(ticket.jti, ticket.exp)
    if attempt > MAX_WRONG_TOTP_CODES:  # only requests that raced the burning one get here
        await tokens.revoke_jti(ticket.jti, ticket.exp)
        raise ApiError(401, "invalid_totp_token")
    return attempt


async def refuse_totp_code(tokens: TokenStore, ticket: TotpTicket | None, attempt: int) -> ApiError:
    """``401 totp_invalid`` for a wrong code; the one that reaches the limit burns the intermediate token."""
    if ticket is not None and attempt >= MAX_WRONG_TOTP_CODES:
        await tokens.revoke_jti(ticket.jti, ticket.exp)
    return ApiError(401, "totp_invalid")


def totp_step(user: UserRow, code: str) -> int:
    """The time step a code belongs to; ``WrongTotpCode`` when it matches none of the window."""
    step = totp.accepted_step(user["totp_secret"], code)
    if step is None:
        raise WrongTotpCode()
    return step


async def complete_sign_in(conn: asyncpg.Connection, sql: Any, settings: Settings, tokens: TokenStore,
                           user: UserRow, client: ClientInfo, *, upgraded_password_hash: str | None = None,
                           ticket: TotpTicket | None = None, step: int | None = None) -> dict[str, Any]:
    """``last_login_at = now``, the upgraded hash when given, a new pair (AuthResponse), in the caller's transaction.

    With a TOTP step, the step is claimed first (``WrongTotpCode`` when it is not later than the last one).
    With a TOTP ticket, its ``jti`` is spent inside the transaction: a second use of the token loses, and
    the step it claimed is rolled back with everything else.
    """
    if step is not None and await sql.accept_totp_step(conn, id=user["id"], totp_secret=user["totp_secret"],
                                                       step=step) is None:
        raise WrongTotpCode()
    await sql.record_sign_in(conn, id=user["id"], upgraded_password_hash=upgraded_password_hash)
    response = await issue_auth_response(conn, sql, settings, user, client)
    if ticket is not None and not await tokens.revoke_jti(ticket.jti, ticket.exp):
        raise ApiError(401, "invalid_totp_token")
    return response


async def refresh(conn: asyncpg.Connection, sql: Any, settings: Settings, token: str,
                  client: ClientInfo) -> dict[str, Any] | None:
    """Rotate the refresh token (reuse revokes its family): a TokenPair with the current role and e-mail, or
    None — the caller answers ``401 invalid_refresh_token`` after the commit, so a family revocation sticks."""
    rotation = await refresh_tokens.rotate(conn, sql, settings, token, client)
    if rotation is None:
        return None
    return {
        "access_token": _access_token(settings, rotation.user_id, rotation.tenant_id, rotation.role, rotation.email),
        "refresh_token": rotation.refresh_token,
        "expires_in": settings.access_ttl,
    }


async def deny_access_token(tokens: TokenStore, access: Principal) -> None:
    """Deny the access token's jti until it expires; best-effort (a failure is logged)."""
    if access.jti is None or access.token_exp is None:
        return
    try:
        await tokens.revoke_jti(access.jti, access.token_exp)
    except Exception:
        log.warning("sign-out: could not deny the access token")


# --- the current user -----------------------------------------------------------------------------------


async def current_user(conn: asyncpg.Connection, sql: Any, principal: Principal) -> asyncpg.Record:
    """The caller's row, read from the database; ``401 unauthorized`` when the user or tenant is gone."""
    user = await sql.get_user_by_id(conn, id=principal.user_id)
    if user is None or user["tenant_id"] != principal.tenant_id:
        raise unauthorized()
    return user


async def _lock_current_user(conn: asyncpg.Connection, sql: Any, principal: Principal) -> asyncpg.Record:
    user = await sql.lock_user_by_id(conn, id=principal.user_id)
    if user is None or user["tenant_id"] != principal.tenant_id:
        raise unauthorized()
    return user


async def update_profile(conn: asyncpg.Connection, sql: Any, settings: Settings, tokens: TokenStore,
                         principal: Principal, *, full_name: str | None,
                         email: str | None) -> tuple[dict[str, Any], list[Mail]]:
    """Change name and/or e-mail (caller's transaction). A new e-mail is unverified: the result carries its
    verification mail and a notice to the old address (a takeover leaves a trace), to send after the commit."""
    user = dict(await _lock_current_user(conn, sql, principal))
    old_email = user["email"]
    new_email = email if email is not None else old_email
    new_name = full_name if full_name is not None else user["display_name"]
    email_changed = new_email != old_email
    if email_changed:
        await ensure_email_free(conn, sql, new_email)
    if email_changed or new_name != user["display_name"]:
        try:
            row = await sql.update_profile(conn, id=user["id"], display_name=new_name, email=new_email,
                                           email_verified=user["email_verified"] and not email_changed)
        except asyncpg.UniqueViolationError:  # taken concurrently
            raise ApiError(409, "email_already_registered") from None
        user.update(row)
    mails: list[Mail] = []
    if email_changed:
        _, message = await mint_verification(tokens, settings, user["id"], new_email)
        mails = [(new_email, message), (old_email, email_changed_message(new_email))]
    return {"user": public_user(user), "email_verification_required": email_changed}, mails


# --- e-mail verification and password reset -------------------------------------------------------------


async def take_verification(tokens: TokenStore, token: str) -> tuple[uuid.UUID, str]:
    """Take (use up) a verification token: its user and the e-mail it was minted for; else ``400 token_invalid``."""
    value = await tokens.take("email_verify", token)
    user_id = parse_uuid(value.get("user_id")) if value else None
    email = value.get("email") if value else None
    if user_id is None or not isinstance(email, str):
        raise ApiError(400, "token_invalid")
    return user_id, email


async def verify_email(conn: asyncpg.Connection, sql: Any, user_id: uuid.UUID, email: str) -> None:
    """Mark the user verified if the e-mail is still the one the token was minted for; else ``400 token_invalid``."""
    if await sql.mark_email_verified(conn, id=user_id, email=email) is None:
        raise ApiError(400, "token_invalid")


async def mint_password_reset(tokens: TokenStore, settings: Settings, user: UserRow) -> tuple[str, Mail]:
    """Store a reset token for the user: the token and its mail."""
    token = secrets.token_urlsafe(32)
    await tokens.put("pwreset", token, {"user_id": str(user["id"])}, settings.password_reset_ttl)
    return token, (user["email"], password_reset_message(settings, token))


async def take_password_reset(tokens: TokenStore, token: str) -> uuid.UUID:
    """Take (use up) a reset token: its user; else ``400 token_invalid``."""
    value = await tokens.take("pwreset", token)
    user_id = parse_uuid(value.get("user_id")) if value else None
    if user_id is None:
        raise ApiError(400, "token_invalid")
    return user_id


async def reset_password(conn: asyncpg.Connection, sql: Any, user_id: uuid.UUID, password_hash: str) -> None:
    """New hash, every refresh token revoked, ``auth.password_reset`` audited (caller's transaction)."""
    tenant_id = await sql.set_password_hash(conn, id=user_id, password_hash=password_hash)
    if tenant_id is None:
        raise ApiError(400, "token_invalid")
    await refresh_tokens.revoke_all_for_user(conn, sql, user_id)
    await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=user_id, kind="auth.password_reset")


# --- TOTP -----------------------------------------------------------------------------------------------


async def setup_totp(conn: asyncpg.Connection, sql: Any, principal: Principal) -> dict[str, str]:
    """Store a fresh unconfirmed secret; ``409 totp_already_enabled`` while 2FA is on."""
    secret = totp.new_secret()
    user = await _lock_current_user(conn, sql, principal)
    if user["totp_enabled"]:
        raise ApiError(409, "totp_already_enabled")
    await sql.set_totp_secret(conn, id=user["id"], totp_secret=secret)
    return {"secret": secret, "otpauth_url": totp.otpauth_url(secret, user["email"])}


async def enable_totp(conn: asyncpg.Connection, sql: Any, principal: Principal, code: str) -> None:
    """Already on → done; no secret → 400; wrong or replayed code → 401; else on, audited ``auth.totp_enabled``."""
    user = await _lock_current_user(conn, sql, principal)
    if user["totp_enabled"]:
        return
    if not user["totp_secret"]:
        raise ApiError(400, "totp_not_initialized")
    step = totp.accepted_step(user["totp_secret"], code)
    if step is None or await sql.enable_totp(conn, id=user["id"], totp_secret=user["totp_secret"], step=step) is None:
        raise ApiError(401, "totp_invalid")
    await audit.write_event(conn, sql, tenant_id=user["tenant_id"], actor_id=user["id"], kind="auth.totp_enabled")


async def disable_totp(conn: asyncpg.Connection, sql: Any, principal: Principal, code: str) -> None:
    """Not on → done; wrong or replayed code → 403; else off, audited ``auth.totp_disabled`` (the password was
    checked by the caller, outside the transaction)."""
    user = await _lock_current_user(conn, sql, principal)
    if not user["totp_enabled"]:
        return
    step = totp.accepted_step(user["totp_secret"], code)
    if step is None or await sql.disable_totp(conn, id=user["id"], totp_secret=user["totp_secret"],
                                              step=step) is None:
        raise ApiError(403, "totp_invalid")
    await audit.write_event(conn, sql, tenant_id=user["tenant_id"], actor_id=user["id"], kind="auth.totp_disabled")
