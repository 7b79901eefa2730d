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


async def test_the_live_marker_and_the_quota_in_one_script_count_like_take(redis_url, redis_prefix):
    """The turn's start (event_log.begin_taking_quota): the marker is written whatever the verdict; the windows are
    the ones ``take`` uses; an unreachable Redis is raised (503), not failed open."""
    from voyagent.errors import ApiError
    from voyagent.services.event_log import RedisEventLog, session_keys

    client = aioredis.from_url(redis_url)
    prefix = f"{redis_prefix}{secrets.token_hex(4)}:"
    clock = Clock()
    quota, log = RedisTurnQuota(client, prefix, clock=clock), RedisEventLog(client, prefix, 200, 120)
    tenant, session = uuid.uuid4(), uuid.uuid4()
    verdicts = [await log.begin_taking_quota(session, f"t-{n:012x}", quota, tenant, 2, 100) for n in range(3)]
    assert verdicts == [None, None, "minute"]
    # the two starts took a slot each, the refusal none: a limit of 3 has one left
    assert [await quota.take(tenant, 3, 100) for _ in range(2)] == [None, "minute"]
    live = session_keys(prefix, session)[2]
    assert await client.get(live) == b"t-000000000002" and 0 < await client.pttl(live) <= 150_000
    await client.aclose()
    down = aioredis.from_url("redis://127.0.0.1:1")
    with pytest.raises(ApiError) as failed:
        await RedisEventLog(down, "x:", 200, 120).begin_taking_quota(session, "t-1", RedisTurnQuota(down, "x:"),
                                                                     tenant, 1, 1)
    assert (failed.value.status, failed.value.detail) == (503, "redis_unreachable")
    await down.aclose()
