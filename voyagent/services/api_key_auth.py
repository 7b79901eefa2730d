"""Verification of ``vy_`` API keys (auth.md, API keys, Verification) with a short row cache."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import time
from typing import Any

from aiohttp import web

from voyagent.db import connection
from voyagent.keys import API_KEY_CACHE, DB_POOL, QUERIES
from voyagent.principal import Principal

KEY_RE = re.compile(r"vy_([A-Za-z0-9]{8})_[A-Za-z0-9]{32}")
CACHE_SECONDS = 5.0


def hash_key(plaintext: str) -> str:
    """Lowercase hex SHA-256 of the whole key string, as stored in api_keys.key_hash."""
    return hashlib.sha256(plaintext.encode("ascii")).hexdigest()


class ApiKeyCache:
    """Key rows by prefix for at most CACHE_SECONDS; ``forget`` drops one at once (revocation)."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._rows: dict[str, tuple[float, Any]] = {}

    def get(self, prefix: str) -> tuple[bool, Any]:
        entry = self._rows.get(prefix)
        if entry is None or entry[0] < time.monotonic():
            return False, None
        return True, entry[1]

    def put(self, prefix: str, row: Any) -> None:
        if len(self._rows) > 100_000:
            self._rows.clear()
        self._rows[prefix] = (time.monotonic() + self.ttl, row)

    def forget(self, prefix: str) -> None:
        self._rows.pop(prefix, None)


async def load_key_row(app: web.Application, prefix: str) -> Any:
    """The key row (cached briefly), or None."""
    cache: ApiKeyCache = app[API_KEY_CACHE]
    hit, row = cache.get(prefix)
    if not hit:
        async with connection(app[DB_POOL]) as conn:
            record = await app[QUERIES].get_api_key_for_auth(conn, prefix=prefix)
        row = dict(record) if record is not None else None
        cache.put(prefix, row)
    return row


async def authenticate_api_key(app: web.Application, credential: str) -> Principal | None:
    """The principal of a valid, unrevoked, unexpired key; None otherwise."""
    match = KEY_RE.fullmatch(credential)
    if match is None:
        return None
    row = await load_key_row(app, match.group(1))
    if row is None or not hmac.compare_digest(row["key_hash"], hash_key(credential)):
        return None
    if row["revoked_at"] is not None:
        return None
    expires_at = row["expires_at"]
    if expires_at is not None and expires_at <= dt.datetime.now(dt.timezone.utc):
        return None
    return Principal(user_id=row["created_by_user_id"], tenant_id=row["tenant_id"], role=row["creator_role"],
                     email=row["creator_email"], api_key_id=row["id"], scopes=frozenset(row["scopes"]),
                     rate_limit=row["rate_limit_per_minute"])
