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
from tests.chat_client import (agent_events, assert_one_final_last, detail, ids, kinds, new_session,
                               read_first_frame, send, turn)
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


@pytest.fixture(params=["in-process", "redis"])
async def any_store_client(request, make_stream_client):
    """A client with the in-process stores, then one with Redis."""
    if request.param == "redis":
        return await make_stream_client(redis_url=request.getfixturevalue("redis_url"))
    return await make_stream_client()


async def test_ids_keep_increasing_across_turns_and_connections(any_store_client, admin):
    session_id = await new_session(any_store_client, admin)
    seen = []
    for message in ("say one", "many 3", "", "say four"):
        _, events = await turn(any_store_client, admin, session_id, message)
        assert_one_final_last(events)
        seen.extend(ids(events))
    assert seen == list(range(1, len(seen) + 1))
    other = await new_session(any_store_client, admin)  # each session counts on its own
    _, events = await turn(any_store_client, admin, other, "say again")
    assert ids(events) == [1, 2]


async def test_a_blank_message_only_ends_the_turn_and_stores_nothing(stream_client, admin, db):
    session_id = await new_session(stream_client, admin)
    for message in ("", "   \n\t"):
        _, events = await turn(stream_client, admin, session_id, message)
        assert kinds(events) == ["final"]
    assert await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1::uuid", session_id) == 0
    assert await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", session_id) is None


async def test_messages_and_title_are_stored_per_turn(stream_client, admin, db):
    session_id = await new_session(stream_client, admin)
    first = "  say a; say b; error oops;" + "é" * 70 + "  "
    await turn(stream_client, admin, session_id, first)
    await turn(stream_client, admin, session_id, "say later")
    rows = await db.fetch("SELECT role, content, sequence FROM messages WHERE session_id = $1::uuid ORDER BY sequence",
                          session_id)
    assert [(row["role"], row["sequence"]) for row in rows] == [("user", 0), ("assistant", 1), ("user", 2),
                                                                ("assistant", 3)]
    assert orjson.loads(rows[0]["content"]) == [{"type": "text", "text": first}]
    assert orjson.loads(rows[1]["content"]) == [{"type": "text", "text": "ab"}]  # consecutive deltas join
    title = await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", session_id)
    assert title == "say a; say b; error oops;" + "é" * 35  # trimmed, first 60 code points, kept afterwards
    summary = await (await stream_client.get(f"/chat/sessions/{session_id}", headers=admin.headers)).json()
    assert summary["message_count"] == 4


async def test_a_heartbeat_frame_follows_a_silence(make_stream_client, admin):
    client = await make_stream_client(sse_heartbeat=1)
    session_id = await new_session(client, admin)
    go = signal_name()
    response = await send(client, admin, session_id, f"say before; wait {go}; say after")
    raw = bytearray()
    seen = []
    async for event in events_of(response, raw):
        seen.append(event)
        if event.event == "heartbeat":
            scripted_backend.release(go)
    assert [e.event for e in seen][:2] == ["agent_event", "heartbeat"]
    heartbeat = seen[1]
    assert heartbeat.lines == ["event: heartbeat", "data: "] and heartbeat.id is None and heartbeat.data == ""
    assert b"\n\nevent: heartbeat\ndata: \n\nid: " in raw and b"\r" not in raw
    assert not any(line.startswith((b":", b"retry")) for line in raw.split(b"\n"))  # no comments, no retry
    assert kinds(seen) == ["text_delta", "text_delta", "final"]
    assert ids(seen) == [1, 2, 3]  # heartbeats take no id


async def test_ids_continue_after_a_restart_without_redis(make_stream_client, aiohttp_client, admin, db):
    first = await make_stream_client()
    session_id = await new_session(first, admin)
    _, events = await turn(first, admin, session_id, "many 3")
    assert ids(events) == [1, 2, 3, 4]
    await first.close()  # the process state (counter, buffer) is gone
    assert await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id) == 4
    second = await make_stream_client()
    raw, events = await turn(second, admin, session_id, "", last_event_id="4")  # L = N: valid, nothing to send
    assert raw == b""
    _, events = await turn(second, admin, session_id, "say again")
    assert ids(events) == [5, 6]
    _, events = await turn(second, admin, session_id, "", last_event_id="3")  # older than the (empty) buffer
    assert kinds(events)[0] == "error" and ids(events)[0] == 7


