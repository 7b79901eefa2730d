"""The Anthropic Messages API on the wire: server-sent events decoded from the response bytes, streamed events
assembled into one message (text as it arrives, tool inputs parsed when their block stops, usage, stop reason),
and the provider's failures named by their error class. No I/O here: ``voyagent.agent.anthropic`` drives it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import re
from typing import Any, Mapping

import orjson

API_VERSION = "2023-06-01"  # the ``anthropic-version`` header the event format below belongs to
MAX_EVENT_BYTES = 4 * 1024 * 1024  # one SSE event; a provider that sends more is not speaking this protocol
MAX_ERROR_BODY = 64 * 1024  # what is read of a non-200 answer to find its error class

# Error classes (the ``error.type`` of the provider's error object) and how §10.2 treats them.
TRANSIENT = frozenset({"rate_limit_error", "overloaded_error", "api_error"})  # Retry-After, else 1 s then 2 s
CONNECTION_ERROR = "connection_error"  # no answer, or the stream broke off: one retry after 1 s
INVALID_RESPONSE = "invalid_response"  # an answer that is not this protocol: not retried
_STATUS_CLASSES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                   403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                   429: "rate_limit_error", 500: "api_error", 529: "overloaded_error"}
_CLASS_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ProviderError(Exception):
    """A failed request or stream: ``error_class`` goes into ``upstream_error: <class>``; ``retry_after`` is
    the provider's wait in seconds, when it said one."""

    def __init__(self, error_class: str, *, status: int | None = None, retry_after: float | None = None,
                 message: str = "") -> None:
        detail = (f" (HTTP {status})" if status else "") + (f": {message}" if message else "")
        super().__init__(error_class + detail)
        self.error_class = error_class
        self.status = status
        self.retry_after = retry_after

    @property
    def transient(self) -> bool:
        """Rate limited or overloaded: worth the §10.2 rate-limit retries."""
        return self.error_class in TRANSIENT

    @property
    def connection(self) -> bool:
        return self.error_class == CONNECTION_ERROR


def error_class_of(payload: Any, fallback: str) -> str:
    """``payload["error"]["type"]`` when it is a plausible class name, else ``fallback``."""
    error = payload.get("error") if isinstance(payload, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) and _CLASS_RE.match(kind) else fallback


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        seconds = (when - now).total_seconds()
    if seconds != seconds or seconds in (float("inf"), float("-inf")):  # NaN or infinite
        return None
    return max(seconds, 0.0)


