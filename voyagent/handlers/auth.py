"""HTTP handlers of the auth endpoints (endpoints.md); operations listed here are routed.

Access, buckets 2/4 and body validation have run before a handler; each handler states the remaining checks
in the contract's order. The steps are ``voyagent.services.identity``'s; the handler owns the transactions
around them, and does the work that must hold no connection: Argon2 (``PASSWORDS``) and e-mail (``MAILER``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import asyncpg
from aiohttp import web

from voyagent.degradation import report_best_effort
from voyagent.edge import client_info
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import BODY, DATABASE, MAILER, PASSWORDS, PRINCIPAL, QUERIES, SETTINGS, TOKEN_STORE
from voyagent.middleware.auth import bearer_credential, principal_from_jwt
from voyagent.middleware.ratelimit import check_credential_email
from voyagent.principal import Principal
from voyagent.services import identity, refresh_tokens
from voyagent.services.identity import TotpTicket, WrongTotpCode
from voyagent.services.passwords import check_strength

log = logging.getLogger("voyagent.identity")


def _principal(request: web.Request) -> Principal:
    principal = request[PRINCIPAL]
    assert principal is not None  # JWT-only operations: the middleware authenticated the caller
    return principal


async def _current_user(app: web.Application, principal: Principal) -> asyncpg.Record:
    async with app[DATABASE].connection() as conn:
        return await identity.current_user(conn, app[QUERIES], principal)


async def _check_password(app: web.Application, email: str, password: str) -> asyncpg.Record | None:
    """The user when the password matches; unknown users and users without a password cost the same."""
    async with app[DATABASE].connection() as conn:
        user = await app[QUERIES].get_user_by_email(conn, email=email)
    ok = await app[PASSWORDS].verify(user["password_hash"] if user is not None else None, password)
    return user if ok else None


async def _complete_sign_in(request: web.Request, user: Any, *, password: str | None = None,
                            ticket: TotpTicket | None = None, code: str | None = None) -> dict[str, Any]:
    """The sign-in's transaction (AuthResponse); the hash is upgraded first, outside it, when Argon2's parameters
    changed. With a TOTP code, ``WrongTotpCode`` when it is not accepted."""
    app = request.app
    passwords = app[PASSWORDS]
    step = identity.totp_step(user, code) if code is not None else None
    upgraded = None
    if password is not None and user["password_hash"] and passwords.needs_rehash(user["password_hash"]):
        upgraded = await passwords.hash(password)
    async with app[DATABASE].transaction() as conn:
        return await identity.complete_sign_in(conn, app[QUERIES], app[SETTINGS], app[TOKEN_STORE], user,
                                               client_info(request), upgraded_password_hash=upgraded, ticket=ticket,
                                               step=step)


async def sign_up(request: web.Request) -> web.Response:
    """POST /auth/sign-up: strength → 409 → tenant + admin + settings + pair → 201 AuthResponse → mail."""
    body, app = request[BODY], request.app
    check_strength(body["password"])
    async with app[DATABASE].connection() as conn:
        await identity.ensure_email_free(conn, app[QUERIES], body["email"])
    password_hash = await app[PASSWORDS].hash(body["password"])
    async with app[DATABASE].transaction() as conn:
        response, mail = await identity.sign_up(conn, app[QUERIES], app[SETTINGS], app[TOKEN_STORE], body,
                                                password_hash, client_info(request))
    if mail is not None:
        await app[MAILER].deliver(*mail)
    return json_response(response, status=201)


async def sign_in(request: web.Request) -> web.Response:
    """POST /auth/sign-in: e-mail bucket → password → verified → 2FA → 200 AuthResponse."""
    body = request[BODY]
    await check_credential_email(request, body["email"])
    user = await _check_password(request.app, body["email"], body["password"])
    if user is None:
        raise ApiError(401, "invalid_credentials")
    if not user["email_verified"]:
        raise ApiError(401, "email_not_verified")
    if user["totp_enabled"]:
        raise identity.totp_required(request.app[SETTINGS], user)
    return json_response(await _complete_sign_in(request, user, password=body["password"]))


async def sign_in_totp(request: web.Request) -> web.Response:
    """POST /auth/sign-in-totp: credentials, or intermediate token then e-mail bucket → verified → 2FA on → code.

    With an intermediate token every code is counted *before* it is compared (``identity.count_totp_attempt``):
    the one that reaches the limit with a wrong code burns the token.
    """
    body, app = request[BODY], request.app
    tokens = app[TOKEN_STORE]
    ticket = None
    if "email" in body:  # credentials form
        await check_credential_email(request, body["email"])
        user = await _check_password(app, body["email"], body["password"])
        if user is None:
            raise ApiError(401, "invalid_credentials")
    else:  # token form: a token that does not verify takes no e-mail token
        ticket = await identity.verify_totp_token(app[SETTINGS], tokens, body["totp_token"])
        async with app[DATABASE].connection() as conn:
            user = await identity.user_of_ticket(conn, app[QUERIES], ticket)
        await check_credential_email(request, user["email"])
    if not user["email_verified"]:
        raise ApiError(401, "email_not_verified")
    if not user["totp_enabled"]:
        raise ApiError(400, "totp_not_enabled")
    attempt = await identity.count_totp_attempt(tokens, ticket) if ticket is not None else 0
    try:
        response = await _complete_sign_in(request, user, password=body.get("password"), ticket=ticket,
                                           code=body["totp_code"])
    except WrongTotpCode:
        raise await identity.refuse_totp_code(tokens, ticket, attempt) from None
    return json_response(response)


async def refresh(request: web.Request) -> web.Response:
    """POST /auth/refresh: rotate → 200 TokenPair, or 401 invalid_refresh_token (after the commit, so a family
    revocation sticks)."""
    app = request.app
    async with app[DATABASE].transaction() as conn:
        pair = await identity.refresh(conn, app[QUERIES], app[SETTINGS], request[BODY]["refresh_token"],
                                      client_info(request))
    if pair is None:
        raise ApiError(401, "invalid_refresh_token")
    return json_response(pair)


async def sign_out(request: web.Request) -> web.Response:
    """POST /auth/sign-out: always 204; revokes the body's refresh token and denies the header's access token,
    each step best-effort (failures logged)."""
    app = request.app
    refresh_token = (request[BODY] or {}).get("refresh_token")
    if refresh_token:
        try:
            async with app[DATABASE].transaction() as conn:
                await refresh_tokens.revoke_signed_out(conn, app[QUERIES], refresh_token)
        except Exception as exc:
            report_best_effort(log, "sign-out: could not revoke the refresh token", exc)
    credential = bearer_credential(request)
    if credential is not None and not credential.startswith("vy_"):  # API keys are never revoked here
        access = await principal_from_jwt(app, credential)
        if access is not None:
            await identity.deny_access_token(app[TOKEN_STORE], access)
    return web.Response(status=204)


async def get_me(request: web.Request) -> web.Response:
    """GET /auth/me: the caller from the database (401 when gone)."""
    return json_response(identity.public_user(await _current_user(request.app, _principal(request))))


async def update_profile(request: web.Request) -> web.Response:
    """PATCH /auth/profile: 409 when another user owns the new e-mail; else 200 {user, verification flag}; a new
    e-mail gets its verification mail and the old one a notice, after the commit."""
    body, app = request[BODY], request.app
    async with app[DATABASE].transaction() as conn:
        result, mails = await identity.update_profile(conn, app[QUERIES], app[SETTINGS], app[TOKEN_STORE],
                                                      _principal(request), full_name=body.get("full_name"),
                                                      email=body.get("email"))
    await asyncio.gather(*(app[MAILER].deliver(to, message) for to, message in mails))
    return json_response(result)


async def send_verification_email(request: web.Request) -> web.Response:
    """POST /auth/send-verification-email: e-mail bucket of the current address → mint and mail → 200."""
    app = request.app
    user = await _current_user(app, _principal(request))
    await check_credential_email(request, user["email"])
    token, message = await identity.mint_verification(app[TOKEN_STORE], app[SETTINGS], user["id"], user["email"])
    await app[MAILER].deliver(user["email"], message)
    return json_response({"queued": True, "debug_token": identity.debug_token(app[SETTINGS], token)})


async def verify_email(request: web.Request) -> web.Response:
    """POST /auth/verify-email: take the token → 200 {verified}, or 400 token_invalid."""
    app = request.app
    user_id, email = await identity.take_verification(app[TOKEN_STORE], request[BODY]["token"])
    async with app[DATABASE].transaction() as conn:
        await identity.verify_email(conn, app[QUERIES], user_id, email)
    return json_response({"verified": True})


async def request_password_reset(request: web.Request) -> web.Response:
    """POST /auth/request-password-reset: e-mail bucket → always 200 {queued, debug_token}. A registered address
    gets a reset mail; an unknown one takes as long (``Mailer.imitate``) and gets nothing."""
    email, app = request[BODY]["email"], request.app
    await check_credential_email(request, email)
    async with app[DATABASE].connection() as conn:
        user = await app[QUERIES].get_user_by_email(conn, email=email)
    mailer = app[MAILER]
    token = None
    if user is None:
        await mailer.imitate("password_reset")
    else:
        with mailer.timed("password_reset"):
            token, mail = await identity.mint_password_reset(app[TOKEN_STORE], app[SETTINGS], user)
            await mailer.deliver(*mail)
    return json_response({"queued": True, "debug_token": identity.debug_token(app[SETTINGS], token)})


async def reset_password(request: web.Request) -> web.Response:
    """POST /auth/reset-password: strength (token untouched) → take the token → new hash, sessions revoked,
    audited, in one transaction → 200 {reset}."""
    body, app = request[BODY], request.app
    check_strength(body["new_password"])
    user_id = await identity.take_password_reset(app[TOKEN_STORE], body["token"])
    password_hash = await app[PASSWORDS].hash(body["new_password"])
    async with app[DATABASE].transaction() as conn:
        await identity.reset_password(conn, app[QUERIES], user_id, password_hash)
    return json_response({"reset": True})


async def setup_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/setup: 409 while on; else 200 {secret, otpauth_url}."""
    async with request.app[DATABASE].transaction() as conn:
        secret = await identity.setup_totp(conn, request.app[QUERIES], _principal(request))
    return json_response(secret)


