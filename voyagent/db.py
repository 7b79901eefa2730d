"""The asyncpg pool: orjson codecs for json/jsonb, and acquisition that never waits forever."""

from __future__ import annotations

import asyncio
import contextlib
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
    """Replace asyncpg's default reset query (a second round trip on every release) with nothing.

    asyncpg still rolls back a leaked transaction and drops listeners before calling this. Safe because
    the code leaves no other session state behind: no SET (a setting changed for one query is reset
    explicitly), LISTEN, session advisory locks, open cursors or temporary tables.
    """


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool whose connections speak orjson for json/jsonb, with first-come-first-served acquisition."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_reset_connection, command_timeout=COMMAND_TIMEOUT,
                                     server_settings={"timezone": "UTC"})
    _GATES[id(pool)] = asyncio.Semaphore(max_size)
    return pool


async def close_pool(pool: asyncpg.Pool) -> None:
    """Close a pool made by create_pool and forget its gate."""
    _GATES.pop(id(pool), None)
    await pool.close()


# asyncpg hands a released connection to whichever coroutine asks next, so under contention a waiter
# can be overtaken again and again (measured: p99 ~1 s at 32 clients on 10 connections). A semaphore of
# the pool's size in front of it is FIFO (Python ≥ 3.11.1), which keeps waiting times fair.
_GATES: dict[int, asyncio.Semaphore] = {}  # by id(pool): asyncpg pools take no weak references


class _Pooled:
    """``async with``: a pooled connection, acquired fairly (the pool's gate) within ``timeout`` seconds, optionally
    inside a transaction. A plain class rather than generator context managers: every request enters one."""

    __slots__ = ("_pool", "_timeout", "_in_transaction", "_gate", "_conn", "_transaction")

    def __init__(self, pool: asyncpg.Pool, timeout: float | None, in_transaction: bool) -> None:
        self._pool = pool
        self._timeout = timeout
        self._in_transaction = in_transaction
        self._gate = _GATES.get(id(pool))  # None for a pool made elsewhere (tests, scripts): plain acquisition
        self._conn: asyncpg.Connection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        gate = self._gate
        # One deadline for the gate and the pool (asyncpg's own acquire timeout would add a second timer, and
        # a third one on release).
        async with asyncio.timeout(self._timeout):
            if gate is not None:
                await gate.acquire()
            try:
                conn = await self._pool.acquire()
            except BaseException:
                if gate is not None:
                    gate.release()
                raise
        self._conn = conn
        if self._in_transaction:
            self._transaction = conn.transaction()
            try:
                await self._transaction.__aenter__()
            except BaseException:
                await self._release()
                raise
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        try:
            if self._transaction is not None:
                await self._transaction.__aexit__(exc_type, exc, tb)
        finally:
            await self._release()

    async def _release(self) -> None:
        try:
            await self._pool.release(self._conn)
        finally:
            if self._gate is not None:
                self._gate.release()


def transaction(pool: asyncpg.Pool, timeout: float | None = ACQUIRE_TIMEOUT
                ) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled connection inside one transaction (acquired fairly, with a timeout; None when the caller's own
    deadline covers the acquisition)."""
    return _Pooled(pool, timeout, in_transaction=True)


def connection(pool: asyncpg.Pool, timeout: float | None = ACQUIRE_TIMEOUT
               ) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
    """A pooled connection for reads (acquired fairly, with a timeout; None when the caller's own deadline
    covers the acquisition)."""
    return _Pooled(pool, timeout, in_transaction=False)
