"""Passwords: strength rules in order, Argon2id with the configured parameters, off the event loop."""

import asyncio
import dataclasses
import os
import sys
import threading
import time

import pytest

from voyagent.errors import ApiError
from voyagent.services.passwords import BLOCKLIST, PasswordService, check_strength, strength_error


@pytest.mark.parametrize(("password", "code"), [
    ("", "password_blank"),
    ("   \t ", "password_blank"),
    ("abc12", "password_too_short"),
    ("a1" * 64 + "x", "password_too_long"),
    ("1234567890123", "password_no_letter"),
    ("abcdefghijklm", "password_no_digit"),
    ("password1234", "password_common"),
    ("  PassWord1234  ", "password_common"),
    ("Voyagent123", "password_common"),
    ("Stürdy-pässwort-1", None),
    ("Sturdy-passw0rd-42", None),
])
def test_the_first_failing_strength_rule_is_reported(password, code):
    assert strength_error(password) == code


def test_every_blocklisted_password_is_refused_and_the_list_is_the_documented_one():
    assert len(BLOCKLIST) == 59
    for password in BLOCKLIST:
        assert strength_error(password) is not None, password
        assert strength_error(password.upper() + "  ") is not None


def test_check_strength_raises_the_contract_error():
    check_strength("changeme123!")  # not on the list: accepted
    with pytest.raises(ApiError) as caught:
        check_strength("Changeme123")
    assert caught.value.status == 400
    assert caught.value.body() == {"detail": {"error": "password_too_weak", "code": "password_common"}}


@pytest.fixture
async def service(settings):
    service = await PasswordService.start(settings, max_workers=2)
    yield service
    service.close()


async def test_hashes_are_argon2id_with_the_configured_parameters(service):
    stored = await service.hash("Sturdy-passw0rd-42")
    assert stored.startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    salt, digest = stored.split("$")[4:6]
    assert len(salt) == 22 and len(digest) == 43  # 16-byte salt, 32-byte hash (base64, unpadded)
    assert await service.hash("Sturdy-passw0rd-42") != stored  # salted
    assert await service.verify(stored, "Sturdy-passw0rd-42") is True
    assert await service.verify(stored, "sturdy-passw0rd-42") is False
    assert await service.verify("not a phc string", "x") is False
    assert await service.verify(None, "x") is False
    assert service.needs_rehash(stored) is False


async def test_a_parameter_change_asks_for_a_rehash(service, settings):
    stored = await service.hash("Sturdy-passw0rd-42")
    stronger = await PasswordService.start(dataclasses.replace(settings, argon2_time_cost=2), max_workers=1)
    try:
        assert stronger.needs_rehash(stored) is True
        assert await stronger.verify(stored, "Sturdy-passw0rd-42") is True  # old hashes still verify
    finally:
        stronger.close()


async def test_a_missing_hash_costs_a_real_verify(settings):
    costly = await PasswordService.start(dataclasses.replace(settings, argon2_time_cost=3, argon2_memory_cost=32768),
                                         max_workers=1)
    try:
        stored = await costly.hash("Sturdy-passw0rd-42")
        real, dummy = [], []
        for _ in range(5):
            started = time.perf_counter()
            await costly.verify(stored, "wrong")
            real.append(time.perf_counter() - started)
            started = time.perf_counter()
            await costly.verify(None, "wrong")
            dummy.append(time.perf_counter() - started)
        # minimums: load on the machine only ever adds time
        assert 0.6 < min(dummy) / min(real) < 1.6, (real, dummy)
    finally:
        costly.close()


async def test_hashing_runs_in_the_bounded_pool_and_never_blocks_the_loop(settings):
    costly = await PasswordService.start(dataclasses.replace(settings, argon2_time_cost=3, argon2_memory_cost=65536),
                                         max_workers=2)
    seen_threads: set[str] = set()

    class Spy:
        def __init__(self, inner):
            self.inner = inner

        def hash(self, password: str) -> str:
            seen_threads.add(threading.current_thread().name)
            return self.inner.hash(password)

    costly.hasher = Spy(costly.hasher)
    try:
        gaps = []
        done = asyncio.Event()

        async def ticker():
            last = time.perf_counter()
            while not done.is_set():
                await asyncio.sleep(0.002)
                now = time.perf_counter()
                gaps.append(now - last)
                last = now

        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        await asyncio.gather(*(costly.hash(f"password-{i}") for i in range(6)))
        elapsed = time.perf_counter() - started
        done.set()
        await tick
        assert len(seen_threads) <= 2 and all(name.startswith("argon2") for name in seen_threads)
        assert threading.current_thread().name not in seen_threads
        assert elapsed > 0.05  # the work was real
        # The loop kept turning meanwhile: with the GIL held (or hashing on the loop) it could only tick
        # between the three rounds of two hashes; released, it ticks every few milliseconds.
        assert len(gaps) >= 10, (len(gaps), elapsed)
    finally:
        costly.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux-only")
async def test_hashing_threads_run_at_a_lower_priority(service):
    niceness = await service._run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert niceness >= os.getpriority(os.PRIO_PROCESS, 0) + 1 or niceness == 19
