"""The tenant turn quota (chat-and-agent.md §2 step 3): sliding minute and hour windows, hour checked first,
refusals not counted, in real Redis and in process; Redis failures fail open."""

import secrets
import uuid

import pytest
import redis.asyncio as aioredis

from voyagent.services.turn_quota import HOUR_MS, MINUTE_MS, LocalTurnQuota, RedisTurnQuota


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture(params=["in-process", "redis"])
async def quota_and_clock(request):
    clock = Clock()
    if request.param == "in-process":
        yield LocalTurnQuota(clock), clock
        return
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    yield RedisTurnQuota(client, f"{request.getfixturevalue('redis_prefix')}{secrets.token_hex(4)}:",
                         clock=clock), clock
    await client.aclose()


async def test_the_minute_window_slides(quota_and_clock):
    quota, clock = quota_and_clock
    tenant = uuid.uuid4()
    assert [await quota.take(tenant, 2, 100) for _ in range(3)] == [None, None, "minute"]
    clock.now += MINUTE_MS - 1
    assert await quota.take(tenant, 2, 100) == "minute"  # both starts are still inside the last 60 s
    clock.now += 1
    assert await quota.take(tenant, 2, 100) is None  # the first ones left the window
    assert await quota.take(uuid.uuid4(), 2, 100) is None  # tenants do not share windows


async def test_the_hour_window_is_checked_first_and_refusals_take_no_slot(quota_and_clock):
    quota, clock = quota_and_clock
    tenant = uuid.uuid4()
    assert await quota.take(tenant, 1, 2) is None
    assert await quota.take(tenant, 1, 2) == "minute"
    clock.now += MINUTE_MS
    assert await quota.take(tenant, 1, 2) is None
    assert await quota.take(tenant, 1, 2) == "hour"  # both windows full: the hour is reported
    for _ in range(5):
        assert await quota.take(tenant, 10, 2) == "hour"
    clock.now += HOUR_MS - MINUTE_MS  # the first turn left the hour; the refusals counted for nothing
    assert await quota.take(tenant, 10, 2) is None


async def test_an_unreachable_redis_fails_open():
    client = aioredis.from_url("redis://127.0.0.1:1")
    quota = RedisTurnQuota(client, "x:")
    assert await quota.take(uuid.uuid4(), 1, 1) is None
    assert await quota.take(uuid.uuid4(), 1, 1) is None
    assert quota.redis_state.down
    await client.aclose()
