"""Best-effort work that runs after a response (e.g. ``last_used_at`` touches), awaited at shutdown.

``drain`` lets a caller wait for that work as an event (tests wait for it instead of sleeping).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

from voyagent.degradation import report_best_effort

log = logging.getLogger("voyagent.background")


class BackgroundTasks:
    """A set of fire-and-forget tasks that keeps strong references and is drained on ``close``."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """Run ``coro`` in the background; failures are logged, never raised."""
        if self._closed:
            coro.close()
            return
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        exc = None if task.cancelled() else task.exception()
        if exc is not None:
            report_best_effort(log, "background task %s failed", exc, task.get_name())

    def __len__(self) -> int:
        return len(self._tasks)

    async def drain(self) -> None:
        """Wait until every task spawned so far, and any task those spawn, has finished (failures stay logged)."""
        while pending := {task for task in self._tasks if not task.done()}:
            await asyncio.wait(pending)

    async def close(self, timeout: float = 5.0) -> None:
        """Refuse new work, give running tasks ``timeout`` seconds, then cancel what is left."""
        self._closed = True
        if not self._tasks:
            return
        pending = set(self._tasks)
        _, still_running = await asyncio.wait(pending, timeout=timeout)
        for task in still_running:
            task.cancel()
        if still_running:
            await asyncio.gather(*still_running, return_exceptions=True)
