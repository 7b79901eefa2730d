"""Slow and silent clients, and killed workers (issue 9, operations.md §1.2–§1.3).

    .venv/bin/python -m bench.slow_clients_bench [--timeout 10] [--silent 2000] [--slowloris 200] [--rounds 3]
        [--kills 3]

1. ``GET /health`` p99 (wrk, 8 connections, one worker) alone, then while ``--silent`` sockets that never
   send a byte and ``--slowloris`` connections that send their head one byte per second are open.
   Target: p99 < 20 ms, and none of them held past ``VOYAGENT_CLIENT_TIMEOUT_SECONDS`` (+ 0.5 s of slack
   for the measuring process itself).
2. Two workers + Redis: SIGKILL one worker, ``--kills`` times, and time until its replacement logs that it
   serves (it listens), while a request loop counts failures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.harness import ROOT, SECRET, free_port, scratch_database, voyagent_server
from bench.load import Result, run_wrk

SLACK_SECONDS = 0.5
LOAD_CONNECTIONS = 8


# --- 1. /health under silent and slowloris connections ---------------------------------------------------


async def _read_to_end(reader: asyncio.StreamReader, data: bytes = b"") -> bytes:
    try:
        return data + await reader.read()
    except ConnectionError:  # a reset instead of an orderly close: the connection is gone all the same
        return data


async def _silent(host: str, port: int, opened: asyncio.Semaphore, holds: list[float], answered: list[bool]) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    opened.release()
    data = await _read_to_end(reader)  # until the server closes it
    holds.append(time.monotonic() - started)
    answered.append(data.startswith(b"HTTP/1.1 408"))
    writer.close()


async def _slowloris(host: str, port: int, opened: asyncio.Semaphore, holds: list[float], answered: list[bool]
                     ) -> None:
    started = time.monotonic()
    reader, writer = await asyncio.open_connection(host, port)
    opened.release()
    head = b"GET /health HTTP/1.1\r\nHost: slow\r\nX-Padding: " + b"a" * 1000
    data = b""
    for byte in head:
        try:
            writer.write(bytes([byte]))
            data = await asyncio.wait_for(reader.read(65536), timeout=1.0)
            break  # the server answered (or closed): it gave up on this head
        except asyncio.TimeoutError:
            continue
        except ConnectionError:
            break
    data = await _read_to_end(reader, data)
    holds.append(time.monotonic() - started)
    answered.append(data.startswith(b"HTTP/1.1 408"))
    writer.close()


async def _under_slow_clients(url: str, port: int, silent: int, slowloris: int, seconds: float, timeout: float
                              ) -> tuple[Result, list[float], list[bool]]:
    """Open the slow connections, then measure while all of them are open (never past the first one's timeout)."""
    began = time.monotonic()
    holds: list[float] = []
    answered: list[bool] = []
    opened = asyncio.Semaphore(0)
    tasks = [asyncio.create_task(_silent("127.0.0.1", port, opened, holds, answered)) for _ in range(silent)]
    tasks += [asyncio.create_task(_slowloris("127.0.0.1", port, opened, holds, answered)) for _ in range(slowloris)]
    for _ in tasks:  # the load starts once every slow connection is open
        await opened.acquire()
    await asyncio.sleep(0.2)  # and the server has set them up
    seconds = min(seconds, int(timeout - (time.monotonic() - began) - 0.5))
    assert seconds >= 1, "opening the slow connections took nearly the whole timeout: use a larger --timeout"
    load = await asyncio.to_thread(run_wrk, url + "/health", LOAD_CONNECTIONS, seconds, {})
    await asyncio.gather(*tasks)
    return load, holds, answered


def slow_clients(dsn: str, timeout: int, silent: int, slowloris: int, rounds: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    window = max(1, timeout - 3)  # the load runs while every slow client is still inside its timeout
    print(f"GET /health ({LOAD_CONNECTIONS} connections, 1 worker, VOYAGENT_CLIENT_TIMEOUT_SECONDS={timeout}), "
          f"alone and with {silent} silent + {slowloris} slowloris connections open, alternately", flush=True)
    with voyagent_server(dsn, VOYAGENT_CLIENT_TIMEOUT_SECONDS=str(timeout)) as url:
        port = int(url.rsplit(":", 1)[1])
        run_wrk(url + "/health", LOAD_CONNECTIONS, 2, {})  # warm-up
        for round_ in range(1, rounds + 1):
            alone = run_wrk(url + "/health", LOAD_CONNECTIONS, window, {})
            loaded, holds, answered = asyncio.run(_under_slow_clients(url, port, silent, slowloris, window, timeout))
            held_too_long = sum(h > timeout + SLACK_SECONDS for h in holds)
            print(f"  round {round_} alone      {alone.row()}")
            print(f"  round {round_} with slow  {loaded.row()}  (target p99 < 20 ms: "
                  f"{'met' if loaded.p99_ms < 20 else 'MISSED'})")
            print(f"    slow connections closed by the server: {len(holds)} of {silent + slowloris}, answered 408: "
                  f"{sum(answered)}; held min {min(holds):.2f} s, median {statistics.median(holds):.2f} s, "
                  f"max {max(holds):.2f} s; held past timeout + {SLACK_SECONDS} s: {held_too_long} "
                  f"(target 0: {'met' if held_too_long == 0 else 'MISSED'})", flush=True)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


# --- 2. a killed worker and its replacement --------------------------------------------------------------


class _Loop(threading.Thread):
    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.ok, self.failed, self.stop = url, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=10):
                    self.ok += 1
            except OSError:
                self.failed += 1


def _serving(log: Path) -> list[int]:
    return [int(pid) for pid in re.findall(r"worker pid=(\d+) serving", log.read_text(errors="replace"))]


def killed_worker(dsn: str, kills: int) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="voyagent-bench-")) / "server.log"
    env = {**os.environ, "VOYAGENT_DB_URL": dsn, "VOYAGENT_AUTH_SECRET": SECRET, "VOYAGENT_PORT": str(port),
           "VOYAGENT_WORKERS": "2", "VOYAGENT_REDIS_URL": os.environ.get("VOYAGENT_BENCH_REDIS_URL",
                                                                        "redis://127.0.0.1:6379/0"),
           "VOYAGENT_REDIS_PREFIX": f"bench-{port}:", "VOYAGENT_LOG_LEVEL": "INFO"}
    with log.open("w") as sink:
        process = subprocess.Popen([sys.executable, "-m", "voyagent", "serve"], env=env, cwd=ROOT, stdout=sink,
                                   stderr=subprocess.STDOUT)
    loop = _Loop(url)
    timings: list[float] = []
    try:
        while len(_serving(log)) < 2:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
        loop.start()
        for _ in range(kills):
            time.sleep(6)  # let every worker outlive the 5 s "quick death" window: no back-off
            seen = _serving(log)
            victim = seen[-1]
            killed_at = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            while len(_serving(log)) == len(seen):
                time.sleep(0.005)
            timings.append(time.monotonic() - killed_at)
    finally:
        loop.stop.set()
        loop.join(timeout=30)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    print(f"SIGKILL of one of 2 workers → replacement serving: {', '.join(f'{t:.2f} s' for t in timings)} "
          f"(median {statistics.median(timings):.2f} s); request loop meanwhile: {loop.ok} ok, {loop.failed} failed;"
          f" server exit code after SIGTERM: {process.returncode}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--timeout", type=int, default=10)
    parser.add_argument("--silent", type=int, default=2000)
    parser.add_argument("--slowloris", type=int, default=200)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with scratch_database() as dsn:
        slow_clients(dsn, args.timeout, args.silent, args.slowloris, args.rounds)
        killed_worker(dsn, args.kills)


if __name__ == "__main__":
    main()
