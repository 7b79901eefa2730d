"""Idempotent creates (README, Idempotent creates): replay a create retried with the same ``Idempotency-Key``.

``respond_once(request, create)`` wraps a create endpoint. Without the header it simply runs ``create(conn)``
in one transaction. With it, in that same transaction and before ``create`` runs:

1. the key is claimed with a transaction-scoped advisory lock taken without waiting — held by another
   request → ``409 idempotency_request_in_progress``;
2. a row for (tenant, credential, key) younger than 24 hours → same route and body: its response is
   replayed with ``Idempotent-Replayed: true`` and nothing is written; otherwise
   ``422 idempotency_key_reused``;
3. else ``create`` runs and its 2xx response is stored with the key before the transaction commits, so the
   row and the stored response exist together or not at all (any error rolls both back).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
import re
from typing import Any, Awaitable, Callable

import asyncpg
import orjson
from aiohttp import web

from voyagent.db import connection, transaction
from voyagent.degradation import report_best_effort
from voyagent.errors import ApiError
from voyagent.jsonio import json_response
from voyagent.keys import DB_POOL, OPERATION, PRINCIPAL, QUERIES

log = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # 1–255 visible ASCII characters
SWEEP_PROBABILITY = 0.01  # share of keyed creates that also sweep keys older than 24 hours
SWEEP_BATCH = 1000

Create = Callable[[asyncpg.Connection], Awaitable[tuple[int, Any]]]


@dataclasses.dataclass(frozen=True, slots=True)
class KeyScope:
    """One key of one credential in one tenant, and the request it arrived with."""

    tenant_id: Any
    principal: str  # user:<uuid> | key:<uuid>
    key: str
    route: str  # method and route template, e.g. "POST /enquiries"
    request_hash: str

    @property
    def lock_text(self) -> str:
        return f"idempotency\x1f{self.tenant_id}\x1f{self.principal}\x1f{self.key}"


def parse_key(value: str | None) -> str | None:
    """The header's key, None when absent, ``422 invalid_idempotency_key`` when malformed."""
    if value is None:
        return None
    if _KEY_RE.fullmatch(value) is None:
        raise ApiError(422, "invalid_idempotency_key")
    return value


def body_hash(body: Any) -> str:
    """SHA-256 hex of the parsed JSON body in canonical form (sorted keys, compact)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def _parsed_body(request: web.Request) -> Any:
    """The request body as parsed JSON (None when absent); validation already accepted it."""
    if not request.body_exists or request.content_type != "application/json":
        return None
    raw = await request.read()
    return orjson.loads(raw) if raw.strip() else None


async def key_scope(request: web.Request) -> KeyScope | None:
    """The request's idempotency scope, or None when it carries no key."""
    key = parse_key(request.headers.get(HEADER))
    if key is None:
        return None
    principal = request[PRINCIPAL]
    operation = request[OPERATION]
    assert principal is not None and operation is not None
    return KeyScope(tenant_id=principal.tenant_id, principal=principal.idempotency_scope, key=key,
                    route=f"{operation.method} {operation.path}"[:64],
                    request_hash=body_hash(await _parsed_body(request)))


async def respond_once(request: web.Request, create: Create) -> web.Response:
    """Run ``create(conn) -> (status, body)`` in one transaction, honouring ``Idempotency-Key``."""
    scope = await key_scope(request)
    pool = request.app[DB_POOL]
    sql = request.app[QUERIES]
    if scope is None:
        async with transaction(pool) as conn:
            status, body = await create(conn)
        return json_response(body, status=status)
    async with transaction(pool) as conn:
        if not await sql.try_lock_idempotency_key(conn, lock_text=scope.lock_text):
            raise ApiError(409, "idempotency_request_in_progress")
        stored = await sql.get_idempotency_key(conn, tenant_id=scope.tenant_id, principal=scope.principal,
                                               key=scope.key)
        if stored is not None:
            if stored["route"] != scope.route or stored["request_hash"] != scope.request_hash:
                raise ApiError(422, "idempotency_key_reused")
            return json_response(stored["response"], status=stored["status"], headers={REPLAYED_HEADER: "true"})
        status, body = await create(conn)
        if 200 <= status < 300:
            await sql.save_idempotency_key(conn, tenant_id=scope.tenant_id, principal=scope.principal, key=scope.key,
                                           route=scope.route, request_hash=scope.request_hash, status=status,
                                           response=body)
    if random.random() < SWEEP_PROBABILITY:
        await sweep_expired(pool, sql)
    return json_response(body, status=status)


async def sweep_expired(pool: asyncpg.Pool, sql: Any, batch: int = SWEEP_BATCH) -> int:
    """Delete up to ``batch`` keys older than 24 hours; best-effort (a failure is logged)."""
    try:
        async with connection(pool) as conn:
            return int(await sql.delete_expired_idempotency_keys(conn, batch=batch))
    except Exception as exc:
        report_best_effort(log, "idempotency key sweep failed", exc)
        return 0
