"""POST /chat/sessions/{id}/messages as a client meets it: the SSE stream of a turn, its ids, heartbeats, replay
with Last-Event-ID, the pre-stream checks, quotas, timeouts and failures (chat-and-agent.md §2–§5).

The turns are run by tests/agent/scripted_backend.py, loaded the contract's way (VOYAGENT_AGENT_BACKEND =
<module>:<factory>), whose message is its script: the tests decide what a turn emits and when it goes on.
"""

from __future__ import annotations

import asyncio
import uuid

import orjson
import pytest

from tests.agent import scripted_backend
from tests.sse_client import SseParser, events_of, read_all
from voyagent.agent.events import KEYS

SCRIPTED = "tests.agent.scripted_backend:create"


def signal_name() -> str:
    return f"go-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_stream_client(make_client):
    async def build(**overrides):
        return await make_client(agent_backend=overrides.pop("agent_backend", SCRIPTED), **overrides)

    return build


@pytest.fixture
async def stream_client(make_stream_client):
    return await make_stream_client()


async def new_session(client, user):
    response = await client.post("/chat/sessions", headers=user.headers)
    assert response.status == 201
    return (await response.json())["session_id"]


def send(client, user, session_id, message="", *, last_event_id=None, **body):
    headers = dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return client.post(f"/chat/sessions/{session_id}/messages", json={"message": message, **body}, headers=headers)


async def turn(client, user, session_id, message="", **kwargs):
    """Send and read the whole stream: (raw body, events)."""
    response = await send(client, user, session_id, message, **kwargs)
    assert response.status == 200, await response.text()
    return await read_all(response)


def agent_events(events):
    return [event for event in events if event.event == "agent_event"]


def kinds(events):
    return [event.kind for event in agent_events(events)]


def ids(events):
    return [int(event.id) for event in agent_events(events)]


def assert_one_final_last(events, turn_id=None):
    agent = agent_events(events)
    finals = [event for event in agent if event.kind == "final"]
    assert len(finals) == 1 and agent[-1] is finals[0], kinds(events)
    if turn_id is not None:
        assert finals[0].json["turn_id"] == turn_id


# --- the frame format -------------------------------------------------------------------------------------


async def test_a_turn_streams_byte_exact_frames_with_increasing_ids_and_one_final(stream_client, admin):
    session_id = await new_session(stream_client, admin)
    response = await send(stream_client, admin, session_id, "say Hello there")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Content-Encoding" not in response.headers
    assert "RateLimit-Limit" in response.headers and "X-Request-Id" in response.headers
    raw, events = await read_all(response)
    first, final = (event.json for event in events)
    assert list(first) == list(KEYS) and list(final) == list(KEYS)
    assert first["kind"] == "text_delta" and first["text"] == "Hello there"
    assert first["session_id"] == session_id and first["turn_id"] == final["turn_id"]
    assert first["turn_id"].startswith("t-") and len(first["turn_id"]) == 14
    expected = b"".join(b"id: %d\nevent: agent_event\ndata: %s\n\n" % (n, orjson.dumps(data))
                        for n, data in ((1, first), (2, final)))
    assert raw == expected
    assert all(value is None for key, value in final.items()
               if key not in ("kind", "session_id", "turn_id", "timestamp"))
