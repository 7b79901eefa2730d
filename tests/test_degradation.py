"""The dependency-state log policy: one line per state change, a counted summary per period, no tracebacks."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from voyagent.degradation import DependencyState, PeriodicCount, Unavailable, report_best_effort


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "voyagent.dependency" and r.levelno >= logging.INFO]


async def test_an_outage_is_one_line_down_one_summary_per_period_and_one_line_up(caplog):
    state = DependencyState("redis", period=3600)
    with caplog.at_level(logging.DEBUG, logger="voyagent.dependency"):
        for _ in range(500):
            state.failure("rate limiter", ConnectionError("Error 111 connecting"))
        for _ in range(20):
            state.failure("denylist check", TimeoutError())
        assert state.down
        assert len(_lines(caplog)) == 1  # the state change only, however many failures follow
        state._window.flush()  # the period elapsed
        state.success()
        state.success()
    lines = _lines(caplog)
    assert len(lines) == 3
    assert lines[0].startswith("redis unavailable: rate limiter failed (ConnectionError: Error 111 connecting)")
    assert "519 failed use(s)" in lines[1] and "rate limiter: 499, denylist check: 20" in lines[1]
    assert lines[2].startswith("redis available again after") and "(520 failed use(s) during the outage)" in lines[2]
    assert not state.down
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any(r.exc_info for r in warnings)


class _SummarySeen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.event = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "still unavailable" in record.getMessage():
            self.event.set()


async def test_the_summary_comes_from_the_loop_without_further_failures():
    state = DependencyState("postgresql", period=0.01)
    seen = _SummarySeen()
    logger = logging.getLogger("voyagent.dependency")
    logger.addHandler(seen)
    try:
        state.failure("connection", OSError("refused"))
        state.failure("connection", OSError("refused"))
        await asyncio.wait_for(seen.event.wait(), timeout=30)
    finally:
        logger.removeHandler(seen)


async def test_recovery_cancels_the_pending_summary(caplog):
    state = DependencyState("redis", period=3600)
    with caplog.at_level(logging.INFO, logger="voyagent.dependency"):
        state.failure("x", OSError())
        state.failure("x", OSError())
        state.success()
        assert state._window._handle is None
        state._window.flush()
    assert [m.split(" ")[1] for m in _lines(caplog)] == ["unavailable:", "available"]


def test_periodic_count_without_a_loop_reports_at_the_next_flush():
    seen: list[Counter[str]] = []
    count = PeriodicCount(lambda counts, seconds: seen.append(counts), period=10)
    count.add("a")
    count.add("a")
    count.flush()
    assert seen == [Counter({"a": 2})]
    count.flush()
    assert len(seen) == 1  # nothing new, no line


def test_best_effort_failures_already_reported_get_no_traceback(caplog):
    log = logging.getLogger("voyagent.test")
    reported = Unavailable("no database connection")
    reported.__cause__ = ConnectionRefusedError("refused")
    with caplog.at_level(logging.DEBUG, logger="voyagent.test"):
        report_best_effort(log, "could not write %s", reported, "the audit event")
        report_best_effort(log, "could not write %s", RuntimeError("bug"), "the audit event")
    first, second = caplog.records
    assert first.levelno == logging.DEBUG and not first.exc_info and "ConnectionRefusedError" in first.getMessage()
    assert second.levelno == logging.WARNING and second.exc_info
