"""The offer cache (chat-and-agent.md §11.4, operations.md §6): what a search returned, for ``add_to_itinerary``.

Each offer is stored as its JSON form under ``<prefix>offer:<tenant_id>:<offer_id>`` (prefix ``voyagent:`` in
production) for ``VOYAGENT_OFFER_TTL_SECONDS``: in Redis with native expiry, shared by the workers, else in this
process with the same expiry. The cache is only an accelerator of a deterministic supplier (searching again
recreates identical offers), so a Redis error behaves as a miss on read and is only reported on write
(operations.md §6): it never fails a search.

The tools fill it after each search and read it in ``add_to_itinerary``.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Callable, Iterable, Protocol

from voyagent import jsonio
from voyagent.agent.sandbox import Offer, offer_from_output
from voyagent.degradation import DependencyState
from voyagent.redis_batch import register_batched_script

_SWEEP_EVERY_SECONDS = 60.0

# KEYS the offers' keys; ARGV the time-to-live (s), then each key's JSON: ``SET … EX`` each, one call per search
# (batched with the worker's other script calls, voyagent/redis_batch.py).
_PUT_LUA = """
for i, key in ipairs(KEYS) do
    redis.call('SET', key, ARGV[i + 1], 'EX', ARGV[1])
end
return #KEYS
"""


class OfferCache(Protocol):
    """What the search tools and ``add_to_itinerary`` need."""

    async def put(self, tenant_id: uuid.UUID | str, offers: Iterable[Offer]) -> None:
        """Remember ``offers`` for the tenant for the cache's time-to-live."""

    async def get(self, tenant_id: uuid.UUID | str, offer_id: str) -> Offer | None:
        """The tenant's offer, or None when unknown, expired or unreadable."""


def offer_key(prefix: str, tenant_id: uuid.UUID | str, offer_id: str) -> str:
    return f"{prefix}offer:{tenant_id}:{offer_id}"


def _decode(raw: bytes | str | None) -> Offer | None:
    if raw is None:
        return None
    try:
        return offer_from_output(jsonio.loads(raw))
    except (ValueError, KeyError, TypeError, ArithmeticError):
        return None  # not an offer we wrote: a miss, the caller searches again


class RedisOfferCache:
    """Keys ``<prefix>offer:<tenant_id>:<offer_id>`` = offer JSON, ``SET EX ttl`` (one script call per search)."""

    def __init__(self, redis: Any, prefix: str, ttl_seconds: int,
                 redis_state: DependencyState | None = None) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl_seconds = ttl_seconds
        self.redis_state = redis_state or DependencyState("redis")
        self._put = register_batched_script(redis, _PUT_LUA)

    async def put(self, tenant_id: uuid.UUID | str, offers: Iterable[Offer]) -> None:
        offers = list(offers)
        try:
            if offers:
                await self._put(keys=[offer_key(self.prefix, tenant_id, offer.offer_id) for offer in offers],
                                args=[self.ttl_seconds, *(jsonio.dumps(offer.output()) for offer in offers)])
        except Exception as exc:
            self.redis_state.failure("offer cache (store offers; a later add searches again)", exc)
            return
        self.redis_state.success()

    async def get(self, tenant_id: uuid.UUID | str, offer_id: str) -> Offer | None:
        try:
            raw = await self.redis.get(offer_key(self.prefix, tenant_id, offer_id))
        except Exception as exc:
            self.redis_state.failure("offer cache (read: treated as a miss)", exc)
            return None
        self.redis_state.success()
        return _decode(raw)


class LocalOfferCache:
    """The same in this process: key → (monotonic deadline, JSON). ``timer`` is injectable so tests move past
    the expiry instead of waiting for it. The JSON round trip keeps both caches returning equal values."""

    def __init__(self, ttl_seconds: int, prefix: str = "voyagent:",
                 timer: Callable[[], float] = time.monotonic) -> None:
        self.ttl_seconds = ttl_seconds
        self.prefix = prefix
        self._timer = timer
        self._entries: dict[str, tuple[float, bytes]] = {}
        self._last_sweep = timer()

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _SWEEP_EVERY_SECONDS:
            return
        self._last_sweep = now
        self._entries = {key: entry for key, entry in self._entries.items() if entry[0] > now}

    async def put(self, tenant_id: uuid.UUID | str, offers: Iterable[Offer]) -> None:
        now = self._timer()
        self._sweep(now)
        for offer in offers:
            self._entries[offer_key(self.prefix, tenant_id, offer.offer_id)] = (
                now + self.ttl_seconds, jsonio.dumps(offer.output()))

    async def get(self, tenant_id: uuid.UUID | str, offer_id: str) -> Offer | None:
        entry = self._entries.get(offer_key(self.prefix, tenant_id, offer_id))
        if entry is None or entry[0] <= self._timer():
            return None
        return _decode(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


def create_offer_cache(redis: Any, prefix: str, ttl_seconds: int,
                       redis_state: DependencyState | None = None) -> RedisOfferCache | LocalOfferCache:
    """Redis when a client is configured, else in-process."""
    if redis is not None:
        return RedisOfferCache(redis, prefix, ttl_seconds, redis_state)
    return LocalOfferCache(ttl_seconds, prefix)