# --- the turn outlives its connection ---------------------------------------------------------------------


async def test_a_client_that_leaves_mid_turn_finds_every_frame_on_replay(any_store_client, admin, db):
    session_id = await new_session(any_store_client, admin)
    go = signal_name()
    response = await send(any_store_client, admin, session_id, f"say first; wait {go}; many 3")
    parser = SseParser()
    first = []
    while not first:
        first = parser.feed(await response.content.readany())
    assert first[0].id == "1"
    response.close()  # the client goes away mid-turn
    scripted_backend.release(go)
    raw, events = await turn(any_store_client, admin, session_id, "ignored", last_event_id="1")
    assert kinds(events) == ["text_delta", "text_delta", "text_delta", "final"] and ids(events) == [2, 3, 4, 5]
    assert raw.startswith(b"id: 2\nevent: agent_event\ndata: ")
    assert_one_final_last(events, first[0].json["turn_id"])
    # the turn ran to the end: its messages are stored, and a replay from 0 is byte-identical
    assert await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1::uuid", session_id) == 2
    replayed, _ = await turn(any_store_client, admin, session_id, last_event_id="0")
    assert replayed.endswith(raw) and replayed.startswith(b"id: 1\n")


async def test_a_replay_follows_a_running_turn_to_its_final(any_store_client, admin):
    session_id = await new_session(any_store_client, admin)
    go = signal_name()
    starter = await send(any_store_client, admin, session_id, f"say first; wait {go}; say second")
    parser = SseParser()
    while not parser.feed(await starter.content.readany()):
        pass
    replay = await send(any_store_client, admin, session_id, last_event_id="0")
    assert replay.status == 200
    seen = []
    async for event in events_of(replay):
        seen.append(event)
        if len(seen) == 1:
            scripted_backend.release(go)  # the rest is produced while the replay listens
    assert kinds(seen) == ["text_delta", "text_delta", "final"] and ids(seen) == [1, 2, 3]
    _, rest = await read_all(starter)
    assert ids(rest) == [2, 3]


# --- Last-Event-ID ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["abc", "-1", "1.0", "0x2", "99", "18446744073709551616"])
async def test_an_invalid_last_event_id_starts_a_turn_after_a_replay_failed_frame(any_store_client, admin, header):
    session_id = await new_session(any_store_client, admin)
    await turn(any_store_client, admin, session_id, "say one")  # N = 2
    _, events = await turn(any_store_client, admin, session_id, "say two", last_event_id=header)
    assert kinds(events) == ["error", "text_delta", "final"] and ids(events) == [3, 4, 5]
    failed = agent_events(events)[0].json
    assert failed["turn_id"] == "replay"
    assert failed["error_message"] == "replay_failed: Last-Event-ID outside server buffer"
    assert_one_final_last(events, agent_events(events)[1].json["turn_id"])
    _, replayed = await turn(any_store_client, admin, session_id, last_event_id="2")  # the frame is buffered
    assert [e.json["turn_id"] for e in agent_events(replayed)][0] == "replay"


async def test_an_id_older_than_the_buffer_is_invalid(make_stream_client, admin):
    client = await make_stream_client(sse_replay_buffer_cap=3)
    session_id = await new_session(client, admin)
    await turn(client, admin, session_id, "many 5")  # ids 1–6, the buffer keeps 4–6
    _, events = await turn(client, admin, session_id, "", last_event_id="2")
    assert kinds(events) == ["error", "final"] and agent_events(events)[0].json["turn_id"] == "replay"
    raw, events = await turn(client, admin, session_id, "", last_event_id="5")  # 7, 8 were buffered; 6–8 kept
    assert ids(events) == [6, 7, 8]  # oldest − 1 = 5 is still provable


async def test_a_replay_of_everything_sent_closes_with_an_empty_body(any_store_client, admin):
    session_id = await new_session(any_store_client, admin)
    _, events = await turn(any_store_client, admin, session_id, "say one")
    raw, events = await turn(any_store_client, admin, session_id, "say ignored", last_event_id="2")
    assert raw == b"" and events == []
    fresh = await new_session(any_store_client, admin)
    raw, _ = await turn(any_store_client, admin, fresh, "say ignored", last_event_id="0")  # N = 0, L = 0
    assert raw == b""


