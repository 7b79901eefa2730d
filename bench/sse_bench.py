"""The SSE turn under load (issue 11): two real servers of one worker each, sharing PostgreSQL and Redis.

    .venv/bin/python -m bench.sse_bench [--concurrency 50] [--seconds 20] [--streams 2000] [--hold 60]
        [--replays 200] [--phases turns,streams,replays] [--rounds 1] [--voyagent-src DIR [--voyagent-python PY]]
        [--turn-kinds flight,burst] [--client lean|aiohttp]

1. Turns: ``--concurrency`` clients, each on its own session, send turns back to back for ``--seconds``, on a
   worker with the REAL default offline backend (``VOYAGENT_AGENT_BACKEND`` unset): the flight search
   ``flights DEL to DXB on 2026-07-01 for 2 adults`` (tool_use, tool_result, text_delta, final); then the same
   with the scripted backend's ``burst 3`` (three deltas and the final: the transport alone). Time from sending
   the POST to the first ``agent_event`` frame (p50/p99), turns per second and the CPU per turn of the worker,
   the load generator, PostgreSQL and Redis; turns that fail are counted and shown. The load generator is
   ``bench/sse_turn_client.py`` on uvloop (``--client aiohttp``: aiohttp's client, as before).
   ``--voyagent-src DIR`` also serves another checkout (e.g. ``git archive main | tar -x -C DIR``) and measures
   the two alternately, ``--rounds`` times each: the "before" figures of a change; ``--voyagent-python`` runs it
   with another interpreter (a venv holding that checkout's own dependencies).
2. Open streams: 20 sessions get a long turn (``sleep``) on worker B; ``--streams`` replay streams on worker A
   (``Last-Event-ID`` = 1) follow them for ``--hold`` seconds with ``--heartbeat`` (1) second heartbeats, each
   silence checking the log again: worker A's RSS per stream and its CPU, and whether
   every stream got every frame and the final (worker A follows the 20 sessions with ONE ``XREAD``).
3. Replay from the other worker: a 200-frame turn on worker B, then ``--replays`` requests on worker A with
   ``Last-Event-ID: 0`` read all 200 frames to the end of the stream (p50/p99).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import resource
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import aiohttp
import asyncpg
import psutil
import uvloop

from bench.harness import ROOT, SECRET, _wait, free_port, scratch_database
from bench.sse_turn_client import FINAL, FRAME, TurnClient, TurnError
from voyagent.config import Settings
from voyagent.services.tokens import mint_access_token

HUGE = "1000000000"
SESSIONS_FOR_STREAMS = 20
SCRIPTED = "bench.sse_backend:create"
FLIGHT_SEARCH = "flights DEL to DXB on 2026-07-01 for 2 adults"


@contextlib.contextmanager
def server(dsn: str, prefix: str, src: Path = ROOT, backend: str | None = SCRIPTED, python: str = sys.executable,
           **env: str) -> Iterator[tuple[str, psutil.Process]]:
    """One worker serving ``src`` with the interpreter ``python``; ``backend`` None leaves VOYAGENT_AGENT_BACKEND
    unset (the offline agent)."""
    port = free_port()
    full = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_PORT": str(port),
            "VOYAGENT_LOG_LEVEL": "WARNING", "VOYAGENT_WORKERS": "1", "VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": HUGE,
            "VOYAGENT_REDIS_URL": os.environ.get("VOYAGENT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
            "VOYAGENT_REDIS_PREFIX": prefix, "VOYAGENT_DB_POOL_MAX": "20",
            "PYTHONPATH": os.pathsep.join([str(src), str(ROOT)]), **env}
    full.pop("VOYAGENT_AGENT_BACKEND", None)
    if backend is not None:
        full["VOYAGENT_AGENT_BACKEND"] = backend
    process = subprocess.Popen([python, "-m", "voyagent", "serve"], env=full, cwd=src,
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


def _cpu(process: psutil.Process) -> float:
    try:
        return sum(process.cpu_times()[:2])
    except psutil.Error:  # a PostgreSQL backend that ended meanwhile
        return 0.0


class CpuShares:
    """CPU seconds spent meanwhile by the worker, this load generator, PostgreSQL's processes and redis-server:
    where the two cores went (processes that started or ended meanwhile count from their first / up to their
    last sighting)."""

    GROUPS = ("worker", "client", "postgres", "redis")

    def __init__(self, worker: psutil.Process) -> None:
        self.worker = worker
        self.seen: dict[int, tuple[str, psutil.Process, float]] = {}
        self.spent = dict.fromkeys(self.GROUPS, 0.0)
        self._start = self._sample()

    def _others(self) -> Iterator[tuple[str, psutil.Process]]:
        yield "worker", self.worker
        yield "client", psutil.Process()
        for process in psutil.process_iter(["name"]):
            name = process.info["name"] or ""
            if name.startswith("postgres"):
                yield "postgres", process
            elif name.startswith("redis-server"):
                yield "redis", process

    def _sample(self) -> dict[int, tuple[str, float]]:
        return {process.pid: (group, _cpu(process)) for group, process in self._others()}

    def stop(self) -> dict[str, float]:
        end = self._sample()
        for pid, (group, cpu) in end.items():
            self.spent[group] += max(0.0, cpu - self._start.get(pid, (group, 0.0))[1])
        return self.spent


@dataclasses.dataclass
class TurnFigures:
    turns: int
    seconds: float
    first_frame: list[float]
    cpu: dict[str, float]
    errors: list[str] = dataclasses.field(default_factory=list)

    def text(self) -> str:
        errors = f"; ERRORS {len(self.errors)}: {self.errors[:3]}" if self.errors else "; no errors"
        if not self.turns:
            return f"no turn completed{errors}"
        per_turn = ", ".join(f"{group} {seconds / self.turns * 1000:.2f}" for group, seconds in self.cpu.items())
        return (f"{self.turns} turns, {self.turns / self.seconds:.0f} turns/s; POST → first agent_event "
                f"{ms(self.first_frame)}; worker CPU {self.cpu['worker'] / self.turns * 1000:.2f} ms per turn "
                f"(CPU ms per turn: {per_turn}; total {sum(self.cpu.values()) / self.turns * 1000:.2f}){errors}")


async def turns(url: str, worker: psutil.Process, headers: dict[str, str], concurrency: int, seconds: float,
                message: str, frames: int, lean: bool = True) -> TurnFigures:
    """``concurrency`` clients on sessions of their own send ``message`` back to back; each answer must hold
    ``frames`` agent events ending with the final (anything else is counted as an error). ``lean``: the clients
    are ``bench.sse_turn_client``'s, else aiohttp's."""
    first_frame: list[float] = []
    errors: list[str] = []
    completed = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        sessions = [await new_session(http, url, headers) for _ in range(concurrency)]

        async def aiohttp_turn(session_id: str) -> float:
            started = time.monotonic()
            first = None
            async with http.post(f"{url}/chat/sessions/{session_id}/messages", json={"message": message},
                                 headers=headers) as response:
                if response.status != 200:
                    raise TurnError(f"{response.status} {(await response.text())[:200]}")
                body = b""
                async for chunk in response.content.iter_any():
                    if first is None and FRAME in body[-len(FRAME):] + chunk:
                        first = time.monotonic() - started
                    body += chunk
            if first is None or body.count(FRAME) != frames or FINAL not in body[body.rfind(FRAME):]:
                raise TurnError(f"unexpected frames: {body[:300]!r}")
            return first

        async def client(session_id: str, until: float) -> None:
            nonlocal completed
            lean_client = TurnClient(url, session_id, headers, message) if lean else None
            try:
                while time.monotonic() < until:
                    try:
                        first = await (lean_client.turn(frames) if lean_client else aiohttp_turn(session_id))
                    except (TurnError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                            aiohttp.ClientError, ValueError) as exc:
                        errors.append(f"{type(exc).__name__}: {exc}")
                        continue
                    first_frame.append(first)
                    completed += 1
            finally:
                if lean_client is not None:
                    await lean_client.close()

        await asyncio.gather(*(client(s, time.monotonic() + 2) for s in sessions))  # warm-up
        first_frame.clear()
        errors.clear()
        completed = 0
        shares = CpuShares(worker)
        began = time.monotonic()
        await asyncio.gather(*(client(s, began + seconds) for s in sessions))
        elapsed = time.monotonic() - began
        cpu = shares.stop()
    return TurnFigures(completed, elapsed, first_frame, cpu, errors)


def turn_rounds(dsn: str, headers: dict[str, str], args: argparse.Namespace, prefix: str) -> None:
    """Phase 1 on this checkout and, with ``--voyagent-src``, on the other one, alternately."""
    other_python = str(args.voyagent_python) if args.voyagent_python else sys.executable
    sources = [("this checkout", ROOT, sys.executable)] + (
        [("--voyagent-src", args.voyagent_src.resolve(), other_python)] if args.voyagent_src else [])
    kinds = {"flight": ("flight search, offline backend", None, FLIGHT_SEARCH, 4),
             "burst": ("burst 3, scripted backend", SCRIPTED, "burst 3", 4)}
    for label, backend, message, frames in (kinds[kind] for kind in args.turn_kinds.split(",")):
        for round_ in range(args.rounds):
            for name, src, python in sources:
                with server(dsn, prefix + name[:2] + ":", src, backend, python) as (url, worker):
                    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                        figures = runner.run(turns(url, worker, headers, args.concurrency, args.seconds, message,
                                                   frames, lean=args.client == "lean"))
                print(f"1. {label}, {args.concurrency} concurrent turns on one worker ({name}, round {round_ + 1}, "
                      f"load average {os.getloadavg()[0]:.1f}): {figures.text()}", flush=True)


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
    parser.add_argument("--phases", default="turns,streams,replays")
    parser.add_argument("--heartbeat", type=int, default=1, help="VOYAGENT_SSE_HEARTBEAT_SECONDS of phases 2-3")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--voyagent-src", type=Path, default=None)
    parser.add_argument("--voyagent-python", type=Path, default=None,
                        help="the interpreter of --voyagent-src (a venv with its own dependencies); default: this one")
    parser.add_argument("--turn-kinds", default="flight,burst", help="phase 1's turns: flight, burst or both")
    parser.add_argument("--client", choices=("lean", "aiohttp"), default="lean",
                        help="phase 1's load generator (bench/sse_turn_client.py, or aiohttp's client)")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prefix = f"bench-sse-{uuid.uuid4().hex[:8]}:"
    with scratch_database() as dsn:
        headers = asyncio.run(admin_headers(dsn))
        if "turns" in phases:
            turn_rounds(dsn, headers, args, prefix)
        if phases & {"streams", "replays"}:
            beat = {"VOYAGENT_SSE_HEARTBEAT_SECONDS": str(args.heartbeat)}
            with server(dsn, prefix, **beat) as (url_a, worker_a), server(dsn, prefix, **beat) as (url_b, _):
                if "streams" in phases:
                    asyncio.run(open_streams(url_a, worker_a, url_b, headers, args.streams, args.hold))
                if "replays" in phases:
                    asyncio.run(replays(url_a, url_b, headers, args.replays))


if __name__ == "__main__":
    main()
