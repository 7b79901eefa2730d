"""Invites (endpoints.md, /auth/invites…): create, list, revoke (agency_admin), lookup and accept (public).

Every path that touches invites first runs the lazy expiry sweep as its own statement: the switch of an
overdue invite to ``expired`` holds whatever the request's answer turns out to be.
"""

from __future__ import annotations

from aiohttp import web

from voyagent.edge import client_info
from voyagent.errors import ApiError
from voyagent.handlers_types import Handler
from voyagent.ids import parse_uuid
from voyagent.jsonio import json_response
from voyagent.keys import BODY, DATABASE, MAILER, PASSWORDS, PRINCIPAL, QUERIES, QUERY, SETTINGS
from voyagent.services import invites


async def create_invite(request: web.Request) -> web.Response:
    """POST /auth/invites: a pending invite; the link is e-mailed and returned."""
    principal = request[PRINCIPAL]
    body = request[BODY]
    app, sql, settings = request.app, request.app[QUERIES], request.app[SETTINGS]
    email, role = body["email"], body.get("role") or "agent"
    async with app[DATABASE].connection() as conn:
        await sql.expire_tenant_invites(conn, tenant_id=principal.tenant_id)
        async with conn.transaction():
            row, token = await invites.create(conn, sql, tenant_id=principal.tenant_id, inviter_id=principal.user_id,
                                              email=email, role=role, ttl_days=settings.invite_ttl_days)
        context = await sql.get_invite_mail_context(conn, tenant_id=principal.tenant_id, inviter_id=principal.user_id)
    message = invites.invite_message(settings, token, tenant_name=context["tenant_name"],
                                     inviter_name=context["inviter_name"], inviter_email=context["inviter_email"],
                                     role=role)
    await app[MAILER].deliver(email, message)
    return json_response({"invite": invites.summary(row), "invite_link": message.link}, status=201)


async def list_invites(request: web.Request) -> web.Response:
    """GET /auth/invites: the tenant's invites (optionally of one status), newest first."""
    status = request[QUERY].get("status")
    if status is not None and status not in invites.STATUSES:
        raise ApiError(400, "invalid_status")
    tenant_id = request[PRINCIPAL].tenant_id
    sql = request.app[QUERIES]
    async with request.app[DATABASE].connection() as conn:
        await sql.expire_tenant_invites(conn, tenant_id=tenant_id)
        rows = await sql.list_invites(conn, tenant_id=tenant_id, status=status)
    return json_response({"items": [invites.summary(row) for row in rows]})


async def revoke_invite(request: web.Request) -> web.Response:
    """POST /auth/invites/{invite_id}/revoke: only a pending invite (409 otherwise)."""
    principal = request[PRINCIPAL]
    invite_id = parse_uuid(request.match_info["invite_id"])
    if invite_id is None:
        raise ApiError(404, "invite_not_found")
    sql = request.app[QUERIES]
    async with request.app[DATABASE].connection() as conn:
        await sql.expire_invite_by_id(conn, id=invite_id, tenant_id=principal.tenant_id)
        async with conn.transaction():
            row = await invites.revoke(conn, sql, tenant_id=principal.tenant_id, invite_id=invite_id,
                                       actor_id=principal.user_id)
    return json_response({"invite": invites.summary(row)})


async def lookup_invite(request: web.Request) -> web.Response:
    """GET /auth/invites/lookup: safe metadata of a usable invite."""
    async with request.app[DATABASE].connection() as conn:
        invite = await invites.usable_invite(conn, request.app[QUERIES], request[QUERY]["token"])
    return json_response({"email": invite["email"], "role": invite["role"], "tenant_name": invite["tenant_name"],
                          "inviter_email": invite["inviter_email"], "expires_at": invite["expires_at"]})


async def accept_invite(request: web.Request) -> web.Response:
    """POST /auth/accept-invite: checks on one snapshot → Argon2 (no connection held) → the invited user created,
    verified and signed in, in one transaction that re-checks the invite under a lock."""
    body, app = request[BODY], request.app
    token_hash = invites.hash_token(body["token"])
    async with app[DATABASE].connection() as conn:
        invite = await invites.acceptable_invite(conn, app[QUERIES], token_hash, body["password"])
    password_hash = await app[PASSWORDS].hash(body["password"])
    async with app[DATABASE].transaction() as conn:
        response = await invites.accept(conn, app[QUERIES], app[SETTINGS], invite, token_hash=token_hash,
                                        password_hash=password_hash, full_name=body["full_name"],
                                        client=client_info(request))
    return json_response(response, status=201)


HANDLERS: dict[str, Handler] = {
    "create_invite": create_invite,
    "list_invites": list_invites,
    "revoke_invite": revoke_invite,
    "lookup_invite": lookup_invite,
    "accept_invite": accept_invite,
}
