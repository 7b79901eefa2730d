"""Benchmark plumbing: a scratch database, the real server and the ceiling as subprocesses, and
alternating measurements so both see the same machine state."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import asyncpg

from bench.load import Result, measure

ROOT = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get("VOYAGENT_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SECRET = "bench-secret-" + "y" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def scratch_database(keep: str | None = None) -> Iterator[str]:
    """A migrated database for one benchmark run, dropped afterwards (unless ``keep`` names one to reuse)."""
    from voyagent.migrations import migrate_dsn

    name = keep or f"voyagent_bench_{secrets.token_hex(4)}"

    async def run(sql: str) -> None:
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    dsn = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    if keep:
        exists = asyncio.run(_exists(name))
        if not exists:
            asyncio.run(run(f'CREATE DATABASE "{name}"'))
    else:
        asyncio.run(run(f'CREATE DATABASE "{name}"'))
    asyncio.run(migrate_dsn(dsn))
    try:
        yield dsn
    finally:
        if not keep:
            asyncio.run(run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _exists(name: str) -> bool:
    conn = await asyncpg.connect(ADMIN_DSN)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


def _wait(url: str, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url} exited early")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


@contextlib.contextmanager
def _served(args: list[str], port: int, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run a server subprocess on ``port`` until /health answers; SIGTERM it afterwards."""
    process = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{url}/health", process)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def voyagent_server(dsn: str, **env: str) -> contextlib.AbstractContextManager[str]:
    """``voyagent serve`` on a free port; yields its base URL."""
    port = free_port()
    full_env = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_PORT": str(port),
                "VOYAGENT_LOG_LEVEL": "WARNING", **env}
    return _served([sys.executable, "-m", "voyagent", "serve"], port, full_env)


def ceiling_server(dsn: str, module: str = "bench.ceiling") -> contextlib.AbstractContextManager[str]:
    """The bare ceiling app (``module`` may extend its routes) on a free port."""
    port = free_port()
    return _served([sys.executable, "-m", module, "--port", str(port), "--dsn", dsn], port)


def alternate(ours: str, ceiling: str, rounds: int, seconds: float, connections: int = 32,
              headers: dict[str, str] | None = None, ceiling_headers: dict[str, str] | None = None
              ) -> tuple[Result, Result]:
    """Measure ours and the ceiling in turn, ``rounds`` times each; return the best of each (less noise)."""
    measure(ours, connections, 2, headers)  # warm-up
    measure(ceiling, connections, 2, ceiling_headers)
    best_ours: Result | None = None
    best_ceiling: Result | None = None
    for _ in range(rounds):
        mine = measure(ours, connections, seconds, headers)
        bare = measure(ceiling, connections, seconds, ceiling_headers)
        best_ours = mine if best_ours is None or mine.rps > best_ours.rps else best_ours
        best_ceiling = bare if best_ceiling is None or bare.rps > best_ceiling.rps else best_ceiling
    assert best_ours and best_ceiling
    return best_ours, best_ceiling


def report(title: str, ours: Result, ceiling: Result, target: float | None = None) -> str:
    ratio = ours.rps / ceiling.rps if ceiling.rps else float("nan")
    verdict = "" if target is None else ("  (target ≥ %.2f: %s)" % (target, "met" if ratio >= target else "MISSED"))
    return (f"{title}\n  voyagent {ours.row()}\n  ceiling  {ceiling.row()}\n  ratio    {ratio:.2f}{verdict}")


def load_arguments(parser: argparse.ArgumentParser, default_dsn: str) -> None:
    """The options every seeded-database benchmark takes: its scratch database, reseeding, and the load."""
    parser.add_argument("--dsn", default=default_dsn)
    parser.add_argument("--reseed", action="store_true", help="drop and seed the scratch database again")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
