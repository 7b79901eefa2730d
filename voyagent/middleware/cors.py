"""CORS for the configured origins: credentialed, any method and header, the contract's exposed headers."""

from __future__ import annotations

from typing import Callable

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler

EXPOSE_HEADERS = ("RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, RateLimit, "
                  "Retry-After, X-Request-Id, Idempotent-Replayed")
_PREFLIGHT_MAX_AGE = "600"


def cors_middleware(settings: Settings) -> web.middleware:
    """Answer preflights from allowed origins (no credentials, no rate limit)."""
    allowed = frozenset(settings.cors_origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS":
            origin = request.headers.get("Origin")
            if origin in allowed and "Access-Control-Request-Method" in request.headers:
                headers = {
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Credentials": "true",
                    "Access-Control-Allow-Methods": request.headers["Access-Control-Request-Method"],
                    "Access-Control-Max-Age": _PREFLIGHT_MAX_AGE,
                    "Vary": "Origin",
                }
                requested = request.headers.get("Access-Control-Request-Headers")
                if requested:
                    headers["Access-Control-Allow-Headers"] = requested
                return web.Response(status=200, headers=headers)
        return await handler(request)

    return cors


def response_headers(settings: Settings) -> Callable[[web.BaseRequest, web.StreamResponse], None]:
    """The CORS headers of an ordinary response to an allowed origin."""
    allowed = frozenset(settings.cors_origins)

    def add(request: web.BaseRequest, response: web.StreamResponse) -> None:
        origin = request.headers.get("Origin")
        if origin is not None and origin in allowed and "Access-Control-Allow-Origin" not in response.headers:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Allow-Credentials"] = "true"
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
            response.headers.add("Vary", "Origin")

    return add
