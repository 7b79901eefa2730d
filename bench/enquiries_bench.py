"""Enquiries benchmark: GET /enquiries on 1,000,000 rows of one tenant (+200,000 in 50 others), one worker.

    .venv/bin/python -m bench.enquiries_bench [--reseed] [--seconds 10] [--rounds 2] [--connections 8]
        [--big 1000000 --small 200000 --tenants 50] [--offset 150000]

Seeds the scratch database with bench/seed_enquiries.py unless it is already there, runs ``voyagent serve``
(one worker, user rate limit disabled so the bucket is not what we measure) and the ceiling
(bench/ceiling_enquiries.py: bare aiohttp + asyncpg, same SQL) as subprocesses, and drives both alternately
from this process with a bounded aiohttp load driver over loopback. Three requests, each with the default
``include_total=true`` and with ``include_total=false``:

* the first page ``?limit=50``;
* a cursor page 500,000 rows deep (at most three quarters of the tenant's rows);
* an offset page ``?offset=150000`` (the skip runs on an index-only scan, then the page's rows are read by id);
* ``?destination=isbo`` (only "Lisbon" contains it: ~1 % of the tenant) — its total is counted by the first
  request and then validated by the tenant's change counter; a last case makes every request count anew.

Reported per request: rps and p50/p99 under ``--connections`` concurrent clients, p50/p99 of one client
alone (service latency), and the rps ratio to the ceiling. Targets: ratio ≥ 0.7; deep p50 ≤ 1.5 × first
p50; filtered p50 < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import datetime as dt
import itertools
import time
from dataclasses import dataclass
from typing import Callable
from urllib.parse import urlencode

import aiohttp
import asyncpg

from bench.harness import SECRET, ceiling_server, load_arguments, voyagent_server
from bench.seed_enquiries import DEFAULT_DSN, FILTER_TERM, seed
from voyagent.config import Settings
from voyagent.services.tokens import mint_access_token

DEEP = 500_000


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int

    def row(self) -> str:
        return (f"{self.rps:8.1f} rps  p50 {self.p50_ms:7.2f} ms  p99 {self.p99_ms:7.2f} ms"
                f"  ({self.requests} requests, {self.failures} non-200)")


async def drive(url: str | Callable[[], str], connections: int, seconds: float, headers: dict[str, str]) -> Run:
    """``connections`` clients issuing requests back to back for ``seconds``; latencies of 200s only.
    ``url`` may be a function returning the next request's URL."""
    next_url = url if callable(url) else (lambda: url)
    latencies: list[float] = []
    failures = 0
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(next_url(), headers=headers) as response:
                await response.read()
                if response.status != 200:
                    failures += 1
                    continue
            latencies.append((time.perf_counter() - started) * 1000)

    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector) as session:
        began = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(connections)))
        elapsed = time.perf_counter() - began
    if len(latencies) < 2:
        return Run(0.0, float("nan"), float("nan"), len(latencies), failures)
    cuts = statistics.quantiles(latencies, n=100)
    return Run(len(latencies) / elapsed, cuts[49], cuts[98], len(latencies), failures)


def best(runs: list[Run]) -> Run:
    return max(runs, key=lambda r: r.rps)


async def bench_pair(ours: str | Callable[[], str], bare: str, headers: dict[str, str],
                     args: argparse.Namespace) -> dict[str, Run]:
    """Alternate ours and the ceiling; keep each side's best round (less noise from the shared machine)."""
    await drive(ours, args.connections, 1.0, headers)
    await drive(bare, args.connections, 1.0, {})
    mine, ceil, alone, ceil_alone = [], [], [], []
    for _ in range(args.rounds):
        mine.append(await drive(ours, args.connections, args.seconds, headers))
        ceil.append(await drive(bare, args.connections, args.seconds, {}))
        alone.append(await drive(ours, 1, args.seconds / 2, headers))
        ceil_alone.append(await drive(bare, 1, args.seconds / 2, {}))
    return {"ours": best(mine), "ceiling": best(ceil), "ours_alone": min(alone, key=lambda r: r.p50_ms),
            "ceiling_alone": min(ceil_alone, key=lambda r: r.p50_ms)}


def print_pair(label: str, pair: dict[str, Run]) -> None:
    ratio = pair["ours"].rps / pair["ceiling"].rps if pair["ceiling"].rps else float("nan")
    print(f"{label}\n  voyagent {pair['ours'].row()}\n  ceiling  {pair['ceiling'].row()}\n"
          f"  ratio    {ratio:.2f} (target ≥ 0.70: {'met' if ratio >= 0.7 else 'MISSED'})\n"
          f"  1 client voyagent p50 {pair['ours_alone'].p50_ms:.2f} ms p99 {pair['ours_alone'].p99_ms:.2f}"
          f" ms | ceiling p50 {pair['ceiling_alone'].p50_ms:.2f} ms", flush=True)


