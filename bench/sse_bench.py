"""The SSE turn under load (issue 11): two real servers of one worker each, sharing PostgreSQL and Redis.

    .venv/bin/python -m bench.sse_bench [--concurrency 50] [--seconds 20] [--streams 2000] [--hold 60]
        [--replays 200]

1. Turns: ``--concurrency`` clients, each on its own session, send turns back to back for ``--seconds``
   (``burst 3``: three deltas and the final). Time from sending the POST to the first ``agent_event`` frame
   (p50/p99) and turns per second.
2. Open streams: 20 sessions get a long turn (``sleep``) on worker B; ``--streams`` replay streams on worker A
   (``Last-Event-ID`` = 1) follow them for ``--hold`` seconds: worker A's RSS per stream and its CPU, and whether
   every stream got every frame and the final (worker A follows the 20 sessions with ONE ``XREAD``).
3. Replay from the other worker: a 200-frame turn on worker B, then ``--replays`` requests on worker A with
   ``Last-Event-ID: 0`` read all 200 frames to the end of the stream (p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
from typing import Iterator

import aiohttp
import asyncpg
import psutil

from bench.harness import ROOT, SECRET, _wait, free_port, scratch_database
from voyagent.config import Settings
from voyagent.services.tokens import mint_access_token

HUGE = "1000000000"
SESSIONS_FOR_STREAMS = 20


@contextlib.contextmanager
def server(dsn: str, prefix: str, **env: str) -> Iterator[tuple[str, psutil.Process]]:
    port = free_port()
    full = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_PORT": str(port),
            "VOYAGENT_LOG_LEVEL": "WARNING", "VOYAGENT_WORKERS": "1", "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": HUGE,
            "VOYAGENT_REDIS_URL": os.environ.get("VOYAGENT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "VOYAGENT_REDIS_PREFIX": prefix, "VOYAGENT_AGENT_BACKEND": "bench.sse_backend:create",
            "VOYAGENT_DB_POOL_MAX": "20", **env}
    process = subprocess.Popen([sys.executable, "-m", "voyagent", "serve"], env=full, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", process)
        yield url, psutil.Process(process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


async def admin_headers(dsn: str) -> dict[str, str]:
    """A tenant whose turn quota never refuses the benchmark, and its admin's token."""
    conn = await asyncpg.connect(dsn)
    try:
        tenant_id, user_id = uuid.uuid4(), uuid.uuid4()
        email = f"bench-{user_id.hex[:8]}@example.com"
        await conn.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Bench')", tenant_id)
        await conn.execute("INSERT INTO tenant_settings (tenant_id, rate_limit_per_minute, rate_limit_per_hour) "
                           "VALUES ($1, $2, $2)", tenant_id, 2_000_000_000)
        await conn.execute("INSERT INTO users (id, tenant_id, email, display_name, role, email_verified) "
                           "VALUES ($1, $2, $3, 'Bench', 'agency_admin', true)", user_id, tenant_id, email)
    finally:
        await conn.close()
    token, _, _ = mint_access_token(Settings(auth_secret=SECRET, access_ttl=86_400), user_id=user_id,
                                    tenant_id=tenant_id, role="agency_admin", email=email)
    return {"Authorization": f"Bearer {token}"}


