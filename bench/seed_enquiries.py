"""Seed a scratch database with 1,000,000 enquiries in one tenant and 200,000 over 50 others (COPY).

Usage: python bench/seed_enquiries.py [--dsn postgresql://postgres@127.0.0.1:5432/voyagent_bench_enquiries]
       [--big 1000000] [--small 200000] [--tenants 50]

The database is dropped and recreated, migrated with the real migrations, then filled with
``copy_records_to_table``. The enquiries indexes are dropped before the COPY and rebuilt afterwards from
their own definitions (the usual bulk-load recipe), then the table is analysed and vacuumed so
index-only scans see an all-visible heap. Prints one JSON line: timings and the ids the benchmark needs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sys
import time
import uuid
from pathlib import Path

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

import asyncpg
import uuid_utils
from uuid_utils.compat import uuid7

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from voyagent.migrations import migrate_dsn  # noqa: E402

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/voyagent_bench_enquiries"

# 100 destinations, each drawn with equal probability: a destination substring matches ~1 % of rows.
CITIES = [
    "Amsterdam", "Athens", "Auckland", "Bangkok", "Barcelona", "Beijing", "Berlin", "Bogota", "Boston", "Brussels",
    "Budapest", "Buenos Aires", "Cairo", "Cape Town", "Casablanca", "Chennai", "Chicago", "Copenhagen", "Dakar",
    "Delhi", "Denver", "Doha", "Dubai", "Dublin", "Edinburgh", "Florence", "Frankfurt", "Geneva", "Goa", "Hanoi",
    "Havana", "Helsinki", "Hong Kong", "Honolulu", "Istanbul", "Jaipur", "Jakarta", "Johannesburg", "Karachi",
    "Kathmandu", "Kochi", "Kolkata", "Krakow", "Kuala Lumpur", "Kyoto", "Lagos", "Lima", "Lisbon", "London",
    "Los Angeles", "Luxor", "Lyon", "Madrid", "Male", "Manila", "Marrakesh", "Melbourne", "Mexico City", "Miami",
    "Milan", "Montreal", "Moscow", "Mumbai", "Munich", "Muscat", "Nairobi", "Naples", "New York", "Nice", "Osaka",
    "Oslo", "Paris", "Perth", "Phuket", "Prague", "Quito", "Reykjavik", "Riga", "Rio de Janeiro", "Rome",
    "San Francisco", "Santiago", "Seattle", "Seoul", "Seville", "Shanghai", "Singapore", "Sofia", "Stockholm",
    "Sydney", "Taipei", "Tallinn", "Tbilisi", "Tokyo", "Toronto", "Valencia", "Vancouver", "Venice", "Vienna",
    "Zanzibar",
]
ORIGINS = ["DEL", "BOM", "BLR", "MAA", "HYD", "CCU", "COK", "GOI", "AMD", "PNQ"]
FIRST = ["Asha", "Ravi", "Meera", "Arjun", "Priya", "Kabir", "Anika", "Vikram", "Sara", "Dev", "Nina", "Omar",
         "Lena", "Tomas", "Yuki", "Chen", "Fatima", "Jonas", "Ines", "Mateo"]
LAST = ["Rao", "Sharma", "Iyer", "Khan", "Patel", "Singh", "Das", "Nair", "Gupta", "Mehta", "Silva", "Novak",
        "Berg", "Costa", "Tanaka", "Li", "Haddad", "Weber", "Rossi", "Garcia"]
STATUSES = ["new", "new", "new", "quoted", "quoted", "booked", "cancelled"]
COLUMNS = ["id", "tenant_id", "created_by_user_id", "customer_name", "customer_email", "customer_phone", "origin",
           "destination", "depart_date", "return_date", "pax_count", "budget_amount", "budget_currency", "status",
           "notes", "session_id", "created_at", "updated_at"]
CHUNK = 100_000
FILTER_TERM = "isbo"  # only "Lisbon" contains it: ~1 % of the rows


def rows_for(tenant_id: uuid.UUID, user_id: uuid.UUID, count: int, seed: int, window: tuple[float, float] = (0, 1)
             ) -> list[tuple]:
    """``count`` plausible enquiries created in ``window`` (fractions of the two years before 2026-06-01), oldest
    first as a live table grows, in whole seconds (plenty of ties)."""
    rnd = random.Random(seed)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    td = dt.timedelta
    span = 2 * 365 * 86_400
    newest, oldest = int(span * (1 - window[1])), int(span * (1 - window[0]))
    names = [(f"{first} {last}", f"{first}.{last}".lower()) for first in FIRST for last in LAST]
    picks = rnd.choices(names, k=count)
    suffixes = rnd.choices(range(1000), k=count)
    phones = rnd.choices(range(10**8, 10**9), k=count)
    origins = rnd.choices(ORIGINS, k=count)
    destinations = rnd.choices(CITIES, k=count)
    seconds = sorted(rnd.choices(range(newest, oldest), k=count), reverse=True)
    lead_days = rnd.choices(range(10, 200), k=count)
    stays = rnd.choices(range(2, 21), k=count)
    pax = rnd.choices(range(1, 7), k=count)
    statuses = rnd.choices(STATUSES, k=count)
    dice = [rnd.random() for _ in range(count)]
    out = []
    for i in range(count):
        created = now - td(seconds=seconds[i])
        depart = created.date() + td(days=lead_days[i]) if dice[i] < 0.9 else None
        back = depart + td(days=stays[i]) if depart is not None and dice[i] < 0.63 else None
        name, mail = picks[i]
        out.append((uuid_utils.uuid7(), tenant_id, user_id, name, f"{mail}{suffixes[i]}@example.com",
                    f"+91 9{phones[i]}", origins[i], destinations[i], depart, back, pax[i], None, None, statuses[i],
                    None, None, created, created))
    return out


def copy_chunk(dsn: str, parts: list[tuple[str, str, int, tuple[float, float]]], seed: int) -> float:
    """Worker process: generate the rows of ``parts`` (tenant, user, count, window) and COPY them; returns seconds."""
    async def run() -> float:
        started = time.perf_counter()
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("SET synchronous_commit = off")
            rows: list[tuple] = []
            for n, (tenant_id, user_id, count, window) in enumerate(parts):
                rows += rows_for(uuid.UUID(tenant_id), uuid.UUID(user_id), count, seed * 1000 + n, window)
            await conn.copy_records_to_table("enquiries", records=rows, columns=COLUMNS)
        finally:
            await conn.close()
        return time.perf_counter() - started

    return asyncio.run(run())


async def recreate_database(dsn: str) -> None:
    base, name = dsn.rsplit("/", 1)
    admin = await asyncpg.connect(base + "/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def seed(dsn: str, big: int, small: int, tenants: int, workers: int = 2, deep: int = 0) -> dict:
    """``big`` rows in tenant 0, ``small`` over ``tenants`` others and, when ``deep``, that many in one more tenant
    whose user is ``bench-deep@example.com`` (the deep-offset page of issue 14 runs on 200,000 rows)."""
    timings: dict[str, float] = {}
    start = time.perf_counter()
    await recreate_database(dsn)
    await migrate_dsn(dsn)
    timings["create_and_migrate_s"] = round(time.perf_counter() - start, 2)

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SET synchronous_commit = off; SET maintenance_work_mem = '512MB'")
        tenant_ids = [uuid7() for _ in range(tenants + 1 + bool(deep))]
        user_ids = [uuid7() for _ in range(tenants + 1 + bool(deep))]
        await conn.copy_records_to_table("tenants", columns=["id", "display_name"],
                                         records=[(t, f"Bench Agency {i}") for i, t in enumerate(tenant_ids)])
        await conn.copy_records_to_table("tenant_settings", records=[(t,) for t in tenant_ids], columns=["tenant_id"])
        await conn.copy_records_to_table(
            "users", columns=["id", "tenant_id", "email", "display_name", "role", "email_verified"],
            records=[(u, t, "bench-deep@example.com" if deep and i == tenants + 1 else f"bench-{i}@example.com",
                      f"Bench User {i}", "agency_admin", True)
                     for i, (u, t) in enumerate(zip(user_ids, tenant_ids))])

        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes "
            "WHERE tablename = 'enquiries' AND indexname <> 'enquiries_pkey'")
        for index in indexes:
            await conn.execute(f'DROP INDEX "{index["indexname"]}"')

        t = time.perf_counter()
        # Two worker processes generate and COPY chunks side by side (one per core).
        # The big tenant's chunks cover consecutive time slices, so the heap is (roughly) in created_at order,
        # as in a table that grew over two years; the small tenants' rows are spread over the whole span.
        chunks: list[list[tuple[str, str, int, tuple[float, float]]]] = []
        slices = max(1, -(-big // CHUNK))
        for k in range(slices):
            count = min(CHUNK, big - k * CHUNK)
            chunks.append([(str(tenant_ids[0]), str(user_ids[0]), count, (k / slices, (k + 1) / slices))])
        if deep:
            deep_slices = max(1, -(-deep // CHUNK))
            for k in range(deep_slices):
                count = min(CHUNK, deep - k * CHUNK)
                chunks.append([(str(tenant_ids[-1]), str(user_ids[-1]), count,
                                (k / deep_slices, (k + 1) / deep_slices))])
        per_small = small // tenants
        group: list[tuple[str, str, int, tuple[float, float]]] = []
        for i in range(1, tenants + 1):
            group.append((str(tenant_ids[i]), str(user_ids[i]), per_small, (0.0, 1.0)))
            if len(group) * per_small >= CHUNK or i == tenants:
                chunks.append(group)
                group = []
        loop = asyncio.get_running_loop()
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            await asyncio.gather(*(loop.run_in_executor(pool, copy_chunk, dsn, chunk, n)
                                   for n, chunk in enumerate(chunks)))
        timings["generate_and_copy_s"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        # Two connections build indexes side by side (the GIN builds are single-threaded).
        second = await asyncpg.connect(dsn)
        try:
            await second.execute("SET maintenance_work_mem = '512MB'")
            defs = [row["indexdef"] for row in indexes]
            queues = [defs[0::2], defs[1::2]]

            async def build(c: asyncpg.Connection, items: list[str]) -> None:
                for statement in items:
                    await c.execute(statement)

            await asyncio.gather(build(conn, queues[0]), build(second, queues[1]))
        finally:
            await second.close()
        timings["index_build_s"] = round(time.perf_counter() - t, 2)

        t = time.perf_counter()
        await conn.execute("VACUUM (ANALYZE) enquiries")
        timings["vacuum_analyze_s"] = round(time.perf_counter() - t, 2)
        deep_row = await conn.fetchrow(
            "SELECT created_at, id FROM enquiries WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC "
            "OFFSET $2 LIMIT 1", tenant_ids[0], min(500_000, big - 1))
        matching = await conn.fetchval(
            "SELECT count(*) FROM enquiries WHERE tenant_id = $1 AND destination ILIKE $2",
            tenant_ids[0], f"%{FILTER_TERM}%")
    finally:
        await conn.close()
    timings["total_s"] = round(time.perf_counter() - start, 2)
    return {
        "dsn": dsn, "rows": big + (small // tenants) * tenants + deep, "timings": timings,
        "big_tenant_id": str(tenant_ids[0]), "big_user_id": str(user_ids[0]), "big_user_email": "bench-0@example.com",
        "deep_position": [deep_row["created_at"].isoformat(), str(deep_row["id"])], "filter_term": FILTER_TERM,
        "filter_matches": matching,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=DEFAULT_DSN)
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=200_000)
    parser.add_argument("--tenants", type=int, default=50)
    parser.add_argument("--workers", type=int, default=2, help="generator/COPY processes")
    parser.add_argument("--deep", type=int, default=0, help="rows of one more tenant (bench-deep@example.com)")
    args = parser.parse_args()
    result = asyncio.run(seed(args.dsn, args.big, args.small, args.tenants, args.workers, args.deep))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
