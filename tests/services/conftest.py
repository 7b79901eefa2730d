"""Fixtures of the service tests that talk to Redis directly (a real server, keys under the run's prefix)."""

import secrets

import pytest
import redis.asyncio as aioredis


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(redis_prefix):
    """A key prefix of one test's own, under the run's (cleaned up with it)."""
    return f"{redis_prefix}{secrets.token_hex(4)}:"
