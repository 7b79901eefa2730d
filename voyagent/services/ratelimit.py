"""Token buckets (README, Rate limiting): one atomic Lua script in Redis, or in-process; fail open."""

from __future__ import annotations

import dataclasses
import functools
import ipaddress
import math
import time
from typing import Any, Literal

from voyagent.degradation import DependencyState
from voyagent.redis_batch import register_batched_script

WINDOW_SECONDS = 60.0
IDLE_EXPIRY_SECONDS = 120

# KEYS[1] bucket hash; ARGV[1] capacity, ARGV[2] cost (1 = take one, -1 = give one back).
# The clock is Redis's own, so every worker refills the same bucket consistently.
_LUA = """
local capacity = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil or ts == nil then
  tokens = capacity
  ts = now
end
if now > ts then
  tokens = tokens + (now - ts) * capacity / 60
end
if tokens > capacity then tokens = capacity end
local allowed = 0
if cost < 0 then
  tokens = math.min(capacity, tokens - cost)
  allowed = 1
elseif tokens >= cost then
  tokens = tokens - cost
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 120)
return {allowed, tostring(tokens)}
"""


# The same take, unless KEYS[2] (a JWT's denylist entry) exists: checks 3 and 4 of a request in one round trip, a
# revoked token taking nothing from its user's bucket.
_LUA_UNLESS_DENIED = "if redis.call('EXISTS', KEYS[2]) == 1 then return {-1, '0'} end\n" + _LUA

DENIED = "denied"  # ``take_unless_denied``: the denylist holds the token


def ip_bucket_key(ip: str) -> str:
    """The bucket key of a client IP: an IPv4 address itself, an IPv6 address its /64 (``2001:db8:1:2::/64``).

    One IPv6 subscriber usually holds a whole /64, so per-address buckets would be no limit at all. An IPv4-mapped
    address (``::ffff:a.b.c.d``) is the IPv4 address; text that is no address (``unknown``) is its own key.
    """
    if ":" not in ip:
        return ip
    try:
        address = ipaddress.IPv6Address(ip)
    except ValueError:
        return ip
    if address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return f"{ipaddress.IPv6Address(int(address) >> 64 << 64)}/64"


@dataclasses.dataclass(frozen=True, slots=True)
class BucketResult:
    """The outcome of one take, with everything the response headers need."""

    bucket: str
    capacity: int
    tokens: float
    allowed: bool

    @property
    def remaining(self) -> int:
        return 0 if not self.allowed else max(0, math.floor(self.tokens))

    @property
    def reset_seconds(self) -> int:
        return max(0, math.ceil((self.capacity - self.tokens) * WINDOW_SECONDS / self.capacity))

    @property
    def retry_after(self) -> int:
        return max(1, math.ceil((1 - self.tokens) * WINDOW_SECONDS / self.capacity))

    def headers(self) -> dict[str, str]:
        remaining, reset = str(self.remaining), str(self.reset_seconds)
        limit, policy, named = _fixed_headers(self.bucket, self.capacity)
        return {
            "RateLimit-Limit": limit,
            "RateLimit-Remaining": remaining,
            "RateLimit-Reset": reset,
            "RateLimit-Policy": policy,
            "RateLimit": f"{named};r={remaining};t={reset}",
        }


@functools.lru_cache(maxsize=1024)
def _fixed_headers(bucket: str, capacity: int) -> tuple[str, str, str]:
    """The parts of a bucket's headers that only its name and capacity decide (built once, not per request)."""
    return str(capacity), f'"{bucket}";q={capacity};w=60', f'"{bucket}"'


class RateLimiter:
    """Takes tokens from named buckets, in Redis when given a client, else in this process."""

    def __init__(self, redis: Any = None, prefix: str = "voyagent:",
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.redis_state = redis_state or DependencyState("redis")
        self._local: dict[str, list[float]] = {}
        self._script = register_batched_script(redis, _LUA) if redis is not None else None
        self._script_unless_denied = register_batched_script(redis, _LUA_UNLESS_DENIED) if redis is not None else None

    async def take(self, bucket: str, key: str, capacity: int, cost: int = 1) -> BucketResult | None:
        """Take ``cost`` tokens (negative gives back); None when the bucket is disabled or Redis failed."""
        if capacity <= 0:
            return None
        if self._script is not None:
            try:
                allowed, tokens = await self._script(keys=[f"{self.prefix}rl:{bucket}:{key}"], args=[capacity, cost])
            except Exception as exc:
                self.redis_state.failure("rate limiter (request admitted: fail open)", exc)
                return None
            self.redis_state.success()
            return BucketResult(bucket, capacity, float(tokens), bool(int(allowed)))
        return self._take_local(bucket, key, capacity, cost)

    async def take_unless_denied(self, bucket: str, key: str, capacity: int,
                                 denied_key: str) -> BucketResult | None | Literal["denied"]:
        """One token of a positive-capacity bucket unless Redis holds ``denied_key`` (then ``DENIED``, nothing
        taken), in one round trip; None when Redis failed (both checks fail open)."""
        assert self._script_unless_denied is not None and capacity > 0
        try:
            allowed, tokens = await self._script_unless_denied(
                keys=[f"{self.prefix}rl:{bucket}:{key}", denied_key], args=[capacity, 1])
        except Exception as exc:
            self.redis_state.failure("denylist check and rate limiter (request admitted: fail open)", exc)
            return None
        self.redis_state.success()
        if int(allowed) == -1:
            return DENIED
        return BucketResult(bucket, capacity, float(tokens), bool(int(allowed)))

    def _take_local(self, bucket: str, key: str, capacity: int, cost: int) -> BucketResult:
        now = time.monotonic()
        name = f"{bucket}:{key}"
        state = self._local.get(name)
        if state is None or now - state[1] > IDLE_EXPIRY_SECONDS:
            if len(self._local) > 200_000:
                self._local.clear()
            state = [float(capacity), now]
            self._local[name] = state
        tokens = min(float(capacity), state[0] + (now - state[1]) * capacity / WINDOW_SECONDS)
        allowed = True
        if cost < 0:
            tokens = min(float(capacity), tokens - cost)
        elif tokens >= cost:
            tokens -= cost
        else:
            allowed = False
        state[0], state[1] = tokens, now
        return BucketResult(bucket, capacity, tokens, allowed)
