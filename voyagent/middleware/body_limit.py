"""Refuse bodies over VOYAGENT_MAX_BODY_BYTES with 413 before anything parses them, on every route."""

from __future__ import annotations

from aiohttp import web

from voyagent.errors import ApiError


async def enforce_body_limit(request: web.Request, limit: int) -> None:
    """413 ``payload_too_large`` for a declared or streamed body over the limit."""
    if request.body_exists:
        length = request.content_length
        if length is not None and length > limit:
            raise ApiError(413, "payload_too_large")
        if length is None:
            # Chunked upload: read it now; aiohttp stops at client_max_size and raises 413.
            await request.read()