def http_error(status: int, body: bytes, headers: Mapping[str, str], now: dt.datetime) -> ProviderError:
    """The error a non-200 answer stands for: the body's error class, else one named after the status."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    fallback = _STATUS_CLASSES.get(status) or ("api_error" if status >= 500 else f"http_{status}")
    error_class = error_class_of(payload, fallback)
    return ProviderError(error_class, status=status, retry_after=parse_retry_after(headers.get("Retry-After"), now))


@dataclasses.dataclass(frozen=True, slots=True)
class ServerEvent:
    """One dispatched server-sent event: its ``event`` field and its ``data`` lines joined by LF."""

    event: str
    data: str


class SseDecoder:
    """Incremental ``text/event-stream`` parsing (WHATWG HTML, server-sent events): lines end with CRLF, LF or
    CR; a blank line dispatches; ``:`` starts a comment; one space after the colon is dropped. Chunks may end
    anywhere, inside a line or a UTF-8 sequence: lines are cut from bytes and decoded whole."""

    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        self._buffer = bytearray()
        self._skip_lf = False  # the last chunk ended with CR: an LF starting the next one belongs to it
        self._event = ""
        self._data: list[str] = []
        self._event_bytes = 0
        self._max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[ServerEvent]:
        """The events completed by ``chunk``."""
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
        self._skip_lf = False
        self._buffer += chunk
        events: list[ServerEvent] = []
        start = 0
        buffer = self._buffer
        while True:
            lf = buffer.find(b"\n", start)
            cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
            end = cr if cr >= 0 else lf
            if end < 0:
                break
            line = bytes(buffer[start:end])
            if end == cr:
                if cr + 1 == len(buffer):
                    self._skip_lf = True
                    start = cr + 1
                else:
                    start = cr + 2 if buffer[cr + 1:cr + 2] == b"\n" else cr + 1
            else:
                start = lf + 1
            dispatched = self._line(line)
            if dispatched is not None:
                events.append(dispatched)
        del buffer[:start]
        if len(buffer) + self._event_bytes > self._max_event_bytes:
            raise ProviderError(INVALID_RESPONSE, message="server-sent event too large")
        return events

    def _line(self, raw: bytes) -> ServerEvent | None:
        if not raw:
            return self._dispatch()
        self._event_bytes += len(raw)
        if self._event_bytes > self._max_event_bytes:
            raise ProviderError(INVALID_RESPONSE, message="server-sent event too large")
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None  # id, retry and unknown fields mean nothing to this client

    def _dispatch(self) -> ServerEvent | None:
        event, data = self._event, self._data
        self._event, self._data, self._event_bytes = "", [], 0
        if not data:
            return None
        return ServerEvent(event or "message", "\n".join(data))


@dataclasses.dataclass(slots=True)
class _Block:
    kind: str  # "text" or "tool_use"
    text: list[str] = dataclasses.field(default_factory=list)
    tool_id: str = ""
    name: str = ""
    json_parts: list[str] = dataclasses.field(default_factory=list)
    tool_input: Any = None  # parsed when the block stops
    stopped: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class ToolCall:
    """A tool-use block of the reply. ``tool_input`` is the parsed object, or the raw text when the provider's
    JSON did not parse (the gateway's schema check then answers ``invalid_input``)."""

    id: str
    name: str
    tool_input: Any


class StreamedMessage:
    """One reply assembled from its stream events (Messages API streaming: ``message_start``,
    ``content_block_start/delta/stop``, ``message_delta``, ``message_stop``; ``ping`` and unknown types are
    ignored, an ``error`` event raises :class:`ProviderError`)."""

    def __init__(self) -> None:
        self._blocks: dict[int, _Block] = {}
        self.stop_reason: str | None = None
        self.input_tokens = 0
        self.output_tokens = 0
        self.started = False
        self.complete = False  # message_stop seen

    def apply(self, event: ServerEvent) -> str | None:
        """Take one event; returns the text it adds to the reply, if any."""
        try:
            data = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            raise ProviderError(INVALID_RESPONSE, message=f"undecodable {event.event} event") from None
        if not isinstance(data, dict):
            raise ProviderError(INVALID_RESPONSE, message=f"{event.event} event is not an object")
        kind = data.get("type", event.event)
        handler = _HANDLERS.get(kind) if isinstance(kind, str) else None
        return handler(self, data) if handler is not None else None

    def _message_start(self, data: dict[str, Any]) -> None:
        message = data.get("message")
        self.started = True
        usage = message.get("usage") if isinstance(message, dict) else None
        if isinstance(usage, dict):
            self.input_tokens = _count(usage.get("input_tokens"), self.input_tokens)
            self.output_tokens = _count(usage.get("output_tokens"), self.output_tokens)

    def _block_start(self, data: dict[str, Any]) -> str | None:
        index, block = data.get("index"), data.get("content_block")
        if not isinstance(index, int) or not isinstance(block, dict):
            raise ProviderError(INVALID_RESPONSE, message="malformed content_block_start")
        if block.get("type") == "text":
            text = block.get("text") or ""
            self._blocks[index] = _Block("text", [text] if text else [])
            return text or None
        if block.get("type") == "tool_use":
            tool_id, name = block.get("id"), block.get("name")
            if not isinstance(tool_id, str) or not isinstance(name, str):
                raise ProviderError(INVALID_RESPONSE, message="tool_use block without id or name")
            self._blocks[index] = _Block("tool_use", tool_id=tool_id, name=name)
        return None  # other block kinds (thinking, server tools) are not requested and not kept

    def _block(self, data: dict[str, Any]) -> _Block | None:
        index = data.get("index")
        return self._blocks.get(index) if isinstance(index, int) else None

    def _block_delta(self, data: dict[str, Any]) -> str | None:
        block, delta = self._block(data), data.get("delta")
        if block is None or block.stopped or not isinstance(delta, dict):
            return None
        if delta.get("type") == "text_delta" and block.kind == "text":
            text = delta.get("text")
            if isinstance(text, str) and text:
                block.text.append(text)
                return text
        elif delta.get("type") == "input_json_delta" and block.kind == "tool_use":
            part = delta.get("partial_json")
            if isinstance(part, str):
                block.json_parts.append(part)
        return None

    def _block_stop(self, data: dict[str, Any]) -> None:
        block = self._block(data)
        if block is None or block.stopped:
            return
        block.stopped = True
        if block.kind == "tool_use":
            raw = "".join(block.json_parts)
            if not raw.strip():
                block.tool_input = {}  # a tool without parameters may stream no JSON at all
            else:
                try:
                    block.tool_input = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    block.tool_input = raw

    def _message_delta(self, data: dict[str, Any]) -> None:
        delta = data.get("delta")
        if isinstance(delta, dict) and delta.get("stop_reason") is not None:
            self.stop_reason = str(delta["stop_reason"])
        usage = data.get("usage")
        if isinstance(usage, dict):  # cumulative counts: the last one is the reply's, never a sum
            self.input_tokens = _count(usage.get("input_tokens"), self.input_tokens)
            self.output_tokens = _count(usage.get("output_tokens"), self.output_tokens)

    def _message_stop(self, data: dict[str, Any]) -> None:
        self.complete = True

    def _error(self, data: dict[str, Any]) -> None:
        raise ProviderError(error_class_of(data, "api_error"), message="error event in the stream")

    def content(self) -> list[dict[str, Any]]:
        """The reply as Messages-API content blocks, to send back as the assistant's turn of the next request."""
        blocks: list[dict[str, Any]] = []
        for _, block in sorted(self._blocks.items()):
            if block.kind == "text":
                text = "".join(block.text)
                if text.strip():
                    blocks.append({"type": "text", "text": text})
            elif block.stopped:
                tool_input = block.tool_input if isinstance(block.tool_input, dict) else {}
                blocks.append({"type": "tool_use", "id": block.tool_id, "name": block.name, "input": tool_input})
        return blocks

    def tool_calls(self) -> list[ToolCall]:
        """The completed tool-use blocks, in order."""
        return [ToolCall(block.tool_id, block.name, block.tool_input)
                for _, block in sorted(self._blocks.items()) if block.kind == "tool_use" and block.stopped]


def _count(value: Any, current: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else current


_HANDLERS = {
    "message_start": StreamedMessage._message_start,
    "content_block_start": StreamedMessage._block_start,
    "content_block_delta": StreamedMessage._block_delta,
    "content_block_stop": StreamedMessage._block_stop,
    "message_delta": StreamedMessage._message_delta,
    "message_stop": StreamedMessage._message_stop,
    "error": StreamedMessage._error,
}
