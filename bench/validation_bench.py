"""Validation benchmark: adversarial 1 MiB bodies against the real server (one worker) on a scratch database.

    .venv/bin/python -m bench.validation_bench [--seconds 10] [--answers 20]

Measures, in one run:
1. the worst pattern, the Money amount (``budget_amount`` = "0" × n + "x"), before and after:
   * before: the old evaluation was Python's ``re`` running MONEY_AMOUNT_PATTERN, which backtracks in time cubic in
     n; timed here in-process on n = 250…1,000 and extrapolated (cubic fit) to a 1 MiB body, because the real
     thing would hold the event loop for years;
   * after: the time the server takes to answer ``POST /enquiries`` with that 1 MiB body (422), p50 / max, and
     the server CPU time per answer (from /proc: what the event loop spends, whatever else runs on the machine);
2. the same for the other adversarial bodies (context), and for each the longest turn of the event loop (thread
   CPU time, in-process) while answering it: how long any other request can be held per adversarial one;
3. GET /health p50/p99 idle, then while 8 clients send 1 MiB Money-amount bodies back to back (target p99 < 20 ms).
The load generator is a separate process; loopback only, bounded runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import subprocess
import sys
import time

from bench.auth_bench import HUGE_BUCKETS, _latency_probe
from bench.harness import ROOT, scratch_database, voyagent_server
from voyagent.grammars import MONEY_AMOUNT_PATTERN

BODY_LIMIT = 1_048_576  # VOYAGENT_MAX_BODY_BYTES default
ATTACK_CLIENTS = 8


def _fill(template: dict, field: str, make) -> bytes:
    """``template`` with ``field`` set so that the JSON body is exactly BODY_LIMIT bytes."""
    room = BODY_LIMIT - len(json.dumps({**template, field: ""}).encode())
    body = json.dumps({**template, field: make(room)}).encode()
    assert len(body) == BODY_LIMIT
    return body


def _padded(value_of, unit_len: int) -> bytes:
    """A body ``value_of(k)`` with the largest k that fits the limit (objects and arrays)."""
    k = BODY_LIMIT // unit_len
    while len(body := json.dumps(value_of(k), separators=(",", ":")).encode()) > BODY_LIMIT:
        k -= max(1, (len(body) - BODY_LIMIT) // unit_len + 1)
    return body


MONEY_BODY = _fill({"customer_name": "A"}, "budget_amount", lambda n: "0" * (n - 1) + "x")
BODIES = {
    "POST /enquiries budget_amount 0…0x (Money amount)": ("POST", "/enquiries", MONEY_BODY),
    "PATCH /tenant-settings default_currency A…A (^[A-Z]{3}$)": (
        "PATCH", "/tenant-settings", _fill({}, "default_currency", lambda n: "A" * n)),
    "POST /auth/invites email a@a.a.…@ (e-mail rule)": (
        "POST", "/auth/invites", _fill({"role": "agent"}, "email", lambda n: ("a@" + "a." * n)[:n - 1] + "@")),
    "POST /enquiries ~90k unknown keys": (
        "POST", "/enquiries", _padded(lambda k: {"customer_name": "A", **{f"k{i}": 0 for i in range(k)}}, 11)),
    "POST /auth/api-keys scopes: ~500k bad items": (
        "POST", "/auth/api-keys", _padded(lambda k: {"name": "k", "scopes": [0] * k}, 2)),
    "POST /enquiries ~150k strings with U+0000": (
        "POST", "/enquiries", _padded(lambda k: {"customer_name": "A", "notes": None,
                                                 "x": ["\u0000"] * k}, 9)),
}


def old_regex_extrapolation() -> tuple[list[tuple[int, float]], float, float]:
    """Python ``re`` on the old pattern: (n, seconds) samples, the fitted exponent, seconds at 1 MiB."""
    pattern = re.compile(MONEY_AMOUNT_PATTERN)
    samples = []
    for n in (250, 500, 1000):
        text = "0" * n + "x"
        started = time.perf_counter()
        assert pattern.match(text) is None
        samples.append((n, time.perf_counter() - started))
    (n1, t1), (n2, t2) = samples[-2], samples[-1]
    exponent = math.log(t2 / t1) / math.log(n2 / n1)
    at_limit = t2 * (BODY_LIMIT / n2) ** 3  # cubic: the pattern has three nested unbounded repeats over digits
    return samples, exponent, at_limit


def _server_cpu_seconds() -> float:
    """CPU time (user + system) used so far by the ``voyagent serve`` processes this benchmark started."""
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    fields = handle.read().rsplit(")", 1)[1].split()
                with open(f"/proc/{entry}/cmdline", "rb") as handle:
                    cmdline = handle.read()
            except OSError:
                continue
            table[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]), b"voyagent" in cmdline)
    mine = {os.getpid()}
    grew = True
    while grew:  # descendants of this process
        found = {pid for pid, (ppid, _, _) in table.items() if ppid in mine} - mine
        grew = bool(found)
        mine |= found
    ticks = sum(cpu for pid, (_, cpu, ours) in table.items() if pid in mine and ours and pid != os.getpid())
    return ticks / os.sysconf("SC_CLK_TCK")


async def _answer_times(url: str, token: str, method: str, path: str, body: bytes, count: int
                        ) -> tuple[float, float, set[int]]:
    """p50 and max (ms) of ``count`` sequential answers to one adversarial body, and the statuses seen."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    times: list[float] = []
    statuses: set[int] = set()
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.request(method, url + path, data=body, headers=headers) as response:
                await response.read()
                statuses.add(response.status)
            times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2], times[-1], statuses


