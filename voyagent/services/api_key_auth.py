"""Verification of ``vy_`` API keys (auth.md, API keys): a 5-second row cache kept honest on every worker.

A key request costs no database round trip while its row is cached (at most ``CACHE_SECONDS``). Two
changes must reach every worker from the very next request, so a cached row is checked against Redis with
one ``MGET`` per request:

* ``<prefix>apikey_revoked:<key_id>`` — set after a revocation commits; a cached row that is not revoked
  while the marker exists is read again (and the key then fails).
* ``<prefix>tenant_settings_version:<tenant_id>`` — the newest ``tenant_settings.updated_at`` (epoch µs),
  raised after a settings change commits; a cached row carrying an older version is read again, so a new
  ``rate_limit_per_minute`` sizes the key's bucket from the next request.

Both values are compared with what the row itself says, so a row read just before a change and cached just
after it is still caught. Without Redis there is one worker and the cache entry is dropped directly. When
Redis errors, the row is read from the database (the authority) rather than trusted.

``last_used_at`` is written after the response, at most once a minute per key (the SQL guards across
workers), as a tracked background task (``voyagent.edge.record_api_key_use``).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import re
import secrets
import string
import time
import uuid
from typing import Any, Callable

import asyncpg

from voyagent.degradation import DependencyState
from voyagent.principal import Principal

log = logging.getLogger("voyagent.api_keys")

KEY_RE = re.compile(r"vy_([A-Za-z0-9]{8})_[A-Za-z0-9]{32}")
ALPHABET = string.ascii_letters + string.digits
CACHE_SECONDS = 5.0
MARKER_SECONDS = 60  # must outlive any cache entry loaded before the change (CACHE_SECONDS)
TOUCH_INTERVAL_SECONDS = 60.0
_MAX_ENTRIES = 100_000

# Raise the stored version only (two concurrent changes may announce themselves out of order).
_RAISE_VERSION_LUA = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', tonumber(ARGV[2]))
end
return 1
"""


def generate_key() -> tuple[str, str]:
    """A fresh ``(plaintext, prefix)``: ``vy_`` + 8 + ``_`` + 32 characters of ``[A-Za-z0-9]``."""
    prefix = "".join(secrets.choice(ALPHABET) for _ in range(8))
    body = "".join(secrets.choice(ALPHABET) for _ in range(32))
    return f"vy_{prefix}_{body}", prefix


def hash_key(plaintext: str) -> str:
    """Lowercase hex SHA-256 of the whole key string, as stored in api_keys.key_hash."""
    return hashlib.sha256(plaintext.encode("ascii")).hexdigest()


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_MICROSECOND = dt.timedelta(microseconds=1)


def _micros(value: dt.datetime | None) -> int:
    """Exact epoch microseconds (0 for None), the unit of the settings version."""
    return 0 if value is None else (value - _EPOCH) // _MICROSECOND


