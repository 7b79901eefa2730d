"""Identity benchmark: the real server (one worker, default Argon2 cost) on a scratch database.

    .venv/bin/python -m bench.auth_bench [--seconds 10] [--rounds 3]

Measures, in one run:
1. GET /health p50/p99 while 8 clients sign in continuously (target p99 < 20 ms): Argon2 runs in a thread
   pool, so sign-ins must not stall requests that need no hashing;
2. sign-ins per second at the default Argon2 cost (time 2, memory 100 MiB, parallelism 8);
3. GET /auth/me with an access JWT, as a ratio to GET /health of the same server (target ≥ 0.6), the two
   measured in turn.
The load generators are separate processes (wrk when installed, else aiohttp); loopback only, bounded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

from bench.harness import ROOT, alternate, scratch_database, voyagent_server
from bench.load import measure

PASSWORD = "Bench-passw0rd-2024"
SIGN_IN_CLIENTS = 8
# Buckets stay on (their cost is part of every figure) but far too large to refuse the benchmark's traffic.
HUGE_BUCKETS = {"VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "1000000000",
                "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "1000000000",
                "VOYAGENT_RATE_LIMIT_AUTH_EMAIL_PER_MINUTE": "1000000000"}


async def _sign_up(url: str, count: int) -> tuple[list[str], str]:
    """Create ``count`` verified users; return their e-mails and an access token of the first."""
    import aiohttp

    emails = [f"bench-{os.getpid()}-{i}@example.com" for i in range(count)]
    token = ""
    async with aiohttp.ClientSession() as session:
        for email in emails:
            async with session.post(f"{url}/auth/sign-up", json={"email": email, "password": PASSWORD,
                                                                 "full_name": "Bench", "agency_name": "Bench"}) as r:
                body = await r.json()
                if r.status != 201:
                    raise RuntimeError(f"sign-up failed: {r.status} {body}")
                token = token or body["access_token"]
    return emails, token


async def _sign_in_load(url: str, emails: list[str], seconds: float) -> dict[str, float]:
    """One client per e-mail signing in back to back for ``seconds``."""
    import aiohttp

    done = failed = 0
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession, email: str) -> None:
        nonlocal done, failed
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.post(f"{url}/auth/sign-in", json={"email": email, "password": PASSWORD}) as r:
                await r.read()
                if r.status == 200:
                    done += 1
                    latencies.append(time.perf_counter() - started)
                else:
                    failed += 1

    began = time.perf_counter()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=len(emails))) as session:
        await asyncio.gather(*(client(session, email) for email in emails))
    elapsed = time.perf_counter() - began
    latencies.sort()
    return {"sign_ins": done, "failed": failed, "seconds": elapsed, "per_second": done / elapsed,
            "p50_ms": 1000 * latencies[len(latencies) // 2] if latencies else float("nan")}


async def _latency_probe(url: str, seconds: float, connections: int = 2) -> tuple[float, float, int]:
    """p50 and p99 (ms) of back-to-back GETs on a few connections: the latency a light client sees."""
    import aiohttp

    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            latencies.append((time.perf_counter() - started) * 1000)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        await asyncio.gather(*(client(session) for _ in range(connections)))
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.99)], len(latencies)


def _start_sign_in_load(url: str, emails: list[str], seconds: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bench.auth_bench", "--sign-in-load", url, "--seconds",
                             str(seconds), "--emails", ",".join(emails)], cwd=ROOT, stdout=subprocess.PIPE, text=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--sign-in-load", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--emails", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sign_in_load:  # the load-generator process
        print(json.dumps(asyncio.run(_sign_in_load(args.sign_in_load, args.emails.split(","), args.seconds))))
        return

    env = {**HUGE_BUCKETS, "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION": "true"}
    with scratch_database() as dsn, voyagent_server(dsn, **env) as url:
        emails, token = asyncio.run(_sign_up(url, SIGN_IN_CLIENTS))

        # 1 + 2: health latency under a continuous sign-in load, and the sign-in rate itself
        idle = asyncio.run(_latency_probe(f"{url}/health", args.seconds))
        load = _start_sign_in_load(url, emails, args.seconds + 2)
        time.sleep(1.0)  # let the sign-in clients get going
        busy = asyncio.run(_latency_probe(f"{url}/health", args.seconds))
        sign_ins = json.loads(load.communicate(timeout=args.seconds + 60)[0])

        # 3: /auth/me with a JWT against /health of the same server, measured in turn
        me, health = alternate(f"{url}/auth/me", f"{url}/health", args.rounds, args.seconds, args.connections,
                               headers={"Authorization": f"Bearer {token}"})
        db_probe = measure(f"{url}/health/db", args.connections, args.seconds)  # context: any one-query route

    ratio = me.rps / health.rps
    print(f"{'measurement':<52} {'figure':>24}  target")
    print(f"{'GET /health p50 / p99, idle (2 connections)':<52} {idle[0]:9.2f} / {idle[1]:6.2f} ms"
          f"  ({idle[2]} requests)")
    print(f"{'GET /health p50 / p99, 8 clients signing in':<52} {busy[0]:9.2f} / {busy[1]:6.2f} ms"
          f"  p99 < 20 ms: {'met' if busy[1] < 20 else 'MISSED'} ({busy[2]} requests)")
    print(f"{'sign-ins per second (default Argon2, 8 clients)':<52} {sign_ins['per_second']:12.1f} /s"
          f"  ({sign_ins['sign_ins']} ok, {sign_ins['failed']} failed, p50 {sign_ins['p50_ms']:.0f} ms)")
    print(f"{'GET /auth/me (JWT), ' + str(args.connections) + ' connections':<52} {me.rps:12.0f} rps"
          f"  p99 {me.p99_ms:.2f} ms, non-2xx {me.non_2xx}")
    print(f"{'GET /health, ' + str(args.connections) + ' connections':<52} {health.rps:12.0f} rps"
          f"  p99 {health.p99_ms:.2f} ms")
    print(f"{'ratio /auth/me : /health':<52} {ratio:16.2f}  ≥ 0.6: {'met' if ratio >= 0.6 else 'MISSED'}")
    print(f"{'(context) GET /health/db, ' + str(args.connections) + ' connections':<52} {db_probe.rps:12.0f} rps"
          f"  ratio to /health {db_probe.rps / health.rps:.2f}")


if __name__ == "__main__":
    main()
