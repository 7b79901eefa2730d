"""The token store and jti denylist: the same behaviour in Redis and in-process; Redis failures."""

import asyncio
import logging
import time
import uuid

import pytest
import redis.asyncio as aioredis

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


async def test_tokens_expire_with_their_ttl(store):
    await store.put("email_verify", "short-lived", {"user_id": "u-4"}, 1)
    await asyncio.sleep(1.2)
    assert await store.take("email_verify", "short-lived") is None


async def test_a_jti_is_denied_until_its_exp(store):
    jti = uuid.uuid4().hex
    exp = int(time.time()) + 2
    assert await store.is_revoked(jti) is False
    assert await store.revoke_jti(jti, exp) is True
    assert await store.revoke_jti(jti, exp) is False  # already denied: a second use loses
    assert await store.is_revoked(jti) is True
    assert await store.is_revoked(uuid.uuid4().hex) is False
    await asyncio.sleep(exp - time.time() + 0.3)
    assert await store.is_revoked(jti) is False


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
