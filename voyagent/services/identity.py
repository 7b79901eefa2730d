"""The identity flows of auth.md (sign-up/in, tokens, profile, verification, reset, TOTP) over named SQL.

Handlers call one function per step; each raises the contract's ``ApiError`` for its documented failure and
runs its writes in one transaction. Argon2 work never holds a database connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
import uuid
from typing import Any, Mapping

import asyncpg
from aiohttp import web

from voyagent.config import Settings
from voyagent.db import connection, transaction
from voyagent.degradation import report_best_effort
from voyagent.errors import ApiError, unauthorized
from voyagent.ids import new_id, parse_uuid
from voyagent.jsonio import timestamp
from voyagent.keys import CLIENT_IP, DB_POOL, MAILER, PASSWORDS, QUERIES, SETTINGS, TOKEN_STORE
from voyagent.principal import Principal
from voyagent.services import audit, refresh_tokens, totp
from voyagent.services.email import send_email
from voyagent.services.email_messages import (
    Message,
    email_changed_message,
    password_reset_message,
    verification_message,
)
from voyagent.services.passwords import check_strength
from voyagent.services.refresh_tokens import ClientInfo
from voyagent.services.tokens import decode_totp_token, mint_access_token, mint_totp_token

log = logging.getLogger("voyagent.identity")

UserRow = Mapping[str, Any]

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


def client_info(request: web.Request) -> ClientInfo:
    """The User-Agent and client IP stored with a refresh token."""
    return ClientInfo(user_agent=request.headers.get("User-Agent"), ip=request.get(CLIENT_IP) or request.remote)


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


def _access_token(app: web.Application, user_id: uuid.UUID, tenant_id: uuid.UUID, role: str, email: str) -> str:
    token, _, _ = mint_access_token(app[SETTINGS], user_id=user_id, tenant_id=tenant_id, role=role, email=email)
    return token


async def issue_auth_response(conn: asyncpg.Connection, app: web.Application, user: UserRow,
                              client: ClientInfo) -> dict[str, Any]:
    """A new token pair in a new refresh family, as AuthResponse (in the caller's transaction)."""
    refresh = await refresh_tokens.create(conn, app[QUERIES], app[SETTINGS], user_id=user["id"], client=client)
    return {
        "access_token": _access_token(app, user["id"], user["tenant_id"], user["role"], user["email"]),
        "refresh_token": refresh,
        "expires_in": app[SETTINGS].access_ttl,
        "user": public_user(user),
    }


async def _mint_verification(app: web.Application, user_id: uuid.UUID, email: str) -> tuple[str, Message]:
    """Store a verification token bound to the user and this e-mail; 503 when Redis cannot take it."""
    settings = app[SETTINGS]
    token = uuid.uuid4().hex
    await app[TOKEN_STORE].put("email_verify", token, {"user_id": str(user_id), "email": email},
                               settings.verification_ttl)
    return token, verification_message(settings, token)


async def _send(app: web.Application, to: str, message: Message) -> None:
    await send_email(app, kind=message.kind, to=to, subject=message.subject, body=message.body, link=message.link)


def _debug_token(app: web.Application, token: str | None) -> str | None:
    return token if app[SETTINGS].skip_email_verification else None


# --- sign-up, sign-in, tokens ---------------------------------------------------------------------------


async def sign_up(app: web.Application, body: Mapping[str, Any], client: ClientInfo) -> dict[str, Any]:
    """Strength → 409 → tenant, user, settings and a token pair in one transaction → verification mail."""
    check_strength(body["password"])
    settings, sql, pool = app[SETTINGS], app[QUERIES], app[DB_POOL]
    email = body["email"]
    async with connection(pool) as conn:
        if await sql.email_is_registered(conn, email=email):
            raise ApiError(409, "email_already_registered")
    password_hash = await app[PASSWORDS].hash(body["password"])
    message = None
    try:
        async with transaction(pool) as conn:
            tenant_id = await sql.insert_tenant(conn, id=new_id(), display_name=body["agency_name"])
            await sql.insert_default_tenant_settings(conn, tenant_id=tenant_id)
            row = await sql.insert_user(conn, id=new_id(), tenant_id=tenant_id, email=email,
                                        display_name=body["full_name"], role="agency_admin",
                                        password_hash=password_hash, email_verified=settings.skip_email_verification)
            user = {**row, "tenant_name": body["agency_name"]}
            response = await issue_auth_response(conn, app, user, client)
            if not user["email_verified"]:  # stored before commit: a 503 here creates nothing
                _, message = await _mint_verification(app, user["id"], email)
    except asyncpg.UniqueViolationError:  # registered concurrently
        raise ApiError(409, "email_already_registered") from None
    if message is not None:
        await _send(app, email, message)
    return response


async def check_password(app: web.Application, email: str, password: str) -> asyncpg.Record | None:
    """The user when the password matches; unknown users and users without a password cost the same."""
    async with connection(app[DB_POOL]) as conn:
        user = await app[QUERIES].get_user_by_email(conn, email=email)
    ok = await app[PASSWORDS].verify(user["password_hash"] if user is not None else None, password)
    return user if ok else None


def totp_required(app: web.Application, user: UserRow) -> ApiError:
    """``401 totp_required`` carrying the intermediate token for ``POST /auth/sign-in-totp``."""
    token = mint_totp_token(app[SETTINGS], user_id=user["id"])
    return ApiError(401, "totp_required", extra={"totp_token": token})


@dataclasses.dataclass(frozen=True, slots=True)
class TotpTicket:
    """A verified intermediate token; its ``jti`` is spent when the sign-in completes."""

    jti: str
    exp: int


async def user_for_totp_token(app: web.Application, token: str) -> tuple[asyncpg.Record, TotpTicket]:
    """The user of a valid, unused intermediate token, else ``401 invalid_totp_token``."""
    claims = decode_totp_token(app[SETTINGS], token)
    if claims is None or await app[TOKEN_STORE].is_revoked(claims["jti"]):
        raise ApiError(401, "invalid_totp_token")
    async with connection(app[DB_POOL]) as conn:
        user = await app[QUERIES].get_user_by_id(conn, id=uuid.UUID(claims["sub"]))
    if user is None:
        raise ApiError(401, "invalid_totp_token")
    return user, TotpTicket(claims["jti"], int(claims["exp"]))


async def complete_sign_in(app: web.Application, user: UserRow, client: ClientInfo, *, password: str | None = None,
                           ticket: TotpTicket | None = None, totp_step: int | None = None) -> dict[str, Any]:
    """``last_login_at = now``, the hash upgraded when the Argon2 parameters changed, a new pair (AuthResponse).

    With a TOTP step, the step is claimed first (``WrongTotpCode`` when it is not later than the last one).
    With a TOTP ticket, its ``jti`` is spent inside the transaction: a second use of the token loses, and
    the step it claimed is rolled back with everything else.
    """
    passwords = app[PASSWORDS]
    sql = app[QUERIES]
    upgraded = None
    if password is not None and user["password_hash"] and passwords.needs_rehash(user["password_hash"]):
        upgraded = await passwords.hash(password)
    async with transaction(app[DB_POOL]) as conn:
        if totp_step is not None and await sql.accept_totp_step(
                conn, id=user["id"], totp_secret=user["totp_secret"], step=totp_step) is None:
            raise WrongTotpCode()
        await sql.record_sign_in(conn, id=user["id"], upgraded_password_hash=upgraded)
        response = await issue_auth_response(conn, app, user, client)
        if ticket is not None and not await app[TOKEN_STORE].revoke_jti(ticket.jti, ticket.exp):
            raise ApiError(401, "invalid_totp_token")
    return response


async def sign_in_with_totp(app: web.Application, user: UserRow, code: str, client: ClientInfo, *,
                            password: str | None = None, ticket: TotpTicket | None = None) -> dict[str, Any]:
    """The code step of ``POST /auth/sign-in-totp``: a single-use code, then the sign-in; else ``401 totp_invalid``.

    With an intermediate token every code is counted *before* it is compared, so however many requests race,
    at most ``MAX_WRONG_TOTP_CODES`` codes are ever compared per token: the one that reaches the limit with a
    wrong code burns the token (its ``jti`` denied until ``exp``), and any beyond it find the token used up.
    """
    store = app[TOKEN_STORE]
    attempt = 0
    if ticket is not None:
        attempt = await store.count_totp_attempt(ticket.jti, ticket.exp)
        if attempt > MAX_WRONG_TOTP_CODES:  # only requests that raced the burning one get here
            await store.revoke_jti(ticket.jti, ticket.exp)
            raise ApiError(401, "invalid_totp_token")
    step = totp.accepted_step(user["totp_secret"], code)
    try:
        if step is None:
            raise WrongTotpCode()
        return await complete_sign_in(app, user, client, password=password, ticket=ticket, totp_step=step)
    except WrongTotpCode:
        if ticket is not None and attempt >= MAX_WRONG_TOTP_CODES:
            await store.revoke_jti(ticket.jti, ticket.exp)
        raise ApiError(401, "totp_invalid") from None


async def refresh(app: web.Application, token: str, client: ClientInfo) -> dict[str, Any]:
    """Rotate the refresh token (reuse revokes its family) and issue a TokenPair with the current role/e-mail."""
    async with transaction(app[DB_POOL]) as conn:
        rotation = await refresh_tokens.rotate(conn, app[QUERIES], app[SETTINGS], token, client)
    if rotation is None:  # raised after the commit, so a family revocation sticks
        raise ApiError(401, "invalid_refresh_token")
    return {
        "access_token": _access_token(app, rotation.user_id, rotation.tenant_id, rotation.role, rotation.email),
        "refresh_token": rotation.refresh_token,
        "expires_in": app[SETTINGS].access_ttl,
    }


async def sign_out(app: web.Application, refresh_token: str | None, access: Principal | None) -> None:
    """Revoke the refresh token and deny the access token's jti; each step best-effort (failures logged)."""
    if refresh_token:
        try:
            async with transaction(app[DB_POOL]) as conn:
                await refresh_tokens.revoke_signed_out(conn, app[QUERIES], refresh_token)
        except Exception as exc:
            report_best_effort(log, "sign-out: could not revoke the refresh token", exc)
    if access is not None and access.jti is not None and access.token_exp is not None:
        try:
            await app[TOKEN_STORE].revoke_jti(access.jti, access.token_exp)
        except Exception:
            log.warning("sign-out: could not deny the access token")


# --- the current user -----------------------------------------------------------------------------------


async def current_user(app: web.Application, principal: Principal) -> asyncpg.Record:
    """The caller's row, read from the database; ``401 unauthorized`` when the user or tenant is gone."""
    async with connection(app[DB_POOL]) as conn:
        user = await app[QUERIES].get_user_by_id(conn, id=principal.user_id)
    if user is None or user["tenant_id"] != principal.tenant_id:
        raise unauthorized()
    return user


async def _lock_current_user(conn: asyncpg.Connection, app: web.Application, principal: Principal) -> asyncpg.Record:
    user = await app[QUERIES].lock_user_by_id(conn, id=principal.user_id)
    if user is None or user["tenant_id"] != principal.tenant_id:
        raise unauthorized()
    return user


async def update_profile(app: web.Application, principal: Principal, *, full_name: str | None,
                         email: str | None) -> dict[str, Any]:
    """Change name and/or e-mail (a new e-mail is unverified and gets a verification mail; the old one a notice)."""
    sql = app[QUERIES]
    message = None
    try:
        async with transaction(app[DB_POOL]) as conn:
            user = dict(await _lock_current_user(conn, app, principal))
            old_email = user["email"]
            new_email = email if email is not None else user["email"]
            new_name = full_name if full_name is not None else user["display_name"]
            email_changed = new_email != user["email"]
            if email_changed and await sql.email_is_registered(conn, email=new_email):
                raise ApiError(409, "email_already_registered")
            if email_changed or new_name != user["display_name"]:
                row = await sql.update_profile(conn, id=user["id"], display_name=new_name, email=new_email,
                                               email_verified=user["email_verified"] and not email_changed)
                user.update(row)
            if email_changed:
                _, message = await _mint_verification(app, user["id"], new_email)
    except asyncpg.UniqueViolationError:  # taken concurrently
        raise ApiError(409, "email_already_registered") from None
    if message is not None:  # the old address hears of it too: a takeover leaves a trace
        await asyncio.gather(_send(app, new_email, message), _send(app, old_email, email_changed_message(new_email)))
    return {"user": public_user(user), "email_verification_required": email_changed}


# --- e-mail verification and password reset -------------------------------------------------------------


async def send_verification(app: web.Application, user: UserRow) -> str | None:
    """Mint a verification token for the user's current e-mail and mail it; the token in debug mode."""
    token, message = await _mint_verification(app, user["id"], user["email"])
    await _send(app, user["email"], message)
    return _debug_token(app, token)


async def verify_email(app: web.Application, token: str) -> None:
    """Take the token and verify its user, if the e-mail is still the one it was minted for."""
    value = await app[TOKEN_STORE].take("email_verify", token)
    user_id = parse_uuid(value.get("user_id")) if value else None
    email = value.get("email") if value else None
    if user_id is None or not isinstance(email, str):
        raise ApiError(400, "token_invalid")
    async with transaction(app[DB_POOL]) as conn:
        verified = await app[QUERIES].mark_email_verified(conn, id=user_id, email=email)
    if verified is None:
        raise ApiError(400, "token_invalid")


async def request_password_reset(app: web.Application, email: str) -> str | None:
    """For a registered address mint and mail a reset token; unknown addresses take as long and get nothing."""
    async with connection(app[DB_POOL]) as conn:
        user = await app[QUERIES].get_user_by_email(conn, email=email)
    mailer = app[MAILER]
    if user is None:
        await mailer.imitate("password_reset")
        return None
    started = time.perf_counter()
    token = secrets.token_urlsafe(32)
    await app[TOKEN_STORE].put("pwreset", token, {"user_id": str(user["id"])}, app[SETTINGS].password_reset_ttl)
    await _send(app, user["email"], password_reset_message(app[SETTINGS], token))
    mailer.record_duration("password_reset", time.perf_counter() - started)
    return _debug_token(app, token)


async def reset_password(app: web.Application, token: str, new_password: str) -> None:
    """Strength (token untouched) → take the token → new hash, refresh tokens revoked, audit, one transaction."""
    check_strength(new_password)
    value = await app[TOKEN_STORE].take("pwreset", token)
    user_id = parse_uuid(value.get("user_id")) if value else None
    if user_id is None:
        raise ApiError(400, "token_invalid")
    password_hash = await app[PASSWORDS].hash(new_password)
    sql = app[QUERIES]
    async with transaction(app[DB_POOL]) as conn:
        tenant_id = await sql.set_password_hash(conn, id=user_id, password_hash=password_hash)
        if tenant_id is None:
            raise ApiError(400, "token_invalid")
        await refresh_tokens.revoke_all_for_user(conn, sql, user_id)
        await audit.write_event(conn, sql, tenant_id=tenant_id, actor_id=user_id, kind="auth.password_reset")


# --- TOTP -----------------------------------------------------------------------------------------------


async def setup_totp(app: web.Application, principal: Principal) -> dict[str, str]:
    """Store a fresh unconfirmed secret; ``409 totp_already_enabled`` while 2FA is on."""
    secret = totp.new_secret()
    async with transaction(app[DB_POOL]) as conn:
        user = await _lock_current_user(conn, app, principal)
        if user["totp_enabled"]:
            raise ApiError(409, "totp_already_enabled")
        await app[QUERIES].set_totp_secret(conn, id=user["id"], totp_secret=secret)
    return {"secret": secret, "otpauth_url": totp.otpauth_url(secret, user["email"])}


async def enable_totp(app: web.Application, principal: Principal, code: str) -> None:
    """Already on → done; no secret → 400; wrong or replayed code → 401; else on, audited ``auth.totp_enabled``."""
    sql = app[QUERIES]
    async with transaction(app[DB_POOL]) as conn:
        user = await _lock_current_user(conn, app, principal)
        if user["totp_enabled"]:
            return
        if not user["totp_secret"]:
            raise ApiError(400, "totp_not_initialized")
        step = totp.accepted_step(user["totp_secret"], code)
        if step is None or await sql.enable_totp(conn, id=user["id"], totp_secret=user["totp_secret"],
                                                 step=step) is None:
            raise ApiError(401, "totp_invalid")
        await audit.write_event(conn, sql, tenant_id=user["tenant_id"], actor_id=user["id"], kind="auth.totp_enabled")


async def disable_totp(app: web.Application, principal: Principal, password: str, code: str) -> None:
    """Wrong password → 403; not on → done; wrong or replayed code → 403; else off, audited ``auth.totp_disabled``."""
    user = await current_user(app, principal)
    if not await app[PASSWORDS].verify(user["password_hash"], password):
        raise ApiError(403, "invalid_password")
    sql = app[QUERIES]
    async with transaction(app[DB_POOL]) as conn:
        user = await _lock_current_user(conn, app, principal)
        if not user["totp_enabled"]:
            return
        step = totp.accepted_step(user["totp_secret"], code)
        if step is None or await sql.disable_totp(conn, id=user["id"], totp_secret=user["totp_secret"],
                                                  step=step) is None:
            raise ApiError(403, "totp_invalid")
        await audit.write_event(conn, sql, tenant_id=user["tenant_id"], actor_id=user["id"],
                                kind="auth.totp_disabled")
