"""A lean HTTP/1.1 client for the turn benchmark: one keep-alive connection, one POST at a time, the SSE body read
as it arrives. aiohttp's client cost about as much CPU per turn as PostgreSQL did, on the two cores the server
shares with it; this one writes the prepared request in one piece and only de-chunks and scans the body.

It measures the same thing: the time from writing the POST to the first ``event: agent_event`` frame in the
de-chunked body, every turn read to the end of its body (its ``final``), anything else counted as an error.
"""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlsplit

import orjson

FRAME = b"event: agent_event"
FINAL = b'"kind":"final"'


class TurnError(Exception):
    """A turn that did not end as a 200 stream of the expected frames."""


class TurnClient:
    """POSTs ``message`` to one session over one connection, again and again."""

    def __init__(self, url: str, session_id: str, headers: dict[str, str], message: str) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        body = orjson.dumps({"message": message})
        lines = [f"POST /chat/sessions/{session_id}/messages HTTP/1.1", f"Host: {parts.netloc}",
                 "Content-Type: application/json", "Accept: text/event-stream", f"Content-Length: {len(body)}",
                 *(f"{name}: {value}" for name, value in headers.items())]
        self.request = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None

    async def turn(self, frames: int) -> float:
        """One turn: seconds from the POST to the first agent event; ``TurnError`` unless the body holds
        ``frames`` agent events, the last a final (the connection is then closed: the next turn opens another)."""
        try:
            return await self._turn(frames)
        except BaseException:
            await self.close()
            raise

    async def _turn(self, frames: int) -> float:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        reader, writer = self.reader, self.writer
        assert reader is not None
        started = time.monotonic()
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = head[9:12]
        lowered = head.lower()
        if status != b"200":
            length = int(lowered.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0]) \
                if b"content-length:" in lowered else 0
            body = await reader.readexactly(length)
            raise TurnError(f"{status.decode()} {body[:200]!r}")
        if b"transfer-encoding: chunked" not in lowered:
            raise TurnError(f"an event stream that is not chunked: {head[:300]!r}")
        first: float | None = None
        body = bytearray()
        while True:  # chunked transfer coding: size line, data, CRLF; a zero size ends the body
            size = int((await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")  # no trailers
                break
            chunk = await reader.readexactly(size + 2)
            scan_from = max(0, len(body) - len(FRAME))
            body += chunk[:-2]
            if first is None and FRAME in body[scan_from:]:
                first = time.monotonic() - started
        if first is None or body.count(FRAME) != frames or FINAL not in body[body.rfind(FRAME):]:
            raise TurnError(f"unexpected frames: {bytes(body[:300])!r}")
        if b"connection: close" in lowered:
            await self.close()
        return first
