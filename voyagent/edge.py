"""The edge: the steps of a request that need the application itself, so that no service ever does.

Services take a connection and explicit collaborators; the code here takes the request (or the app), finds the
database, queries and caches under their keys, owns the transactions and calls the services. Shared by the
middleware (API-key authentication, the audit of refused requests), the response headers (last-used touches), the
create handlers (idempotent creates) and the two ways an approval is resolved (HTTP and the chat map).
"""

from __future__ import annotations

import contextlib
import logging
import random
import datetime as dt
import uuid
from typing import Any, AsyncIterator

import orjson
from aiohttp import web

from voyagent.degradation import report_best_effort
from voyagent.errors import ApiError
from voyagent.jsonio import json_response
from voyagent.keys import (
    API_KEY_CACHE,
    AUDIT_LIMITER,
    BACKGROUND,
    CLIENT_IP,
    DATABASE,
    OPERATION,
    PRINCIPAL,
    QUERIES,
)
from voyagent.principal import Principal
from voyagent.db import Database
from voyagent.services import api_key_auth, approvals, audit, idempotency
from voyagent.services.approvals import ApprovalRow
from voyagent.services.idempotency import Create, KeyScope
from voyagent.services.refresh_tokens import ClientInfo

log = logging.getLogger("voyagent.edge")

IDEMPOTENCY_SWEEP_PROBABILITY = 0.01  # share of keyed creates that also sweep keys older than 24 hours


def client_info(request: web.Request) -> ClientInfo:
    """The User-Agent and client IP stored with a refresh token."""
    return ClientInfo(user_agent=request.headers.get("User-Agent"), ip=request.get(CLIENT_IP) or request.remote)


# --- API keys -------------------------------------------------------------------------------------------


async def authenticate_api_key(app: web.Application, credential: str) -> Principal | None:
    """The principal of a valid, unrevoked, unexpired ``vy_`` key; None otherwise. The row comes from the cache
    while it is current (no database round trip), else from the database, and is cached again."""
    prefix = api_key_auth.key_prefix(credential)
    if prefix is None:
        return None
    cache = app[API_KEY_CACHE]
    hit, key = await cache.lookup(prefix)
    if not hit:
        async with app[DATABASE].connection() as conn:
            key = await api_key_auth.load_key(conn, app[QUERIES], prefix)
        cache.put(prefix, key)
    return api_key_auth.principal_of(key, credential, cache.clock())


def record_api_key_use(request: web.BaseRequest, response: web.StreamResponse) -> None:
    """When the answer is sent: schedule the ``last_used_at`` write of a key request below 400 (once a minute)."""
    principal = request.get(PRINCIPAL)
    if principal is None or principal.api_key_id is None or response.status >= 400:
        return
    app = request.app
    if app[API_KEY_CACHE].touch_due(principal.api_key_id):
        app[BACKGROUND].spawn(_touch_api_key(app, principal.api_key_id), name=f"api-key-touch-{principal.api_key_id}")


async def _touch_api_key(app: web.Application, key_id: uuid.UUID) -> None:
    async with app[DATABASE].connection() as conn:
        await app[QUERIES].touch_api_key_last_used(conn, id=key_id)


# --- the audit of refused requests ----------------------------------------------------------------------


async def record_forbidden(request: web.Request, principal: Principal, code: str) -> None:
    """Write ``auth.verify`` (status rejected) for a 403 to an authenticated caller; rate-limited, best-effort."""
    app = request.app
    path = request.raw_path.split("?", 1)[0]
    operation = request.get(OPERATION)
    route = operation.path if operation is not None else path
    try:
        if not await app[AUDIT_LIMITER].allow(principal.rate_limit_key[1], route):
            return
        inputs: dict[str, Any] = {"method": request.method, "path": path,
                                  "remote_addr": request.get(CLIENT_IP, request.remote or "")}
        if principal.api_key_id is not None:
            inputs["api_key_id"] = str(principal.api_key_id)
        async with app[DATABASE].transaction() as conn:
            await audit.write_event(conn, app[QUERIES], tenant_id=principal.tenant_id, actor_id=principal.user_id,
                                    kind="auth.verify", status="rejected", error=code, inputs=inputs)
    except Exception as exc:
        report_best_effort(log, "could not write auth.verify audit event", exc)


@contextlib.asynccontextmanager
async def forbidden_recorded(request: web.Request) -> AsyncIterator[None]:
    """A ``403 forbidden_role`` a handler's own check raises (an approval's tool roles) is audited like the
    middleware's: data-model.md writes ``auth.verify`` for every 403 returned to an authenticated caller."""
    try:
        yield
    except ApiError as error:
        principal = request.get(PRINCIPAL)
        if error.status == 403 and isinstance(error.detail, str) and principal is not None:
            await record_forbidden(request, principal, error.detail)
        raise


