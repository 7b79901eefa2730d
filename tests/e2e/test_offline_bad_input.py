"""Bad input to ``POST /chat/sessions/{id}/messages`` with the real offline backend (endpoints.md Chat,
chat-and-agent.md §2–§3): each a 4xx with its detail and nothing half-written (no message, no title, no decision,
the turn lock free again), bogus ``Last-Event-ID`` values, and ``DELETE`` while a turn runs. The fixtures check
that no request of these tests was answered with a 500."""

from __future__ import annotations

import orjson
import pytest

from tests.chat_client import detail, read_first_frame, send, turn
from tests.chat_client import new_session as create_session
from tests.e2e.expect import FIRST, frames
from tests.e2e.steps import kinds_of, planned_session, request_booking, status_of
from tests.sse_client import read_all


async def stored(db, session_id):
    """What a refused request must not have changed: messages, title, approvals and the decisions' audit."""
    return {
        "messages": await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1::uuid", session_id),
        "title": await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", session_id),
        "approvals": [tuple(row) for row in await db.fetch(
            "SELECT id, status::text, consumed_at FROM pending_approvals WHERE session_id = $1::uuid ORDER BY id",
            session_id)],
        "decisions": await db.fetchval("SELECT count(*) FROM audit_events WHERE tool LIKE 'approval.%'"
                                       " AND inputs->>'session_id' = $1", session_id),
        "last_event_id": await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id),
    }


LONG = "x" * 10_001
BAD_BODIES = [
    # (raw body, the 422 items as (loc, type))
    (orjson.dumps({"message": LONG}), [(["body", "message"], "string_too_long")]),
    (b"[]", [(["body"], "model_attributes_type")]),
    (b'["hello"]', [(["body"], "model_attributes_type")]),
    (b'"book FLT-20526D6B"', [(["body"], "model_attributes_type")]),
    (b"5", [(["body"], "model_attributes_type")]),
    (b"true", [(["body"], "model_attributes_type")]),
    (b"null", [(["body"], "model_attributes_type")]),
    (b"{", [(["body"], "json_invalid")]),
    (b'{"message": "hi"} trailing', [(["body"], "json_invalid")]),
    (b"", [(["body"], "missing")]),
    (b'{"message": 5}', [(["body", "message"], "string_type")]),
    (b'{"message": null}', [(["body", "message"], "string_type")]),
    (b'{"message": true}', [(["body", "message"], "string_type")]),
    (b'{"message": ["add FLT-20526D6B"]}', [(["body", "message"], "string_type")]),
    (b'{"message": {"text": "hi"}}', [(["body", "message"], "string_type")]),
    (b'{"message": "a\\u0000b"}', [(["body", "message"], "value_error")]),
    (b'{"approvals": []}', [(["body", "approvals"], "model_attributes_type")]),
    (b'{"approvals": "ap-x"}', [(["body", "approvals"], "model_attributes_type")]),
]


@pytest.mark.parametrize("mode", ["new turn", "replay"])
async def test_bad_bodies_are_422_and_change_nothing(offline, admin, db, mode):
    session_id = await planned_session(offline, admin)
    book_id, _ = await request_booking(offline, admin, session_id)
    before = await stored(db, session_id)
    headers = {**admin.headers, "Content-Type": "application/json"}
    if mode == "replay":
        headers["Last-Event-ID"] = "1"  # a valid id: the body must still be a JSON object (§3.3)
    bodies = [*BAD_BODIES,
              *((orjson.dumps({"message": "", "approvals": {book_id: True, "ap-x": value}}),
                 [(["body", "approvals", "ap-x"], "bool_type")]) for value in ("yes", 1, 0, None, [], {}))]
    for raw, expected in bodies:
        response = await offline.post(f"/chat/sessions/{session_id}/messages", data=raw, headers=headers)
        assert response.status == 422, (raw[:40], await response.text())
        items = (await response.json())["detail"]
        assert [(item["loc"], item["type"]) for item in items] == expected, raw[:40]
        assert await stored(db, session_id) == before, raw[:40]
    assert await status_of(offline, admin, book_id) == "pending"  # the valid entry before the bad one: not applied
    _, events = await turn(offline, admin, session_id, "itinerary")  # the lock is free
    assert kinds_of(frames(events)) == ["tool_use", "tool_result", "text_delta", "final"]


async def test_the_longest_message_is_a_turn(offline, admin, db):
    session_id = await create_session(offline, admin)
    _, events = await turn(offline, admin, session_id, "x" * 10_000)
    assert kinds_of(frames(events)) == ["text_delta", "final"]  # rule 11: the help text
    assert (await stored(db, session_id))["title"] == "x" * 60


