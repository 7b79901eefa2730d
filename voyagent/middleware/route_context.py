"""Attach the matched OpenAPI operation to the request; unmatched routes answer 404/405 here."""

from __future__ import annotations

from aiohttp import web

from voyagent.config import Settings
from voyagent.handlers_types import Handler
from voyagent.keys import OPERATION
from voyagent.routes import OPERATIONS_BY_ROUTE


def setup_route_context(app: web.Application, settings: Settings) -> None:
    @web.middleware
    async def route_context(request: web.Request, handler: Handler) -> web.StreamResponse:
        match_info = request.match_info
        http_exception = match_info.http_exception
        if http_exception is not None:
            request[OPERATION] = None
            raise http_exception
        request[OPERATION] = request.app[OPERATIONS_BY_ROUTE].get(match_info.route)
        return await handler(request)

    app.middlewares.append(route_context)
