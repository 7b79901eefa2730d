"""The parent of several workers keeps their number (operations.md §1.2) and stops them cleanly (§1.4).

A worker that exits while the server is not stopping is logged (exit status or signal) and started again:
at once if it had lived at least ``QUICK_DEATH_SECONDS``, otherwise after a delay that doubles with each
consecutive quick death (1 s, 2 s, 4 s … ``MAX_DELAY_SECONDS``). When no worker is alive and every one
of them died that quickly, the server cannot serve: the parent says so and exits non-zero, so that a
process supervisor restarts (and reports) the whole server instead of it idling in back-off.

The parent sleeps in one ``wait`` on the workers' sentinels and a signal wake-up pipe: no polling.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import signal
import time
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess
from typing import Callable

log = logging.getLogger("voyagent.supervisor")

QUICK_DEATH_SECONDS = 5.0
MAX_DELAY_SECONDS = 60.0
STOP_GRACE_SECONDS = 30.0  # after SIGTERM a worker drains for up to 10 s; past this it is killed


@dataclasses.dataclass
class _Slot:
    """One configured worker position and the process currently filling it."""

    index: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    quick_deaths: int = 0  # consecutive deaths within QUICK_DEATH_SECONDS of a start
    restart_at: float | None = None


def describe_exit(exitcode: int | None) -> str:
    """``exited with status 1`` / ``killed by signal SIGKILL``."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exited with status {exitcode}"


def restart_delay(quick_deaths: int) -> float:
    """0 after a worker that lived long enough, then 1, 2, 4 … up to MAX_DELAY_SECONDS."""
    if quick_deaths == 0:
        return 0.0
    return min(MAX_DELAY_SECONDS, 2.0 ** (quick_deaths - 1))


class Supervisor:
    """Runs ``count`` workers made by ``start_worker(index)`` until SIGTERM/SIGINT; ``run()`` is the exit code."""

    def __init__(self, start_worker: Callable[[int], BaseProcess], count: int,
                 on_death: Callable[[int], None] | None = None) -> None:
        self._start_worker = start_worker
        self._slots = [_Slot(i) for i in range(count)]
        self._on_death = on_death
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def run(self) -> int:
        previous = {signum: signal.signal(signum, self._request_stop) for signum in (signal.SIGTERM, signal.SIGINT)}
        previous_wakeup = signal.set_wakeup_fd(self._wake_w)
        try:
            for slot in self._slots:
                self._start(slot)
            code = self._supervise()
            self._stop_all()
            return code
        finally:
            signal.set_wakeup_fd(previous_wakeup)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
            os.close(self._wake_r)
            os.close(self._wake_w)

    def _request_stop(self, signum: int, frame: object) -> None:
        self._stopping = True

    def _supervise(self) -> int:
        while not self._stopping:
            self._wait()
            now = time.monotonic()
            for slot in self._slots:
                if slot.process is not None and not slot.process.is_alive():
                    self._reap(slot, now)
            if self._stopping:
                break
            if self._nothing_can_run():
                log.error("no worker stays up: each of the %d died within %.0f s of its start; exiting",
                          len(self._slots), QUICK_DEATH_SECONDS)
                return 1
            for slot in self._slots:
                if slot.restart_at is not None and slot.restart_at <= now:
                    self._start(slot)
        return 0

    def _wait(self) -> None:
        pending = [s.restart_at for s in self._slots if s.restart_at is not None]
        timeout = max(0.0, min(pending) - time.monotonic()) if pending else None
        sentinels = [s.process.sentinel for s in self._slots if s.process is not None]
        ready = wait([*sentinels, self._wake_r], timeout)
        if self._wake_r in ready:
            try:
                os.read(self._wake_r, 512)  # signal numbers written by the wake-up fd
            except BlockingIOError:
                pass

    def _start(self, slot: _Slot) -> None:
        again = slot.restart_at is not None
        slot.process = self._start_worker(slot.index)
        slot.started_at = time.monotonic()
        slot.restart_at = None
        if again:
            log.info("worker %d started again as pid %s", slot.index, slot.process.pid)

    def _reap(self, slot: _Slot, now: float) -> None:
        process = slot.process
        assert process is not None
        slot.process = None
        if process.pid is not None and self._on_death is not None:
            self._on_death(process.pid)
        if self._stopping:
            return
        lived = now - slot.started_at
        slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
        delay = restart_delay(slot.quick_deaths)
        slot.restart_at = now + delay
        when = "now" if delay == 0 else f"in {delay:.0f} s ({slot.quick_deaths} quick death(s) in a row)"
        log.warning("worker %d (pid %s) %s after %.1f s; restarting it %s", slot.index, process.pid,
                    describe_exit(process.exitcode), lived, when)

    def _nothing_can_run(self) -> bool:
        return all(slot.process is None and slot.quick_deaths > 0 for slot in self._slots)

    def _stop_all(self) -> None:
        """Forward SIGTERM (each worker drains on its own), wait, kill what outlives the grace period."""
        alive = [s.process for s in self._slots if s.process is not None and s.process.is_alive()]
        for process in alive:
            if process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for process in alive:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.warning("worker pid %s did not stop within %.0f s; killing it", process.pid, STOP_GRACE_SECONDS)
                process.kill()
                process.join()
            if process.pid is not None and self._on_death is not None:
                self._on_death(process.pid)
