"""Dependency outages logged as state changes plus a periodic count, never a traceback per request.

During an outage every request fails the same way; a line (worse, a traceback) per failure buries the one
line that matters (34 MB of log in a 15 s Redis outage). Code that talks to PostgreSQL or Redis reports
each failure (and, cheaply, each success) to the :class:`DependencyState` of that dependency; this module
alone decides what reaches the log: ``up → down`` once, then one summary line per period with the count,
then ``down → up`` with the total.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections import Counter
from typing import Callable

log = logging.getLogger("voyagent.dependency")

SUMMARY_SECONDS = 10.0
_MAX_REASON = 200


class Unavailable(Exception):
    """A dependency failure already reported to its state: map it to a response, never log it again."""


def describe(exc: BaseException) -> str:
    """``Type: message`` on one line, short enough for a log line (no traceback)."""
    text = str(exc).replace("\n", " ").strip()
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return reason if len(reason) <= _MAX_REASON else reason[:_MAX_REASON] + "…"


class PeriodicCount:
    """Events counted by kind and written as one line per period, scheduled on the running loop.

    The first event of a quiet period starts a timer; when it fires, ``emit(counts, seconds)`` writes the
    line and the counts start again from zero.
    """

    __slots__ = ("_emit", "period", "_counts", "_handle", "_started")

    def __init__(self, emit: Callable[[Counter[str], float], None], period: float = SUMMARY_SECONDS) -> None:
        self._emit = emit
        self.period = period
        self._counts: Counter[str] = Counter()
        self._handle: asyncio.TimerHandle | None = None
        self._started = 0.0

    def add(self, kind: str) -> None:
        self._counts[kind] += 1
        if self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop (a synchronous caller): the next flush() reports it
                return
            self._started = time.monotonic()
            # An empty context: the summary belongs to no request (no request id on its line).
            self._handle = loop.call_later(self.period, self.flush, context=contextvars.Context())

    def take(self) -> Counter[str]:
        """The counts so far (the pending line is cancelled: the caller reports them)."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        counts, self._counts = self._counts, Counter()
        return counts

    def flush(self) -> None:
        started = self._started
        counts = self.take()
        if counts:
            self._emit(counts, time.monotonic() - started)


def _breakdown(counts: Counter[str]) -> str:
    return ", ".join(f"{what}: {n}" for what, n in counts.most_common())


class DependencyState:
    """Whether PostgreSQL or Redis works, as this process last saw it.

    ``success()`` costs one attribute test while the dependency is up, so it can sit on the hot path.
    """

    __slots__ = ("name", "_down_since", "_total", "_window")

    def __init__(self, name: str, period: float = SUMMARY_SECONDS) -> None:
        self.name = name
        self._down_since: float | None = None
        self._total = 0
        self._window = PeriodicCount(self._summarise, period)

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failure(self, what: str, exc: BaseException) -> None:
        """Count one failed use; the first one of an outage is logged (without traceback)."""
        if self._down_since is None:
            self._down_since = time.monotonic()
            self._total = 1
            log.warning("%s unavailable: %s failed (%s); further failures are counted and summarised every "
                        "%.0f s until it answers again", self.name, what, describe(exc), self._window.period)
            log.debug("first %s failure of this outage", self.name, exc_info=exc)
            return
        self._total += 1
        self._window.add(what)

    def success(self) -> None:
        """Record a successful use: ends an outage (logged once with its count)."""
        if self._down_since is not None:
            self._recovered()

    def _recovered(self) -> None:
        assert self._down_since is not None
        lasted = time.monotonic() - self._down_since
        self._window.take()
        log.warning("%s available again after %.1f s (%d failed use(s) during the outage)",
                    self.name, lasted, self._total)
        self._down_since = None
        self._total = 0

    def _summarise(self, counts: Counter[str], seconds: float) -> None:
        if self._down_since is None:
            return
        log.warning("%s still unavailable after %.0f s: %d failed use(s) in the last %.0f s (%s)", self.name,
                    time.monotonic() - self._down_since, sum(counts.values()), seconds, _breakdown(counts))


def report_best_effort(logger: logging.Logger, message: str, exc: BaseException, *args: object) -> None:
    """Log a best-effort step that failed: with its traceback, unless its dependency already reported it."""
    if isinstance(exc, Unavailable):
        logger.debug(message + " (%s)", *args, describe(exc.__cause__ or exc))
    else:
        logger.warning(message, *args, exc_info=exc)
