"""The worker's Redis pool: commands work as with redis-py's own, and a write that cannot go out gives up after the
socket timeout with redis-py's ``TimeoutError``, its connection dropped."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

from voyagent.redis_pool import connection_pool


async def test_commands_go_through_the_pool(redis_url, redis_prefix):
    client = aioredis.Redis.from_pool(connection_pool(redis_url))
    try:
        key = f"{redis_prefix}pool-check"
        await client.set(key, b"v", ex=60)
        async with client.pipeline(transaction=False) as pipe:
            pipe.get(key).delete(key)
            assert await pipe.execute() == [b"v", 1]
    finally:
        await client.aclose()


# What a fake server answers to the connection's handshake (RESP3's HELLO) and to the commands before the SET.
REPLIES = {b"PING": b"+PONG\r\n", b"HELLO": b"%1\r\n$5\r\nproto\r\n:3\r\n"}


async def test_a_write_the_server_does_not_take_times_out_and_drops_the_connection():
    """A server that answers a connection's commands until a SET comes, then stops reading: the SET's big value
    fills the socket's buffers."""
    handlers: set[asyncio.Task] = set()

    async def stop_reading_at_set(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())
        while data := await reader.read(65536):
            lines = data.split(b"\r\n")
            names = [lines[i + 2].upper() for i, line in enumerate(lines[:-2]) if line.startswith(b"*")]
            if b"SET" in names:
                await asyncio.Event().wait()  # never reads again (cancelled when the test ends)
            writer.write(b"".join(REPLIES.get(name, b"+OK\r\n") for name in names))
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(stop_reading_at_set, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    pool = connection_pool(f"redis://127.0.0.1:{port}/0", timeout=0.3)
    client = aioredis.Redis.from_pool(pool)
    try:
        assert await client.ping() is True
        connection = await pool.get_connection()
        await pool.release(connection)
        with pytest.raises(RedisTimeoutError, match="writing"):
            await client.set("k", b"x" * (64 << 20))
        assert not connection.is_connected
    finally:
        await client.aclose()
        server.close()
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
