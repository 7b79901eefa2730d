"""HTTP handlers of the auth endpoints (endpoints.md); operations listed here are routed.

Access, buckets 2/4 and body validation have run before a handler; each handler states the remaining checks
in the contract's order and leaves the work to ``voyagent.services.identity``.
"""

from __future__ import annotations

from aiohttp import web

from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import BODY, PRINCIPAL
from voyagent.middleware.auth import bearer_credential, principal_from_jwt
from voyagent.middleware.ratelimit import check_credential_email
from voyagent.principal import Principal
from voyagent.services import identity


def _principal(request: web.Request) -> Principal:
    principal = request[PRINCIPAL]
    assert principal is not None  # JWT-only operations: the middleware authenticated the caller
    return principal


async def sign_up(request: web.Request) -> web.Response:
    """POST /auth/sign-up: strength → 409 → tenant + admin + settings + pair → 201 AuthResponse."""
    response = await identity.sign_up(request.app, request[BODY], identity.client_info(request))
    return json_response(response, status=201)


async def sign_in(request: web.Request) -> web.Response:
    """POST /auth/sign-in: e-mail bucket → password → verified → 2FA → 200 AuthResponse."""
    body = request[BODY]
    await check_credential_email(request, body["email"])
    user = await identity.check_password(request.app, body["email"], body["password"])
    if user is None:
        raise ApiError(401, "invalid_credentials")
    if not user["email_verified"]:
        raise ApiError(401, "email_not_verified")
    if user["totp_enabled"]:
        raise identity.totp_required(request.app, user)
    return json_response(await identity.complete_sign_in(request.app, user, identity.client_info(request),
                                                         password=body["password"]))


async def sign_in_totp(request: web.Request) -> web.Response:
    """POST /auth/sign-in-totp: credentials, or intermediate token then e-mail bucket → verified → 2FA on → code."""
    body = request[BODY]
    ticket = None
    password = body.get("password")
    if "email" in body:  # credentials form
        await check_credential_email(request, body["email"])
        user = await identity.check_password(request.app, body["email"], body["password"])
        if user is None:
            raise ApiError(401, "invalid_credentials")
    else:  # token form: a token that does not verify takes no e-mail token
        user, ticket = await identity.user_for_totp_token(request.app, body["totp_token"])
        await check_credential_email(request, user["email"])
    if not user["email_verified"]:
        raise ApiError(401, "email_not_verified")
    if not user["totp_enabled"]:
        raise ApiError(400, "totp_not_enabled")
    return json_response(await identity.sign_in_with_totp(request.app, user, body["totp_code"],
                                                          identity.client_info(request), password=password,
                                                          ticket=ticket))


async def refresh_tokens(request: web.Request) -> web.Response:
    """POST /auth/refresh: rotate → 200 TokenPair, or 401 invalid_refresh_token."""
    pair = await identity.refresh(request.app, request[BODY]["refresh_token"], identity.client_info(request))
    return json_response(pair)


async def sign_out(request: web.Request) -> web.Response:
    """POST /auth/sign-out: always 204; revokes the body's refresh token and the header's access token."""
    body = request[BODY] or {}
    credential = bearer_credential(request)
    access = None
    if credential is not None and not credential.startswith("vy_"):  # API keys are never revoked here
        access = await principal_from_jwt(request.app, credential)
    await identity.sign_out(request.app, body.get("refresh_token"), access)
    return web.Response(status=204)


async def get_me(request: web.Request) -> web.Response:
    """GET /auth/me: the caller from the database (401 when gone)."""
    return json_response(identity.public_user(await identity.current_user(request.app, _principal(request))))


async def update_profile(request: web.Request) -> web.Response:
    """PATCH /auth/profile: 409 when another user owns the new e-mail; else 200 {user, verification flag}."""
    body = request[BODY]
    result = await identity.update_profile(request.app, _principal(request), full_name=body.get("full_name"),
                                           email=body.get("email"))
    return json_response(result)


async def send_verification_email(request: web.Request) -> web.Response:
    """POST /auth/send-verification-email: e-mail bucket of the current address → mint and mail → 200."""
    user = await identity.current_user(request.app, _principal(request))
    await check_credential_email(request, user["email"])
    token = await identity.send_verification(request.app, user)
    return json_response({"queued": True, "debug_token": token})


async def verify_email(request: web.Request) -> web.Response:
    """POST /auth/verify-email: take the token → 200 {verified}, or 400 token_invalid."""
    await identity.verify_email(request.app, request[BODY]["token"])
    return json_response({"verified": True})


async def request_password_reset(request: web.Request) -> web.Response:
    """POST /auth/request-password-reset: e-mail bucket → always 200 {queued, debug_token}."""
    email = request[BODY]["email"]
    await check_credential_email(request, email)
    token = await identity.request_password_reset(request.app, email)
    return json_response({"queued": True, "debug_token": token})


async def reset_password(request: web.Request) -> web.Response:
    """POST /auth/reset-password: strength → token → new hash, sessions revoked → 200 {reset}."""
    body = request[BODY]
    await identity.reset_password(request.app, body["token"], body["new_password"])
    return json_response({"reset": True})


async def setup_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/setup: 409 while on; else 200 {secret, otpauth_url}."""
    return json_response(await identity.setup_totp(request.app, _principal(request)))


async def verify_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/verify: on already → 200; no secret → 400; wrong code → 401; else on → 200."""
    await identity.enable_totp(request.app, _principal(request), request[BODY]["code"])
    return json_response({"totp_enabled": True})


async def disable_totp(request: web.Request) -> web.Response:
    """POST /auth/totp/disable: wrong password → 403; off already → 200; wrong code → 403; else off → 200."""
    body = request[BODY]
    await identity.disable_totp(request.app, _principal(request), body["password"], body["code"])
    return json_response({"totp_enabled": False})


HANDLERS: dict[str, Handler] = {
    "sign_up": sign_up,
    "sign_in": sign_in,
    "sign_in_totp": sign_in_totp,
    "refresh_tokens": refresh_tokens,
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
