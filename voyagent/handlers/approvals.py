"""HTTP handlers of the approvals endpoints (endpoints.md, Approvals); operations listed here are routed."""

from __future__ import annotations

from aiohttp import web

from voyagent import edge
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.ids import parse_uuid
from voyagent.jsonio import json_response
from voyagent.keys import BODY, CURSORS, DATABASE, PRINCIPAL, QUERIES, QUERY
from voyagent.services import approvals
from voyagent.services.approvals import ApprovalRow


async def list_approvals(request: web.Request) -> web.Response:
    """GET /approvals — tenant-wide lazy expiry sweep, then a page (requested_at DESC, id DESC)."""
    principal = request[PRINCIPAL]
    query = request[QUERY]
    status = None if query["status"] == "all" else query["status"]
    session_id = None
    if query.get("session_id") is not None:
        session_id = parse_uuid(query["session_id"])
        if session_id is None:
            raise ApiError(422, "invalid_session_id")
    fingerprint = {"status": query["status"], "session_id": str(session_id) if session_id else None}
    paging = approvals.LISTING.paging(request.app[CURSORS], query, principal.tenant_id, fingerprint)
    async with request.app[DATABASE].transaction() as conn:
        await approvals.expire_tenant(conn, request.app[QUERIES], tenant_id=principal.tenant_id)
        rows, total = await approvals.list_approvals(conn, tenant_id=principal.tenant_id, status=status,
                                                     session_id=session_id, page=paging.page)
    return json_response(paging.envelope(rows, total, ApprovalRow.item))


async def get_approval(request: web.Request) -> web.Response:
    """GET /approvals/{approval_id} — expired first when pending past its deadline."""
    principal = request[PRINCIPAL]
    async with request.app[DATABASE].transaction() as conn:
        row = await approvals.get_approval(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                           approval_id=request.match_info["approval_id"])
    return json_response(row.item())


async def resolve_approval(request: web.Request) -> web.Response:
    """POST /approvals/{approval_id}/resolve — grant or reject (404 → 403 → 409, in that order)."""
    principal = request[PRINCIPAL]
    body = request[BODY]
    async with edge.forbidden_recorded(request):
        row = await edge.resolve_approval(
            request.app[DATABASE], request.app[QUERIES], tenant_id=principal.tenant_id,
            approval_id=request.match_info["approval_id"], granted=body["granted"], reason=body.get("reason"),
            resolver_id=principal.user_id, resolver_role=principal.role)
    return json_response(row.item())


HANDLERS: dict[str, Handler] = {
    "list_approvals": list_approvals,
    "get_approval": get_approval,
    "resolve_approval": resolve_approval,
}