# --- idempotent creates ---------------------------------------------------------------------------------


async def _parsed_body(request: web.Request) -> Any:
    """The request body as parsed JSON (None when absent); validation already accepted it."""
    if not request.body_exists or request.content_type != "application/json":
        return None
    raw = await request.read()
    return orjson.loads(raw) if raw.strip() else None


async def idempotency_scope(request: web.Request) -> KeyScope | None:
    """The request's ``Idempotency-Key`` scope, or None when it carries no key (``422`` when malformed)."""
    key = idempotency.parse_key(request.headers.get(idempotency.HEADER))
    if key is None:
        return None
    principal = request[PRINCIPAL]
    operation = request[OPERATION]
    assert principal is not None and operation is not None
    return KeyScope(tenant_id=principal.tenant_id, principal=principal.idempotency_scope, key=key,
                    route=f"{operation.method} {operation.path}"[:64],
                    request_hash=idempotency.body_hash(await _parsed_body(request)))


async def respond_once(request: web.Request, create: Create) -> web.Response:
    """Run ``create(conn) -> (status, body)`` in one transaction, honouring ``Idempotency-Key``."""
    scope = await idempotency_scope(request)
    db, sql = request.app[DATABASE], request.app[QUERIES]
    replayed = False
    async with db.transaction() as conn:
        if scope is None:
            status, body = await create(conn)
        else:
            status, body, replayed = await idempotency.replay_or_create(conn, sql, scope, create)
    if replayed:
        return json_response(body, status=status, headers={idempotency.REPLAYED_HEADER: "true"})
    if scope is not None and random.random() < IDEMPOTENCY_SWEEP_PROBABILITY:
        try:
            async with db.connection() as conn:
                await idempotency.sweep_expired(conn, sql)
        except Exception as exc:
            report_best_effort(log, "idempotency key sweep failed", exc)
    return json_response(body, status=status)


# --- resolving an approval ------------------------------------------------------------------------------


async def resolve_approval(db: Database, sql: Any, *, tenant_id: uuid.UUID, approval_id: str, granted: bool,
                           reason: str | None, resolver_id: uuid.UUID, resolver_role: str,
                           session_id: uuid.UUID | None = None, same_decision_is_noop: bool = False,
                           now: dt.datetime | None = None) -> ApprovalRow:
    """Grant or reject one approval (§6.4), for ``POST /approvals/{id}/resolve`` and the chat ``approvals`` map.

    Three transactions, in the contract's order: the decision (``approvals.decide``: 404, 403, 409, or the
    expiry) commits first; a 409 for an approval found past its deadline follows that commit; the
    ``approval.granted`` / ``approval.rejected`` event is written in its own transaction afterwards, and a
    failure to write it is only logged (the decision stands). With ``same_decision_is_noop``, an approval another
    resolver decided the same way meanwhile is returned unchanged.
    """
    async with db.transaction() as conn:
        resolution = await approvals.decide(conn, sql, tenant_id=tenant_id, approval_id=approval_id,
                                            granted=granted, reason=reason, resolver_id=resolver_id,
                                            resolver_role=resolver_role, session_id=session_id,
                                            same_decision_is_noop=same_decision_is_noop, now=now)
    if resolution.outcome == "unchanged":
        assert resolution.row is not None
        return resolution.row
    if resolution.outcome == "lost" and same_decision_is_noop:
        async with db.transaction() as conn:
            return await approvals.settle_lost_race(conn, sql, tenant_id=tenant_id, approval_id=approval_id,
                                                    session_id=session_id, granted=granted)
    if resolution.row is None:  # expired (now committed) or another resolver won the race
        raise approvals.already_resolved()
    try:
        async with db.transaction() as conn:
            await approvals.write_decision_audit(conn, sql, resolution.row, resolver_id)
    except Exception as exc:
        report_best_effort(log, "could not write %s audit event for approval %s", exc,
                           approvals.decision_kind(resolution.row), resolution.row.id)
    return resolution.row


async def apply_approvals_map(db: Database, sql: Any, *, tenant_id: uuid.UUID, session_id: uuid.UUID,
                              decisions: dict[str, bool], resolver_id: uuid.UUID, resolver_role: str) -> None:
    """The chat ``approvals`` map (§2 step 1d, §6.4), after the session's lazy expiry sweep (which the caller ran
    with its read under the turn lock, ``messages.admit_turn``): each entry in map order exactly like
    ``POST /approvals/{id}/resolve`` (reason null); the same decision again is a no-op, and entries before a
    failing one stay applied."""
    for approval_id, granted in decisions.items():
        await resolve_approval(db, sql, tenant_id=tenant_id, approval_id=approval_id, granted=granted, reason=None,
                               resolver_id=resolver_id, resolver_role=resolver_role, session_id=session_id,
                               same_decision_is_noop=True)