async def test_approvals_map_entries_that_cannot_be_applied(offline, admin, make_user, db):
    session_id = await planned_session(offline, admin)
    book_id, _ = await request_booking(offline, admin, session_id)
    other_session = await planned_session(offline, admin)
    elsewhere, _ = await request_booking(offline, admin, other_session)
    stranger = await make_user("agency_admin")
    foreign = await planned_session(offline, stranger)
    foreign_id, _ = await request_booking(offline, stranger, foreign)
    rejected_id, _ = await request_booking(offline, admin, other_session)
    response = await offline.post(f"/approvals/{rejected_id}/resolve", json={"granted": False}, headers=admin.headers)
    assert response.status == 200
    before = await stored(db, session_id)
    for approvals, expected in (
            ({"ap-t-000000000000-book_offer": True}, (404, "approval_not_found")),
            ({"": True}, (404, "approval_not_found")),
            ({"x" * 5000: False}, (404, "approval_not_found")),
            ({elsewhere: True}, (404, "approval_not_found")),  # another session of the tenant
            ({foreign_id: True}, (404, "approval_not_found")),  # another tenant's
            ({rejected_id: True}, (404, "approval_not_found"))):  # decided, but not in this session
        response = await send(offline, admin, session_id, f"book {FIRST}", approvals=approvals)
        assert await detail(response) == expected, approvals
        assert await stored(db, session_id) == before
    for approval in (elsewhere, foreign_id):
        assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", approval) == "pending"
    # decided in this session: the same decision again is a no-op, the opposite one 409
    response = await offline.post(f"/approvals/{book_id}/resolve", json={"granted": False}, headers=admin.headers)
    assert response.status == 200
    before = await stored(db, session_id)
    response = await send(offline, admin, session_id, "", approvals={book_id: True})
    assert await detail(response) == (409, "approval_already_resolved")
    assert await stored(db, session_id) == before
    _, events = await turn(offline, admin, session_id, "", approvals={book_id: False})
    assert kinds_of(frames(events)) == ["approval_denied", "text_delta", "final"]
    assert (await stored(db, session_id))["decisions"] == before["decisions"]  # no second approval.rejected
    # consumed now; deciding it again either way is answered the same
    response = await send(offline, admin, session_id, "", approvals={book_id: True})
    assert await detail(response) == (409, "approval_already_resolved")
    _, events = await turn(offline, admin, session_id, "", approvals={book_id: False})
    assert kinds_of(frames(events)) == ["final"]


@pytest.mark.parametrize("header", ["abc", "-1", "+2", "1e3", "2.0", "0x2", "1_0", "99", "١", "1" * 5000,
                                    "-" + "9" * 5000, "18446744073709551616"])
async def test_a_bogus_last_event_id_gives_replay_failed_then_the_turn(offline, admin, db, header):
    session_id = await create_session(offline, admin)
    _, events = await turn(offline, admin, session_id, "DEL to DXB 2026-07-01 2 adults")  # ids 1–4, N = 4
    assert len(events) == 4
    raw_header = header.encode("utf-8").decode("latin-1")  # a header carries bytes: non-ASCII goes as UTF-8
    _, events = await turn(offline, admin, session_id, f"add {FIRST}", last_event_id=raw_header)
    data = frames(events)
    assert kinds_of(data) == ["error", "tool_use", "tool_result", "text_delta", "final"]
    assert [int(event.id) for event in events] == [5, 6, 7, 8, 9]
    assert (data[0]["turn_id"], data[0]["error_message"]) == ("replay",
                                                              "replay_failed: Last-Event-ID outside server buffer")
    assert data[2]["tool_output"]["ok"] is True
    assert (await stored(db, session_id))["messages"] == 4
    replay = await send(offline, admin, session_id, last_event_id="4")  # the synthetic frame was buffered
    _, replayed = await read_all(replay)
    assert [int(event.id) for event in replayed] == [5, 6, 7, 8, 9]


async def test_delete_while_a_turn_runs_is_409_and_after_it_204(make_chat_client, admin, db):
    client = await make_chat_client(sandbox_latency_ms=3000)  # the supplier keeps the search running
    session_id = await create_session(client, admin)
    response = await send(client, admin, session_id, "DEL to DXB 2026-07-01")
    first = await read_first_frame(response)
    assert first.kind == "tool_use"  # the search is running now
    deleted = await client.delete(f"/chat/sessions/{session_id}", headers=admin.headers)
    assert await detail(deleted) == (409, "turn_in_progress")
    assert await detail(await send(client, admin, session_id, "hello")) == (409, "turn_in_progress")
    _, rest = await read_all(response)
    assert [event.kind for event in rest] == ["tool_result", "text_delta", "final"]
    assert (await stored(db, session_id))["messages"] == 2  # the refused second message stored nothing
    deleted = await client.delete(f"/chat/sessions/{session_id}", headers=admin.headers)
    assert deleted.status == 204
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE id = $1::uuid", session_id) == 0
    response = await send(client, admin, session_id, "", last_event_id="1")
    assert await detail(response) == (404, "session_not_found")