async def new_session(http: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> str:
    async with http.post(f"{url}/chat/sessions", headers=headers) as response:
        assert response.status == 201, await response.text()
        return (await response.json())["session_id"]


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def ms(values: list[float]) -> str:
    return f"p50 {percentile(values, 0.5) * 1000:.1f} ms, p99 {percentile(values, 0.99) * 1000:.1f} ms"


# --- 1. time to the first frame at N concurrent turns ----------------------------------------------------


async def turns(url: str, headers: dict[str, str], concurrency: int, seconds: float) -> None:
    first_frame: list[float] = []
    completed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sessions = [await new_session(http, url, headers) for _ in range(concurrency)]

        async def client(session_id: str, until: float) -> None:
            nonlocal completed
            while time.monotonic() < until:
                started = time.monotonic()
                async with http.post(f"{url}/chat/sessions/{session_id}/messages", json={"message": "burst 3"},
                                     headers=headers) as response:
                    assert response.status == 200, await response.text()
                    body = b""
                    async for chunk in response.content.iter_any():
                        if not body:
                            first_frame.append(time.monotonic() - started)
                        body += chunk
                    assert body.count(b"event: agent_event") == 4 and b'"kind":"final"' in body
                completed += 1

        await asyncio.gather(*(client(s, time.monotonic() + 2) for s in sessions))  # warm-up
        first_frame.clear()
        completed = 0
        began = time.monotonic()
        await asyncio.gather(*(client(s, began + seconds) for s in sessions))
        elapsed = time.monotonic() - began
    print(f"1. {concurrency} concurrent turns on one worker for {elapsed:.0f} s: {completed} turns, "
          f"{completed / elapsed:.0f} turns/s; POST → first agent_event {ms(first_frame)}", flush=True)


# --- 2. thousands of open streams following turns of another worker ---------------------------------------


async def open_streams(url_a: str, worker_a: psutil.Process, url_b: str, headers: dict[str, str], streams: int,
                       hold: float) -> None:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=aiohttp.ClientTimeout(total=None)) as http:
        sessions = [await new_session(http, url_b, headers) for _ in range(SESSIONS_FOR_STREAMS)]
        starters = []
        for session_id in sessions:  # a long turn on worker B in each session; its first frame is id 1
            response = await http.post(f"{url_b}/chat/sessions/{session_id}/messages",
                                       json={"message": f"sleep {hold}"}, headers=headers)
            assert response.status == 200
            await response.content.readuntil(b"\n\n")
            starters.append(response)
        rss_before = worker_a.memory_info().rss
        cpu_before = sum(worker_a.cpu_times()[:2])
        opened = asyncio.Event()
        open_count = 0
        results: list[bytes] = []

        refused: list[str] = []

        async def follower(session_id: str) -> None:
            nonlocal open_count
            try:
                async with http.post(f"{url_a}/chat/sessions/{session_id}/messages", json={},
                                     headers={**headers, "Last-Event-ID": "1"}) as response:
                    if response.status != 200:
                        refused.append(f"{response.status} {await response.text()}")
                        return
                    open_count += 1
                    if open_count + len(refused) == streams:
                        opened.set()
                    results.append(await response.read())
            finally:
                if open_count + len(refused) == streams:
                    opened.set()

        began = time.monotonic()
        tasks = [asyncio.create_task(follower(sessions[i % len(sessions)])) for i in range(streams)]
        await opened.wait()
        opening = time.monotonic() - began
        await asyncio.sleep(max(0.0, hold - opening - 5))
        rss_open = worker_a.memory_info().rss
        cpu_open = sum(worker_a.cpu_times()[:2])
        held = time.monotonic() - began
        await asyncio.gather(*tasks)
        for response in starters:
            await response.read()
            response.close()
    complete = sum(1 for body in results if body.count(b"event: agent_event") == 2 and b'"kind":"final"' in body)
    print(f"2. {streams} replay streams on worker A following {SESSIONS_FOR_STREAMS} turns of worker B: opened in "
          f"{opening:.1f} s; RSS {rss_before / 2**20:.0f} → {rss_open / 2**20:.0f} MiB "
          f"({(rss_open - rss_before) / streams / 1024:.1f} KiB per stream); CPU {cpu_open - cpu_before:.1f} s over "
          f"{held:.0f} s (opening included); streams that got both remaining frames and ended: {complete}/{streams}"
          f"{f'; REFUSED {len(refused)}: {refused[:3]}' if refused else ''}",
          flush=True)


# --- 3. replaying 200 frames from the other worker ----------------------------------------------------------


async def replays(url_a: str, url_b: str, headers: dict[str, str], count: int) -> None:
    durations: list[float] = []
    async with aiohttp.ClientSession() as http:
        session_id = await new_session(http, url_b, headers)
        async with http.post(f"{url_b}/chat/sessions/{session_id}/messages", json={"message": "burst 199"},
                             headers=headers) as response:
            original = await response.read()
        assert original.count(b"event: agent_event") == 200
        for _ in range(count):
            started = time.monotonic()
            async with http.post(f"{url_a}/chat/sessions/{session_id}/messages", json={},
                                 headers={**headers, "Last-Event-ID": "0"}) as response:
                body = await response.read()
            durations.append(time.monotonic() - started)
            assert body == original, "a replay differs from the first sending"
    print(f"3. replay of 200 frames ({len(original) / 1024:.0f} KiB) on worker A of a turn of worker B, {count} "
          f"times: {ms(durations)}; byte-identical every time", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--streams", type=int, default=2000)
    parser.add_argument("--hold", type=float, default=60)
    parser.add_argument("--replays", type=int, default=200)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prefix = f"bench-sse-{uuid.uuid4().hex[:8]}:"
    with scratch_database() as dsn, server(dsn, prefix) as (url_a, worker_a), server(dsn, prefix) as (url_b, _):
        headers = asyncio.run(admin_headers(dsn))
        asyncio.run(turns(url_a, headers, args.concurrency, args.seconds))
        asyncio.run(open_streams(url_a, worker_a, url_b, headers, args.streams, args.hold))
        asyncio.run(replays(url_a, url_b, headers, args.replays))


if __name__ == "__main__":
    main()
