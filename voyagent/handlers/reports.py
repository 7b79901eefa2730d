"""HTTP handlers of the reports endpoints (endpoints.md, Reports; chat-and-agent.md §7.2 for the itinerary)."""

from __future__ import annotations

from aiohttp import web

from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import DATABASE, PRINCIPAL, QUERIES, QUERY
from voyagent.services import itinerary, reports


def _aging_handler(kind: str) -> Handler:
    async def get_aging(request: web.Request) -> web.Response:
        """GET /reports/receivables or /reports/payables — aging measured on today's UTC date."""
        query = request[QUERY]
        async with request.app[DATABASE].connection() as conn:
            report = await reports.aging(conn, request.app[QUERIES], kind=kind,
                                         tenant_id=request[PRINCIPAL].tenant_id, date_from=query["from"],
                                         date_to=query["to"], currency=query.get("currency"),
                                         today=reports.utc_today())
        return json_response(report)

    get_aging.__name__ = f"get_{kind}_aging"
    return get_aging


async def get_trial_balance(request: web.Request) -> web.Response:
    """GET /reports/trial-balance — ledger sums up to the end of ``as_of`` (default today, UTC)."""
    query = request[QUERY]
    async with request.app[DATABASE].connection() as conn:
        report = await reports.trial_balance(conn, request.app[QUERIES], tenant_id=request[PRINCIPAL].tenant_id,
                                             as_of=query.get("as_of") or reports.utc_today(),
                                             include_zero=query.get("include_zero") == 1)
    return json_response(report)


async def get_itinerary_report(request: web.Request) -> web.Response:
    """GET /reports/itinerary — the session's passengers, flights, hotels, visas and total cost; a session id
    that is not a UUID, unknown or another tenant's is ``404 session_not_found``. One read-only snapshot, so
    the session and its items agree even while a delete commits."""
    async with request.app[DATABASE].read_transaction() as conn:
        report = await itinerary.report(conn, request.app[QUERIES], tenant_id=request[PRINCIPAL].tenant_id,
                                        session_id=request[QUERY]["session_id"])
    return json_response(report)


HANDLERS: dict[str, Handler] = {
    "get_receivables_aging": _aging_handler("receivables"),
    "get_payables_aging": _aging_handler("payables"),
    "get_trial_balance": get_trial_balance,
    "get_itinerary_report": get_itinerary_report,
}
