"""The turn lock of a chat session (chat-and-agent.md §2 step 1b, operations.md §6): at most one agent turn per
session at a time, and no delete or rename racing a running turn.

With Redis the lock is the key ``<prefix>turnlock:<session_id>``, taken with ``SET NX`` and an expiry of the
turn timeout + 30 s, so every worker sees it and a worker that dies mid-turn cannot keep it for ever. (A turn takes
the same key as its lease, with a 2 s expiry its worker keeps refreshing: ``services/turn_lease.py``.) Its value
is a random token: release deletes the key only while it still holds the holder's token (compare-and-delete in
one script), so a holder whose lock expired never frees somebody else's. Without Redis the lock is a map in this
process (the server then runs a single worker, operations.md §6).

A write the request needs fails it: when Redis is configured and does not answer, taking or reading the lock
is ``503 redis_unreachable`` (the caller has not started anything yet); a failed release is only reported, the
expiry frees the key.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
import uuid
from typing import Any, AsyncIterator, Protocol

from voyagent.degradation import DependencyState, report_best_effort
from voyagent.errors import ApiError
from voyagent.services.token_store import redis_required

log = logging.getLogger(__name__)

EXPIRY_MARGIN_SECONDS = 30  # operations.md §6: expiry = turn timeout + 30 s

# Delete the key only while it holds the caller's token (never a lock somebody took after ours expired).
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""


def turn_in_progress() -> ApiError:
    return ApiError(409, "turn_in_progress")


class TurnLock(Protocol):
    """What turns, deletes and renames need of the session's lock."""

    async def acquire(self, session_id: uuid.UUID) -> str | None:
        """Take the lock: its holder's token, or None when another holder has it."""

    async def release(self, session_id: uuid.UUID, token: str) -> None:
        """Give the lock back if ``token`` still holds it (a no-op otherwise)."""

    async def is_held(self, session_id: uuid.UUID) -> bool:
        """True while some holder has the session's lock."""


class RedisTurnLock:
    """``<prefix>turnlock:<session_id>`` = holder token, ``SET NX PX`` (turn timeout + 30 s)."""

    def __init__(self, redis: Any, prefix: str, turn_timeout_seconds: int,
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.expiry_ms = (turn_timeout_seconds + EXPIRY_MARGIN_SECONDS) * 1000
        self.redis_state = redis_state or DependencyState("redis")
        self._release = redis.register_script(_RELEASE_LUA)

    def key(self, session_id: uuid.UUID) -> str:
        return f"{self.prefix}turnlock:{session_id}"

    async def acquire(self, session_id: uuid.UUID) -> str | None:
        token = secrets.token_hex(16)
        taken = await redis_required(self.redis_state, "turn lock (take)",
                                     self.redis.set(self.key(session_id), token, nx=True, px=self.expiry_ms))
        return token if taken else None

    async def release(self, session_id: uuid.UUID, token: str) -> None:
        try:
            await self._release(keys=[self.key(session_id)], args=[token])
        except Exception as exc:
            self.redis_state.failure("turn lock (release; the key expires by itself)", exc)
            return
        self.redis_state.success()

    async def is_held(self, session_id: uuid.UUID) -> bool:
        return bool(await redis_required(self.redis_state, "turn lock (read)", self.redis.exists(self.key(session_id))))


class LocalTurnLock:
    """The same in this process: session id → (token, monotonic deadline). Atomic on the event loop."""

    def __init__(self, turn_timeout_seconds: int) -> None:
        self.expiry_seconds = float(turn_timeout_seconds + EXPIRY_MARGIN_SECONDS)
        self._held: dict[uuid.UUID, tuple[str, float]] = {}

    def _holder(self, session_id: uuid.UUID) -> str | None:
        entry = self._held.get(session_id)
        if entry is None:
            return None
        if entry[1] <= time.monotonic():  # expired like the Redis key would
            del self._held[session_id]
            return None
        return entry[0]

    async def acquire(self, session_id: uuid.UUID) -> str | None:
        if self._holder(session_id) is not None:
            return None
        token = secrets.token_hex(16)
        self._held[session_id] = (token, time.monotonic() + self.expiry_seconds)
        return token

    async def release(self, session_id: uuid.UUID, token: str) -> None:
        if self._holder(session_id) == token:
            del self._held[session_id]

    async def is_held(self, session_id: uuid.UUID) -> bool:
        return self._holder(session_id) is not None


@contextlib.asynccontextmanager
async def holding(lock: TurnLock, session_id: uuid.UUID) -> AsyncIterator[None]:
    """Hold the session's lock for the block: ``409 turn_in_progress`` when a turn has it (``503
    redis_unreachable`` when Redis fails); released on the way out, whatever happened inside."""
    token = await lock.acquire(session_id)
    if token is None:
        raise turn_in_progress()
    try:
        yield
    finally:
        try:
            await lock.release(session_id, token)
        except Exception as exc:  # never mask the block's own outcome
            report_best_effort(log, "could not release the turn lock of session %s", exc, session_id)


def create_turn_lock(redis: Any, prefix: str, turn_timeout_seconds: int,
                     redis_state: DependencyState | None = None) -> RedisTurnLock | LocalTurnLock:
    """Redis when a client is configured, else in-process."""
    if redis is not None:
        return RedisTurnLock(redis, prefix, turn_timeout_seconds, redis_state)
    return LocalTurnLock(turn_timeout_seconds)
