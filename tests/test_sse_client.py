"""The tests' SSE parser follows the standard's line rules: LF, CRLF and CR, any split of the bytes, comments."""

import pytest

from tests.sse_client import SseParser

FRAMES = "id: 7\nevent: agent_event\ndata: {\"é\":1}\n\n: a comment\nevent: heartbeat\ndata: \n\n"


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("piece", [1, 2, 3, 1000])
def test_frames_split_anywhere_with_any_line_end_parse_the_same(newline, piece):
    raw = FRAMES.replace("\n", newline).encode()
    parser = SseParser()
    events = []
    for start in range(0, len(raw), piece):
        events.extend(parser.feed(raw[start:start + piece]))
    assert [(e.id, e.event, e.data) for e in events] == [("7", "agent_event", '{"é":1}'), (None, "heartbeat", "")]
    assert events[0].json == {"é": 1} and parser.leftover == ""
