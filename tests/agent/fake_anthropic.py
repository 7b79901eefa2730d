"""A local stand-in for the Messages API: an aiohttp app that answers ``POST /v1/messages`` with scripted replies
(recorded streams in the provider's event format, error answers, broken connections) and keeps every request."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from aiohttp import web


def sse(*events: dict[str, Any], event_names: bool = True) -> bytes:
    """Server-sent events as the provider writes them: ``event: <type>`` then ``data: <json>``, blank line."""
    frames = []
    for data in events:
        head = f"event: {data['type']}\n" if event_names else ""
        frames.append(f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n")
    return "".join(frames).encode()


def message_start(input_tokens: int, output_tokens: int = 1, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    return {"type": "message_start", "message": {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL", "type": "message", "role": "assistant", "content": [], "model": model,
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                  "output_tokens": output_tokens}}}


def text_block(index: int, pieces: list[str]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": ""}},
            *({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": piece}}
              for piece in pieces),
            {"type": "content_block_stop", "index": index}]


def tool_block(index: int, tool_id: str, name: str, fragments: list[str]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index,
             "content_block": {"type": "tool_use", "id": tool_id, "name": name, "input": {}}},
            *({"type": "content_block_delta", "index": index,
               "delta": {"type": "input_json_delta", "partial_json": fragment}} for fragment in fragments),
            {"type": "content_block_stop", "index": index}]


def message_end(stop_reason: str, output_tokens: int, input_tokens: int | None = None) -> list[dict[str, Any]]:
    usage: dict[str, Any] = {"output_tokens": output_tokens}
    if input_tokens is not None:
        usage["input_tokens"] = input_tokens
    return [{"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": usage},
            {"type": "message_stop"}]


def text_reply(pieces: list[str], *, input_tokens: int = 25, output_tokens: int = 15) -> bytes:
    """A whole reply of text only, ending the turn."""
    return sse(message_start(input_tokens), *text_block(0, pieces), *message_end("end_turn", output_tokens))


def chunks(data: bytes, size: int) -> list[bytes]:
    """``data`` cut every ``size`` bytes, wherever that falls (inside lines and UTF-8 sequences)."""
    return [data[i:i + size] for i in range(0, len(data), size)]


@dataclasses.dataclass
class Stream:
    """A 200 event stream written in ``parts``; ``abort`` drops the connection after them (no message_stop)."""

    parts: list[bytes]
    abort: bool = False


@dataclasses.dataclass
class Answer:
    """A plain answer, e.g. an error: status, JSON body, headers."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def error_answer(status: int, error_type: str, headers: dict[str, str] | None = None) -> Answer:
    return Answer(status, {"type": "error", "error": {"type": error_type, "message": "scripted"},
                           "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy"}, headers or {})


@dataclasses.dataclass
class Received:
    headers: dict[str, str]
    body: dict[str, Any]


class FakeAnthropic:
    """Replies in script order; each request is kept (headers, JSON body). Running out of script is a test bug."""

    def __init__(self) -> None:
        self.script: list[Stream | Answer] = []
        self.requests: list[Received] = []
        self.app = web.Application()
        self.app.router.add_post("/v1/messages", self.messages)

    def reply(self, *replies: Stream | Answer | bytes) -> None:
        self.script.extend(Stream([r]) if isinstance(r, bytes) else r for r in replies)

    async def messages(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Received(dict(request.headers), await request.json()))
        if not self.script:
            return web.json_response({"type": "error", "error": {"type": "api_error", "message": "no script"}},
                                     status=500)
        reply = self.script.pop(0)
        if isinstance(reply, Answer):
            return web.json_response(reply.body, status=reply.status, headers=reply.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        for part in reply.parts:
            await response.write(part)
        if reply.abort:
            assert request.transport is not None
            request.transport.abort()  # the connection breaks: no chunked terminator, no message_stop
            return response
        await response.write_eof()
        return response
