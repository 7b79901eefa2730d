"""HTTP handlers of the enquiries endpoints (endpoints.md, Enquiries); operations listed here are routed."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from voyagent.edge import respond_once
from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import BODY, CURSORS, DATABASE, ENQUIRY_TOTALS, PRINCIPAL, QUERIES, QUERY
from voyagent.services import enquiries
from voyagent.services.enquiries import EnquiryFilters, enquiry_json


async def list_enquiries(request: web.Request) -> web.Response:
    """GET /enquiries — filtered page, newest first, with offset or keyset paging."""
    tenant_id = request[PRINCIPAL].tenant_id
    filters = EnquiryFilters.from_query(request[QUERY])
    paging = enquiries.LISTING.paging(request.app[CURSORS], request[QUERY], tenant_id, filters.fingerprint())
    async with enquiries.LISTING.reader(request.app[DATABASE], filters.values()) as conn:
        rows, total = await enquiries.list_enquiries(conn, request.app[QUERIES], tenant_id=tenant_id,
                                                     filters=filters, page=paging.page,
                                                     totals=request.app[ENQUIRY_TOTALS])
    return json_response(paging.envelope(rows, total, enquiry_json))


async def create_enquiry(request: web.Request) -> web.Response:
    """POST /enquiries — 201 EnquiryResponse; honours Idempotency-Key."""
    principal = request[PRINCIPAL]

    async def create(conn: asyncpg.Connection) -> tuple[int, dict]:
        row = await enquiries.create_enquiry(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                             user_id=principal.user_id, body=request[BODY])
        return 201, enquiry_json(row)

    return await respond_once(request, create)


async def get_enquiry(request: web.Request) -> web.Response:
    """GET /enquiries/{enquiry_id}."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].connection() as conn:
        row = await enquiries.get_enquiry(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                          enquiry_id=request.match_info["enquiry_id"])
    return json_response(enquiry_json(row))


async def patch_enquiry(request: web.Request) -> web.Response:
    """PATCH /enquiries/{enquiry_id} — omitted fields unchanged, explicit nulls cleared."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].transaction() as conn:
        row = await enquiries.patch_enquiry(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                            enquiry_id=request.match_info["enquiry_id"], body=request[BODY])
    return json_response(enquiry_json(row))


async def promote_enquiry_to_session(request: web.Request) -> web.Response:
    """POST /enquiries/{enquiry_id}/promote-to-session — idempotent: one session per enquiry, ever."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].transaction() as conn:
        row = await enquiries.promote_to_session(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                                 enquiry_id=request.match_info["enquiry_id"],
                                                 actor_id=principal.user_id)
    return json_response({"enquiry": enquiry_json(row), "session_id": str(row["session_id"])})


HANDLERS: dict[str, Handler] = {
    "list_enquiries": list_enquiries,
    "create_enquiry": create_enquiry,
    "get_enquiry": get_enquiry,
    "patch_enquiry": patch_enquiry,
    "promote_enquiry_to_session": promote_enquiry_to_session,
}
