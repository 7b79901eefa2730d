"""A chat client for the tests: sessions, turns over ``POST /chat/sessions/{id}/messages`` read with the real SSE
parser, and the small views of a turn's frames the stream and end-to-end tests assert on."""

from __future__ import annotations

from typing import Any

from tests.sse_client import SseEvent, SseParser, read_all


async def new_session(client: Any, user: Any) -> str:
    response = await client.post("/chat/sessions", headers=user.headers)
    assert response.status == 201
    return (await response.json())["session_id"]


def send(client: Any, user: Any, session_id: str, message: str = "", *, last_event_id: str | None = None,
         **body: Any) -> Any:
    headers = dict(user.headers)
    if last_event_id is not None:
        headers["Last-Event-ID"] = last_event_id
    return client.post(f"/chat/sessions/{session_id}/messages", json={"message": message, **body}, headers=headers)


async def turn(client: Any, user: Any, session_id: str, message: str = "", **kwargs: Any
               ) -> tuple[bytes, list[SseEvent]]:
    """Send and read the whole stream: (raw body, events)."""
    response = await send(client, user, session_id, message, **kwargs)
    assert response.status == 200, await response.text()
    return await read_all(response)


def agent_events(events: list[SseEvent]) -> list[SseEvent]:
    return [event for event in events if event.event == "agent_event"]


def kinds(events: list[SseEvent]) -> list[str | None]:
    return [event.kind for event in agent_events(events)]


def ids(events: list[SseEvent]) -> list[int]:
    return [int(event.id) for event in agent_events(events)]  # type: ignore[arg-type]


def assert_one_final_last(events: list[SseEvent], turn_id: str | None = None) -> None:
    agent = agent_events(events)
    finals = [event for event in agent if event.kind == "final"]
    assert len(finals) == 1 and agent[-1] is finals[0], kinds(events)
    if turn_id is not None:
        assert finals[0].json["turn_id"] == turn_id


async def read_first_frame(response: Any) -> SseEvent:
    parser = SseParser()
    while True:
        events = parser.feed(await response.content.readany())
        if events:
            return events[0]


async def detail(response: Any) -> tuple[int, Any]:
    return response.status, (await response.json())["detail"]
