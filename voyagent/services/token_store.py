"""The jti denylist, the single-use token store and the wrong-code counters of TOTP intermediate tokens
(operations.md §6): Redis when configured, else in-process.

Both implementations share one interface. Reads of the denylist fail open (a warning is logged); a write or
a take that a request needs (counting a TOTP attempt included) fails with ``503 redis_unreachable``.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Protocol

import orjson

from voyagent.degradation import DependencyState
from voyagent.errors import ApiError

KINDS = ("email_verify", "pwreset")
_SWEEP_EVERY_SECONDS = 60.0


def redis_unreachable() -> ApiError:
    return ApiError(503, "redis_unreachable")


async def redis_required(redis_state: Any, what: str, call: Awaitable[Any]) -> Any:
    """Await a Redis write (or read) the request cannot do without: its result, or ``503 redis_unreachable``
    with the failure reported once to the dependency's state (operations.md §6)."""
    try:
        result = await call
    except Exception as exc:
        redis_state.failure(what, exc)
        raise redis_unreachable() from None
    redis_state.success()
    return result


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown token kind {kind!r}")


class TokenStore(Protocol):
    """What the identity flows and the authentication middleware need."""

    async def revoke_jti(self, jti: str, exp: int) -> bool:
        """Deny ``jti`` until ``exp`` (epoch seconds); True when it was not denied before."""

    async def is_revoked(self, jti: str) -> bool:
        """True when ``jti`` is denied (False when the store cannot be read: fail open)."""

    async def put(self, kind: str, token: str, value: dict[str, Any], ttl: int) -> None:
        """Store ``value`` under ``token`` for ``ttl`` seconds."""

    async def take(self, kind: str, token: str) -> dict[str, Any] | None:
        """Atomically read and delete; None when unknown or expired."""

    async def count_totp_attempt(self, jti: str, exp: int) -> int:
        """Atomically add one to the code counter of intermediate token ``jti`` (kept until ``exp``); the new count."""


class RedisTokenStore:
    """Keys ``<prefix>revoked_jti:<jti>``, ``<prefix>email_verify:<token>``, ``<prefix>pwreset:<token>``,
    ``<prefix>totp_fail:<jti>``."""

    def __init__(self, redis: Any, prefix: str = "voyagent:", redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.redis_state = redis_state or DependencyState("redis")

    def _unreachable(self, what: str, exc: Exception) -> ApiError:
        self.redis_state.failure(what, exc)
        return redis_unreachable()

    def denylist_key(self, jti: str) -> str:
        return f"{self.prefix}revoked_jti:{jti}"

    async def revoke_jti(self, jti: str, exp: int) -> bool:
        if exp <= int(time.time()):
            return True  # already expired: the token is refused anyway, nothing to remember
        try:
            created = await self.redis.set(self.denylist_key(jti), b"1", exat=int(exp), nx=True)
        except Exception as exc:
            raise self._unreachable("token store (revoke a jti)", exc) from None
        self.redis_state.success()
        return bool(created)

    async def is_revoked(self, jti: str) -> bool:
        try:
            revoked = bool(await self.redis.exists(self.denylist_key(jti)))
        except Exception as exc:
            self.redis_state.failure("denylist check (token accepted: fail open)", exc)
            return False
        self.redis_state.success()
        return revoked

    async def put(self, kind: str, token: str, value: dict[str, Any], ttl: int) -> None:
        _check_kind(kind)
        try:
            await self.redis.set(f"{self.prefix}{kind}:{token}", orjson.dumps(value), ex=int(ttl))
        except Exception as exc:
            raise self._unreachable(f"token store (store a {kind} token)", exc) from None
        self.redis_state.success()

    async def take(self, kind: str, token: str) -> dict[str, Any] | None:
        _check_kind(kind)
        try:
            raw = await self.redis.getdel(f"{self.prefix}{kind}:{token}")
        except Exception as exc:
            raise self._unreachable(f"token store (take a {kind} token)", exc) from None
        self.redis_state.success()
        return _decode(raw)

    async def count_totp_attempt(self, jti: str, exp: int) -> int:
        key = f"{self.prefix}totp_fail:{jti}"
        try:
            async with self.redis.pipeline(transaction=True) as pipe:  # MULTI: the count never outlives exp
                pipe.incr(key)
                pipe.expireat(key, int(exp))
                count, _ = await pipe.execute()
        except Exception as exc:
            raise self._unreachable("token store (count a wrong TOTP code)", exc) from None
        self.redis_state.success()
        return int(count)


class LocalTokenStore:
    """The same in this process (single worker only; lost on restart). Every operation is atomic on the loop.

    ``clock`` (epoch seconds) is injectable so tests move past an expiry instead of waiting for it.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._denied: dict[str, float] = {}  # jti → exp (epoch seconds)
        self._tokens: dict[str, tuple[float, bytes]] = {}  # "<kind>:<token>" → (expiry, value)
        self._totp_attempts: dict[str, tuple[float, int]] = {}  # jti → (exp, count)
        self._last_sweep = clock()

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _SWEEP_EVERY_SECONDS:
            return
        self._last_sweep = now
        self._denied = {jti: exp for jti, exp in self._denied.items() if exp > now}
        self._tokens = {key: entry for key, entry in self._tokens.items() if entry[0] > now}
        self._totp_attempts = {jti: entry for jti, entry in self._totp_attempts.items() if entry[0] > now}

    async def revoke_jti(self, jti: str, exp: int) -> bool:
        now = self._clock()
        self._sweep(now)
        if exp <= now:
            return True
        known = self._denied.get(jti)
        if known is not None and known > now:
            return False
        self._denied[jti] = float(exp)
        return True

    async def is_revoked(self, jti: str) -> bool:
        exp = self._denied.get(jti)
        return exp is not None and exp > self._clock()

    async def put(self, kind: str, token: str, value: dict[str, Any], ttl: int) -> None:
        _check_kind(kind)
        now = self._clock()
        self._sweep(now)
        self._tokens[f"{kind}:{token}"] = (now + ttl, orjson.dumps(value))

    async def take(self, kind: str, token: str) -> dict[str, Any] | None:
        _check_kind(kind)
        entry = self._tokens.pop(f"{kind}:{token}", None)
        if entry is None or entry[0] <= self._clock():
            return None
        return _decode(entry[1])

    async def count_totp_attempt(self, jti: str, exp: int) -> int:
        now = self._clock()
        self._sweep(now)
        known = self._totp_attempts.get(jti)
        count = known[1] + 1 if known is not None and known[0] > now else 1
        self._totp_attempts[jti] = (float(exp), count)
        return count


def _decode(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def create_token_store(redis: Any, prefix: str,
                       redis_state: DependencyState | None = None) -> RedisTokenStore | LocalTokenStore:
    """Redis when a client is configured, else in-process."""
    return RedisTokenStore(redis, prefix, redis_state) if redis is not None else LocalTokenStore()
