"""The database: one asyncpg pool behind a first-come-first-served gate, acquisition that never waits forever,
outages told apart.

Every use of the database goes through a :class:`Database` (``app[DATABASE]``): ``connection()``,
``transaction()`` or ``read_transaction()``. So this is the one place that can tell "PostgreSQL is gone" from
any other error raised while a connection is held (a client that hung up, a bug): only the former becomes
:class:`DatabaseUnavailable` and is reported to the database's :class:`~voyagent.degradation.DependencyState`.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import AsyncIterator

import asyncpg
import orjson

from voyagent import jsonio
from voyagent.degradation import DependencyState, Unavailable

ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0

# Raised by the server or the driver when the session itself is lost or refused, whatever the statement.
_SESSION_LOST = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                 asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CrashShutdownError)
# Failures to obtain a connection at all (refused, unreachable, authentication, pool wait timed out).
_CONNECT_FAILED = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


class DatabaseUnavailable(Unavailable):
    """PostgreSQL could not be reached or dropped the session: the request answers ``503 db_unavailable``."""


def _lost_database(exc: BaseException, conn: asyncpg.Connection) -> bool:
    """True when ``exc``, raised while ``conn`` was held, means the database (not the client, not a bug)."""
    if isinstance(exc, _SESSION_LOST):
        return True
    if isinstance(exc, TimeoutError):  # command_timeout: the server did not answer in time
        return True
    return isinstance(exc, (OSError, asyncpg.InterfaceError)) and conn.is_closed()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(name, encoder=lambda v: jsonio.dumps(v).decode(), decoder=orjson.loads,
                                  schema="pg_catalog", format="text")


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Replace asyncpg's default reset query (a second round trip on every release) with nothing.

    asyncpg still rolls back a leaked transaction and drops listeners before calling this. Safe because
    the code leaves no other session state behind: no SET (a setting for one query is ``SET LOCAL``, which
    its transaction ends), LISTEN, session advisory locks, open cursors or temporary tables.
    """


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    """A pool whose connections speak orjson for json/jsonb and use UTC."""
    return await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size, init=_init_connection,
                                     reset=_reset_connection, command_timeout=COMMAND_TIMEOUT,
                                     server_settings={"timezone": "UTC"})


class Database:
    """The app's pool, the FIFO gate in front of it and the state of PostgreSQL as this worker sees it.

    asyncpg hands a released connection to whichever coroutine asks next, so under contention a waiter can be
    overtaken again and again (measured: p99 ~1 s at 32 clients on 10 connections). A semaphore of the pool's
    size in front of it is FIFO (Python ≥ 3.11.1), which keeps waiting times fair.
    """

    def __init__(self, pool: asyncpg.Pool, size: int, state: DependencyState | None = None,
                 acquire_timeout: float = ACQUIRE_TIMEOUT) -> None:
        self.pool = pool
        self.state = state if state is not None else DependencyState("postgresql")
        self.acquire_timeout = acquire_timeout
        self._gate = asyncio.Semaphore(size)

    @classmethod
    async def connect(cls, dsn: str, min_size: int, max_size: int,
                      state: DependencyState | None = None) -> "Database":
        return cls(await create_pool(dsn, min_size, max_size), max_size, state)

    async def close(self) -> None:
        await self.pool.close()

    async def _acquire(self, timeout: float) -> asyncpg.Connection:
        async with asyncio.timeout(timeout):
            await self._gate.acquire()
        try:
            return await self.pool.acquire(timeout=timeout)
        except BaseException:
            self._gate.release()
            raise

    @contextlib.asynccontextmanager
    async def connection(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection for reads, or for a caller that opens its own transactions on it."""
        try:
            conn = await self._acquire(self.acquire_timeout if timeout is None else timeout)
        except _CONNECT_FAILED as exc:
            self.state.failure("connection", exc)
            raise DatabaseUnavailable("no database connection") from exc
        try:
            yield conn
        except Exception as exc:
            if _lost_database(exc, conn):
                self.state.failure("query", exc)
                raise DatabaseUnavailable("database session lost") from exc
            raise
        else:
            self.state.success()
        finally:
            try:
                await self.pool.release(conn)
            finally:
                self._gate.release()

    @contextlib.asynccontextmanager
    async def transaction(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends without an exception."""
        async with self.connection(timeout) as conn, conn.transaction():
            yield conn

    @contextlib.asynccontextmanager
    async def read_transaction(self, timeout: float | None = None) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection inside one read-only REPEATABLE READ transaction: every statement sees the same
        snapshot (a list page and its total agree), and a ``SET LOCAL`` ends with it."""
        async with self.connection(timeout) as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            yield conn
