"""Fixtures of the agent tests: the tool services on the real database and offer cache (Redis, or in process)."""

from __future__ import annotations

import secrets

import pytest
import redis.asyncio as aioredis

from tests.agent.harness import Clock, Harness
from voyagent.agent.gateway import ToolServices
from voyagent.agent.offer_cache import LocalOfferCache, RedisOfferCache
from voyagent.agent.sandbox import SandboxSupplier
from voyagent.db import Database

TTL = 900


@pytest.fixture
async def pool(database):
    db = await Database.connect(database.dsn, 1, 6)
    yield db
    await db.close()


@pytest.fixture
async def offer_redis(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


def _harness(pool, queries, db, offers) -> Harness:
    clock = Clock()
    counted: list[tuple[str, str]] = []
    services = ToolServices(database=pool, sql=queries, offers=offers, supplier=SandboxSupplier(),
                            approval_ttl_seconds=TTL, count_tool_call=lambda tool, outcome: counted.append((tool, outcome)),
                            clock=clock)
    return Harness(services=services, db=db, clock=clock, counted=counted)


@pytest.fixture
async def harness(pool, queries, db, offer_redis, redis_prefix):
    """The gateway's services with the offer cache in Redis."""
    return _harness(pool, queries, db, RedisOfferCache(offer_redis, f"{redis_prefix}{secrets.token_hex(4)}:", 1800))


@pytest.fixture
async def local_harness(pool, queries, db):
    """The same without Redis: the offer cache in process."""
    return _harness(pool, queries, db, LocalOfferCache(1800))
