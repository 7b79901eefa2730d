"""Tenant settings (endpoints.md, Tenant settings): read (any role, or key tenant:read) and patch (admin)."""

from __future__ import annotations

from aiohttp import web

from voyagent.handlers_types import Handler
from voyagent.jsonio import json_response
from voyagent.keys import API_KEY_CACHE, BODY, DATABASE, PRINCIPAL, QUERIES
from voyagent.services import tenant_settings


async def get_tenant_settings(request: web.Request) -> web.Response:
    """GET /tenant-settings: the row, created with the defaults first when missing."""
    async with request.app[DATABASE].connection() as conn:
        row = await tenant_settings.get_or_create(conn, request.app[QUERIES], request[PRINCIPAL].tenant_id)
    return json_response(tenant_settings.wire(row))


async def patch_tenant_settings(request: web.Request) -> web.Response:
    """PATCH /tenant-settings: named fields only; one audit event; ``{}`` changes nothing."""
    principal = request[PRINCIPAL]
    changes = tenant_settings.changes_from(request[BODY])
    sql = request.app[QUERIES]
    async with request.app[DATABASE].transaction() as conn:
        if not changes:
            row = await tenant_settings.get_or_create(conn, sql, principal.tenant_id)
        else:
            row = await tenant_settings.update(conn, sql, tenant_id=principal.tenant_id, actor_id=principal.user_id,
                                               changes=changes)
    if "rate_limit_per_minute" in changes:  # the tenant's keys size their bucket with it from the next request
        await request.app[API_KEY_CACHE].announce_settings_change(principal.tenant_id, row["updated_at"])
    return json_response(tenant_settings.wire(row))


HANDLERS: dict[str, Handler] = {
    "get_tenant_settings": get_tenant_settings,
    "patch_tenant_settings": patch_tenant_settings,
}
