"""Passwords: strength rules in order, Argon2id with the configured parameters, off the event loop."""

import asyncio
import dataclasses
import os
import sys
import threading

import pytest

from tests.argon2_spy import RecordingHasher, argon2_parameters
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


async def test_a_missing_hash_costs_a_real_verify_of_the_same_parameters(service):
    # How long each takes is a figure of bench/timing_bench.py; here: the same work is done.
    spy = service.hasher = RecordingHasher(service.hasher)
    stored = await service.hash("Sturdy-passw0rd-42")
    assert await service.verify(stored, "wrong") is False
    assert await service.verify(None, "wrong") is False
    assert await service.verify("", "wrong") is False
    [(real, _), (dummy, _), (dummy_again, _)] = spy.verified
    assert real == stored
    assert dummy == dummy_again != stored  # one dummy hash, made at start-up...
    assert argon2_parameters(dummy) == argon2_parameters(stored)  # ...at the cost of a real one
    assert len(dummy) == len(stored)  # same salt and digest lengths
    assert all(thread.startswith("argon2") for _, thread in spy.verified)


class HeldHasher:
    """Each ``hash`` reports its thread to the loop, then waits for ``release`` before hashing."""

    def __init__(self, inner, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.loop = loop
        self.arrivals: asyncio.Queue[str] = asyncio.Queue()
        self.release = threading.Event()

    def hash(self, password: str) -> str:
        self.loop.call_soon_threadsafe(self.arrivals.put_nowait, threading.current_thread().name)
        assert self.release.wait(timeout=60), "never released"
        return self.inner.hash(password)


async def test_hashing_runs_in_the_bounded_pool_and_never_blocks_the_loop(settings):
    # How smoothly the loop turns during real hashing is a figure of bench/timing_bench.py.
    service = await PasswordService.start(settings, max_workers=2)
    held = service.hasher = HeldHasher(service.hasher, asyncio.get_running_loop())
    try:
        work = asyncio.gather(*(service.hash(f"password-{i}") for i in range(6)))
        # two hashes are in progress, held in their threads, and the loop is free to go on meanwhile
        running = {await held.arrivals.get(), await held.arrivals.get()}
        assert threading.current_thread().name not in running
        held.release.set()
        hashes = await work
        threads = running | {held.arrivals.get_nowait() for _ in range(4)}
        assert len(threads) <= 2 and all(name.startswith("argon2") for name in threads)  # the bounded pool
        assert all(h.startswith("$argon2id$") for h in hashes) and len(set(hashes)) == 6
    finally:
        service.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread niceness is Linux-only")
async def test_hashing_threads_run_at_a_lower_priority(service):
    niceness = await service._run(lambda: os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
    assert niceness >= os.getpriority(os.PRIO_PROCESS, 0) + 1 or niceness == 19
