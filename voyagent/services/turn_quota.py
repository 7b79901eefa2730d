"""The tenant turn quota (chat-and-agent.md §2 step 3): at most ``rate_limit_per_minute`` turns in any sliding
60-second window and ``rate_limit_per_hour`` in any sliding 3600-second window.

With Redis the windows are the sorted set ``<prefix>turns:<tenant_id>`` (member per turn, score = its start in
milliseconds), shared by every worker: one script trims entries older than an hour, checks the hour window before
the minute window and adds the turn only when both have room, so two workers can never both take the last slot.
A refused turn is not added. Without Redis the same windows live in this process.

Like the request rate limits, the quota fails open when Redis errors (the turn runs, a warning is logged).
"""

from __future__ import annotations

import collections
import secrets
import time
import uuid
from typing import Any, Callable, Literal, Protocol

from voyagent.degradation import DependencyState
from voyagent.redis_batch import register_batched_script

MINUTE_MS = 60_000
HOUR_MS = 3_600_000

Refusal = Literal["hour", "minute"]

_TAKE_LUA = """
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 'hour'
end
if redis.call('ZCOUNT', KEYS[1], '(' .. (now - 60000), '+inf') >= tonumber(ARGV[2]) then
    return 'minute'
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], 3600000)
return 'ok'
"""

# The same, after the session's live marker (event_log.py's ``begin``, KEYS[2] = turn ARGV[5] for ARGV[6] ms): the last
# pre-stream write and the turn's first step in one round trip when the turn starts (chat_stream.py).
_MARK_LIVE_AND_TAKE_LUA = "redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[6])\n" + _TAKE_LUA


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TurnQuota(Protocol):
    async def take(self, tenant_id: uuid.UUID, per_minute: int, per_hour: int) -> Refusal | None:
        """Count a turn starting now; ``"hour"`` / ``"minute"`` (nothing counted) when a window is full."""


class RedisTurnQuota:
    def __init__(self, redis: Any, prefix: str, redis_state: DependencyState | None = None,
                 clock: Callable[[], int] = now_ms) -> None:
        self.redis = redis
        self.prefix = prefix
        self.redis_state = redis_state or DependencyState("redis")
        self.clock = clock
        self._take = register_batched_script(redis, _TAKE_LUA)
        self._mark_live_and_take = register_batched_script(redis, _MARK_LIVE_AND_TAKE_LUA)

    def key(self, tenant_id: uuid.UUID) -> str:
        return f"{self.prefix}turns:{tenant_id}"

    def _args(self, per_minute: int, per_hour: int) -> list[Any]:
        now = self.clock()
        return [now, per_minute, per_hour, f"{now}-{secrets.token_hex(6)}"]

    async def take(self, tenant_id: uuid.UUID, per_minute: int, per_hour: int) -> Refusal | None:
        try:
            result = await self._take(keys=[self.key(tenant_id)], args=self._args(per_minute, per_hour))
        except Exception as exc:
            self.redis_state.failure("tenant turn quota (failing open)", exc)
            return None
        self.redis_state.success()
        return _verdict(result)

    async def mark_live_and_take(self, tenant_id: uuid.UUID, per_minute: int, per_hour: int, *, live_key: str,
                                 turn_id: str, live_ms: int) -> Refusal | None:
        """Set the session's live marker, then ``take``, in one script. A Redis error is raised, not failed open:
        the marker is a pre-stream check (the caller answers ``503``)."""
        result = await self._mark_live_and_take(keys=[self.key(tenant_id), live_key],
                                                args=[*self._args(per_minute, per_hour), turn_id, live_ms])
        return _verdict(result)


def _verdict(result: Any) -> Refusal | None:
    verdict = result.decode() if isinstance(result, bytes) else str(result)
    return None if verdict == "ok" else verdict  # type: ignore[return-value]


class LocalTurnQuota:
    """The same windows in this process: tenant id → start times (ms) of its turns in the last hour."""

    def __init__(self, clock: Callable[[], int] = now_ms) -> None:
        self.clock = clock
        self._starts: dict[uuid.UUID, collections.deque[int]] = {}

    async def take(self, tenant_id: uuid.UUID, per_minute: int, per_hour: int) -> Refusal | None:
        now = self.clock()
        starts = self._starts.setdefault(tenant_id, collections.deque())
        while starts and starts[0] <= now - HOUR_MS:
            starts.popleft()
        if len(starts) >= per_hour:
            return "hour"
        if sum(1 for start in starts if start > now - MINUTE_MS) >= per_minute:
            return "minute"
        starts.append(now)
        return None


def create_turn_quota(redis: Any, prefix: str, redis_state: DependencyState | None = None,
                      clock: Callable[[], int] = now_ms) -> RedisTurnQuota | LocalTurnQuota:
    """Redis when a client is configured, else in-process."""
    if redis is not None:
        return RedisTurnQuota(redis, prefix, redis_state, clock)
    return LocalTurnQuota(clock)
