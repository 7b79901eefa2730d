"""Check 1: the matched OpenAPI operation; unmatched routes answer 404/405 here."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractRoute

from voyagent.contract import Operation
from voyagent.keys import OPERATION


def match_operation(request: web.Request, by_route: dict[AbstractRoute, Operation]) -> Operation | None:
    """The operation of the matched route (None for meta routes); raise 404/405 when nothing matched."""
    match_info = request.match_info
    http_exception = match_info.http_exception
    if http_exception is not None:
        request[OPERATION] = None
        raise http_exception
    operation = request[OPERATION] = by_route.get(match_info.route)
    return operation
