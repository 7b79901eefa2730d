"""Rate-limit checks 2 (credential IP), 4 (principal) and 7 (credential e-mail), and their headers."""

from __future__ import annotations

from aiohttp import web

from voyagent.config import Settings
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.keys import CLIENT_IP, METRICS, OPERATION, PRINCIPAL, RATE_LIMITER, RATE_LIMIT_HEADERS, SETTINGS
from voyagent.services.ratelimit import BucketResult

_IP_RESULT: web.RequestKey[BucketResult | None] = web.RequestKey("credential_ip_result")


def refuse(request: web.Request, result: BucketResult) -> ApiError:
    """The 429 for a refused bucket (Retry-After and the bucket's headers)."""
    request.app[METRICS].rate_limited.labels(result.bucket).inc()
    headers = result.headers()
    headers["Retry-After"] = str(result.retry_after)
    request[RATE_LIMIT_HEADERS] = headers
    return ApiError(429, "rate_limited")


def _report(request: web.Request, result: BucketResult | None) -> None:
    if result is not None:
        request[RATE_LIMIT_HEADERS] = result.headers()


async def check_credential_email(request: web.Request, email: str) -> None:
    """Check 7: the e-mail bucket of the credential routes; a refusal gives the IP token back."""
    settings = request.app[SETTINGS]
    limiter = request.app[RATE_LIMITER]
    result = await limiter.take("auth_email", email.lower(), settings.rate_limit_auth_email_per_minute)
    ip_result = request.get(_IP_RESULT)
    if result is not None and not result.allowed:
        if ip_result is not None:
            await limiter.take("auth_ip", request[CLIENT_IP], ip_result.capacity, cost=-1)
        raise refuse(request, result)
    if result is not None and (ip_result is None or result.remaining < ip_result.remaining):
        _report(request, result)


def setup_credential_ip_limit(app: web.Application, settings: Settings) -> None:
    capacity = settings.rate_limit_auth_ip_per_minute

    @web.middleware
    async def credential_ip_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        operation = request[OPERATION]
        if operation is not None and "auth_ip" in operation.buckets:
            result = await request.app[RATE_LIMITER].take("auth_ip", request[CLIENT_IP], capacity)
            request[_IP_RESULT] = result
            if result is not None and not result.allowed:
                raise refuse(request, result)
            _report(request, result)
        return await handler(request)

    app.middlewares.append(credential_ip_limit)
    app.on_response_prepare.append(_add_headers)


def setup_principal_limit(app: web.Application, settings: Settings) -> None:
    user_capacity = settings.rate_limit_user_per_minute

    @web.middleware
    async def principal_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        principal = request.get(PRINCIPAL)
        if principal is not None:
            bucket, key = principal.rate_limit_key
            capacity = principal.rate_limit if principal.is_api_key else user_capacity
            result = await request.app[RATE_LIMITER].take(bucket, key, capacity)
            if result is not None and not result.allowed:
                raise refuse(request, result)
            _report(request, result)
        return await handler(request)

    app.middlewares.append(principal_limit)


async def _add_headers(request: web.BaseRequest, response: web.StreamResponse) -> None:
    headers = request.get(RATE_LIMIT_HEADERS)
    if headers:
        response.headers.update(headers)
