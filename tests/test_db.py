"""Pooled connections: fair acquisition within a deadline, transactions that commit or roll back, nothing leaked."""

import asyncio

import pytest

from voyagent.db import close_pool, connection, create_pool, transaction


@pytest.fixture
async def pool(database):
    pool = await create_pool(database.dsn, 1, 2)
    yield pool
    await close_pool(pool)


@pytest.fixture
async def scratch_table(db):
    name = f"db_pool_probe_{id(db)}"
    await db.execute(f"CREATE TABLE {name} (n int)")
    yield name
    await db.execute(f"DROP TABLE {name}")


async def test_acquisition_gives_up_at_its_deadline_and_leaves_the_pool_usable(pool):
    async with connection(pool) as first, connection(pool) as second:
        assert await first.fetchval("SELECT 1") == await second.fetchval("SELECT 2") - 1
        with pytest.raises(TimeoutError):
            async with connection(pool, timeout=0.2):
                pass  # never reached: both connections are taken
    # the timed-out waiter took no slot: both connections can be held again
    async with connection(pool, timeout=1) as first, connection(pool, timeout=1) as second:
        assert {await first.fetchval("SELECT 1"), await second.fetchval("SELECT 1")} == {1}


async def test_waiters_are_served_in_arrival_order(pool):
    served: list[int] = []
    holders = [connection(pool), connection(pool)]
    for holder in holders:  # the pool is exhausted
        await holder.__aenter__()

    async def wait(n: int) -> None:
        async with connection(pool) as conn:
            served.append(n)
            await conn.fetchval("SELECT 1")

    waiters = []
    for n in range(4):
        waiters.append(asyncio.create_task(wait(n)))
        await asyncio.sleep(0)  # each waiter queues before the next one is created
    for holder in holders:
        await holder.__aexit__(None, None, None)
    await asyncio.gather(*waiters)
    assert served == [0, 1, 2, 3]


async def test_a_transaction_commits_on_success_and_rolls_back_on_error(pool, db, scratch_table):
    async with transaction(pool) as conn:
        await conn.execute(f"INSERT INTO {scratch_table} VALUES (1)")
    with pytest.raises(RuntimeError):
        async with transaction(pool) as conn:
            await conn.execute(f"INSERT INTO {scratch_table} VALUES (2)")
            raise RuntimeError("boom")
    assert [r["n"] for r in await db.fetch(f"SELECT n FROM {scratch_table}")] == [1]
    async with connection(pool) as conn:  # the connection came back outside any transaction
        assert not conn.is_in_transaction()
