"""Refuse bodies over VOYAGENT_MAX_BODY_BYTES with 413 before anything parses them, on every route."""

from __future__ import annotations

from aiohttp import web

from voyagent.config import Settings
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler


def setup_body_limit(app: web.Application, settings: Settings) -> None:
    limit = settings.max_body_bytes

    @web.middleware
    async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.body_exists:
            length = request.content_length
            if length is not None and length > limit:
                raise ApiError(413, "payload_too_large")
            if length is None:
                # Chunked upload: read it now; aiohttp stops at client_max_size and raises 413.
                await request.read()
        return await handler(request)

    app.middlewares.append(body_limit)
