"""A real SSE parser for the tests (the WHATWG event-stream rules): fed the body in whatever pieces TCP delivers,
it accepts LF, CRLF and CR line ends, ignores comments, and dispatches an event at each blank line."""

from __future__ import annotations

import codecs
import dataclasses
from typing import Any, AsyncIterator

import orjson


@dataclasses.dataclass
class SseEvent:
    id: str | None
    event: str
    data: str
    lines: list[str]  # the field lines as received, for format assertions

    @property
    def json(self) -> Any:
        return orjson.loads(self.data)

    @property
    def kind(self) -> str | None:
        return self.json["kind"] if self.event == "agent_event" else None


class SseParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")()
        self._pending = ""
        self._after_cr = False
        self._lines: list[str] = []

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events completed by ``chunk``."""
        text = self._decoder.decode(chunk)
        events = []
        for char in text:
            if self._after_cr and char == "\n":
                self._after_cr = False
                continue
            self._after_cr = char == "\r"
            if char in "\r\n":
                line, self._pending = self._pending, ""
                event = self._line(line)
                if event is not None:
                    events.append(event)
            else:
                self._pending += char
        return events

    def _line(self, line: str) -> SseEvent | None:
        if line:
            self._lines.append(line)
            return None
        lines, self._lines = self._lines, []
        if not lines:
            return None
        fields: dict[str, list[str]] = {}
        for field_line in lines:
            if field_line.startswith(":"):
                continue
            name, _, value = field_line.partition(":")
            fields.setdefault(name, []).append(value[1:] if value.startswith(" ") else value)
        return SseEvent(id=fields["id"][-1] if "id" in fields else None, event=fields.get("event", ["message"])[-1],
                        data="\n".join(fields.get("data", [])), lines=lines)

    @property
    def leftover(self) -> str:
        return self._pending + "".join(self._lines)


async def events_of(response: Any, raw: bytearray | None = None) -> AsyncIterator[SseEvent]:
    """The events of an aiohttp client response as they arrive (the raw bytes appended to ``raw``)."""
    parser = SseParser()
    async for chunk in response.content.iter_any():
        if raw is not None:
            raw.extend(chunk)
        for event in parser.feed(chunk):
            yield event
    assert not parser.leftover, f"stream ended inside a frame: {parser.leftover!r}"


async def read_all(response: Any) -> tuple[bytes, list[SseEvent]]:
    """Read to the end: the raw body and its events."""
    raw = bytearray()
    events = [event async for event in events_of(response, raw)]
    return bytes(raw), events
