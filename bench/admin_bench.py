"""Integrator benchmarks (issue 5) against the real server (``voyagent serve`` subprocesses) on a scratch database
seeded by ``bench.seed_audit`` (200 000 audit events in one tenant, 50 small tenants).

    .venv/bin/python -m bench.admin_bench [--seconds 10] [--rounds 3] [--only 1,2,3,4]

1. ``GET /audit?limit=50`` with an API key (audit:read) vs with a JWT, alternating: key overhead (target ≤ 10 %).
2. A key's bucket under a client at 2× its limit, two workers sharing Redis: 429s carry a correct Retry-After,
   the admitted rate stays within 5 % of the limit over 60 s.
3. ``GET /audit/export.csv`` of 100 000 rows: time, rows/s (≥ 100 000), server RSS growth (< 30 MB) and
   ``GET /health`` p99 during the export (< 50 ms).
4. ``GET /audit?limit=50``: the first page vs a page 150 000 rows deep by cursor (deep p50 ≤ 1.5× first) and by
   offset, and the ratio to the bare ceiling app serving the same SQL (target ≥ 0.7).

The load driver is aiohttp in a separate (spawned) process, bounded in time, loopback only. When called with
``--port … --dsn …`` this module is instead the ceiling of benchmark 4 (``bench.ceiling`` plus an audit route).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import datetime as dt
import json
import multiprocessing
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from typing import Any, Iterator

import asyncpg

from bench.harness import ROOT, SECRET, ceiling_server, free_port, scratch_database
from bench.seed_audit import Seeded, day_window, seed

REDIS_URL = os.environ.get("VOYAGENT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
HUGE = "1000000000"  # a user bucket that is checked on every request but never refuses


# --- the load driver (runs in a spawned process) ---------------------------------------------------------


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def drive(jobs: list[tuple[str, dict[str, str]]], seconds: float) -> dict[str, Any]:
    """Closed loop: one keep-alive connection per job, each requesting its URL until the time is up."""

    async def run() -> dict[str, Any]:
        import aiohttp

        latencies: list[float] = []
        statuses: collections.Counter[int] = collections.Counter()
        deadline = time.perf_counter() + seconds

        async def worker(url: str, headers: dict[str, str]) -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1)) as session:
                while time.perf_counter() < deadline:
                    started = time.perf_counter()
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        statuses[response.status] += 1
                    latencies.append((time.perf_counter() - started) * 1000)

        began = time.perf_counter()
        await asyncio.gather(*(worker(url, headers) for url, headers in jobs))
        elapsed = time.perf_counter() - began
        return {"rps": len(latencies) / elapsed, "p50": _quantile(latencies, 0.5), "p99": _quantile(latencies, 0.99),
                "requests": len(latencies), "statuses": dict(statuses)}

    return asyncio.run(run())


def paced(url: str, headers: dict[str, str], per_second: float, seconds: float) -> dict[str, Any]:
    """Open loop: one request every 1/per_second s, each on a new connection (so every worker gets some)."""

    async def run() -> dict[str, Any]:
        import aiohttp

        outcomes: list[tuple[float, int, str | None]] = []
        began = time.monotonic()

        async def one(session: aiohttp.ClientSession) -> None:
            async with session.get(url, headers={**headers, "Connection": "close"}) as response:
                await response.read()
                outcomes.append((time.monotonic() - began, response.status, response.headers.get("Retry-After")))

        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as session:
            tasks = []
            for i in range(int(per_second * seconds)):
                await asyncio.sleep(max(0.0, began + i / per_second - time.monotonic()))
                tasks.append(asyncio.create_task(one(session)))
            await asyncio.gather(*tasks)
        return {"outcomes": outcomes}

    return asyncio.run(run())


def export_with_probe(export_url: str, health_url: str, headers: dict[str, str]) -> dict[str, Any]:
    """Download the export as fast as possible while probing /health every 10 ms on another connection."""

    async def run() -> dict[str, Any]:
        import aiohttp

        probes: list[float] = []
        done = asyncio.Event()

        async def probe() -> None:
            async with aiohttp.ClientSession() as session:
                while not done.is_set():
                    started = time.perf_counter()
                    async with session.get(health_url) as response:
                        await response.read()
                    probes.append((time.perf_counter() - started) * 1000)
                    await asyncio.sleep(0.01)

        prober = asyncio.create_task(probe())
        await asyncio.sleep(0.3)  # a baseline before the export starts
        size = lines = 0
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
            started = time.perf_counter()
            async with session.get(export_url, headers=headers) as response:
                status = response.status
                first_byte = time.perf_counter() - started
                async for chunk in response.content.iter_chunked(1 << 16):
                    size += len(chunk)
                    lines += chunk.count(b"\n")
            elapsed = time.perf_counter() - started
        done.set()
        await prober
        return {"status": status, "seconds": elapsed, "first_byte": first_byte, "bytes": size,
                "rows": lines - 1, "probes": probes}

    return asyncio.run(run())


# --- servers ----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def server(dsn: str, workers: int = 1, **env: str) -> Iterator[tuple[str, int]]:
    """``voyagent serve`` on a free port with Redis; yields (base URL, pid of the serving process)."""
    port = free_port()
    full_env = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_PORT": str(port),
                "VOYAGENT_WORKERS": str(workers), "VOYAGENT_LOG_LEVEL": "WARNING", "VOYAGENT_REDIS_URL": REDIS_URL,
                "VOYAGENT_REDIS_PREFIX": f"voyagent-bench-{secrets.token_hex(4)}:",
                "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": HUGE, **env}
    process = subprocess.Popen([sys.executable, "-m", "voyagent", "serve"], env=full_env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("voyagent serve did not come up") from None
                time.sleep(0.2)
        yield url, process.pid
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


@contextlib.contextmanager
def rss_peak(pid: int) -> Iterator[list[int]]:
    """``[before, peak]``: the RSS (KiB) of ``pid`` when the block starts and its peak over the block (sampled
    every 20 ms by a thread)."""
    before = rss_kib(pid)
    sizes = [before, before]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            sizes[1] = max(sizes[1], rss_kib(pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        yield sizes
    finally:
        stop.set()
        sampler.join()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def jwt_for(seeded: Seeded) -> dict[str, str]:
    from voyagent.config import Settings
    from voyagent.services.tokens import mint_access_token

    token, _, _ = mint_access_token(Settings(auth_secret=SECRET), user_id=seeded.admin_id, tenant_id=seeded.tenant_id,
                                    role="agency_admin", email=seeded.admin_email)
    return {"Authorization": f"Bearer {token}"}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def set_rate_limit(url: str, seeded: Seeded, per_minute: int) -> None:
    request = urllib.request.Request(f"{url}/tenant-settings", method="PATCH",
                                     data=f'{{"rate_limit_per_minute": {per_minute}}}'.encode(),
                                     headers={**jwt_for(seeded), "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def status_of(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str]]:
    request = urllib.request.Request(url, headers={**headers, "Connection": "close"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


# --- the benchmarks ---------------------------------------------------------------------------------------


def row(label: str, result: dict[str, Any]) -> str:
    return (f"  {label:<28} {result['rps']:8.0f} rps  p50 {result['p50']:7.2f} ms  p99 {result['p99']:7.2f} ms  "
            f"statuses {result['statuses']}")


def bench_key_vs_jwt(pool: concurrent.futures.Executor, dsn: str, seeded: Seeded, seconds: float, rounds: int,
                     connections: int) -> None:
    print(f"\n(1) GET /audit?limit=50, API key vs JWT, {connections} connections, 1 worker + Redis, "
          f"{rounds} alternating rounds of {seconds:.0f} s")
    with server(dsn) as (url, _):
        page = f"{url}/audit?limit=50"
        key_jobs = [(page, bearer(seeded.api_keys[i % len(seeded.api_keys)])) for i in range(connections)]
        jwt_jobs = [(page, jwt_for(seeded))] * connections
        pool.submit(drive, key_jobs, 2).result()  # warm-up: caches, prepared statements
        pool.submit(drive, jwt_jobs, 2).result()
        keys, jwts = [], []
        for _ in range(rounds):
            keys.append(pool.submit(drive, key_jobs, seconds).result())
            jwts.append(pool.submit(drive, jwt_jobs, seconds).result())
        for i, (key, jwt) in enumerate(zip(keys, jwts), 1):
            print(row(f"round {i} API key", key))
            print(row(f"round {i} JWT", jwt))
        key_rps = statistics.median(r["rps"] for r in keys)
        jwt_rps = statistics.median(r["rps"] for r in jwts)
        overhead = 1 - key_rps / jwt_rps
        print(f"  median: key {key_rps:.0f} rps, JWT {jwt_rps:.0f} rps -> key overhead {overhead * 100:+.1f} % "
              f"(target <= 10 %: {'met' if overhead <= 0.10 else 'MISSED'})")


def bench_key_bucket(pool: concurrent.futures.Executor, dsn: str, seeded: Seeded, seconds: float) -> None:
    limit = 600
    print(f"\n(2) key bucket at {limit}/min, client at 2x ({2 * limit / 60:.0f} req/s, new connection each), "
          f"2 workers sharing Redis, {seconds:.0f} s")
    with server(dsn, workers=2) as (url, _):
        key = bearer(seeded.api_keys[-1])
        target = f"{url}/audit?limit=1&include_total=false"
        set_rate_limit(url, seeded, limit)
        drained = 0
        while status_of(target, key)[0] == 200:  # use up the burst first: the steady state is what we measure
            drained += 1
        outcomes = pool.submit(paced, target, key, 2 * limit / 60, seconds).result()["outcomes"]
        admitted = sum(1 for _, status, _ in outcomes if status == 200)
        refused = [(at, retry) for at, status, retry in outcomes if status == 429]
        others = [status for _, status, _ in outcomes if status not in (200, 429)]
        expected = limit * seconds / 60
        deviation = admitted / expected - 1
        retry_values = collections.Counter(retry for _, retry in refused)
        print(f"  burst drained: {drained} requests; then {len(outcomes)} requests in {seconds:.0f} s")
        print(f"  admitted {admitted} (limit allows {expected:.0f}): deviation {deviation * 100:+.1f} % "
              f"(target within 5 %: {'met' if abs(deviation) <= 0.05 else 'MISSED'}); refused {len(refused)}, "
              f"other statuses {others or 'none'}")
        print(f"  Retry-After on 429s: {dict(retry_values)} (expected ceil((1 - tokens) * 60 / {limit}) = 1)")
        # Retry-After is exact: a slow bucket (6/min, one token per 10 s) is refused just before, admitted after.
        set_rate_limit(url, seeded, 6)
        while status_of(target, key)[0] == 200:
            pass
        status, headers = status_of(target, key)
        retry_after = int(headers["Retry-After"])
        time.sleep(max(0.0, retry_after - 1.5))
        early = status_of(target, key)[0]
        time.sleep(1.6)
        on_time = status_of(target, key)[0]
        print(f"  at 6/min: Retry-After {retry_after} s; {retry_after - 1.5:.1f} s later -> {early}, "
              f"{retry_after + 0.1:.1f} s later -> {on_time} "
              f"({'correct' if early == 429 and on_time == 200 else 'WRONG'})")


def bench_export(pool: concurrent.futures.Executor, dsn: str, seeded: Seeded, runs: int = 3) -> None:
    date_from, date_to = day_window(seeded, 50)
    print(f"\n(3) GET /audit/export.csv of 100 000 rows (from={date_from} to={date_to}), 1 worker, "
          f"/health probed every 10 ms during the export")
    with server(dsn) as (url, pid):
        export_url = f"{url}/audit/export.csv?from={date_from}&to={date_to}"
        headers = jwt_for(seeded)
        for run in range(1, runs + 1):
            with rss_peak(pid) as sizes:
                result = pool.submit(export_with_probe, export_url, f"{url}/health", headers).result()
            before, peak = sizes
            probes = result["probes"]
            print(f"  run {run}: status {result['status']}, {result['rows']} rows, {result['bytes'] / 1e6:.1f} MB "
                  f"in {result['seconds']:.2f} s (first byte {result['first_byte'] * 1000:.0f} ms) -> "
                  f"{result['rows'] / result['seconds']:,.0f} rows/s; RSS {before / 1024:.1f} MB -> peak "
                  f"{peak / 1024:.1f} MB (+{(peak - before) / 1024:.1f} MB); /health during export: "
                  f"{len(probes)} probes, p50 {_quantile(probes, 0.5):.2f} ms, p99 {_quantile(probes, 0.99):.2f} ms, "
                  f"max {max(probes):.2f} ms")


async def _deep_position(dsn: str, seeded: Seeded, depth: int) -> tuple[dt.datetime, uuid.UUID]:
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow("SELECT started_at, id FROM audit_events WHERE tenant_id = $1 "
                                  "ORDER BY started_at DESC, id DESC OFFSET $2 LIMIT 1", seeded.tenant_id, depth - 1)
        return row["started_at"], row["id"]
    finally:
        await conn.close()


def bench_deep_pages(pool: concurrent.futures.Executor, dsn: str, seeded: Seeded, seconds: float, rounds: int,
                     connections: int) -> None:
    depth = 150_000
    print(f"\n(4) GET /audit?limit=50: first page vs a page {depth:,} rows deep by cursor, {connections} connections, "
          f"1 worker + Redis, JWT; ceiling = bare aiohttp + asyncpg app running the same SQL")
    headers = jwt_for(seeded)
    with server(dsn) as (url, _), ceiling_server(dsn, module="bench.admin_bench") as ceiling:
        probe = f"{url}/audit?limit=1&offset={depth - 1}&include_total=false"
        with urllib.request.urlopen(urllib.request.Request(probe, headers=headers)) as response:
            cursor = json.loads(response.read())["next_cursor"]  # positioned after row 150 000
        deep_ts, deep_id = asyncio.run(_deep_position(dsn, seeded, depth))
        micros = (deep_ts - dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)) // dt.timedelta(microseconds=1)
        bare = f"{ceiling}/audit?tenant={seeded.tenant_id}&limit=50"
        for total in ("true", "false"):
            cases = {
                "first page": (f"{url}/audit?limit=50&include_total={total}", f"{bare}&include_total={total}"),
                "150k deep": (f"{url}/audit?limit=50&include_total={total}&cursor={cursor}",
                              f"{bare}&include_total={total}&after_ts={micros}&after_id={deep_id}"),
                "150k deep by offset": (f"{url}/audit?limit=50&include_total={total}&offset={depth}",
                                        f"{bare}&include_total={total}&offset={depth}"),
            }
            print(f"  include_total={total}:")
            results: dict[str, dict[str, list[dict[str, Any]]]] = {}
            for name, (ours, theirs) in cases.items():
                pool.submit(drive, [(ours, headers)] * connections, 1).result()
                pool.submit(drive, [(theirs, {})] * connections, 1).result()
                runs: dict[str, list[dict[str, Any]]] = {"voyagent": [], "ceiling": []}
                for _ in range(rounds):
                    runs["voyagent"].append(pool.submit(drive, [(ours, headers)] * connections, seconds).result())
                    runs["ceiling"].append(pool.submit(drive, [(theirs, {})] * connections, seconds).result())
                results[name] = runs
                best_ours = max(runs["voyagent"], key=lambda r: r["rps"])
                best_bare = max(runs["ceiling"], key=lambda r: r["rps"])
                print(row(f"{name} voyagent", best_ours))
                print(row(f"{name} ceiling", best_bare))
                ratio = best_ours["rps"] / best_bare["rps"]
                print(f"    ratio to ceiling {ratio:.2f} (target >= 0.7: {'met' if ratio >= 0.7 else 'MISSED'})")
            first = statistics.median(r["p50"] for r in results["first page"]["voyagent"])
            deep = statistics.median(r["p50"] for r in results["150k deep"]["voyagent"])
            print(f"    deep p50 / first p50 = {deep:.2f} / {first:.2f} ms = {deep / first:.2f} "
                  f"(target <= 1.5: {'met' if deep / first <= 1.5 else 'MISSED'})")


# --- the ceiling's audit route ----------------------------------------------------------------------------


def ceiling_main() -> None:
    """``bench.ceiling`` plus ``GET /audit`` running the same SQL and wire shape as voyagent, nothing else."""
    import orjson
    from aiohttp import web

    from bench import ceiling
    from voyagent.app import load_queries
    from voyagent.pagination import Page
    from voyagent.services import audit_log

    queries = load_queries()
    no_filters = audit_log.AuditFilters()

    async def audit(request: web.Request) -> web.Response:
        tenant_id = uuid.UUID(request.query["tenant"])
        limit = int(request.query.get("limit", "50"))
        after = None
        if "after_ts" in request.query:
            after = (dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
                     + dt.timedelta(microseconds=int(request.query["after_ts"])), uuid.UUID(request.query["after_id"]))
        offset = int(request.query.get("offset", "0"))
        page = Page(limit=limit, offset=offset, after=after, include_total=True)
        rows_sql, rows_args = audit_log.LISTING.page_sql(tenant_id, no_filters.values(), page)
        async with request.app[ceiling.POOL].acquire() as conn:
            rows = await conn.fetch(rows_sql, *rows_args)
            total = None
            if request.query.get("include_total", "true") == "true":
                total = await audit_log.count(conn, queries, tenant_id, no_filters)
        items = []
        for record in rows[:limit]:
            event = dict(record)
            for column in ("inputs", "outputs", "entity_refs"):
                event[column] = orjson.loads(event[column])
            items.append(audit_log.wire_event(event))
        last = rows[limit - 1] if len(rows) > limit else None
        body = {"items": items, "total": total, "limit": limit, "offset": offset,
                "next_cursor": f"{last['started_at'].timestamp()}:{last['id']}" if last else None}
        return web.Response(body=orjson.dumps(body, option=orjson.OPT_UTC_Z), content_type="application/json")

    ceiling.ROUTES.append(("GET", "/audit", audit))
    ceiling.main()


def main() -> None:
    if "--dsn" in sys.argv:
        ceiling_main()
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--bucket-seconds", type=float, default=60)
    parser.add_argument("--only", default="1,2,3,4")
    args = parser.parse_args()
    only = {int(part) for part in args.only.split(",")}
    context = multiprocessing.get_context("spawn")
    with scratch_database() as dsn, concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        started = time.monotonic()
        seeded = asyncio.run(seed(dsn))
        print(f"seeded 200 000 events + 50 small tenants by COPY in {time.monotonic() - started:.1f} s "
              f"({os.cpu_count()} CPUs; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC)")
        if 1 in only:
            bench_key_vs_jwt(pool, dsn, seeded, args.seconds, args.rounds, args.connections)
        if 2 in only:
            bench_key_bucket(pool, dsn, seeded, args.bucket_seconds)
        if 3 in only:
            bench_export(pool, dsn, seeded)
        if 4 in only:
            bench_deep_pages(pool, dsn, seeded, args.seconds, args.rounds, args.connections)


if __name__ == "__main__":
    main()