async def test_an_empty_last_event_id_is_absent(stream_client, admin):
    session_id = await new_session(stream_client, admin)
    _, events = await turn(stream_client, admin, session_id, "say x", last_event_id="")
    assert kinds(events) == ["text_delta", "final"]


# --- one turn at a time; delete and rename meanwhile --------------------------------------------------------


async def test_two_concurrent_turns_give_one_stream_and_one_409(any_store_client, admin):
    session_id = await new_session(any_store_client, admin)
    go = signal_name()
    responses = await asyncio.gather(*(send(any_store_client, admin, session_id, f"say hi; wait {go}")
                                       for _ in range(2)))
    assert sorted(r.status for r in responses) == [200, 409]
    refused = next(r for r in responses if r.status == 409)
    assert (await refused.json())["detail"] == "turn_in_progress"
    scripted_backend.release(go)
    _, events = await read_all(next(r for r in responses if r.status == 200))
    assert kinds(events) == ["text_delta", "final"]
    _, events = await turn(any_store_client, admin, session_id, "say next")  # the lock went back with the final
    assert kinds(events) == ["text_delta", "final"]


async def test_delete_during_a_turn_is_409_and_rename_is_allowed(any_store_client, admin, db):
    session_id = await new_session(any_store_client, admin)
    go = signal_name()
    response = await send(any_store_client, admin, session_id, f"say hi; wait {go}; say bye")
    await read_first_frame(response)
    deleted = await any_store_client.delete(f"/chat/sessions/{session_id}", headers=admin.headers)
    assert (deleted.status, (await deleted.json())["detail"]) == (409, "turn_in_progress")
    renamed = await any_store_client.patch(f"/chat/sessions/{session_id}", json={"title": "Mid-turn"},
                                           headers=admin.headers)
    assert renamed.status == 200
    scripted_backend.release(go)
    _, events = await read_all(response)
    assert kinds(events) == ["text_delta", "final"]
    assert await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", session_id) == "Mid-turn"
    assert (await any_store_client.delete(f"/chat/sessions/{session_id}", headers=admin.headers)).status == 204
    response = await send(any_store_client, admin, session_id, "say x", last_event_id="1")
    assert (response.status, (await response.json())["detail"]) == (404, "session_not_found")


# --- quota, budget, timeout, failures ------------------------------------------------------------------------


async def set_limits(db, user, per_minute, per_hour):
    await db.execute("UPDATE tenant_settings SET rate_limit_per_minute = $2, rate_limit_per_hour = $3 "
                     "WHERE tenant_id = $1", user.tenant_id, per_minute, per_hour)


async def message_count(db, session_id):
    return await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1::uuid", session_id)


async def test_the_minute_window_refuses_in_stream_and_a_refused_turn_is_not_counted(any_store_client, admin, db):
    await set_limits(db, admin, 2, 100)
    session_id = await new_session(any_store_client, admin)
    for _ in range(2):
        _, events = await turn(any_store_client, admin, session_id, "say ok")
        assert kinds(events) == ["text_delta", "final"]
    _, events = await turn(any_store_client, admin, session_id, "say refused")
    assert kinds(events) == ["error", "final"]
    assert agent_events(events)[0].json["error_message"] == "rate_limited: minute"
    assert await message_count(db, session_id) == 4  # nothing stored for the refused turn
    await set_limits(db, admin, 3, 100)
    _, events = await turn(any_store_client, admin, session_id, "say ok")  # the refusal took no slot
    assert kinds(events) == ["text_delta", "final"]
    other = await new_session(any_store_client, admin)  # the window is the tenant's, not the session's
    _, events = await turn(any_store_client, admin, other, "say refused")
    assert agent_events(events)[0].json["error_message"] == "rate_limited: minute"


async def test_the_hour_window_is_checked_before_the_minute_window(any_store_client, admin, db):
    await set_limits(db, admin, 1, 1)
    session_id = await new_session(any_store_client, admin)
    await turn(any_store_client, admin, session_id, "say ok")
    _, events = await turn(any_store_client, admin, session_id, "say refused")
    assert [e.json["error_message"] for e in agent_events(events)] == ["rate_limited: hour", None]
    await set_limits(db, admin, 5, 1)
    _, events = await turn(any_store_client, admin, session_id, "say refused")
    assert agent_events(events)[0].json["error_message"] == "rate_limited: hour"


