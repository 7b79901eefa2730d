"""CORS for the configured origins: credentialed, any method and header, the contract's exposed headers."""

from __future__ import annotations

from typing import Callable

from aiohttp import hdrs, web

from voyagent.config import Settings

EXPOSE_HEADERS = ("RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, RateLimit, "
                  "Retry-After, X-Request-Id, Idempotent-Replayed")
_PREFLIGHT_MAX_AGE = "600"


def preflight(settings: Settings) -> Callable[[web.Request], web.Response | None]:
    """``preflight(request)``: the answer to a preflight from an allowed origin (no credentials, no rate limit),
    or None for every other request."""
    allowed = frozenset(settings.cors_origins)

    def answer(request: web.Request) -> web.Response | None:
        if request.method != "OPTIONS":
            return None
        origin = request.headers.get("Origin")
        if origin not in allowed or "Access-Control-Request-Method" not in request.headers:
            return None
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

    return answer


def response_headers(settings: Settings) -> Callable[[web.BaseRequest, web.StreamResponse], None]:
    """The CORS headers of an ordinary response to an allowed origin."""
    allowed = frozenset(settings.cors_origins)

    def add(request: web.BaseRequest, response: web.StreamResponse) -> None:
        origin = request.headers.get(hdrs.ORIGIN)  # istr keys (hdrs): no case-folding per request
        if origin is not None and origin in allowed and hdrs.ACCESS_CONTROL_ALLOW_ORIGIN not in response.headers:
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = origin
            response.headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"
            response.headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS
            response.headers.add(hdrs.VARY, "Origin")

    return add
