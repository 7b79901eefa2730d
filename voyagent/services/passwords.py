"""Passwords: the strength rules of auth.md and Argon2id hashing in a bounded thread pool, never on the loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import secrets
import threading

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from voyagent.config import Settings
from voyagent.errors import ApiError

log = logging.getLogger("voyagent.passwords")

HASH_LENGTH = 32
SALT_LENGTH = 16
# Hashing threads run at a lower CPU priority than the event loop, so a burst of sign-ins cannot starve
# the requests that need no hashing (libargon2's lane threads inherit the niceness of the pool thread).
WORKER_NICENESS = 10

# auth.md, Password rules (exact list).
BLOCKLIST = frozenset({
    "password", "password1", "password12", "password123", "password1234", "passw0rd", "passw0rd1",
    "passw0rd123", "qwerty", "qwerty123", "qwertyuiop", "qwerty1234", "letmein", "letmein1", "letmein123",
    "welcome", "welcome1", "welcome123", "admin", "admin1", "admin123", "administrator", "root", "root123",
    "toor", "iloveyou", "iloveyou1", "monkey", "monkey123", "dragon", "dragon123", "master", "master123",
    "abc123", "abc12345", "abcd1234", "123abc", "123456", "1234567", "12345678", "123456789", "1234567890",
    "111111", "000000", "696969", "trustno1", "sunshine", "princess", "football", "baseball", "superman",
    "batman123", "voyagent", "voyagent1", "voyagent123", "travel123", "changeme", "changeme1", "changeme123",
})


def strength_error(password: str) -> str | None:
    """The code of the first failing strength rule (auth.md order), or None when the password is strong enough."""
    if not password.strip():
        return "password_blank"
    if len(password) < 10:
        return "password_too_short"
    if len(password) > 128:
        return "password_too_long"
    if not any(c.isalpha() for c in password):
        return "password_no_letter"
    if not any(c.isdigit() for c in password):
        return "password_no_digit"
    if password.strip().lower() in BLOCKLIST:
        return "password_common"
    return None


def check_strength(password: str) -> None:
    """Raise ``400 {"error": "password_too_weak", "code": …}`` for a weak new password."""
    code = strength_error(password)
    if code is not None:
        raise ApiError(400, {"error": "password_too_weak", "code": code})


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), WORKER_NICENESS)
    except (AttributeError, OSError):  # not Linux, or not permitted: run at normal priority
        pass


def default_workers() -> int:
    """Concurrent hashes: one per CPU, at most 4 (each default hash holds 100 MiB)."""
    return max(1, min(4, os.cpu_count() or 1))


class PasswordService:
    """Argon2id with the configured parameters; every hash and verify runs in this service's own pool."""

    def __init__(self, settings: Settings, max_workers: int | None = None) -> None:
        self.hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_cost=settings.argon2_memory_cost,
                                     parallelism=settings.argon2_parallelism, hash_len=HASH_LENGTH,
                                     salt_len=SALT_LENGTH, type=Type.ID)
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=max_workers or default_workers(),
                                                           thread_name_prefix="argon2",
                                                           initializer=_lower_priority)
        self._dummy_hash = ""

    @classmethod
    async def start(cls, settings: Settings, max_workers: int | None = None) -> "PasswordService":
        """Create the service and its dummy hash (same cost as a real one) for unknown users."""
        service = cls(settings, max_workers)
        service._dummy_hash = await service.hash(secrets.token_urlsafe(24))
        return service

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def hash(self, password: str) -> str:
        """A fresh Argon2id PHC string."""
        return await self._run(self.hasher.hash, password)

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when ``password`` matches; with no stored hash, a dummy verify of the same cost and False."""
        if not stored_hash:
            await self._run(self._verify, self._dummy_hash, password)
            return False
        return await self._run(self._verify, stored_hash, password)

    def needs_rehash(self, stored_hash: str) -> bool:
        """True when the hash was made with other parameters than the current ones."""
        try:
            return self.hasher.check_needs_rehash(stored_hash)
        except (InvalidHashError, ValueError):
            return True
