"""The SSE stream of a chat turn on the wire (chat-and-agent.md §3.1): frame bytes, the response, heartbeats.

Frames are written by hand rather than with aiohttp-sse: the contract's heartbeat is an ``event: heartbeat`` frame
(aiohttp-sse sends a ``: ping`` comment), lines end in LF (aiohttp-sse's default separator is CRLF), and a replayed
frame must be byte-identical to its first transmission, which is simplest when the stored ``data`` bytes are
written as they are. Never compressed; ``X-Accel-Buffering: no`` keeps proxies from buffering.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from aiohttp import web

from voyagent.middleware.response_headers import prepare_stream
from voyagent.services.event_log import Frame, Snapshot
from voyagent.services.frame_hub import Closed, Subscription

log = logging.getLogger(__name__)

HEARTBEAT = b"event: heartbeat\ndata: \n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

CheckLive = Callable[[int], Awaitable[Snapshot | None]]  # None: nothing learnt (another stream just asked)
UNREADABLE_PATIENCE = 15.0  # a followed turn's log unreadable this long (Redis away): the stream ends


def agent_frame(frame: Frame) -> bytes:
    """``id``, ``event: agent_event`` and ``data`` lines, then the blank line."""
    return b"id: %d\nevent: agent_event\ndata: %s\n\n" % (frame.id, frame.data)


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the ``200`` head of an event stream, with the headers every response carries."""
    response = web.StreamResponse(status=200, headers=HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await prepare_stream(request, response)
    return response


class Relay:
    """What one connection sends after the head: ``backlog`` (buffered frames), then the live frames of ``turn``
    up to its ``final``; a heartbeat after every ``heartbeat`` seconds of silence.

    ``check_live`` is asked after each silence (of ``check_every`` seconds when given, else of a heartbeat): a
    turn that ended meanwhile has its missed frames sent from the buffer (a turn whose worker died is closed by
    the check with ``internal_error`` and ``final``), and one gone without a trace (Redis lost it) closes the
    stream instead of holding it for ever.
    """

    def __init__(self, subscription: Subscription, *, heartbeat: float, turn: str | None, after: int = 0,
                 backlog: list[Frame] | None = None, check_live: CheckLive | None = None,
                 check_every: float | None = None) -> None:
        self.subscription = subscription
        self.heartbeat = heartbeat
        self.turn = turn
        self.last_id = after
        self.backlog = backlog or []
        self.check_live = check_live
        self.check_every = min(check_every, heartbeat) if check_every else heartbeat
        self.done = False
        self.tail = b""  # the last frames, up to the final: sent by ``run`` with the end of the body
        self._unreadable_since: float | None = None

    def _take(self, frames: list[Frame], *, live: bool) -> bytes:
        """The frames not sent yet, in order, up to the final of the followed turn; of ``live`` frames only the
        followed turn's (the final of the turn before may still be on its way when this one starts)."""
        chunks = []
        for frame in frames:
            if self.done:
                break
            if frame.id <= self.last_id or (live and frame.turn != self.turn):
                continue
            chunks.append(agent_frame(frame))
            self.last_id = frame.id
            if frame.final and frame.turn == self.turn:
                self.done = True
        return b"".join(chunks)

    async def run(self, response: web.StreamResponse) -> None:
        """Write until done, then the end of the body (with ``tail``, one write); a client that went away ends it
        quietly (the turn runs on regardless)."""
        try:
            await self._run(response)
            await response.write_eof(self.tail)
        except ConnectionError:
            log.info("SSE client went away (session %s)", self.subscription.session_id)

    async def _write(self, response: web.StreamResponse, chunk: bytes) -> bool:
        """Frames that end the stream wait for the end of the body (``run``); the others go out now. True when
        something was written now."""
        if self.done or self.turn is None:  # the final was taken, or a replay with no turn to follow
            self.tail += chunk
            return False
        if not chunk:
            return False
        await response.write(chunk)
        return True

    async def _run(self, response: web.StreamResponse) -> None:
        await self._write(response, self._take(self.backlog, live=False))
        loop = asyncio.get_running_loop()
        quiet_since = loop.time()
        while not self.done and self.turn is not None:
            wait = min(self.check_every, quiet_since + self.heartbeat - loop.time())
            item = await self.subscription.next(max(wait, 0.0))
            if item is None:
                if loop.time() - quiet_since >= self.heartbeat - 0.001:
                    await response.write(HEARTBEAT)
                    quiet_since = loop.time()
                if self.check_live is not None:
                    await self._catch_up()
                continue
            items = [item, *self.subscription.queued()]  # frames already queued go out in one write
            closed = next((i for i, queued in enumerate(items) if isinstance(queued, Closed)), None)
            frames = [queued for queued in items[:closed] if not isinstance(queued, Closed)]
            if await self._write(response, self._take(frames, live=True)):
                quiet_since = loop.time()
            if closed is not None:
                return

    async def _catch_up(self) -> None:
        """Ask the log about the followed turn; a turn that is over leaves its missed frames in ``tail``."""
        assert self.check_live is not None
        now = asyncio.get_running_loop().time()
        try:
            snapshot = await self.check_live(self.last_id)
        except Exception as exc:  # Redis away (a restart): wait for it a while rather than end the stream at once
            self._unreadable_since = self._unreadable_since or now
            if now - self._unreadable_since >= UNREADABLE_PATIENCE:
                log.warning("SSE replay of session %s ends: the event log cannot be read (%s)",
                            self.subscription.session_id, exc)
                self.done = True
            return
        self._unreadable_since = None
        if snapshot is None or snapshot.live == self.turn:
            return
        chunk = self._take(snapshot.frames, live=True)
        self.done = True  # the followed turn is over: its final was in the buffer, or it is gone without one
        self.tail += chunk
