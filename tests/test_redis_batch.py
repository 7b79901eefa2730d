"""Batched script calls (voyagent/redis_batch.py) against a real Redis: calls made together leave as one pipeline,
each caller gets its own reply or error, a script Redis forgot is loaded again, a lost connection fails the
batch's callers only."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from voyagent.redis_batch import batcher_of, register_batched_script
from voyagent.redis_pool import connection_pool
from tests.private_redis import private_redis  # noqa: F401 (a fixture)

# KEYS[1] counter; ARGV[1] 'fail' → an error reply, else the counter after INCR and the argument back.
SCRIPT = """
if ARGV[1] == 'fail' then return redis.error_reply('asked to fail') end
return {redis.call('INCR', KEYS[1]), ARGV[1]}
"""


class CountingPipelines(aioredis.Redis):
    """A client that counts the pipelines it hands out: how many round trips the batches made."""

    pipelines = 0

    def pipeline(self, *args, **kwargs):
        self.pipelines += 1
        return super().pipeline(*args, **kwargs)


@pytest.fixture
async def client(redis_url):
    client = CountingPipelines.from_pool(connection_pool(redis_url))
    yield client
    await client.aclose()


@pytest.fixture
async def counter(client, redis_prefix):
    key = f"{redis_prefix}batch-counter"
    yield key
    await client.delete(key)


async def test_calls_made_together_leave_as_one_pipeline_each_with_its_reply(client, counter):
    script = register_batched_script(client, SCRIPT)
    await client.script_load(SCRIPT)  # a script Redis knows: no call goes again alone
    replies = await asyncio.gather(*(script(keys=[counter], args=[f"call {i}"]) for i in range(10)))
    assert replies == [[i + 1, f"call {i}".encode()] for i in range(10)]  # in call order
    assert client.pipelines == 1
    assert await script(keys=[counter], args=["alone"]) == [11, b"alone"]  # a quiet loop: a batch of one
    assert client.pipelines == 2


async def test_an_error_reply_is_its_callers_only(client, counter):
    script = register_batched_script(client, SCRIPT)
    await client.script_load(SCRIPT)
    replies = await asyncio.gather(script(keys=[counter], args=["a"]), script(keys=[counter], args=["fail"]),
                                   script(keys=[counter], args=["b"]), return_exceptions=True)
    assert replies[0] == [1, b"a"] and replies[2] == [2, b"b"]
    assert isinstance(replies[1], ResponseError) and "asked to fail" in str(replies[1])
    assert client.pipelines == 1


async def test_after_a_redis_restart_the_scripts_are_loaded_again(private_redis):
    client = aioredis.Redis.from_pool(connection_pool(private_redis.url))
    try:
        script = register_batched_script(client, SCRIPT)
        assert await script(keys=["counter"], args=["first"]) == [1, b"first"]
        private_redis.stop()
        private_redis.start()  # no scripts, no counter; the pooled connection is stale
        replies = await asyncio.gather(*(script(keys=["counter"], args=[str(i)]) for i in range(3)))
        assert sorted(reply[0] for reply in replies) == [1, 2, 3]
        assert await client.script_exists(script.sha) == [True]
    finally:
        await client.aclose()


async def test_a_caller_cancelled_meanwhile_leaves_the_others_their_replies(client, counter):
    script = register_batched_script(client, SCRIPT)
    await client.script_load(SCRIPT)
    calls = [asyncio.ensure_future(script(keys=[counter], args=[str(i)])) for i in range(3)]
    await asyncio.sleep(0)  # queued, not sent yet
    calls[1].cancel()
    done = await asyncio.gather(*calls, return_exceptions=True)
    assert isinstance(done[1], asyncio.CancelledError)
    assert [reply[1] for reply in (done[0], done[2])] == [b"0", b"2"]


async def test_a_call_into_the_callers_pipeline_goes_there(client, counter):
    script = register_batched_script(client, SCRIPT)
    async with client.pipeline(transaction=False) as pipe:
        await script(keys=[counter], args=["piped"], client=pipe)
        assert await pipe.execute() == [[1, b"piped"]]


async def test_an_unreachable_redis_fails_every_caller_of_the_batch():
    client = aioredis.Redis.from_pool(connection_pool("redis://127.0.0.1:1/0", timeout=0.5))
    try:
        script = register_batched_script(client, SCRIPT)
        replies = await asyncio.gather(*(script(keys=["k"], args=[str(i)]) for i in range(3)),
                                       return_exceptions=True)
        assert all(isinstance(reply, RedisConnectionError) for reply in replies)
    finally:
        await client.aclose()


async def test_one_batcher_per_client_gone_with_it(client, redis_url):
    other = aioredis.Redis.from_pool(connection_pool(redis_url))
    assert batcher_of(client) is batcher_of(client)
    assert batcher_of(client) is not batcher_of(other)
    assert register_batched_script(client, SCRIPT).batcher is batcher_of(client)
    gone = weakref.ref(batcher_of(other))
    await other.aclose()
    del other
    gc.collect()
    assert gone() is None
