"""Idempotent creates (README, Idempotent creates): replay a create retried with the same ``Idempotency-Key``.

``voyagent.edge.respond_once(request, create)`` wraps a create endpoint: without the header it simply runs
``create(conn)`` in one transaction; with it, ``replay_or_create`` runs in that same transaction, and before
``create``:

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
import re
from typing import Any, Awaitable, Callable

import asyncpg
import orjson

from voyagent.errors import ApiError

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")  # 1–255 visible ASCII characters
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


async def replay_or_create(conn: asyncpg.Connection, sql: Any, scope: KeyScope,
                           create: Create) -> tuple[int, Any, bool]:
    """In the caller's transaction: ``(status, body, replayed)`` — the stored response of this key, or ``create``'s
    (its 2xx answer stored with the key before the commit)."""
    if not await sql.try_lock_idempotency_key(conn, lock_text=scope.lock_text):
        raise ApiError(409, "idempotency_request_in_progress")
    stored = await sql.get_idempotency_key(conn, tenant_id=scope.tenant_id, principal=scope.principal, key=scope.key)
    if stored is not None:
        if stored["route"] != scope.route or stored["request_hash"] != scope.request_hash:
            raise ApiError(422, "idempotency_key_reused")
        return stored["status"], stored["response"], True
    status, body = await create(conn)
    if 200 <= status < 300:
        await sql.save_idempotency_key(conn, tenant_id=scope.tenant_id, principal=scope.principal, key=scope.key,
                                       route=scope.route, request_hash=scope.request_hash, status=status,
                                       response=body)
    return status, body, False


async def sweep_expired(conn: asyncpg.Connection, sql: Any, batch: int = SWEEP_BATCH) -> int:
    """Delete up to ``batch`` keys older than 24 hours; returns how many."""
    return int(await sql.delete_expired_idempotency_keys(conn, batch=batch))