@dataclasses.dataclass(slots=True)
class CachedKey:
    """A key row as authentication needs it, with the principal it yields."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    key_hash: str
    revoked: bool
    expires_at: float | None  # epoch seconds
    last_used_at: float | None  # epoch seconds
    settings_version: int  # tenant_settings.updated_at in epoch µs (0 when the row is missing)
    principal: Principal

    @classmethod
    def from_row(cls, row: Any) -> "CachedKey":
        expires_at, last_used_at = row["expires_at"], row["last_used_at"]
        return cls(
            id=row["id"], tenant_id=row["tenant_id"], key_hash=row["key_hash"], revoked=row["revoked_at"] is not None,
            expires_at=None if expires_at is None else expires_at.timestamp(),
            last_used_at=None if last_used_at is None else last_used_at.timestamp(),
            settings_version=_micros(row["settings_updated_at"]),
            principal=Principal(user_id=row["created_by_user_id"], tenant_id=row["tenant_id"],
                                role=row["creator_role"], email=row["creator_email"], api_key_id=row["id"],
                                scopes=frozenset(row["scopes"]), rate_limit=row["rate_limit_per_minute"]))


class ApiKeyCache:
    """Key rows by prefix for at most ``ttl`` seconds (unknown prefixes too), kept honest through Redis markers
    (``redis`` None: one worker, changes drop entries directly), plus last-use bookkeeping.

    ``clock`` reads epoch seconds (key expiry, last use) and ``timer`` ages the entries; tests pass their own
    to move time instead of waiting for it.
    """

    def __init__(self, redis: Any = None, redis_prefix: str = "", ttl: float = CACHE_SECONDS,
                 redis_state: DependencyState | None = None, *, clock: Callable[[], float] = time.time,
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.redis_prefix = redis_prefix
        self.redis_state = redis_state or DependencyState("redis")
        self.ttl = ttl
        self.clock = clock
        self.timer = timer
        self._rows: dict[str, tuple[float, CachedKey | None]] = {}
        self._last_used: dict[uuid.UUID, float] = {}  # key id → newest known use (row or our own touch)

    def get(self, prefix: str) -> tuple[bool, CachedKey | None]:
        entry = self._rows.get(prefix)
        if entry is None or entry[0] < self.timer():
            return False, None
        return True, entry[1]

    def put(self, prefix: str, key: CachedKey | None) -> None:
        if len(self._rows) >= _MAX_ENTRIES:
            self._rows.clear()
            self._last_used.clear()
        self._rows[prefix] = (self.timer() + self.ttl, key)
        if key is not None and key.last_used_at is not None:
            self._last_used[key.id] = max(key.last_used_at, self._last_used.get(key.id, 0.0))

    def forget(self, prefix: str) -> None:
        self._rows.pop(prefix, None)

    def forget_tenant(self, tenant_id: uuid.UUID) -> None:
        """Drop every cached key of a tenant (its settings changed)."""
        stale = [p for p, (_, key) in self._rows.items() if key is not None and key.tenant_id == tenant_id]
        for prefix in stale:
            del self._rows[prefix]

    def touch_due(self, key_id: uuid.UUID) -> bool:
        """Whether ``last_used_at`` should be written now (at most once a minute per key and worker)."""
        now = self.clock()
        last = self._last_used.get(key_id)
        if last is not None and now - last < TOUCH_INTERVAL_SECONDS:
            return False
        self._last_used[key_id] = now
        return True

    async def lookup(self, prefix: str) -> tuple[bool, CachedKey | None]:
        """``(True, key or None)`` while the cached entry is current; ``(False, None)`` when the row must be read."""
        hit, key = self.get(prefix)
        if hit and (key is None or await self._still_current(key)):
            return True, key
        return False, None

    async def _still_current(self, key: CachedKey) -> bool:
        """One MGET: no revocation and no newer settings announced since the row was read."""
        if self.redis is None:
            return True  # single worker: changes drop the entry directly
        try:
            revoked, version = await self.redis.mget(self._revoked_marker(key.id),
                                                     self._settings_marker(key.tenant_id))
        except Exception as exc:  # Redis down: trust the database, not the cache
            self.redis_state.failure("api key cache check (key row read again)", exc)
            return False
        self.redis_state.success()
        if revoked is not None and not key.revoked:
            return False
        return version is None or int(version) <= key.settings_version

    def _revoked_marker(self, key_id: uuid.UUID) -> str:
        return f"{self.redis_prefix}apikey_revoked:{key_id}"

    def _settings_marker(self, tenant_id: uuid.UUID) -> str:
        return f"{self.redis_prefix}tenant_settings_version:{tenant_id}"

    # --- changes that every worker must see at once ------------------------------------------------------

    async def announce_revocation(self, key_id: uuid.UUID, prefix: str) -> None:
        """After a revocation committed: drop this worker's entry and mark the key for every other worker."""
        self.forget(prefix)
        if self.redis is None:
            return
        try:
            await self.redis.set(self._revoked_marker(key_id), b"1", ex=MARKER_SECONDS)
        except Exception:
            log.warning("api key revocation marker not written; other workers may accept key %s for up to %ss",
                        key_id, CACHE_SECONDS, exc_info=True)

    async def announce_settings_change(self, tenant_id: uuid.UUID, updated_at: dt.datetime) -> None:
        """After a settings change committed: keys of the tenant re-read their row (new rate limit) everywhere."""
        self.forget_tenant(tenant_id)
        if self.redis is None:
            return
        try:
            await self.redis.eval(_RAISE_VERSION_LUA, 1, self._settings_marker(tenant_id), _micros(updated_at),
                                  MARKER_SECONDS)
        except Exception:
            log.warning("tenant settings version not announced; other workers may use the old rate limit for up "
                        "to %ss", CACHE_SECONDS, exc_info=True)


def key_prefix(credential: str) -> str | None:
    """The lookup prefix of a well-formed ``vy_`` key, else None."""
    match = KEY_RE.fullmatch(credential)
    return match.group(1) if match is not None else None


async def load_key(conn: asyncpg.Connection, sql: Any, prefix: str) -> CachedKey | None:
    """The key row with this prefix as authentication needs it, or None."""
    row = await sql.get_api_key_for_auth(conn, prefix=prefix)
    return CachedKey.from_row(row) if row is not None else None


def principal_of(key: CachedKey | None, credential: str, now: float) -> Principal | None:
    """The principal of ``credential`` when it is the whole key (constant-time), unrevoked and unexpired at
    ``now`` (epoch seconds); else None."""
    if key is None or not hmac.compare_digest(key.key_hash, hash_key(credential)):
        return None
    if key.revoked or (key.expires_at is not None and key.expires_at <= now):
        return None
    return key.principal
