"""Check 1: the matched OpenAPI operation; unmatched routes answer 404/405 here."""

from __future__ import annotations

from aiohttp import web

from voyagent.contract import Operation
from voyagent.keys import OPERATION
from voyagent.keys import OPERATIONS_BY_ROUTE


def match_operation(request: web.Request) -> Operation | None:
    """The operation of the matched route (None for meta routes); raise 404/405 when nothing matched."""
    match_info = request.match_info
    http_exception = match_info.http_exception
    if http_exception is not None:
        request[OPERATION] = None
        raise http_exception
    operation = request[OPERATION] = request.app[OPERATIONS_BY_ROUTE].get(match_info.route)
    return operation
