"""What a query call costs on top of asyncpg: aiosql's own generated call vs voyagent.queries vs raw asyncpg, and
borrowing the connection for it: asyncpg's Pool vs voyagent's Database (voyagent/connection_pool.py).

    python -m bench.query_call_bench [--calls 20000] [--rounds 7]

The hot query is ``get_user_by_id`` (GET /auth/me, the TOTP token form). Three measurements, each over
``--rounds`` alternating rounds (the variants take turns, so they share the machine's state) and reported as
the best round per variant:

* ``overhead`` — the call path alone: an asyncpg connection whose ``fetchrow`` answers at once, so the figure
  is what the loader adds per call (argument mapping, dispatch, any connection handling: aiosql's adapter
  runs ``dir(conn)`` on every call to tell a pool from a connection);
* ``database`` — the same calls on a real connection to a scratch database, opened as the app's pool opens them
  (one round trip each), so the overhead is seen against what a query really costs;
* ``borrowing`` — ``SELECT 1`` on a connection borrowed for it and given back: from asyncpg's ``Pool`` (without
  its reset query, as the ceiling's), from voyagent's ``Database``, and on the connection itself.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from typing import Any, Awaitable, Callable

import aiosql
import asyncpg

from bench.ceiling import no_reset
from bench.harness import scratch_database
from voyagent import resources
from voyagent.app import load_queries
from voyagent.db import Database, connect
from voyagent.ids import new_id

Call = Callable[[Any], Awaitable[Any]]


class _InstantConnection(asyncpg.Connection):
    """An asyncpg connection (same class, same attributes) whose ``fetchrow`` answers at once: what remains of a
    call is the loader's own work. Never connected, so it is made without ``__init__``."""

    async def fetchrow(self, query: str, *args: Any, **kwargs: Any) -> Any:
        return None

    def __del__(self) -> None:  # nothing to close
        pass


def _variants(user_id: uuid.UUID) -> dict[str, Call]:
    ours = load_queries()
    stock = aiosql.from_path(resources.sql_dir(), "asyncpg", mandatory_parameters=False, attribute=None)
    text = ours.get_user_by_id.sql

    async def voyagent_queries(conn: Any) -> Any:
        return await ours.get_user_by_id(conn, id=user_id)

    async def aiosql_generated(conn: Any) -> Any:
        return await stock.get_user_by_id(conn, id=user_id)

    async def raw_asyncpg(conn: Any) -> Any:
        return await conn.fetchrow(text, user_id)

    return {"voyagent.queries": voyagent_queries, "aiosql call": aiosql_generated, "raw asyncpg": raw_asyncpg}


async def _time(call: Call, conn: Any, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await call(conn)
    return (time.perf_counter() - started) / calls * 1e6  # µs per call


async def _alternate(variants: dict[str, Call], conn: Any, calls: int, rounds: int) -> dict[str, float]:
    for call in variants.values():  # warm-up (statement cache, branch predictors)
        await _time(call, conn, max(1, calls // 10))
    best = {name: float("inf") for name in variants}
    names = list(variants)
    for round_no in range(rounds):
        order = names[round_no % len(names):] + names[:round_no % len(names)]  # rotate who goes first
        for name in order:
            best[name] = min(best[name], await _time(variants[name], conn, calls))
    return best


def _borrowers(pool: asyncpg.Pool, database: Database) -> dict[str, Call]:
    def borrowing(borrow: Callable[[], Any]) -> Call:
        async def call(conn: Any) -> Any:
            async with borrow() as pooled:
                return await pooled.fetchval("SELECT 1")
        return call

    async def raw_asyncpg(conn: Any) -> Any:
        return await conn.fetchval("SELECT 1")

    return {"asyncpg Pool": borrowing(pool.acquire), "voyagent Database": borrowing(database.connection),
            "raw asyncpg": raw_asyncpg}


def _print(title: str, best: dict[str, float]) -> None:
    floor = best["raw asyncpg"]
    print(title)
    for name, micros in best.items():
        print(f"  {name:<18} {micros:8.2f} µs/call   (+{micros - floor:5.2f} µs over raw asyncpg)")


async def _run(dsn: str, calls: int, rounds: int) -> None:
    setup = await asyncpg.connect(dsn)
    try:
        tenant_id = await setup.fetchval("INSERT INTO tenants (id, display_name) VALUES ($1, 'Bench') RETURNING id",
                                         new_id())
        user_id = await setup.fetchval(
            "INSERT INTO users (id, tenant_id, email, display_name, role, password_hash, email_verified) "
            "VALUES ($1, $2, 'bench@example.com', 'Bench', 'agent', NULL, true) RETURNING id", new_id(), tenant_id)
    finally:
        await setup.close()
    variants = _variants(user_id)
    _print(f"overhead ({calls} calls per round, best of {rounds})",
           await _alternate(variants, object.__new__(_InstantConnection), calls, rounds))
    conn = await connect(dsn)  # a connection as the app's pool opens them
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1, reset=no_reset)  # as the ceiling's pool
    database = await Database.connect(dsn, 1, 1)
    try:
        _print(f"database ({calls // 10} calls per round, best of {rounds})",
               await _alternate(variants, conn, calls // 10, rounds))
        _print(f"borrowing ({calls // 10} calls per round, best of {rounds})",
               await _alternate(_borrowers(pool, database), conn, calls // 10, rounds))
    finally:
        await conn.close()
        await pool.close()
        await database.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    with scratch_database() as dsn:
        asyncio.run(_run(dsn, args.calls, args.rounds))


if __name__ == "__main__":
    main()
