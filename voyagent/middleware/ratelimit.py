"""Rate-limit checks 2 (credential IP, sign-up IP), 4 (principal) and 7 (credential e-mail), and their headers."""

from __future__ import annotations

from aiohttp import web

from voyagent.errors import ApiError
from voyagent.keys import (
    CLIENT_IP,
    CREDENTIAL_IP_RESULT,
    METRICS,
    PRINCIPAL,
    PRINCIPAL_BUCKET_RESULT,
    RATE_LIMITER,
    RATE_LIMIT_HEADERS,
    SETTINGS,
)
from voyagent.principal import Principal
from voyagent.services.ratelimit import BucketResult, ip_bucket_key


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
    """Check 7: the e-mail bucket; a refusal gives back the token of the IP (or user) bucket taken before it.

    Paired with the credential IP bucket on the credential routes, with the user bucket on
    send-verification-email; the headers describe the pair's bucket with fewer tokens left (the first on a tie).
    """
    settings = request.app[SETTINGS]
    limiter = request.app[RATE_LIMITER]
    result = await limiter.take("auth_email", email.lower(), settings.rate_limit_auth_email_per_minute)
    ip_result = request.get(CREDENTIAL_IP_RESULT)
    user_result = request.get(PRINCIPAL_BUCKET_RESULT)
    if result is not None and not result.allowed:
        if ip_result is not None:
            await limiter.take("auth_ip", ip_bucket_key(request[CLIENT_IP]), ip_result.capacity, cost=-1)
        if user_result is not None:
            principal = request[PRINCIPAL]
            assert principal is not None  # a principal bucket result implies a principal
            await limiter.take(user_result.bucket, principal.rate_limit_key[1], user_result.capacity, cost=-1)
        raise refuse(request, result)
    paired = ip_result or user_result
    if result is not None and (paired is None or result.remaining < paired.remaining):
        _report(request, result)


async def _take_client_ip(request: web.Request, bucket: str, capacity: int) -> BucketResult | None:
    result = await request.app[RATE_LIMITER].take(bucket, ip_bucket_key(request[CLIENT_IP]), capacity)
    if result is not None and not result.allowed:
        raise refuse(request, result)
    _report(request, result)
    return result


async def take_credential_ip(request: web.Request, capacity: int) -> None:
    """Check 2: the IP bucket shared by the credential routes."""
    request[CREDENTIAL_IP_RESULT] = await _take_client_ip(request, "auth_ip", capacity)


async def take_signup_ip(request: web.Request, capacity: int) -> None:
    """Check 2: the IP bucket of sign-up, so one client cannot mint tenants (and verification mails) at will."""
    await _take_client_ip(request, "signup_ip", capacity)


async def take_principal(request: web.Request, principal: Principal, user_capacity: int) -> None:
    """Check 4: the user's bucket (JWT) or the key's bucket sized by the tenant's setting."""
    if PRINCIPAL_BUCKET_RESULT in request:  # taken with the JWT's denylist check (authenticate_request)
        result = request[PRINCIPAL_BUCKET_RESULT]
    else:
        bucket, key = principal.rate_limit_key
        capacity = principal.rate_limit if principal.is_api_key else user_capacity
        result = await request.app[RATE_LIMITER].take(bucket, key, capacity)
        request[PRINCIPAL_BUCKET_RESULT] = result
    if result is not None and not result.allowed:
        raise refuse(request, result)
    _report(request, result)