async def test_a_backend_refusal_ends_the_turn_and_stores_nothing(stream_client, admin, db):
    session_id = await new_session(stream_client, admin)
    _, events = await turn(stream_client, admin, session_id, "refuse daily_budget_exceeded: limit=10 used=12")
    assert kinds(events) == ["error", "final"]
    assert agent_events(events)[0].json["error_message"] == "daily_budget_exceeded: limit=10 used=12"
    assert await message_count(db, session_id) == 0


async def test_a_turn_over_its_timeout_ends_with_turn_timeout(make_stream_client, admin, db):
    client = await make_stream_client(turn_timeout=1)
    session_id = await new_session(client, admin)
    _, events = await turn(client, admin, session_id, "say before; hang")
    assert kinds(events) == ["text_delta", "error", "final"]
    assert agent_events(events)[1].json["error_message"] == "turn_timeout"
    assert await message_count(db, session_id) == 2  # the user message and what the turn said before
    _, events = await turn(client, admin, session_id, "say after")  # the lock is free again
    assert kinds(events) == ["text_delta", "final"]


@pytest.mark.parametrize("script", ["say partial; raise", "say partial; bad"])
async def test_an_unexpected_failure_is_one_internal_error_frame_and_a_logged_traceback(stream_client, admin, caplog,
                                                                                       script):
    session_id = await new_session(stream_client, admin)
    raw, events = await turn(stream_client, admin, session_id, script)
    assert kinds(events) == ["text_delta", "error", "final"]
    error = agent_events(events)[1].json
    assert error["error_message"] == "internal_error" and error["turn_id"] == agent_events(events)[0].json["turn_id"]
    assert b"SECRET-DETAIL" not in raw and b"Traceback" not in raw
    logged = [r for r in caplog.records if r.name == "voyagent.agent.runtime" and r.exc_info]
    assert len(logged) == 1 and "turn t-" in logged[0].getMessage()


async def test_turn_outcomes_and_open_streams_are_in_the_metrics(stream_client, admin, db):
    session_id = await new_session(stream_client, admin)
    await turn(stream_client, admin, session_id, "say ok")
    await turn(stream_client, admin, session_id, "say x; raise")
    await set_limits(db, admin, 2, 100)
    await turn(stream_client, admin, session_id, "say refused")
    await set_limits(db, admin, 10, 100)
    go = signal_name()
    response = await send(stream_client, admin, session_id, f"wait {go}", last_event_id="abc")
    await read_first_frame(response)  # the replay_failed frame: the stream is open
    text = await (await stream_client.get("/internal/metrics")).text()
    assert 'voyagent_agent_turns_total{backend="scripted",outcome="completed"} 1.0' in text
    assert 'voyagent_agent_turns_total{backend="scripted",outcome="error"} 1.0' in text
    assert 'voyagent_agent_turns_total{backend="scripted",outcome="rate_limited"} 1.0' in text
    assert "voyagent_sse_open_streams 1.0" in text
    scripted_backend.release(go)
    await read_all(response)
    text = await (await stream_client.get("/internal/metrics")).text()
    assert "voyagent_sse_open_streams 0.0" in text
    assert 'voyagent_agent_turns_total{backend="scripted",outcome="completed"} 2.0' in text


# --- the pre-stream checks, in the contract's order ----------------------------------------------------------


async def approval(client, user, session_id, tool_name="book_offer", **kwargs):
    from tests.handlers.test_chat_sessions import add_approval

    return (await add_approval(client, user, session_id, tool_name, **kwargs)).id


async def test_an_unknown_or_foreign_session_is_404_in_both_modes(stream_client, admin, make_user):
    other = await make_user("agency_admin")
    theirs = await new_session(stream_client, other)
    for session_id in (str(uuid.uuid4()), "not-a-uuid", theirs):
        for header in (None, "0", "abc"):
            response = await send(stream_client, admin, session_id, "say x", last_event_id=header)
            assert await detail(response) == (404, "session_not_found")


