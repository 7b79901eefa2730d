"""API-key management (endpoints.md, /auth/api-keys): create, list, revoke — agency_admin with a JWT only."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.ids import parse_uuid
from voyagent.jsonio import json_response
from voyagent.keys import API_KEY_CACHE, BODY, DATABASE, PRINCIPAL, QUERIES
from voyagent.services import api_keys, audit
from voyagent.services.scopes import canonical_scopes

WARNING = "Store this key now; it cannot be retrieved again."


def key_summary(row: Any) -> dict[str, Any]:
    """The ApiKeySummary of a row (never the secret or its hash)."""
    return {"id": str(row["id"]), "name": row["name"], "prefix": row["prefix"], "scopes": row["scopes"],
            "created_by_user_id": str(row["created_by_user_id"]), "created_at": row["created_at"],
            "expires_at": row["expires_at"], "revoked_at": row["revoked_at"], "last_used_at": row["last_used_at"]}


async def create_api_key(request: web.Request) -> web.Response:
    """POST /auth/api-keys: a new key, its plaintext shown this once."""
    principal = request[PRINCIPAL]
    body = request[BODY]
    async with request.app[DATABASE].transaction() as conn:
        plaintext, row = await api_keys.create_key(conn, request.app[QUERIES], tenant_id=principal.tenant_id,
                                                   creator_id=principal.user_id, name=body["name"],
                                                   scopes=canonical_scopes(body.get("scopes")),
                                                   expires_in_days=body.get("expires_in_days"))
    return json_response({"key": plaintext, "warning": WARNING, "api_key": key_summary(row)}, status=201)


async def list_api_keys(request: web.Request) -> web.Response:
    """GET /auth/api-keys: every key of the tenant, newest first."""
    async with request.app[DATABASE].connection() as conn:
        rows = await request.app[QUERIES].list_api_keys(conn, tenant_id=request[PRINCIPAL].tenant_id)
    return json_response({"items": [key_summary(row) for row in rows]})


async def revoke_api_key(request: web.Request) -> web.Response:
    """POST /auth/api-keys/{key_id}/revoke: soft, idempotent, effective from the next request everywhere."""
    principal = request[PRINCIPAL]
    key_id = parse_uuid(request.match_info["key_id"])
    if key_id is None:
        raise ApiError(404, "not_found")
    sql = request.app[QUERIES]
    async with request.app[DATABASE].transaction() as conn:
        revoked = await sql.revoke_api_key(conn, id=key_id, tenant_id=principal.tenant_id)
        if revoked is None:
            if not await sql.api_key_exists(conn, id=key_id, tenant_id=principal.tenant_id):
                raise ApiError(404, "not_found")
        else:
            await audit.write_event(conn, sql, tenant_id=principal.tenant_id, actor_id=principal.user_id,
                                    kind="api_key.revoked", inputs={"api_key_id": str(key_id),
                                                                    "prefix": revoked["prefix"]})
    if revoked is not None:
        await request.app[API_KEY_CACHE].announce_revocation(key_id, revoked["prefix"])
    return web.Response(status=204)


HANDLERS: dict[str, Handler] = {
    "create_api_key": create_api_key,
    "list_api_keys": list_api_keys,
    "revoke_api_key": revoke_api_key,
}
