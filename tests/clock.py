"""A clock the test moves by hand, for services that take an injectable ``clock``/``timer`` callable."""

from __future__ import annotations

import time


class FakeClock:
    """Call it for the time; ``advance`` or ``set`` to move it. Starts at the real time unless told otherwise,
    so tokens minted in real time line up with it."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def set(self, when: float) -> None:
        self.now = when