async def test_a_foreign_session_is_404_before_its_lock_is_looked_at_and_the_lock_goes_back(any_store_client,
                                                                                               admin, make_user):
    """A new turn reads the session only under its lock: a lock that is held, or that a turn of the same request
    took, must still give the stranger a 404 (not a 409) and leave the owner's next turn free to run."""
    from voyagent.keys import TURN_LOCK

    other = await make_user("agency_admin")
    theirs = await new_session(any_store_client, other)
    response = await send(any_store_client, admin, theirs, "say x")
    assert await detail(response) == (404, "session_not_found")
    lock = any_store_client.server.app[TURN_LOCK]
    assert not await lock.is_held(uuid.UUID(theirs))
    token = await lock.acquire(uuid.UUID(theirs))
    response = await send(any_store_client, admin, theirs, "say x")
    assert await detail(response) == (404, "session_not_found")
    await lock.release(uuid.UUID(theirs), token)
    _, events = await turn(any_store_client, other, theirs, "say mine")
    assert kinds(events) == ["text_delta", "final"]


async def test_an_unknown_session_is_404_even_when_redis_is_down(make_stream_client, admin):
    client = await make_stream_client(redis_url="redis://127.0.0.1:1")
    for header in (None, "0", "abc"):
        response = await send(client, admin, str(uuid.uuid4()), "say x", last_event_id=header)
        assert await detail(response) == (404, "session_not_found")


async def test_the_lock_is_checked_before_the_backend_and_the_backend_before_the_approvals(make_stream_client,
                                                                                          admin):
    from voyagent.keys import TURN_LOCK

    client = await make_stream_client(agent_backend="tests.agent.scripted_backend:create_not_ready")
    session_id = await new_session(client, admin)
    lock = client.server.app[TURN_LOCK]
    token = await lock.acquire(uuid.UUID(session_id))
    response = await send(client, admin, session_id, "say x", approvals={"ap-nope": True})
    assert await detail(response) == (409, "turn_in_progress")
    await lock.release(uuid.UUID(session_id), token)
    response = await send(client, admin, session_id, "say x", approvals={"ap-nope": True})
    assert await detail(response) == (503, "agent_runtime_unavailable")
    assert not await lock.is_held(uuid.UUID(session_id))  # every failure gives the lock back
    raw, _ = await turn(client, admin, session_id, "say x", last_event_id="0")  # a replay needs no backend
    assert raw == b""


async def test_the_approvals_map_is_applied_in_order_before_the_stream(stream_client, admin, make_user, db):
    session_id = await new_session(stream_client, admin)
    granted, rejected, late = [await approval(stream_client, admin, session_id) for _ in range(3)]
    response = await send(stream_client, admin, session_id, "", approvals={granted: True, rejected: False,
                                                                            "ap-unknown": True, late: True})
    assert await detail(response) == (404, "approval_not_found")
    statuses = dict(await db.fetch("SELECT id, status::text FROM pending_approvals WHERE session_id = $1::uuid",
                                   session_id))
    assert statuses == {granted: "granted", rejected: "rejected", late: "pending"}  # those before stay applied
    audit = await db.fetch("SELECT tool, actor_id FROM audit_events WHERE tenant_id = $1 AND tool LIKE 'approval.%' "
                           "ORDER BY started_at, id", admin.tenant_id)
    assert [(row["tool"], row["actor_id"]) for row in audit] == [("approval.granted", admin.id),
                                                                 ("approval.rejected", admin.id)]
    # the same decision again is a no-op; the opposite one is 409
    _, events = await turn(stream_client, admin, session_id, "say ok", approvals={granted: True, late: True})
    # then the resume step acts on the three decisions, oldest first (§6.5), before the backend's reply; the
    # granted bookings fail their re-check (nothing in the itinerary)
    assert kinds(events) == ["approval_granted", "tool_result", "text_delta", "approval_denied", "text_delta",
                             "approval_granted", "tool_result", "text_delta", "text_delta", "final"]
    data = [event.json for event in agent_events(events)]
    assert [ev["approval_id"] for ev in data if ev["kind"].startswith("approval_")] == [granted, rejected, late]
    assert [ev["tool_output"]["error"] for ev in data if ev["kind"] == "tool_result"] == ["offer_not_in_itinerary"] * 2
    response = await send(stream_client, admin, session_id, "", approvals={rejected: True})
    assert await detail(response) == (409, "approval_already_resolved")
    agent = await make_user("agent", tenant_id=admin.tenant_id)  # book_offer: agency_admin, ticketing_lead only
    other = await approval(stream_client, admin, session_id)
    response = await send(stream_client, agent, session_id, "", approvals={other: True})
    assert await detail(response) == (403, "forbidden_role")
    elsewhere = await approval(stream_client, admin, await new_session(stream_client, admin))
    response = await send(stream_client, admin, session_id, "", approvals={elsewhere: True})
    assert await detail(response) == (404, "approval_not_found")  # not an approval of this session


