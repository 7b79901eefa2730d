"""voyagent.db.Database: the pool behind a FIFO gate, acquisition with a timeout, transactions that commit or roll back."""

import asyncio

import asyncpg
import pytest

from voyagent.db import Database, DatabaseUnavailable, FifoGate


@pytest.fixture
async def one_connection(database):
    """A Database over a pool of one connection, so every second user must wait."""
    pooled = await Database.connect(database.dsn, 1, 1)
    yield pooled
    await pooled.close()


async def _waiting(db: Database, count: int) -> None:
    """Until ``count`` coroutines wait at the gate (an event, not a delay)."""
    while len(db._gate._waiters or ()) < count:
        await asyncio.sleep(0)


async def test_waiters_get_the_connection_in_the_order_they_asked(one_connection):
    served = []

    async def use(name: str) -> None:
        async with one_connection.connection() as conn:
            served.append((name, await conn.fetchval("SELECT 1")))

    async with one_connection.connection():
        tasks = []
        for name in "abcd":
            tasks.append(asyncio.create_task(use(name)))
            await _waiting(one_connection, len(tasks))
    await asyncio.gather(*tasks)
    assert served == [("a", 1), ("b", 1), ("c", 1), ("d", 1)]


async def test_acquisition_gives_up_after_its_timeout_and_frees_its_place(one_connection):
    async with one_connection.connection():
        with pytest.raises(DatabaseUnavailable):  # answered 503 db_unavailable
            async with one_connection.connection(timeout=0.05):
                pass
    async with one_connection.connection(timeout=0.05) as conn:  # the gate let go of the timed-out waiter
        assert await conn.fetchval("SELECT 2") == 2


async def test_a_transaction_commits_on_success_and_rolls_back_on_an_exception(one_connection, db):
    await db.execute("CREATE TABLE db_test_rows (n int)")
    try:
        async with one_connection.transaction() as conn:
            await conn.execute("INSERT INTO db_test_rows VALUES (1)")
        with pytest.raises(RuntimeError):
            async with one_connection.transaction() as conn:
                await conn.execute("INSERT INTO db_test_rows VALUES (2)")
                raise RuntimeError("rolled back")
        assert [r["n"] for r in await db.fetch("SELECT n FROM db_test_rows")] == [1]
    finally:
        await db.execute("DROP TABLE db_test_rows")


