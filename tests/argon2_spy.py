"""A PasswordHasher wrapper that records which stored hash each verify used, and on which thread: tests then
assert the work was done (a real Argon2 verify of the right cost, off the loop) instead of timing it."""

from __future__ import annotations

import threading
from typing import Any


def argon2_parameters(phc: str) -> str:
    """``$argon2id$v=19$m=…,t=…,p=…`` of a PHC string: everything that sets the cost of verifying it."""
    return phc.rsplit("$", 2)[0]


class RecordingHasher:
    """Delegates to ``inner``; ``verified`` lists ``(stored_hash, thread_name)`` per verify call."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.verified: list[tuple[str, str]] = []

    def verify(self, stored_hash: str, password: str) -> bool:
        self.verified.append((stored_hash, threading.current_thread().name))
        return self.inner.verify(stored_hash, password)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)
