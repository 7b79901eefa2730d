"""The contract's order of checks 1–6 as one step of the pipeline; each check lives in its own module."""

from __future__ import annotations

from typing import Awaitable, Callable

from aiohttp import web

from voyagent.config import Settings
from voyagent.keys import BODY, OPERATION, PRINCIPAL, QUERY
from voyagent.middleware.auth import authenticate_request, authorize
from voyagent.middleware.body_limit import enforce_body_limit
from voyagent.middleware.ratelimit import take_credential_ip, take_principal, take_signup_ip
from voyagent.middleware.route_context import RoutePlan, unmatched_error
from voyagent.middleware.validation import validate_request


def gate(settings: Settings) -> Callable[[web.Request, RoutePlan], Awaitable[None]]:
    """``admit(request)``: checks 1–6 of the contract's order; raises the first refusal."""
    body_limit = settings.max_body_bytes
    ip_capacity = settings.rate_limit_auth_ip_per_minute
    signup_capacity = settings.rate_limit_signup_ip_per_minute
    user_capacity = settings.rate_limit_user_per_minute

    async def admit(request: web.Request, plan: RoutePlan) -> None:
        if plan.unmatched:
            raise await unmatched_error(request)  # 1. route → 404 / 405
        operation = request[OPERATION] = plan.operation
        if request.body_exists:
            await enforce_body_limit(request, body_limit)  # 413, before anything parses a body
        if operation is None:  # meta routes: public, nothing to validate (their handlers read no query or body key)
            return
        buckets = operation.buckets
        if buckets:
            if "auth_ip" in buckets:
                await take_credential_ip(request, ip_capacity)  # 2. credential IP bucket → 429
            elif "signup_ip" in buckets:
                await take_signup_ip(request, signup_capacity)  # 2. sign-up IP bucket → 429
        principal = None
        if operation.authenticated:
            principal = await authenticate_request(request, user_capacity)  # 3. → 401 (a JWT's bucket taken too)
        request[PRINCIPAL] = principal
        if principal is not None:
            await take_principal(request, principal, user_capacity)  # 4. → 429
            await authorize(request, operation, principal)  # 5. → 403
        if operation.needs_validation:
            await validate_request(request, operation)  # 6. → 422
        else:
            request[QUERY] = {}
            request[BODY] = None

    return admit