async def test_an_expired_approval_in_the_map_is_409_after_the_sweep(stream_client, admin, db):
    import datetime as dt

    session_id = await new_session(stream_client, admin)
    old = await approval(stream_client, admin, session_id, ttl=1,
                         now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    response = await send(stream_client, admin, session_id, "", approvals={old: True})
    assert await detail(response) == (409, "approval_already_resolved")
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", old) == "expired"


async def test_redis_configured_but_down_is_503_before_any_stream(make_stream_client, admin, db):
    client = await make_stream_client(redis_url="redis://127.0.0.1:1")
    session_id = await new_session(client, admin)
    for header in (None, "0"):
        response = await send(client, admin, session_id, "say x", last_event_id=header)
        assert await detail(response) == (503, "redis_unreachable")
    assert await message_count(db, session_id) == 0


# --- the body --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body, loc, type_", [
    ({"message": "x" * 10_001}, ["body", "message"], "string_too_long"),
    ({"message": 5}, ["body", "message"], "string_type"),
    ({"approvals": {"ap-1": "yes"}}, ["body", "approvals", "ap-1"], "bool_type"),
    ({"approvals": []}, ["body", "approvals"], "model_attributes_type"),
    ([], ["body"], "model_attributes_type"),
])
async def test_bad_bodies_are_422_in_both_modes(stream_client, admin, body, loc, type_):
    session_id = await new_session(stream_client, admin)
    for header in (None, "0"):
        headers = {**admin.headers, **({"Last-Event-ID": header} if header else {})}
        response = await stream_client.post(f"/chat/sessions/{session_id}/messages", json=body, headers=headers)
        assert response.status == 422
        assert [(item["loc"], item["type"]) for item in (await response.json())["detail"]] == [(loc, type_)]


async def test_a_missing_body_is_422(stream_client, admin):
    session_id = await new_session(stream_client, admin)
    response = await stream_client.post(f"/chat/sessions/{session_id}/messages", headers=admin.headers)
    assert response.status == 422


async def test_the_longest_message_and_unknown_fields_are_accepted(stream_client, admin, db):
    session_id = await new_session(stream_client, admin)
    message = "say " + "x" * 9_996
    _, events = await turn(stream_client, admin, session_id, message, extra={"ignored": True}, approvals=None)
    assert kinds(events) == ["text_delta", "final"]
    response = await stream_client.post(f"/chat/sessions/{session_id}/messages", json={}, headers=admin.headers)
    _, events = await read_all(response)  # message defaults to ""
    assert kinds(events) == ["final"]


# --- backends ----------------------------------------------------------------------------------------------------


async def test_the_anthropic_backend_without_an_api_key_answers_503_and_crud_keeps_working(make_client, admin):
    client = await make_client(agent_backend="anthropic", anthropic_api_key=None)
    session_id = await new_session(client, admin)
    response = await send(client, admin, session_id, "hello")
    assert await detail(response) == (503, "agent_runtime_unavailable")
    assert (await client.get(f"/chat/sessions/{session_id}", headers=admin.headers)).status == 200


@pytest.mark.parametrize("spec", ["tests.agent.no_such_module:create", "tests.agent.scripted_backend:missing",
                                  "tests.agent.scripted_backend:", ":create"])
def test_a_custom_backend_that_cannot_be_loaded_stops_start_up_naming_the_variable(make_app, spec):
    from voyagent.config import ConfigError

    with pytest.raises(ConfigError) as failed:
        make_app(agent_backend=spec)
    assert "VOYAGENT_AGENT_BACKEND" in str(failed.value)


async def test_the_backend_sees_the_turn_with_its_history(stream_client, admin):
    from voyagent.keys import AGENT_BACKEND

    session_id = await new_session(stream_client, admin)
    await turn(stream_client, admin, session_id, "say one")
    await turn(stream_client, admin, session_id, "say two")
    seen = stream_client.server.app[AGENT_BACKEND].turns[-1]
    assert (seen.message, str(seen.session_id), seen.tenant_id, seen.user_id, seen.role) == (
        "say two", session_id, admin.tenant_id, admin.id, "agency_admin")
    assert [m["role"] for m in seen.history] == ["user", "assistant", "user"]
    assert seen.history[-1]["content"] == [{"type": "text", "text": "say two"}]
    assert seen.settings.default_currency == "INR" and seen.resumed == ()


