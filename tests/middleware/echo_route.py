"""A test-only operation added to a real app, so middlewares are exercised on the smallest route."""

from __future__ import annotations

from aiohttp import web

from tests.test_contract import DOCUMENT
from voyagent.contract import Contract
from voyagent.jsonio import json_response
from voyagent.keys import BODY, PRINCIPAL, QUERY
from voyagent.middleware import add_route


async def echo(request: web.Request) -> web.Response:
    principal = request[PRINCIPAL]
    return json_response({"body": request[BODY], "query": request[QUERY],
                          "user_id": str(principal.user_id) if principal else None}, status=201)


def add_echo_route(app: web.Application, path: str = "/things/{thing_id}") -> None:
    """Route POST <path> to ``echo`` under the synthetic ``make_thing`` operation (key access)."""
    operation = Contract(DOCUMENT).operations["make_thing"]
    add_route(app, "POST", path, echo, operation=operation)
