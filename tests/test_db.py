"""voyagent.db.Database: the pool behind a FIFO gate, acquisition with a timeout, transactions that commit or roll back."""

import asyncio

import pytest

from voyagent.db import Database, DatabaseUnavailable


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
