"""The worker's Redis connection pool, with writes bounded without a task of their own.

redis-py bounds each command's write with ``asyncio.wait_for``, which on Python 3.11 wraps the write in a task of
its own: a turn makes about ten Redis calls, and those tasks were a tenth of the worker's CPU under 50 concurrent
turns (issue 11). ``asyncio.timeout`` bounds the same write, by the same ``socket_timeout``, in the calling task.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import TimeoutError as RedisTimeoutError

MAX_CONNECTIONS = 100  # per worker


class _BoundedWrites:
    """Mixed into the pool's connection class (whichever the URL's scheme chose)."""

    socket_timeout: float | None

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if not timeout:
            return await super().send_packed_command(command, check_health)  # type: ignore[misc]
        try:
            async with asyncio.timeout(timeout):
                # A pooled connection serves one command at a time, so nothing else reads the timeout meanwhile;
                # the health check's PING, if one is due, is bounded by this timeout too.
                self.socket_timeout = None
                try:
                    await super().send_packed_command(command, check_health)  # type: ignore[misc]
                finally:
                    self.socket_timeout = timeout
        except TimeoutError:  # the connection was dropped when the write was cancelled, as redis-py does
            raise RedisTimeoutError("Timeout writing to socket") from None


def connection_pool(url: str, *, max_connections: int = MAX_CONNECTIONS, timeout: float = 2.0,
                    health_check_interval: int = 30) -> aioredis.BlockingConnectionPool:
    """A pool whose callers wait up to ``timeout`` for a free connection (a burst of thousands of streams opening
    at once waits instead of failing, as the default pool does) and whose commands give up after ``timeout``."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout, health_check_interval=health_check_interval)
    base = pool.connection_class
    pool.connection_class = type(base.__name__, (_BoundedWrites, base), {})
    return pool
