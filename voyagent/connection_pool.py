"""PostgreSQL connections kept open for reuse: a stack of idle asyncpg connections, opened lazily up to a size.

Why not asyncpg's ``Pool``: borrowing and returning a connection cost it ~15 µs of CPU even with one idle (a
``PoolConnectionProxy`` per acquisition, ``asyncio.shield`` — a Task — and a timeout context on every release), and
a pooled ``SELECT 1`` ~70 µs of CPU against ~30 µs on a bare connection (``bench/query_call_bench.py``,
"borrowing"): about a third of what a ``GET /health/db`` cost the worker. :class:`voyagent.db.Database` already
queues borrowers first come, first served, with the deadline it chose, so what it needs below that is only this
stack and a rule for what comes back: a connection returns to the stack only when its borrower knows it is ready
for the next one (no statement left mid-flight, no transaction open); any other is terminated, and a new one is
opened when next needed.

Not carried over from asyncpg's pool: retiring a connection after 50,000 queries or 300 s idle. A connection the
server closed is noticed (asyncpg marks it closed when its socket ends) and dropped when it is next taken.
"""

from __future__ import annotations

from typing import Awaitable, Callable

import asyncpg

Connect = Callable[[], Awaitable[asyncpg.Connection]]


class ConnectionPool:
    """At most ``size`` connections, open or lent; the caller never borrows more than ``size`` at once (the
    database's gate has that many slots), so :meth:`acquire` never has to wait for a return."""

    __slots__ = ("_connect", "size", "_idle", "_open", "_closed")

    def __init__(self, connect: Connect, size: int) -> None:
        self._connect = connect
        self.size = size
        self._idle: list[asyncpg.Connection] = []  # a stack: the most recently used connection is warmest
        self._open = 0  # idle and lent
        self._closed = False

    @property
    def idle(self) -> int:
        return len(self._idle)

    async def fill(self, count: int) -> None:
        """Open connections until ``count`` are idle (start-up's minimum); a failure to connect is raised."""
        while len(self._idle) < min(count, self.size) and self._open < self.size:
            self._idle.append(await self._open_one())

    def take_idle(self) -> asyncpg.Connection | None:
        """The most recently returned idle connection the server has not closed, if any (no waiting)."""
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.is_closed():
                return conn
            self._open -= 1
        return None

    async def acquire(self) -> asyncpg.Connection:
        """An idle connection, else a new one."""
        if self._closed:
            raise asyncpg.InterfaceError("the connection pool is closed")
        conn = self.take_idle()
        return conn if conn is not None else await self._open_one()

    def release(self, conn: asyncpg.Connection, reusable: bool) -> None:
        """Take a connection back: onto the stack when ``reusable`` and nothing is left open on it, else ended."""
        if reusable and not self._closed and not conn.is_closed() and not conn.is_in_transaction():
            self._idle.append(conn)
            return
        self._open -= 1
        conn.terminate()

    async def close(self) -> None:
        """Close the idle connections politely; connections still lent are ended when they come back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for conn in idle:
            self._open -= 1
            try:
                await conn.close(timeout=2)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError):
                conn.terminate()

    async def _open_one(self) -> asyncpg.Connection:
        self._open += 1
        try:
            return await self._connect()
        except BaseException:
            self._open -= 1
            raise
