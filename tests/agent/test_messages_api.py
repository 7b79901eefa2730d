"""The Messages API wire format: server-sent events cut anywhere, a reply assembled from its events, the
provider's error classes and Retry-After."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.agent.fake_anthropic import message_end, message_start, sse, text_block, tool_block
from voyagent.agent.messages_api import (ProviderError, ServerEvent, SseDecoder, StreamedMessage, http_error,
                                         parse_retry_after)

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc)


def decode(parts: list[bytes]) -> list[ServerEvent]:
    decoder = SseDecoder()
    return [event for part in parts for event in decoder.feed(part)]


def test_events_are_the_same_wherever_the_bytes_are_cut():
    stream = sse(message_start(3), *text_block(0, ["naïve ", "日本 🎉"]), *message_end("end_turn", 4))
    whole = decode([stream])
    assert [event.event for event in whole] == ["message_start", "content_block_start", "content_block_delta",
                                                "content_block_delta", "content_block_stop", "message_delta",
                                                "message_stop"]
    assert json.loads(whole[3].data)["delta"]["text"] == "日本 🎉"
    for cut in range(1, len(stream)):  # every single cut, including inside each multi-byte character
        assert decode([stream[:cut], stream[cut:]]) == whole
    assert decode([bytes([byte]) for byte in stream]) == whole


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_comments_and_multi_line_data(newline):
    raw = newline.join([b": a comment", b"event: custom", b"data: first", b"data:second", b"id: 9", b"retry: 5",
                        b"", b"data: {\"type\":\"ping\"}", b"", b"event: no-data", b"", b""])
    expected = [ServerEvent("custom", "first\nsecond"), ServerEvent("message", '{"type":"ping"}')]
    assert decode([raw]) == expected
    assert decode([raw[i:i + 1] for i in range(len(raw))]) == expected  # a CR at a chunk's end, its LF next


def test_an_oversized_event_is_refused():
    decoder = SseDecoder(max_event_bytes=64)
    with pytest.raises(ProviderError) as caught:
        decoder.feed(b"data: " + b"x" * 100)
    assert caught.value.error_class == "invalid_response"


def assemble(*events: dict) -> tuple[StreamedMessage, list[str]]:
    message = StreamedMessage()
    texts = []
    for event in decode([sse(*events)]):
        text = message.apply(event)
        if text:
            texts.append(text)
    return message, texts


def test_a_reply_with_text_and_tool_use():
    message, texts = assemble(message_start(12, 1), *text_block(0, ["Let me ", "look."]),
                              *tool_block(1, "toolu_1", "search_flights", ['{"origin": "D', 'EL"}']),
                              *message_end("tool_use", 30))
    assert texts == ["Let me ", "look."]
    assert (message.stop_reason, message.input_tokens, message.output_tokens, message.complete) == (
        "tool_use", 12, 30, True)
    assert message.content() == [{"type": "text", "text": "Let me look."},
                                 {"type": "tool_use", "id": "toolu_1", "name": "search_flights",
                                  "input": {"origin": "DEL"}}]
    [call] = message.tool_calls()
    assert (call.id, call.name, call.tool_input) == ("toolu_1", "search_flights", {"origin": "DEL"})


def test_a_tool_input_is_parsed_only_when_its_block_stops():
    message, _ = assemble(message_start(1), *tool_block(0, "toolu_1", "get_itinerary", ["{}"])[:-1])
    assert message.tool_calls() == [] and message.content() == []
    message.apply(ServerEvent("content_block_stop", '{"type":"content_block_stop","index":0}'))
    assert [call.tool_input for call in message.tool_calls()] == [{}]


def test_the_type_in_the_data_wins_and_the_event_name_may_be_absent():
    message, texts = assemble(message_start(2), *text_block(0, ["x"]))
    unnamed = StreamedMessage()
    for event in decode([sse(message_start(2), *text_block(0, ["x"]), event_names=False)]):
        unnamed.apply(event)
    assert unnamed.content() == message.content() == [{"type": "text", "text": "x"}]
    delta = '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"y"}}'
    open_block, _ = assemble(message_start(2), *text_block(0, ["x"])[:-1])
    assert open_block.apply(ServerEvent("ping", delta)) == "y"  # the data's type, not the event name, decides
    assert message.apply(ServerEvent("content_block_delta", delta)) is None  # the block has stopped


def test_an_error_event_raises_its_class():
    with pytest.raises(ProviderError) as caught:
        assemble(message_start(2), {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert caught.value.error_class == "overloaded_error" and caught.value.transient


@pytest.mark.parametrize("data", ["not json", "[1, 2]"])
def test_undecodable_data_is_an_invalid_response(data):
    with pytest.raises(ProviderError) as caught:
        StreamedMessage().apply(ServerEvent("message_start", data))
    assert caught.value.error_class == "invalid_response" and not caught.value.transient


def test_malformed_blocks_are_refused_and_stray_deltas_ignored():
    with pytest.raises(ProviderError):
        assemble({"type": "content_block_start", "index": "0", "content_block": {"type": "text"}})
    with pytest.raises(ProviderError):
        assemble({"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": 5}})
    message, texts = assemble({"type": "content_block_delta", "index": 7, "delta": {"type": "text_delta", "text": "?"}},
                              {"type": "content_block_stop", "index": [1]}, {"type": ["odd"]})
    assert texts == [] and message.content() == []


@pytest.mark.parametrize(("value", "seconds"), [
    ("7", 7.0), (" 1.5 ", 1.5), ("-3", 0.0), ("Wed, 01 Jul 2026 12:00:30 GMT", 30.0), ("soon", None), (None, None),
    ("nan", None), ("inf", None)])
def test_retry_after_in_seconds_or_as_a_date(value, seconds):
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(("status", "body", "expected"), [
    (429, b'{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}', "rate_limit_error"),
    (401, b"<html>nope</html>", "authentication_error"),
    (529, b"", "overloaded_error"),
    (503, b"", "api_error"),
    (418, b"", "http_418"),
    (400, b'{"error":{"type":"Not A Class!"}}', "invalid_request_error"),
])
def test_an_http_error_is_named_by_its_body_else_its_status(status, body, expected):
    error = http_error(status, body, {"Retry-After": "2"}, NOW)
    assert (error.error_class, error.status, error.retry_after) == (expected, status, 2.0)