async def test_a_failing_commit_is_the_error_and_the_connection_goes_back_clean(one_connection, db):
    await db.execute("CREATE TABLE db_test_unique (n int UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    try:
        with pytest.raises(asyncpg.UniqueViolationError):  # raised by COMMIT, after the block ended
            async with one_connection.transaction() as conn:
                await conn.execute("INSERT INTO db_test_unique VALUES (1), (1)")
        async with one_connection.connection() as conn:  # the only connection, outside any transaction again
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM db_test_unique") == 0
    finally:
        await db.execute("DROP TABLE db_test_unique")


async def test_a_read_transaction_is_one_read_only_snapshot(one_connection, db):
    async with one_connection.read_transaction() as conn:
        assert await conn.fetchval("SHOW transaction_isolation") == "repeatable read"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await conn.execute("CREATE TEMP TABLE db_test_never (n int)")


async def test_a_session_lost_while_held_is_database_unavailable(one_connection, db):
    with pytest.raises(DatabaseUnavailable):
        async with one_connection.connection() as conn:
            query = asyncio.create_task(conn.fetchval("SELECT pg_sleep(30)"))
            pid = conn.get_server_pid()
            while not await db.fetchval("SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", pid):
                await asyncio.sleep(0)  # until the query runs (an event, not a delay)
            await db.execute("SELECT pg_terminate_backend($1)", pid)
            await query
    async with one_connection.connection() as conn:  # a new session replaces the lost one
        assert await conn.fetchval("SELECT 3") == 3


async def test_the_gate_passes_on_a_slot_handed_to_a_waiter_that_gave_up():
    gate = FifoGate(1)
    assert gate.try_take() and not gate.try_take()
    first = asyncio.create_task(gate.take())
    second = asyncio.create_task(gate.take())
    while len(gate._waiters) < 2:
        await asyncio.sleep(0)  # both queue (an event, not a delay)
    gate.give()  # the slot goes to the first waiter...
    first.cancel()  # ...which gives up before it runs again
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(second, 5)  # the slot was passed on, not lost
    assert not gate.try_take()
    gate.give()
    assert gate.try_take()


async def test_a_session_lost_between_statements_is_database_unavailable(one_connection, db):
    """PostgreSQL ends an idle session (a restart): asyncpg marks the held connection closed, and the next
    statement fails. That is the database gone, never a 500."""
    with pytest.raises(DatabaseUnavailable):
        async with one_connection.transaction() as conn:
            pid = conn.get_server_pid()
            await db.execute("SELECT pg_terminate_backend($1)", pid)
            while not conn.is_closed():
                await asyncio.sleep(0)  # until the driver has seen the session end (an event, not a delay)
            await conn.fetchval("SELECT 1")
    async with one_connection.connection() as conn:
        assert await conn.fetchval("SELECT 3") == 3


def test_a_driver_left_unusable_by_a_fatal_from_the_server_is_the_database_lost():
    """PostgreSQL's FATAL on an idle session (a shutdown) leaves asyncpg's protocol in its error state: the next
    statement raises InternalClientError before the socket is seen closing (the race the chaos test hits)."""
    from voyagent.db import _lost_database

    error = asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress")
    assert _lost_database(error, conn=None)  # type: ignore[arg-type]  # decided by the error alone


# --- what comes back to the pool (voyagent.connection_pool) -------------------------------------------------


async def _server_pid(database: Database) -> int:
    async with database.connection() as conn:
        return conn.get_server_pid()


async def test_a_connection_comes_back_for_the_next_borrower_after_a_refused_statement(one_connection):
    pid = await _server_pid(one_connection)
    with pytest.raises(asyncpg.UndefinedTableError):  # the server answered in full: the session is fine
        async with one_connection.connection() as conn:
            await conn.fetchval("SELECT * FROM no_such_table")
    with pytest.raises(asyncpg.DataError):  # an argument the driver refused before sending
        async with one_connection.connection() as conn:
            await conn.fetchval("SELECT $1::int", "not a number")
    with pytest.raises(RuntimeError):  # the caller's own error between statements
        async with one_connection.transaction() as conn:
            await conn.execute("SELECT 1")
            raise RuntimeError("mine")
    assert await _server_pid(one_connection) == pid  # the same session every time


async def test_a_connection_cancelled_mid_statement_is_ended_and_replaced(one_connection, db):
    pid = await _server_pid(one_connection)

    async def hold() -> None:
        async with one_connection.connection() as conn:
            await conn.fetchval("SELECT pg_sleep(30)")

    task = asyncio.create_task(hold())
    while not await db.fetchval("SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1", pid):
        await asyncio.sleep(0)  # until the statement runs (an event, not a delay)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with one_connection.connection() as conn:  # not the session left mid-statement: a new one
        assert conn.get_server_pid() != pid and await conn.fetchval("SELECT 4") == 4


async def test_a_transaction_left_open_by_its_borrower_is_never_lent_again(one_connection):
    pid = await _server_pid(one_connection)
    async with one_connection.connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute("CREATE TEMPORARY TABLE leaked (n int)")
    async with one_connection.connection() as conn:
        assert conn.get_server_pid() != pid and not conn.is_in_transaction()
        assert await conn.fetchval("SELECT to_regclass('pg_temp.leaked')") is None


async def test_an_idle_connection_the_server_closed_is_dropped_when_next_taken(one_connection, db):
    pid = await _server_pid(one_connection)
    await db.execute("SELECT pg_terminate_backend($1)", pid)
    idle = one_connection.pool._idle[0]
    while not idle.is_closed():
        await asyncio.sleep(0)  # until the driver has seen the session end (an event, not a delay)
    async with one_connection.connection() as conn:
        assert conn.get_server_pid() != pid and await conn.fetchval("SELECT 5") == 5
    assert one_connection.pool.idle == 1 and one_connection.pool._open == 1


async def test_closing_the_database_ends_idle_and_returning_connections(database):
    pooled = await Database.connect(database.dsn, 2, 2)
    async with pooled.connection() as lent:
        await pooled.close()
        assert pooled.pool.idle == 0
    assert lent.is_closed()  # ended when it came back
    with pytest.raises(DatabaseUnavailable):
        async with pooled.connection():
            pass
