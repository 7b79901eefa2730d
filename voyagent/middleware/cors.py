"""CORS for the configured origins: credentialed, any method and header, the contract's exposed headers."""

from __future__ import annotations

from typing import Callable

from aiohttp import web
from multidict import CIMultiDict

from voyagent.config import Settings

EXPOSE_HEADERS = ("RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, RateLimit, "
                  "Retry-After, X-Request-Id, Idempotent-Replayed")
_PREFLIGHT_MAX_AGE = "600"


def preflight_responder(settings: Settings) -> Callable[[web.BaseRequest], web.Response | None]:
    """The answer to a preflight from an allowed origin (no credentials, no rate limit), or None for any other
    request. Called first by the gate, before routing errors or credentials matter."""
    allowed = frozenset(settings.cors_origins)

    def answer(request: web.BaseRequest) -> web.Response | None:
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


def add_cors_headers(headers: CIMultiDict[str], origin: str) -> None:
    """The CORS headers of an ordinary response to an allowed ``origin`` (a preflight answer has its own)."""
    if "Access-Control-Allow-Origin" not in headers:
        headers["Access-Control-Allow-Origin"] = origin
        headers["Access-Control-Allow-Credentials"] = "true"
        headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        headers.add("Vary", "Origin")
