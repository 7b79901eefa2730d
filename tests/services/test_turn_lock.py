"""The session turn lock (operations.md §6), in process and in real Redis."""

import uuid

import pytest
import redis.asyncio as aioredis

from voyagent.errors import ApiError
from voyagent.services.turn_lock import LocalTurnLock, RedisTurnLock, holding

TURN_TIMEOUT = 120


@pytest.fixture(params=["local", "redis"])
async def lock(request, redis_available, prefix):
    if request.param == "local":
        yield LocalTurnLock(TURN_TIMEOUT)
        return
    if not redis_available:
        pytest.skip("no Redis server at 127.0.0.1:6379; Redis-only variant")
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    yield RedisTurnLock(client, prefix, TURN_TIMEOUT)
    await client.aclose()


async def test_one_holder_at_a_time_and_only_the_holder_releases(lock):
    session, other = uuid.uuid4(), uuid.uuid4()
    token = await lock.acquire(session)
    assert token is not None and await lock.is_held(session)
    assert await lock.acquire(session) is None  # a second turn of the same session
    assert await lock.acquire(other) is not None  # other sessions are independent
    await lock.release(session, "not-the-holders-token")
    assert await lock.is_held(session)
    await lock.release(session, token)
    assert not await lock.is_held(session)
    again = await lock.acquire(session)
    assert again is not None and again != token
    await lock.release(session, token)  # a stale token does not free the new holder's lock
    assert await lock.is_held(session)


async def test_holding_is_409_while_held_and_releases_on_error(lock):
    session = uuid.uuid4()
    with pytest.raises(RuntimeError):
        async with holding(lock, session):
            assert await lock.is_held(session)
            raise RuntimeError("the block failed")
    assert not await lock.is_held(session)
    token = await lock.acquire(session)
    with pytest.raises(ApiError) as refused:
        async with holding(lock, session):
            pass
    assert (refused.value.status, refused.value.detail) == (409, "turn_in_progress")
    assert await lock.is_held(session)  # the refusal did not release the holder's lock
    await lock.release(session, token)


async def test_a_local_lock_expires_like_the_redis_key():
    lock = LocalTurnLock(TURN_TIMEOUT)
    assert lock.expiry_seconds == TURN_TIMEOUT + 30
    lock.expiry_seconds = 0  # a holder that never released (a lost task): its lock lapses
    session = uuid.uuid4()
    assert await lock.acquire(session) is not None
    assert not await lock.is_held(session)
    assert await lock.acquire(session) is not None


async def test_the_redis_key_is_named_by_the_contract_and_expires_after_timeout_plus_30s(redis_client, prefix):
    lock = RedisTurnLock(redis_client, prefix, TURN_TIMEOUT)
    session = uuid.uuid4()
    token = await lock.acquire(session)
    key = f"{prefix}turnlock:{session}"
    assert (await redis_client.get(key)).decode() == token
    assert (TURN_TIMEOUT + 29) * 1000 < await redis_client.pttl(key) <= (TURN_TIMEOUT + 30) * 1000
    await redis_client.set(key, "another-worker")  # lapsed and taken by another worker's turn
    await lock.release(session, token)
    assert (await redis_client.get(key)) == b"another-worker"


async def test_redis_failures_are_503_except_release():
    unreachable = aioredis.from_url("redis://127.0.0.1:1")
    lock = RedisTurnLock(unreachable, "x:", TURN_TIMEOUT)
    session = uuid.uuid4()
    for call in (lock.acquire(session), lock.is_held(session)):
        with pytest.raises(ApiError) as failed:
            await call
        assert (failed.value.status, failed.value.detail) == (503, "redis_unreachable")
    await lock.release(session, "token")  # reported, not raised: the key expires by itself
    assert lock.redis_state.down
    await unreachable.aclose()