async def test_a_session_deleted_before_the_turn_takes_its_lock_is_404(stream_client, admin, db):
    """The delete commits between the handler's first read and its lock: the turn must not run on a deleted row."""
    from voyagent.keys import TURN_LOCK

    session_id = await new_session(stream_client, admin)
    lock = stream_client.server.app[TURN_LOCK]
    original = lock.acquire

    async def acquire_after_a_delete(sid):
        await db.execute("DELETE FROM sessions WHERE id = $1", sid)
        return await original(sid)

    lock.acquire = acquire_after_a_delete
    try:
        response = await send(stream_client, admin, session_id, "say x")
    finally:
        lock.acquire = original
    assert await detail(response) == (404, "session_not_found")
    assert not await lock.is_held(uuid.UUID(session_id))


async def test_a_turn_makes_its_session_active_in_the_metrics(stream_client, admin):
    import re

    async def active():
        text = await (await stream_client.get("/internal/metrics")).text()
        return int(float(re.search(r"^voyagent_api_active_sessions (\S+)$", text, re.MULTILINE).group(1)))

    session_id = await new_session(stream_client, admin)
    before = await active()
    await turn(stream_client, admin, session_id, "")  # stores nothing: not active
    assert await active() == before
    await turn(stream_client, admin, session_id, "say hi")
    assert await active() == before + 1
    await turn(stream_client, admin, session_id, "say again")  # the same session counts once
    assert await active() == before + 1


# --- what Redis or PostgreSQL lose mid-turn ----------------------------------------------------------------


async def test_a_turn_keeps_its_ids_and_its_session_when_redis_loses_the_sessions_keys(make_stream_client, admin,
                                                                                      redis_url, redis_prefix):
    """The keys a Redis restart wipes are deleted with a real client while the turn waits: the turn writes its
    frame back (same id, same bytes), holds its lock again, and goes on with the next id."""
    import redis.asyncio as aioredis

    client = await make_stream_client(redis_url=redis_url)
    session_id = await new_session(client, admin)
    name = signal_name()
    response = await send(client, admin, session_id, f"say one; wait {name}; say two")
    assert response.status == 200
    raw = bytearray()
    stream = events_of(response, raw)
    first = await anext(stream)
    redis = aioredis.from_url(redis_url)
    try:
        await redis.delete(*(f"{redis_prefix}sse:{session_id}:{suffix}" for suffix in ("seq", "buf", "live")),
                           f"{redis_prefix}turnlock:{session_id}", f"{redis_prefix}sse:epoch")
        scripted_backend.release(name)
        rest = [event async for event in stream]
    finally:
        await redis.aclose()
    assert [first.id, *(event.id for event in agent_events(rest))] == ["1", "2", "3"]
    assert kinds(rest) == ["text_delta", "final"]
    replayed, events = await turn(client, admin, session_id, last_event_id="0")
    assert ids(events) == [1, 2, 3] and replayed == bytes(raw)  # the frame written back is byte-identical


async def test_an_assistant_message_that_cannot_be_stored_is_an_internal_error_before_the_final(stream_client,
                                                                                              admin, db):
    """§2: a failure in the turn's end is one ``error "internal_error"``, then ``final`` (PostgreSQL refuses the
    row: a constraint added for this session only)."""
    session_id = await new_session(stream_client, admin)
    await db.execute(f"ALTER TABLE messages ADD CONSTRAINT refuse_{session_id.replace('-', '_')} "
                     f"CHECK (session_id <> '{session_id}' OR role <> 'assistant') NOT VALID")
    try:
        _, events = await turn(stream_client, admin, session_id, "say hello")
    finally:
        await db.execute(f"ALTER TABLE messages DROP CONSTRAINT refuse_{session_id.replace('-', '_')}")
    assert kinds(events) == ["text_delta", "error", "final"]
    assert agent_events(events)[1].json["error_message"] == "internal_error"
    assert await db.fetchval("SELECT count(*) FROM messages WHERE session_id = $1::uuid AND role = 'assistant'",
                             session_id) == 0


