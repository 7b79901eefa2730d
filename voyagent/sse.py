"""The SSE stream of a chat turn on the wire (chat-and-agent.md §3.1): frame bytes, the response, heartbeats.

Frames are written by hand rather than with aiohttp-sse: the contract's heartbeat is an ``event: heartbeat`` frame
(aiohttp-sse sends a ``: ping`` comment), lines end in LF (aiohttp-sse's default separator is CRLF), and a replayed
frame must be byte-identical to its first transmission, which is simplest when the stored ``data`` bytes are
written as they are. Never compressed; ``X-Accel-Buffering: no`` keeps proxies from buffering.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiohttp import web

from voyagent.services.event_log import Frame, Snapshot
from voyagent.services.frame_hub import Closed, Subscription

log = logging.getLogger(__name__)

HEARTBEAT = b"event: heartbeat\ndata: \n\n"
HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}

CheckLive = Callable[[int], Awaitable[Snapshot]]


def agent_frame(frame: Frame) -> bytes:
    """``id``, ``event: agent_event`` and ``data`` lines, then the blank line."""
    return b"id: %d\nevent: agent_event\ndata: %s\n\n" % (frame.id, frame.data)


async def open_stream(request: web.Request) -> web.StreamResponse:
    """Send the ``200`` head of an event stream (rate-limit and request-id headers come from the prepare hook)."""
    response = web.StreamResponse(status=200, headers=HEADERS)
    response.content_type = "text/event-stream"
    response.charset = "utf-8"
    await response.prepare(request)
    return response


class Relay:
    """What one connection sends after the head: ``backlog`` (buffered frames), then the live frames of ``turn``
    up to its ``final``; a heartbeat after every ``heartbeat`` seconds of silence.

    ``check_live`` (replays following a turn that may run in another worker) is asked after each silence: a turn
    that ended meanwhile has its missed frames sent from the buffer, and one that died without a ``final`` (its
    worker killed) closes the stream instead of holding it for ever.
    """

    def __init__(self, subscription: Subscription, *, heartbeat: float, turn: str | None, after: int = 0,
                 backlog: list[Frame] | None = None, check_live: CheckLive | None = None) -> None:
        self.subscription = subscription
        self.heartbeat = heartbeat
        self.turn = turn
        self.last_id = after
        self.backlog = backlog or []
        self.check_live = check_live
        self.done = False
        self.tail = b""  # the last frames, up to the final: sent by the caller with the end of the body

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

    async def _write(self, response: web.StreamResponse, chunk: bytes) -> None:
        """Frames that end the stream wait for the end of the body (``run``); the others go out now."""
        if self.done or self.turn is None:  # the final was taken, or a replay with no turn to follow
            self.tail = chunk
        elif chunk:
            await response.write(chunk)

    async def _run(self, response: web.StreamResponse) -> None:
        await self._write(response, self._take(self.backlog, live=False))
        while not self.done and self.turn is not None:
            item = await self.subscription.next(self.heartbeat)
            if item is None:
                await response.write(HEARTBEAT)
                if self.check_live is not None:
                    await self._catch_up(response)
                continue
            items = [item, *self.subscription.queued()]  # frames already queued go out in one write
            closed = next((i for i, queued in enumerate(items) if isinstance(queued, Closed)), None)
            frames = [queued for queued in items[:closed] if not isinstance(queued, Closed)]
            await self._write(response, self._take(frames, live=True))
            if closed is not None:
                return

    async def _catch_up(self, response: web.StreamResponse) -> None:
        assert self.check_live is not None
        try:
            snapshot = await self.check_live(self.last_id)
        except Exception as exc:  # the buffer cannot be read: the stream ends rather than waiting blind
            log.warning("SSE replay of session %s ends: the event log cannot be read (%s)",
                        self.subscription.session_id, exc)
            self.done = True
            return
        if snapshot.live == self.turn:
            return
        self.tail = self._take(snapshot.frames, live=True)
        self.done = True  # the followed turn is over: its final was in the buffer, or it died without one
