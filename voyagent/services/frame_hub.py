"""Live frames fanned out inside one worker: every open stream of a session subscribes here.

A turn running in this worker publishes each frame right after the event log numbered it. Frames of a turn
running in another worker (with Redis) reach this worker through ONE follower task, whatever the number of
streams: a single ``XREAD BLOCK`` over the streams of every followed session, its results published here like
local ones. So 2,000 open streams cost 2,000 in-process queues, not 2,000 blocking Redis connections.

A subscription may see a frame twice (published by the local turn and read back by the follower, or replayed and
then published): consumers skip ids they already sent, and ids of one session only grow.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Iterator

from voyagent.degradation import DependencyState
from voyagent.services.event_log import EventLog, Frame, RedisEventLog, Snapshot

log = logging.getLogger(__name__)

FOLLOW_BLOCK_MS = 250  # a session added to the follower is read within this (frames must arrive within 1 s)
RETRY_SECONDS = 0.5  # after a failed read
SHARED_SNAPSHOT_SECONDS = 0.5  # how long streams of this worker share one answer of ``snapshot``


class Closed:
    """Put in every queue when the hub shuts down: the stream ends."""


CLOSED = Closed()


class Subscription:
    """One stream's queue of the session's live frames."""

    __slots__ = ("session_id", "queue", "following")

    def __init__(self, session_id: uuid.UUID) -> None:
        self.session_id = session_id
        self.queue: asyncio.Queue[Frame | Closed] = asyncio.Queue()
        self.following = False

    async def next(self, timeout: float) -> Frame | Closed | None:
        """The next live frame, or None when ``timeout`` seconds pass without one (a queued frame is taken at
        once; waiting uses ``asyncio.timeout``, not ``wait_for``, which starts a task per call on Python 3.11)."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(timeout):
                return await self.queue.get()
        except TimeoutError:
            return None

    def queued(self) -> list[Frame | Closed]:
        """Everything already queued, without waiting (a relay writes it in one piece)."""
        items = []
        while not self.queue.empty():
            items.append(self.queue.get_nowait())
        return items


class FrameHub:
    """Subscriptions by session, and the one Redis follower of this worker."""

    def __init__(self, log_: EventLog, redis_state: DependencyState | None = None,
                 block_ms: int = FOLLOW_BLOCK_MS) -> None:
        self.log = log_
        self.redis_state = redis_state or DependencyState("redis")
        self.block_ms = block_ms
        self._subscriptions: dict[uuid.UUID, set[Subscription]] = {}
        self._positions: dict[uuid.UUID, int] = {}  # followed sessions: the last id read from Redis
        self._followers: dict[uuid.UUID, int] = {}  # followed sessions: how many subscriptions follow
        self._checked: dict[uuid.UUID, float] = {}  # followed sessions: when a stream last asked about the turn
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._snapshots: dict[tuple[uuid.UUID, int], asyncio.Future[Snapshot]] = {}

    @contextlib.contextmanager
    def subscribe(self, session_id: uuid.UUID) -> Iterator[Subscription]:
        """Receive the session's live frames for the block (subscribe BEFORE reading the buffer: a frame is then
        in the snapshot or in the queue, never in neither)."""
        subscription = Subscription(session_id)
        if self._closed:
            subscription.queue.put_nowait(CLOSED)
        self._subscriptions.setdefault(session_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            subscribers = self._subscriptions.get(session_id)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[session_id]
            if subscription.following:
                self._unfollow(session_id)

    def publish(self, session_id: uuid.UUID, frame: Frame) -> None:
        """Hand a frame to every subscription of its session in this worker."""
        for subscription in self._subscriptions.get(session_id, ()):
            subscription.queue.put_nowait(frame)

    def end(self, session_id: uuid.UUID) -> None:
        """Close the session's streams in this worker (a turn whose final could not be buffered)."""
        for subscription in self._subscriptions.get(session_id, ()):
            subscription.queue.put_nowait(CLOSED)

    def follow(self, subscription: Subscription, after: int) -> None:
        """Also deliver the frames other workers append after ``after`` (Redis only; a no-op in-process, where
        every turn publishes here itself)."""
        if not isinstance(self.log, RedisEventLog) or subscription.following or self._closed:
            return
        subscription.following = True
        session_id = subscription.session_id
        self._followers[session_id] = self._followers.get(session_id, 0) + 1
        self._positions[session_id] = min(self._positions.get(session_id, after), after)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._follow_loop(), name="sse-follower")
        self._wake.set()

    def _unfollow(self, session_id: uuid.UUID) -> None:
        remaining = self._followers.get(session_id, 1) - 1
        if remaining > 0:
            self._followers[session_id] = remaining
            return
        self._followers.pop(session_id, None)
        self._positions.pop(session_id, None)
        self._checked.pop(session_id, None)

    def check_due(self, session_id: uuid.UUID, every: float) -> bool:
        """Whether a stream following the session should ask about its turn now: once per ``every`` seconds in
        this worker, however many streams follow it (the others hear the answer's frames through the hub)."""
        now = asyncio.get_running_loop().time()
        if session_id in self._checked and now - self._checked[session_id] < every:
            return False
        if session_id in self._positions:
            self._checked[session_id] = now
        return True

    async def snapshot(self, session_id: uuid.UUID, after: int) -> Snapshot:
        """The log's snapshot after ``after``, one read shared by every stream of this worker that asks the same
        within ``SHARED_SNAPSHOT_SECONDS`` (replays ask after each heartbeat silence: 2,000 streams following 20
        sessions with 1 s heartbeats make ~40 reads a second, not 2,000). A failed read is not shared later."""
        key = (session_id, after)
        shared = self._snapshots.get(key)
        if shared is None:
            shared = asyncio.ensure_future(self.log.snapshot(session_id, after=after))
            self._snapshots[key] = shared
            shared.add_done_callback(lambda done: self._forget_snapshot(key, done))
        return await asyncio.shield(shared)

    def _forget_snapshot(self, key: tuple[uuid.UUID, int], done: asyncio.Future[Snapshot]) -> None:
        if done.cancelled() or done.exception() is not None:
            self._snapshots.pop(key, None)
        else:
            asyncio.get_running_loop().call_later(SHARED_SNAPSHOT_SECONDS, self._snapshots.pop, key, None)

    @property
    def followed(self) -> int:
        """Sessions this worker follows in Redis right now."""
        return len(self._positions)

    async def _follow_loop(self) -> None:
        assert isinstance(self.log, RedisEventLog)
        while not self._closed:
            if not self._positions:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                frames = await self.log.read(dict(self._positions), self.block_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.redis_state.failure("SSE follower (XREAD)", exc)
                await asyncio.sleep(RETRY_SECONDS)
                continue
            self.redis_state.success()
            for session_id, frame in frames:
                if session_id in self._positions:
                    self._positions[session_id] = max(self._positions[session_id], frame.id)
                    self.publish(session_id, frame)

    async def close(self) -> None:
        """End every open subscription (shutdown) and stop the follower."""
        self._closed = True
        for subscribers in self._subscriptions.values():
            for subscription in subscribers:
                subscription.queue.put_nowait(CLOSED)
        self._wake.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
