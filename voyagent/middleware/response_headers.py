"""The headers every response carries, streams included: X-Request-Id, the reported rate-limit bucket, CORS for
an allowed origin; and, once the answer is known, the API key's ``last_used_at`` touch.

The pipeline adds them to the responses that leave it unprepared; a handler that sends its head itself (an event
stream, a CSV export) prepares through :func:`prepare_stream`, which adds them first.
"""

from __future__ import annotations

from aiohttp import web

from voyagent import edge
from voyagent.config import Settings
from voyagent.keys import DECORATE, PRINCIPAL, RATE_LIMIT_HEADERS, REQUEST_ID
from voyagent.middleware import cors
from voyagent.middleware.request_id import HEADER as X_REQUEST_ID
from voyagent.middleware.route_context import Decorate


def decorator(settings: Settings) -> Decorate:
    """``decorate(request, response)`` for a request that went through the pipeline (its keys are all set)."""
    add_cors_headers = cors.response_headers(settings)

    def decorate(request: web.BaseRequest, response: web.StreamResponse) -> None:
        headers = response.headers
        headers[X_REQUEST_ID] = request[REQUEST_ID]
        rate_limit_headers = request[RATE_LIMIT_HEADERS]
        if rate_limit_headers:
            headers.update(rate_limit_headers)
        add_cors_headers(request, response)
        principal = request[PRINCIPAL]
        if principal is not None and principal.api_key_id is not None:
            edge.record_api_key_use(request, response)

    return decorate


async def prepare_stream(request: web.Request, response: web.StreamResponse) -> None:
    """Send the head of a response the handler writes itself, with the headers every response carries."""
    request.app[DECORATE](request, response)
    await response.prepare(request)
