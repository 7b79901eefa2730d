"""The token store and jti denylist: the same behaviour in Redis and in-process; Redis failures."""

import asyncio
import logging
import time
import uuid

import pytest
import redis.asyncio as aioredis

from tests.clock import FakeClock
from tests.conftest import wait_until
from voyagent.errors import ApiError
from voyagent.services.token_store import LocalTokenStore, RedisTokenStore, create_token_store


@pytest.fixture(params=["local", "redis"])
async def store(request, redis_prefix):
    if request.param == "local":
        yield LocalTokenStore()
        return
    redis_url = request.getfixturevalue("redis_url")
    client = aioredis.from_url(redis_url)
    yield RedisTokenStore(client, f"{redis_prefix}store-{uuid.uuid4().hex[:8]}:")
    await client.aclose()


async def test_take_returns_the_value_once(store):
    token = uuid.uuid4().hex
    await store.put("email_verify", token, {"user_id": "u-1", "email": "a@example.com"}, 60)
    assert await store.take("email_verify", token) == {"user_id": "u-1", "email": "a@example.com"}
    assert await store.take("email_verify", token) is None
    assert await store.take("email_verify", "never-stored") is None


async def test_kinds_are_separate_namespaces_and_unknown_kinds_are_refused(store):
    await store.put("pwreset", "same-token", {"user_id": "u-2"}, 60)
    assert await store.take("email_verify", "same-token") is None
    assert await store.take("pwreset", "same-token") == {"user_id": "u-2"}
    with pytest.raises(ValueError):
        await store.put("invite", "t", {}, 60)


async def test_concurrent_takes_hand_the_token_to_exactly_one(store):
    await store.put("pwreset", "contested", {"user_id": "u-3"}, 60)
    results = await asyncio.gather(*(store.take("pwreset", "contested") for _ in range(10)))
    assert [r for r in results if r is not None] == [{"user_id": "u-3"}]


async def test_a_jti_is_denied_and_a_second_revocation_loses(store):
    jti = uuid.uuid4().hex
    exp = int(time.time()) + 100
    assert await store.is_revoked(jti) is False
    assert await store.revoke_jti(jti, exp) is True
    assert await store.revoke_jti(jti, exp) is False  # already denied: a second use loses
    assert await store.is_revoked(jti) is True
    assert await store.is_revoked(uuid.uuid4().hex) is False


# Expiry without waiting for it: the in-process store reads an injected clock; Redis keys carry their
# expiry, which the tests read back, then cut short (PEXPIRE) and wait for Redis to drop them.


async def test_in_process_tokens_expire_with_their_ttl():
    clock = FakeClock(1_000_000.0)
    store = LocalTokenStore(clock)
    await store.put("email_verify", "first", {"user_id": "u-4"}, 60)
    await store.put("email_verify", "second", {"user_id": "u-4"}, 60)
    clock.set(1_000_059.999)
    assert await store.take("email_verify", "first") == {"user_id": "u-4"}
    clock.set(1_000_060.0)
    assert await store.take("email_verify", "second") is None


async def test_an_in_process_jti_is_denied_until_its_exp():
    clock = FakeClock(1_000_000.0)
    store = LocalTokenStore(clock)
    jti = uuid.uuid4().hex
    assert await store.revoke_jti(jti, 1_000_100) is True
    clock.set(1_000_099.999)
    assert await store.is_revoked(jti) is True
    assert await store.revoke_jti(jti, 1_000_100) is False
    clock.set(1_000_100.0)
    assert await store.is_revoked(jti) is False
    assert await store.revoke_jti(jti, 1_000_100) is True  # its exp has passed: nothing left to deny


async def _expire_now(client, key: str) -> None:
    """Cut the key's remaining life short and wait until Redis has dropped it."""
    assert await client.pexpire(key, 1)

    async def gone() -> bool:
        return not await client.exists(key)

    await wait_until(gone, what=f"redis dropping {key}")


@pytest.fixture
async def redis_store(redis_url, redis_prefix):
    """A Redis store under a prefix of its own; ``store.redis`` reads its keys back."""
    client = aioredis.from_url(redis_url)
    yield RedisTokenStore(client, f"{redis_prefix}expiry-{uuid.uuid4().hex[:8]}:")
    await client.aclose()


