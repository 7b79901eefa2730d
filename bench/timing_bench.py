"""Timing figures the tests deliberately do not assert: the tests check that the same work is done (a real
Argon2 verify for an unknown e-mail, an imitated delivery for an unknown reset address, a cut-off at the SMTP
timeout, a ``last_used_at`` write after the response), this script measures how long it takes.

    .venv/bin/python -m bench.timing_bench [--rounds 8]

In-process (the services at their default cost): Argon2 verify of a stored hash vs a missing one; how the
event loop keeps turning while the pool hashes; ``Mailer.imitate`` against the recorded duration; the cut-off
of a silent SMTP server. Against the real server (one worker, a scratch database, an SMTP sink on loopback):
``POST /auth/sign-in`` unknown e-mail vs wrong password; ``POST /auth/request-password-reset`` unknown vs
registered address; how soon ``last_used_at`` shows in ``GET /auth/api-keys`` after a key's response.
Ratios use the minimum of each side: machine load only ever adds time. Bounded: a few dozen requests.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import statistics
import threading
import time
from typing import Any, Awaitable, Callable

from bench.harness import free_port, scratch_database, voyagent_server

PASSWORD = "Bench-passw0rd-2024"
HUGE_BUCKETS = {"VOYAGENT_RATE_LIMIT_USER_PER_MINUTE": "1000000000",
                "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "1000000000",
                "VOYAGENT_RATE_LIMIT_AUTH_EMAIL_PER_MINUTE": "1000000000"}


def _row(name: str, figure: str, target: str = "", met: bool | None = None) -> None:
    verdict = "" if met is None else (": met" if met else ": MISSED")
    print(f"{name:<58} {figure:>30}  {target}{verdict}")


def _ratio(unknown: list[float], known: list[float]) -> float:
    return min(unknown) / min(known)


async def _timed(call: Callable[[], Awaitable[Any]]) -> float:
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


# --- in-process -----------------------------------------------------------------------------------------


async def argon2_figures(rounds: int) -> None:
    from voyagent.config import Settings
    from voyagent.services.passwords import PasswordService

    service = await PasswordService.start(Settings(), max_workers=2)  # the default cost: t=2, 100 MiB, p=8
    try:
        stored = await service.hash(PASSWORD)
        real, dummy = [], []
        for _ in range(rounds):
            real.append(await _timed(lambda: service.verify(stored, "wrong")))
            dummy.append(await _timed(lambda: service.verify(None, "wrong")))
        ratio = _ratio(dummy, real)
        _row("Argon2 verify, missing hash : stored hash (min)", f"{ratio:.2f} ({min(dummy) * 1000:.0f} / "
             f"{min(real) * 1000:.0f} ms)", "0.6–1.6", 0.6 < ratio < 1.6)

        gaps: list[float] = []
        done = asyncio.Event()

        async def ticker() -> None:
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        elapsed = await _timed(lambda: asyncio.gather(*(service.hash(f"password-{i}") for i in range(6))))
        done.set()
        await tick
        gaps.sort()
        _row("event loop while 6 hashes run (2 threads): ticks of 2 ms", f"{len(gaps)} in {elapsed:.2f} s, "
             f"max gap {gaps[-1] * 1000:.0f} ms", "≥ 10 ticks", len(gaps) >= 10)
    finally:
        service.close()


async def mailer_figures() -> None:
    from voyagent.config import Settings
    from voyagent.services.email import Mailer

    logging.getLogger("voyagent.email").setLevel(logging.ERROR)  # the cut-off below is expected, not news
    mailer = Mailer(Settings())
    nothing = await _timed(lambda: mailer.imitate("password_reset"))
    _row("Mailer.imitate with nothing recorded", f"{nothing * 1000:.1f} ms", "< 50 ms", nothing < 0.05)
    mailer.record_duration("password_reset", 0.2)
    waited = await _timed(lambda: mailer.imitate("password_reset"))
    _row("Mailer.imitate after a 200 ms delivery", f"{waited * 1000:.0f} ms", "180–500 ms", 0.18 < waited < 0.5)

    hang_up = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await hang_up.wait()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    mailer = Mailer(dataclasses.replace(Settings(), smtp_url=f"smtp://127.0.0.1:{port}", smtp_timeout=1))
    try:
        cut_off = await _timed(lambda: mailer.send(kind="invite", to="ada@example.com", subject="s", body="b\n"))
    finally:
        hang_up.set()
        server.close()
    _row("silent SMTP server, VOYAGENT_SMTP_TIMEOUT_SECONDS=1", f"cut off after {cut_off:.2f} s", "< 3 s",
         cut_off < 3)


# --- the real server ------------------------------------------------------------------------------------


class _Sink:
    """aiosmtpd handler: accept and count."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.count += 1
        return "250 OK"