async def _longest_loop_slices(dsn: str, count: int) -> dict[str, float]:
    """For each adversarial body, answered ``count`` times by the app in this process: the longest CPU time
    (thread time, so other processes' load does not count) the event loop spent between two of its turns.
    That is the longest a request arriving meanwhile can wait per adversarial request in flight."""
    import tempfile
    import uuid

    from aiohttp.test_utils import TestClient, TestServer

    from bench.harness import SECRET
    from voyagent.app import create_app
    from voyagent.config import Settings
    from voyagent.services.tokens import mint_access_token

    settings = Settings(db_url=dsn, auth_secret=SECRET, data_dir=tempfile.mkdtemp(prefix="voyagent-bench-"),
                        **{name: 0 for name in ("rate_limit_user_per_minute", "rate_limit_auth_ip_per_minute",
                                                "rate_limit_auth_email_per_minute")})
    token, _, _ = mint_access_token(settings, user_id=uuid.uuid4(), tenant_id=uuid.uuid4(), role="agency_admin",
                                    email="bench@example.com")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    client = TestClient(TestServer(create_app(settings, dsn=dsn, db_mode="external")))
    await client.start_server()
    worst: dict[str, float] = {}
    try:
        for name, (method, path, body) in BODIES.items():
            done = asyncio.Event()
            longest = 0.0

            async def watch() -> None:
                nonlocal longest
                last = time.thread_time()
                while not done.is_set():
                    await asyncio.sleep(0)
                    now = time.thread_time()
                    longest, last = max(longest, now - last), now

            watcher = asyncio.create_task(watch())
            for _ in range(count):
                async with client.request(method, path, data=body, headers=headers) as response:
                    await response.read()
            done.set()
            await watcher
            worst[name] = longest * 1000
    finally:
        await client.close()
    return worst


async def _attack(url: str, token: str, seconds: float) -> dict[str, object]:
    """ATTACK_CLIENTS clients sending MONEY_BODY back to back for ``seconds``."""
    import aiohttp

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while time.perf_counter() < deadline:
            async with session.post(url + "/enquiries", data=MONEY_BODY, headers=headers) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=ATTACK_CLIENTS)) as session:
        await asyncio.gather(*(client(session) for _ in range(ATTACK_CLIENTS)))
    return {"statuses": statuses, "seconds": seconds}


async def _sign_up(url: str) -> str:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/auth/sign-up", json={"email": f"bench-{time.time_ns()}@example.com",
                                                             "password": "Bench-passw0rd-2024", "full_name": "B",
                                                             "agency_name": "B"}) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"sign-up failed: {response.status} {body}")
            return body["access_token"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--answers", type=int, default=20)
    parser.add_argument("--attack", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--token", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attack:  # the load-generator process
        print(json.dumps(asyncio.run(_attack(args.attack, args.token, args.seconds))))
        return

    samples, exponent, before = old_regex_extrapolation()
    env = {**HUGE_BUCKETS, "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION": "true", "VOYAGENT_WORKERS": "1"}
    with scratch_database() as dsn, voyagent_server(dsn, **env) as url:
        token = asyncio.run(_sign_up(url))
        answers, cpu = {}, {}
        for name, (method, path, body) in BODIES.items():
            before_cpu = _server_cpu_seconds()
            answers[name] = asyncio.run(_answer_times(url, token, method, path, body, args.answers))
            cpu[name] = (_server_cpu_seconds() - before_cpu) / args.answers * 1000
        slices = asyncio.run(_longest_loop_slices(dsn, args.answers))
        idle = asyncio.run(_latency_probe(f"{url}/health", args.seconds))
        load = subprocess.Popen([sys.executable, "-m", "bench.validation_bench", "--attack", url, "--token", token,
                                 "--seconds", str(args.seconds + 2)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        time.sleep(1.0)  # let the attackers get going
        busy = asyncio.run(_latency_probe(f"{url}/health", args.seconds))
        attack = json.loads(load.communicate(timeout=args.seconds + 120)[0])

    print("old evaluation (Python re, MONEY_AMOUNT_PATTERN on '0'*n+'x'), in-process:")
    for n, seconds in samples:
        print(f"  n = {n:>5}: {seconds * 1000:10.1f} ms")
    print(f"  growth exponent between the last two samples: {exponent:.2f} (cubic = 3)")
    print(f"  extrapolated to a 1 MiB body (n = {BODY_LIMIT}): {before:.3g} s ≈ {before / 86400 / 365:.3g} years")
    print(f"\n{'answer time of one 1 MiB adversarial body (now)':<60} {'p50 / max':>20}  server CPU"
          f"  longest loop turn  statuses")
    for name, (p50, worst, statuses) in answers.items():
        print(f"  {name:<58} {p50:8.1f} / {worst:7.1f} ms  {cpu[name]:6.1f} ms  {slices[name]:9.2f} ms"
              f"      {sorted(statuses)}")
    money_p50 = answers[next(iter(BODIES))][0]
    print(f"  worst pattern before → after: {before:.3g} s (extrapolated) → {money_p50:.1f} ms (measured p50)")
    print(f"\n{'GET /health p50 / p99, idle (2 connections)':<60} {idle[0]:8.2f} / {idle[1]:6.2f} ms"
          f"  ({idle[2]} requests)")
    print(f"{'GET /health p50 / p99, 8 clients sending 1 MiB Money bodies':<60} {busy[0]:8.2f} / {busy[1]:6.2f} ms"
          f"  p99 < 20 ms: {'met' if busy[1] < 20 else 'MISSED'} ({busy[2]} requests)")
    print(f"  adversarial answers during the probe: {attack['statuses']}")
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