async def bench_info(dsn: str) -> dict:
    conn = await asyncpg.connect(dsn)
    try:
        user = await conn.fetchrow("SELECT id, tenant_id, email FROM users WHERE email = 'bench-0@example.com'")
        rows = await conn.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1", user["tenant_id"])
        depth = min(DEEP, rows * 3 // 4)  # a cursor from the row before must exist
        deep = await conn.fetchrow(
            "SELECT created_at, id FROM enquiries WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC "
            "OFFSET $2 LIMIT 1", user["tenant_id"], depth - 1)
    finally:
        await conn.close()
    return {"user": user, "deep": deep, "depth": depth, "rows": rows}


async def database_ready(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn)
    except (asyncpg.InvalidCatalogNameError, OSError):
        return False
    try:
        return bool(await conn.fetchval("SELECT to_regclass('enquiry_counts') IS NOT NULL "
                                        "AND EXISTS (SELECT 1 FROM users WHERE email = 'bench-0@example.com')"))
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> dict:
    results: dict = {}
    if args.reseed or not await database_ready(args.dsn):
        results["seed"] = await seed(args.dsn, args.big, args.small, args.tenants)
        print("seeded:", json.dumps(results["seed"]["timings"]), flush=True)
    info = await bench_info(args.dsn)
    user = info["user"]
    settings = Settings(auth_secret=SECRET)
    token, _, _ = mint_access_token(settings, user_id=user["id"], tenant_id=user["tenant_id"], role="agency_admin",
                                    email=user["email"])
    headers = {"Authorization": f"Bearer {token}"}
    tenant = str(user["tenant_id"])
    with voyagent_server(args.dsn, VOYAGENT_RATE_LIMIT_USER_PER_MINUTE="0", VOYAGENT_WORKERS="1") as ours, \
            ceiling_server(args.dsn, module="bench.ceiling_enquiries") as bare:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{ours}/enquiries?limit=1&include_total=false&offset={info['depth'] - 1}",
                                   headers=headers) as response:
                assert response.status == 200, await response.text()
                cursor = (await response.json())["next_cursor"]
        deep = info["deep"]
        cases = {
            "first page": ({"limit": 50}, {}),
            "deep cursor page": ({"limit": 50, "cursor": cursor},
                                 {"after_ts": deep["created_at"].isoformat(), "after_id": str(deep["id"])}),
            f"offset {args.offset:,} page": ({"limit": 50, "offset": args.offset}, {"offset": args.offset}),
            "destination filter": ({"limit": 50, "destination": FILTER_TERM}, {"destination": FILTER_TERM}),
        }
        for name, (ours_q, bare_q) in cases.items():
            for include_total in (True, False):
                extra = {} if include_total else {"include_total": "false"}
                label = f"{name} ({'with' if include_total else 'without'} total)"
                ours_url = f"{ours}/enquiries?{urlencode({**ours_q, **extra})}"
                bare_url = f"{bare}/enquiries?{urlencode({'tenant_id': tenant, **bare_q, **extra})}"
                results[label] = await bench_pair(ours_url, bare_url, headers, args)
                print_pair(label, results[label])
        # A search whose total is not cached yet: every request carries a different (always true) created_from,
        # so every request counts the ~10,000 matches again; the ceiling recounts too.
        days = itertools.count()
        label = "destination filter (with total, counted every request)"

        def fresh_search() -> str:
            since = dt.date(1, 1, 1) + dt.timedelta(days=next(days))
            return f"{ours}/enquiries?{urlencode({'limit': 50, 'destination': FILTER_TERM, 'created_from': since})}"

        bare_url = f"{bare}/enquiries?{urlencode({'tenant_id': tenant, 'destination': FILTER_TERM, 'recount': 1})}"
        results[label] = await bench_pair(fresh_search, bare_url, headers, args)
        print_pair(label, results[label])
    for total in ("with", "without"):
        first = results[f"first page ({total} total)"]
        deep_run = results[f"deep cursor page ({total} total)"]
        filtered = results[f"destination filter ({total} total)"]
        for key in ("ours", "ours_alone"):
            ratio = deep_run[key].p50_ms / first[key].p50_ms
            print(f"{total} total, {'1 client' if key == 'ours_alone' else f'{args.connections} clients'}: "
                  f"deep p50 / first p50 = {ratio:.2f} (target ≤ 1.5: {'met' if ratio <= 1.5 else 'MISSED'}); "
                  f"filtered p50 {filtered[key].p50_ms:.2f} ms (target < 20: "
                  f"{'met' if filtered[key].p50_ms < 20 else 'MISSED'})")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    load_arguments(parser, DEFAULT_DSN)
    parser.add_argument("--big", type=int, default=1_000_000, help="rows of the measured tenant (when seeding)")
    parser.add_argument("--small", type=int, default=200_000, help="rows over the other tenants (when seeding)")
    parser.add_argument("--tenants", type=int, default=50, help="other tenants (when seeding)")
    parser.add_argument("--offset", type=int, default=150_000, help="depth of the offset page")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
