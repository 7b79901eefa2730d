"""The headers every response carries, added just before it is sent: ``X-Request-Id``, the reported bucket's
RateLimit headers (``RESPONSE_HEADERS``, started by observe), and CORS for an allowed origin.

Observe adds them to every response the chain returns (errors included). A handler that starts a stream itself
calls ``prepare_stream`` instead of ``response.prepare``: the headers cannot change once sent.
"""

from __future__ import annotations

from typing import Collection

from aiohttp import web

from voyagent.keys import RESPONSE_HEADERS, SETTINGS
from voyagent.middleware.cors import add_cors_headers


def add_response_headers(request: web.BaseRequest, response: web.StreamResponse, extra: dict[str, str],
                         cors_origins: Collection[str]) -> None:
    """Add the request's response headers (``extra``: its ``RESPONSE_HEADERS``) and, for an allowed ``Origin``,
    the CORS headers."""
    headers = response.headers
    headers.update(extra)
    origin = request.headers.get("Origin")
    if origin is not None and origin in cors_origins:
        add_cors_headers(headers, origin)


async def prepare_stream(request: web.Request, response: web.StreamResponse) -> None:
    """``response.prepare(request)`` with the headers every response carries."""
    add_response_headers(request, response, request[RESPONSE_HEADERS], request.app[SETTINGS].cors_origins)
    await response.prepare(request)
