"""The database: a pool of asyncpg connections behind a first-come-first-served gate, acquisition that never waits
forever, outages told apart.

Every use of the database goes through a :class:`Database` (``app[DATABASE]``): ``connection()``,
``transaction()`` or ``read_transaction()``. So this is the one place that can tell "PostgreSQL is gone" from
any other error raised while a connection is held (a client that hung up, a bug): only the former becomes
:class:`DatabaseUnavailable` and is reported to the database's :class:`~voyagent.degradation.DependencyState`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
from typing import Any

import asyncpg
import orjson

from voyagent import jsonio
from voyagent.connection_pool import ConnectionPool
from voyagent.degradation import DependencyState, Unavailable

ACQUIRE_TIMEOUT = 5.0
COMMAND_TIMEOUT = 30.0

# Raised by the server or the driver when the session itself is lost or refused, whatever the statement.
# InternalClientError: the server's FATAL (a shutdown) reached the driver while the connection was idle, which
# leaves asyncpg's protocol refusing every later statement (e.g. the COMMIT) until the socket closes.
_SESSION_LOST = (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError,
                 asyncpg.exceptions.AdminShutdownError, asyncpg.exceptions.CrashShutdownError,
                 asyncpg.InternalClientError)
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


async def connect(dsn: str) -> asyncpg.Connection:
    """One connection as the app uses them: orjson for json/jsonb, UTC, every statement bounded.

    Nothing is reset between borrowers (asyncpg's pool sends a reset query on every release): the code leaves no
    session state behind — a setting for one query is ``SET LOCAL``, which its transaction ends; no LISTEN,
    session advisory locks, open cursors or temporary tables — and a connection comes back to the pool only with
    no transaction open (voyagent.connection_pool)."""
    conn = await asyncpg.connect(dsn, command_timeout=COMMAND_TIMEOUT, server_settings={"timezone": "UTC"})
    try:
        await _init_connection(conn)
    except BaseException:
        conn.terminate()
        raise
    return conn


class Database:
    """The app's connections, the FIFO gate in front of them and the state of PostgreSQL as this worker sees it.

    The gate has one slot per connection and hands them out first come, first served (asyncpg's pool hands a
    released connection to whichever coroutine asks next, so under contention a waiter could be overtaken again
    and again: p99 ~1 s at 32 clients on 10 connections), so the pool below it never has to queue anyone.
    """

    def __init__(self, pool: ConnectionPool, state: DependencyState | None = None,
                 acquire_timeout: float = ACQUIRE_TIMEOUT) -> None:
        self.pool = pool
        self.state = state if state is not None else DependencyState("postgresql")
        self.acquire_timeout = acquire_timeout
        self._gate = FifoGate(pool.size)

    @classmethod
    async def connect(cls, dsn: str, min_size: int, max_size: int,
                      state: DependencyState | None = None) -> "Database":
        pool = ConnectionPool(functools.partial(connect, dsn), max_size)
        try:
            await pool.fill(min_size)
        except BaseException:
            await pool.close()
            raise
        return cls(pool, state)

    async def close(self) -> None:
        await self.pool.close()

    async def _acquire(self, timeout: float | None) -> asyncpg.Connection:
        gate = self._gate
        if gate.try_take():
            conn = self.pool.take_idle()
            if conn is not None:  # the common case: nothing to wait for, so no timer to arm and cancel
                return conn
            try:
                async with asyncio.timeout(timeout):
                    return await self.pool.acquire()  # opens one
            except BaseException:
                gate.give()
                raise
        async with asyncio.timeout(timeout):  # one deadline for the gate and the connection together
            await gate.take()
            try:
                return await self.pool.acquire()
            except BaseException:
                gate.give()
                raise

    def connection(self, timeout: float | None = None) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection for reads, or for a caller that opens its own transactions on it."""
        return _Held(self, timeout, None)

    def transaction(self, timeout: float | None = None) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection inside one transaction, committed when the block ends without an exception."""
        return _Held(self, timeout, {})

    def read_transaction(self, timeout: float | None = None
                         ) -> contextlib.AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled connection inside one read-only REPEATABLE READ transaction: every statement sees the same
        snapshot (a list page and its total agree), and a ``SET LOCAL`` ends with it."""
        return _Held(self, timeout, _READ_ONLY_SNAPSHOT)


_READ_ONLY_SNAPSHOT = {"isolation": "repeatable_read", "readonly": True}


class FifoGate:
    """``size`` slots handed out first come, first served (as ``asyncio.Semaphore`` does), with a synchronous
    ``try_take`` for the common case where nobody waits: no coroutine, no future."""

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody queues before us."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, queueing behind earlier takers."""
        if self.try_take():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.give()  # handed a slot just as we gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # give() may have dropped it already
                    self._waiters.remove(waiter)
            raise

    def give(self) -> None:
        """Return a slot: straight to the first waiter still waiting, else to the free count."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1


class _Held:
    """``async with``: one connection of a :class:`Database`, optionally inside a transaction.

    A plain class rather than generator context managers (almost every request enters one). On the way out:
    the transaction ends (commit, or rollback on an exception), an exception that means the database was lost
    becomes :class:`DatabaseUnavailable`, and the connection goes back to the pool and the gate.
    """

    __slots__ = ("_database", "_timeout", "_transaction_options", "_conn", "_transaction")

    def __init__(self, database: Database, timeout: float | None, transaction_options: dict[str, Any] | None) -> None:
        self._database = database
        self._timeout = database.acquire_timeout if timeout is None else timeout
        self._transaction_options = transaction_options
        self._conn: asyncpg.Connection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None

    async def __aenter__(self) -> asyncpg.Connection:
        database = self._database
        try:
            conn = self._conn = await database._acquire(self._timeout)
        except _CONNECT_FAILED as exc:
            database.state.failure("connection", exc)
            raise DatabaseUnavailable("no database connection") from exc
        if self._transaction_options is not None:
            transaction = conn.transaction(**self._transaction_options)
            try:
                await transaction.__aenter__()
            except BaseException as exc:
                await self.__aexit__(type(exc), exc, exc.__traceback__)
                raise
            self._transaction = transaction
        return conn

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        conn = self._conn
        assert conn is not None
        error = exc
        try:
            if self._transaction is not None:
                try:
                    await self._transaction.__aexit__(exc_type, exc, tb)
                except BaseException as raised:  # the commit or the rollback failed: that is the error now
                    error = raised
            if error is None:
                self._database.state.success()
            elif isinstance(error, Exception) and _lost_database(error, conn):
                self._database.state.failure("query", error)
                raise DatabaseUnavailable("database session lost") from error
            elif error is not exc:
                raise error
        finally:
            try:
                self._database.pool.release(conn, reusable=error is None or _settled(error))
            finally:
                self._database._gate.give()


def _settled(error: BaseException) -> bool:
    """Whether the connection is ready for the next borrower after ``error`` ended its use: a statement the server
    refused has been answered in full, an argument the driver refused was never sent (asyncpg raises a
    ``PostgresError`` for both), and an error of the caller's own came between statements. A cancellation, a
    timeout or a driver or socket error may have left a statement mid-flight."""
    return isinstance(error, Exception) and not isinstance(error, _UNSETTLED)


_UNSETTLED = (TimeoutError, OSError, asyncpg.InterfaceError, asyncpg.InternalClientError)
