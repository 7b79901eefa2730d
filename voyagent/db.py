"""The asyncpg pool: orjson codecs for json/jsonb, and acquisition that never waits forever."""

from __future__ import annotations

import contextlib
from typing import AsyncIterator

import asyncpg
import orjson

from voyagent import jsonio

ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=lambda v: jsonio.dumps(v).decode(), decoder=orjson.loads,
                                  schema="pg_catalog", format="text")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's default reset (a second round trip on every release) unless a transaction leaked.

    Safe because the code never leaves session state behind: no SET, LISTEN, session advisory locks,
    cursors or temporary tables outside a transaction (advisory locks are the ``_xact`` kind).
    """
    if conn.is_in_transaction():
        await conn.reset()


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool whose connections speak orjson for json/jsonb."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_reset_connection, command_timeout=COMMAND_TIMEOUT,
                                     server_settings={"timezone": "UTC"})


@contextlib.asynccontextmanager
async def transaction(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection inside one transaction (acquired with a timeout)."""
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn, conn.transaction():
        yield conn


@contextlib.asynccontextmanager
async def connection(pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for reads (acquired with a timeout)."""
    async with pool.acquire(timeout=ACQUIRE_TIMEOUT) as conn:
        yield conn