async def server_figures(url: str, rounds: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        email = f"timing-{os.getpid()}@example.com"
        async with session.post(f"{url}/auth/sign-up", json={"email": email, "password": PASSWORD,
                                                             "full_name": "Bench", "agency_name": "Bench"}) as r:
            assert r.status == 201, await r.text()
            token = (await r.json())["access_token"]
        jwt = {"Authorization": f"Bearer {token}"}

        async def post(path: str, body: dict[str, Any], status: int) -> None:
            async with session.post(f"{url}{path}", json=body) as response:
                await response.read()
                assert response.status == status, (path, response.status)

        known, unknown = [], []
        for i in range(rounds):
            known.append(await _timed(lambda: post("/auth/sign-in", {"email": email, "password": "Wrong-1x"}, 401)))
            unknown.append(await _timed(lambda: post("/auth/sign-in", {"email": f"nobody-{i}@example.com",
                                                                        "password": "Wrong-1x"}, 401)))
        ratio = _ratio(unknown, known)
        _row("sign-in, unknown e-mail : wrong password (min)", f"{ratio:.2f} ({min(unknown) * 1000:.0f} / "
             f"{min(known) * 1000:.0f} ms)", "0.5–2.0", 0.5 < ratio < 2.0)

        known, unknown = [], []
        for i in range(rounds):
            known.append(await _timed(lambda: post("/auth/request-password-reset", {"email": email}, 200)))
            unknown.append(await _timed(lambda: post("/auth/request-password-reset",
                                                     {"email": f"nobody-{i}@example.com"}, 200)))
        ratio = _ratio(unknown, known)
        _row("password reset, unknown : registered address (min)", f"{ratio:.2f} ({min(unknown) * 1000:.0f} / "
             f"{min(known) * 1000:.0f} ms)", "0.5–2.0", 0.5 < ratio < 2.0)

        delays = []
        for i in range(rounds):  # a new key each time: a key's use is recorded at most once a minute
            async with session.post(f"{url}/auth/api-keys", json={"name": f"timing {i}", "scopes": ["tenant:read"]},
                                    headers=jwt) as r:
                assert r.status == 201, await r.text()
                created = await r.json()
            key_id, key = created["api_key"]["id"], created["key"]
            async with session.get(f"{url}/tenant-settings", headers={"Authorization": f"Bearer {key}"}) as r:
                await r.read()
                answered = time.perf_counter()
            while True:
                async with session.get(f"{url}/auth/api-keys", headers=jwt) as r:
                    items = (await r.json())["items"]
                if next(item for item in items if item["id"] == key_id)["last_used_at"] is not None:
                    break
                if time.perf_counter() - answered > 10:
                    raise RuntimeError("last_used_at never appeared")
                await asyncio.sleep(0.005)
            delays.append(time.perf_counter() - answered)
        _row("last_used_at visible after the key's response", f"median {statistics.median(delays) * 1000:.0f} ms, "
             f"max {max(delays) * 1000:.0f} ms", "< 2 s", max(delays) < 2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()

    print(f"{'measurement':<58} {'figure':>30}  target")
    asyncio.run(argon2_figures(args.rounds))
    asyncio.run(mailer_figures())

    from aiosmtpd.controller import Controller

    sink = _Sink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    env = {**HUGE_BUCKETS, "VOYAGENT_AUTH_SKIP_EMAIL_VERIFICATION": "true",
           "VOYAGENT_SMTP_URL": f"smtp://127.0.0.1:{port}"}
    try:
        with scratch_database() as dsn, voyagent_server(dsn, **env) as url:
            asyncio.run(server_figures(url, args.rounds))
    finally:
        controller.stop()
    print(f"(mails delivered to the sink: {sink.count})")


if __name__ == "__main__":
    main()
