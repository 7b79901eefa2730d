"""HTTP handlers of the reports endpoints (endpoints.md); operations listed here are routed."""

from __future__ import annotations

from aiohttp import web

from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import DATABASE, PRINCIPAL, QUERIES, QUERY
from voyagent.services import itinerary

HANDLERS: dict[str, Handler] = {}


# --- GET /reports/itinerary (chat-and-agent.md §7.2) ---------------------------------------------------------


async def get_itinerary_report(request: web.Request) -> web.Response:
    """GET /reports/itinerary — the session's passengers, flights, hotels, visas and total cost; a session id
    that is not a UUID, unknown or another tenant's is ``404 session_not_found``. One read-only snapshot, so
    the session and its items agree even while a delete commits."""
    async with request.app[DATABASE].read_transaction() as conn:
        report = await itinerary.report(conn, request.app[QUERIES], tenant_id=request[PRINCIPAL].tenant_id,
                                        session_id=request[QUERY]["session_id"])
    return json_response(report)


HANDLERS["get_itinerary_report"] = get_itinerary_report