async def test_redis_tokens_expire_with_their_ttl(redis_store):
    key = f"{redis_store.prefix}email_verify:short-lived"
    await redis_store.put("email_verify", "short-lived", {"user_id": "u-4"}, 60)
    assert 30_000 < await redis_store.redis.pttl(key) <= 60_000
    await _expire_now(redis_store.redis, key)
    assert await redis_store.take("email_verify", "short-lived") is None


async def test_a_redis_jti_is_denied_until_its_exp(redis_store):
    jti, exp = uuid.uuid4().hex, int(time.time()) + 100
    assert await redis_store.revoke_jti(jti, exp) is True
    key = f"{redis_store.prefix}revoked_jti:{jti}"
    assert await redis_store.redis.expiretime(key) == exp  # Redis forgets it exactly at exp
    assert await redis_store.is_revoked(jti) is True
    await _expire_now(redis_store.redis, key)
    assert await redis_store.is_revoked(jti) is False


async def test_an_already_expired_jti_is_not_stored(store):
    jti = uuid.uuid4().hex
    assert await store.revoke_jti(jti, int(time.time()) - 5) is True
    assert await store.is_revoked(jti) is False


async def test_totp_attempts_are_counted_atomically_per_jti(store):
    jti, other = uuid.uuid4().hex, uuid.uuid4().hex
    exp = int(time.time()) + 300
    counts = await asyncio.gather(*(store.count_totp_attempt(jti, exp) for _ in range(20)))
    assert sorted(counts) == list(range(1, 21))  # every caller sees its own number
    assert await store.count_totp_attempt(other, exp) == 1


async def test_a_totp_counter_past_its_exp_starts_over(store):
    jti = uuid.uuid4().hex
    gone = int(time.time()) - 1
    assert await store.count_totp_attempt(jti, gone) == 1
    assert await store.count_totp_attempt(jti, gone) == 1


@pytest.mark.redis
async def test_redis_keys_are_the_documented_ones(redis_url, redis_prefix):
    client = aioredis.from_url(redis_url)
    prefix = f"{redis_prefix}keys-{uuid.uuid4().hex[:8]}:"
    store = create_token_store(client, prefix)
    try:
        await store.put("email_verify", "tok1", {"user_id": "u"}, 100)
        await store.put("pwreset", "tok2", {"user_id": "u"}, 100)
        await store.revoke_jti("j" * 32, int(time.time()) + 100)
        exp = int(time.time()) + 300
        await store.count_totp_attempt("t" * 32, exp)
        keys = sorted(k.decode() for k in await client.keys(f"{prefix}*"))
        assert keys == [f"{prefix}email_verify:tok1", f"{prefix}pwreset:tok2", f"{prefix}revoked_jti:{'j' * 32}",
                        f"{prefix}totp_fail:{'t' * 32}"]
        assert 98 <= await client.ttl(f"{prefix}revoked_jti:{'j' * 32}") <= 100
        assert await client.expiretime(f"{prefix}totp_fail:{'t' * 32}") == exp
    finally:
        await client.aclose()


async def test_without_redis_the_store_is_in_process():
    assert isinstance(create_token_store(None, "voyagent:"), LocalTokenStore)


async def test_unreachable_redis_fails_reads_open_and_writes_with_503(caplog):
    client = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    store = RedisTokenStore(client, "voyagent-test:")
    try:
        with caplog.at_level(logging.WARNING, logger="voyagent.token_store"):
            assert await store.is_revoked("a" * 32) is False
        assert any("fail open" in r.getMessage() for r in caplog.records)
        for call in (store.revoke_jti("a" * 32, int(time.time()) + 60), store.put("pwreset", "t", {}, 60),
                     store.take("email_verify", "t"), store.count_totp_attempt("a" * 32, int(time.time()) + 60)):
            with pytest.raises(ApiError) as caught:
                await call
            assert (caught.value.status, caught.value.detail) == (503, "redis_unreachable")
    finally:
        await client.aclose()