async def test_the_last_event_id_is_stored_once_postgresql_takes_it_again(stream_client, admin, db):
    """The final goes out at once; ``sessions.last_event_id`` (the floor after a Redis restart) is written again
    until PostgreSQL takes it (a trigger refuses the update until it is dropped)."""
    session_id = await new_session(stream_client, admin)
    name = f"refuse_{session_id.replace('-', '_')}"
    await db.execute(f"""
        CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
        CREATE TRIGGER {name} BEFORE UPDATE OF last_event_id ON sessions
        FOR EACH ROW WHEN (NEW.id = '{session_id}') EXECUTE FUNCTION {name}();""")
    try:
        _, events = await turn(stream_client, admin, session_id, "say hello")
        assert ids(events) == [1, 2]
        assert await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id) == 0
    finally:
        await db.execute(f"DROP TRIGGER {name} ON sessions; DROP FUNCTION {name}();")
    async with asyncio.timeout(30):  # a bound for a broken build, not a wait for the state
        while await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id) != 2:
            await asyncio.sleep(0.05)


async def test_the_stored_last_event_id_is_the_finals_id_when_another_writer_numbered_before_it(
        make_stream_client, admin, db, redis_url, redis_prefix):
    """The assistant row carries ``sessions.last_event_id`` = the id the final is expected to get (the next after
    the turn's own last). When the session's counter moved meanwhile (here: bumped with a real client between
    the row and the final), the final's real id is what ends up stored."""
    import redis.asyncio as aioredis

    from voyagent.keys import TURN_RUNNER

    client = await make_stream_client(redis_url=redis_url)
    session_id = await new_session(client, admin)
    _, events = await turn(client, admin, session_id, "say one")
    assert ids(events) == [1, 2]
    assert await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id) == 2
    leases = client.server.app[TURN_RUNNER].leases
    append = leases.append
    redis = aioredis.from_url(redis_url)

    async def bumped_before_the_final(lease, data, *, final):
        if final:
            await redis.incrby(f"{redis_prefix}sse:{session_id}:seq", 5)
        return await append(lease, data, final=final)

    leases.append = bumped_before_the_final
    try:
        _, events = await turn(client, admin, session_id, "say two")
    finally:
        del leases.append
        await redis.aclose()
    assert ids(events) == [3, 9]
    assert await db.fetchval("SELECT last_event_id FROM sessions WHERE id = $1::uuid", session_id) == 9


async def test_a_backend_that_does_not_read_the_history_gets_none_and_the_messages_are_still_stored(
        stream_client, admin, db):
    from voyagent.agent.offline import OfflineBackend
    from voyagent.keys import AGENT_BACKEND

    assert OfflineBackend.reads_history is False  # the grammar acts on the message alone (§8)
    backend = stream_client.server.app[AGENT_BACKEND]
    backend.reads_history = False
    session_id = await new_session(stream_client, admin)
    await turn(stream_client, admin, session_id, "say one")
    _, events = await turn(stream_client, admin, session_id, "say two")
    assert kinds(events) == ["text_delta", "final"]
    assert backend.turns[-1].history == () and backend.turns[-1].message == "say two"
    assert await message_count(db, session_id) == 4


async def test_decisions_taken_outside_the_chat_and_overdue_approvals_are_resumed_at_the_next_turn(
        stream_client, admin, db):
    """The turn skips the resume step only when no approval of the session is unconsumed: a decision taken with
    POST /approvals/{id}/resolve and an approval found overdue by the turn's own sweep are both acted on."""
    import datetime as dt

    session_id = await new_session(stream_client, admin)
    decided = await approval(stream_client, admin, session_id)
    response = await stream_client.post(f"/approvals/{decided}/resolve", json={"granted": False},
                                        headers=admin.headers)
    assert response.status == 200
    overdue = await approval(stream_client, admin, session_id, ttl=1,
                             now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    _, events = await turn(stream_client, admin, session_id, "say ok")
    assert kinds(events) == ["approval_denied", "text_delta", "approval_denied", "text_delta", "text_delta", "final"]
    denied = [event.json for event in agent_events(events) if event.json["kind"] == "approval_denied"]
    assert [(ev["approval_id"], ev["error_message"]) for ev in denied] == [  # by requested_at: an hour ago first
        (overdue, "approval_expired"), (decided, None)]
    assert await db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1::uuid "
                             "AND consumed_at IS NULL", session_id) == 0
    _, events = await turn(stream_client, admin, session_id, "say again")  # nothing left to resume
    assert kinds(events) == ["text_delta", "final"]