async def verify_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/verify: on already → 200; no secret → 400; wrong code → 401; else on → 200."""
    async with request.app[DATABASE].transaction() as conn:
        await identity.enable_totp(conn, request.app[QUERIES], _principal(request), request[BODY]["code"])
    return json_response({"totp_enabled": True})


async def disable_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/disable: wrong password → 403; off already → 200; wrong code → 403; else off → 200."""
    body, app = request[BODY], request.app
    principal = _principal(request)
    user = await _current_user(app, principal)
    if not await app[PASSWORDS].verify(user["password_hash"], body["password"]):
        raise ApiError(403, "invalid_password")
    async with app[DATABASE].transaction() as conn:
        await identity.disable_totp(conn, app[QUERIES], principal, body["code"])
    return json_response({"totp_enabled": False})


HANDLERS: dict[str, Handler] = {
    "sign_up": sign_up,
    "sign_in": sign_in,
    "sign_in_totp": sign_in_totp,
    "refresh_tokens": refresh,
    "sign_out": sign_out,
    "get_me": get_me,
    "update_profile": update_profile,
    "send_verification_email": send_verification_email,
    "verify_email": verify_email,
    "request_password_reset": request_password_reset,
    "reset_password": reset_password,
    "setup_totp": setup_totp,
    "verify_totp": verify_totp,
    "disable_totp": disable_totp,
}
