"""The anthropic backend through HTTP (chat-and-agent.md §10): the app built with ``agent_backend="anthropic"``,
an API key and ``ANTHROPIC_BASE_URL`` pointing at the local fake of the Messages API (tests/agent/fake_anthropic.py,
streams in the provider's event format), the real tool gateway, database and stores behind it."""

from __future__ import annotations

import json

import orjson

from tests.agent.fake_anthropic import error_answer, message_end, message_start, sse, text_block, text_reply, tool_block
from tests.chat_client import ids, turn
from tests.chat_client import new_session as create_session
from tests.e2e import expect
from tests.e2e.expect import BOOK_SUMMARY, DEL_DXB, DEL_DXB_OFFERS, FIRST, frames
from tests.e2e.steps import kinds_of

TOOL_NAMES = ["search_flights", "search_hotels", "get_itinerary", "add_to_itinerary", "add_passenger", "hold_offer",
              "book_offer", "issue_invoice"]


def tool_round(tool_id, name, tool_input, *, input_tokens=100, output_tokens=20, text=None, pieces=3):
    """One provider reply asking for one tool, its input JSON streamed in ``pieces`` fragments."""
    encoded = json.dumps(tool_input)
    step = max(1, len(encoded) // pieces)
    fragments = [encoded[i:i + step] for i in range(0, len(encoded), step)]
    blocks = [*text_block(0, [text])] if text else []
    return sse(message_start(input_tokens), *blocks, *tool_block(len(blocks) and 1, tool_id, name, fragments),
               *message_end("tool_use", output_tokens))


def assert_valid_conversation(messages):
    """What the Messages API requires of ``messages``: alternating roles from the user's, every tool_use answered by
    a tool_result at the start of the next message, no blank text."""
    assert [m["role"] for m in messages] == ["user", "assistant"] * (len(messages) // 2) + ["user"] * (
        len(messages) % 2), [m["role"] for m in messages]
    for position, message in enumerate(messages):
        for block in message["content"]:
            if block["type"] == "text":
                assert block["text"].strip()
        calls = [block["id"] for block in message["content"] if block["type"] == "tool_use"]
        if calls:
            answered = [block["tool_use_id"] for block in messages[position + 1]["content"]
                        if block["type"] == "tool_result"]
            assert answered == calls and messages[position + 1]["content"][:len(calls)] == [
                block for block in messages[position + 1]["content"] if block["type"] == "tool_result"]


async def costs(db, session_id):
    return [tuple(row) for row in await db.fetch(
        "SELECT model, input_tokens, output_tokens, total_tokens FROM session_costs WHERE session_id = $1::uuid"
        " ORDER BY created_at", session_id)]


async def message_count(client, user, session_id):
    summary = await (await client.get(f"/chat/sessions/{session_id}", headers=user.headers)).json()
    return summary["message_count"]


async def test_a_text_only_turn(anthropic, fake_provider, admin, db):
    session_id = await create_session(anthropic, admin)
    fake_provider.reply(text_reply(["Hello! ", "Where would you like to go?"], input_tokens=25, output_tokens=15))
    _, events = await turn(anthropic, admin, session_id, "  Hi there  ")
    data = frames(events)
    assert [(ev["kind"], ev["text"]) for ev in data] == [("text_delta", "Hello! "),
                                                         ("text_delta", "Where would you like to go?"),
                                                         ("final", None)]
    assert ids(events) == [1, 2, 3]
    [request] = fake_provider.requests
    assert request.headers["x-api-key"] == "sk-ant-e2e-key"
    assert (request.body["model"], request.body["stream"]) == ("claude-sonnet-4-5", True)
    assert request.body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "  Hi there  "}]}]
    assert [tool["name"] for tool in request.body["tools"]] == TOOL_NAMES
    assert await message_count(anthropic, admin, session_id) == 2
    assert await costs(db, session_id) == [("claude-sonnet-4-5", 25, 15, 40)]
    stored = await db.fetchval("SELECT content FROM messages WHERE session_id = $1::uuid AND role = 'assistant'",
                               session_id)
    assert orjson.loads(stored) == [{"type": "text", "text": "Hello! Where would you like to go?"}]
    text = await (await anthropic.get("/internal/metrics")).text()
    assert expect.metric(text, "voyagent_agent_turns_total", backend="anthropic", outcome="completed") == 1


async def test_tool_calls_give_the_frames_and_outputs_of_the_offline_backend_then_a_booking_is_approved(
        anthropic, fake_provider, make_chat_client, admin, db):
    # the offline backend, same tenant, same tool inputs: the reference
    offline = await make_chat_client()
    offline_session = await create_session(offline, admin)
    _, events = await turn(offline, admin, offline_session, "DEL to DXB on 2026-07-01 for 2 adults")
    offline_search = frames(events)[:2]
    _, events = await turn(offline, admin, offline_session, f"add {FIRST}")
    offline_add = frames(events)[:2]
    assert await costs(db, offline_session) == []  # the offline backend records no usage

    session_id = await create_session(anthropic, admin)
    fake_provider.reply(
        tool_round("toolu_01S", "search_flights", DEL_DXB, text="Searching flights."),
        tool_round("toolu_02A", "add_to_itinerary", {"offer_id": FIRST}, input_tokens=400),
        text_reply(["Added IndiGo 6E893 for INR 54,208.00."], input_tokens=600, output_tokens=12))
    _, events = await turn(anthropic, admin, session_id, "Cheapest DEL-DXB flight on 1 July 2026 for two, add it")
    data = frames(events)
    assert kinds_of(data) == ["text_delta", "tool_use", "tool_result", "tool_use", "tool_result", "text_delta",
                              "final"]
    for ours, reference in zip((data[1:3], data[3:5]), (offline_search, offline_add)):
        for event, expected in zip(ours, reference):
            assert (event["kind"], event["tool_name"], event["tool_input"]) == (
                expected["kind"], expected["tool_name"], expected["tool_input"])
        assert ours[0]["tool_call_id"] == ours[1]["tool_call_id"]
    assert data[2]["tool_output"] == offline_search[1]["tool_output"] == {"count": 3, "offers": DEL_DXB_OFFERS}
    item, reference_item = data[4]["tool_output"]["item"], offline_add[1]["tool_output"]["item"]
    assert {**item, "item_id": None} == {**reference_item, "item_id": None}
    assert data[4]["tool_output"]["ok"] is True and item["status"] == "planned"

    first, second, third = fake_provider.requests
    # each tool's result goes back to the model as its compact JSON, answering the provider's own call id
    answer = second.body["messages"][-1]["content"]
    assert answer == [{"type": "tool_result", "tool_use_id": "toolu_01S",
                       "content": orjson.dumps(data[2]["tool_output"]).decode()}]
    assert third.body["messages"][-1]["content"][0]["tool_use_id"] == "toolu_02A"
    for request in (first, second, third):
        assert_valid_conversation(request.body["messages"])
    assert await costs(db, session_id) == [("claude-sonnet-4-5", 1100, 52, 1152)]
    audit = (await expect.tool_audit(db, admin.tenant_id, "add_to_itinerary"))[-1]
    assert (audit["status"], audit["inputs"]) == ("succeeded", {"offer_id": FIRST})

    # book_offer → approval_request, and no further provider request in that turn
    fake_provider.reply(tool_round("toolu_03B", "book_offer", {"offer_id": FIRST}),
                        text_reply(["never asked for"]))
    _, events = await turn(anthropic, admin, session_id, "Book it")
    use, request_event, _ = data = frames(events)
    assert kinds_of(data) == ["tool_use", "approval_request", "final"]
    book_id = f"ap-{use['turn_id']}-book_offer"
    assert (request_event["approval_id"], request_event["approval_summary"]) == (book_id, BOOK_SUMMARY)
    assert len(fake_provider.requests) == 4 and len(fake_provider.script) == 1
    fake_provider.script.clear()

    resolved = await anthropic.post(f"/approvals/{book_id}/resolve", json={"granted": True}, headers=admin.headers)
    assert resolved.status == 200
    _, events = await turn(anthropic, admin, session_id, "")  # resume only: the model is not asked
    granted, result, _, _ = data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "final"]
    assert granted["tool_call_id"] == result["tool_call_id"] == use["tool_call_id"]
    assert result["tool_output"]["item"]["status"] == "booked"
    assert result["tool_output"]["bill"]["amount"] == expect.FIRST_PRICE
    assert len(fake_provider.requests) == 4

    # the next question carries the whole story in a conversation the API accepts
    fake_provider.reply(text_reply(["Your flight is booked."]))
    _, events = await turn(anthropic, admin, session_id, "What is booked?")
    assert kinds_of(frames(events)) == ["text_delta", "final"]
    messages = fake_provider.requests[-1].body["messages"]
    assert_valid_conversation(messages)
    assert messages[-1]["content"][-1] == {"type": "text", "text": "What is booked?"}
    told = json.dumps(messages)
    assert book_id in told and result["tool_output"]["bill"]["number"] in told
    assert await message_count(anthropic, admin, session_id) == 7  # 2 + 2 + 1 + 2
    text = await (await anthropic.get("/internal/metrics")).text()
    outcomes = {outcome: expect.metric(text, "voyagent_agent_turns_total", backend="anthropic", outcome=outcome)
                for outcome in ("completed", "approval_requested", "error")}
    assert outcomes == {"completed": 3, "approval_requested": 1, "error": 0}
    assert expect.metric(text, "voyagent_agent_tool_calls_total", tool="book_offer", outcome="success") == 1


async def test_the_daily_token_budget_refuses_the_turn_after_usage_passes_it(anthropic, fake_provider, admin, db):
    patched = await anthropic.patch("/tenant-settings", json={"daily_token_budget": 30}, headers=admin.headers)
    assert (patched.status, (await patched.json())["daily_token_budget"]) == (200, 30)
    session_id = await create_session(anthropic, admin)
    fake_provider.reply(text_reply(["Hello."], input_tokens=25, output_tokens=15))  # 0 < 30: allowed, uses 40
    _, events = await turn(anthropic, admin, session_id, "Hi")
    assert kinds_of(frames(events)) == ["text_delta", "final"]
    before = (await message_count(anthropic, admin, session_id), len(fake_provider.requests))
    _, events = await turn(anthropic, admin, session_id, "And now?")
    assert [(ev["kind"], ev["error_message"]) for ev in frames(events)] == [
        ("error", "daily_budget_exceeded: limit=30 used=40"), ("final", None)]
    assert (await message_count(anthropic, admin, session_id), len(fake_provider.requests)) == before
    other = await create_session(anthropic, admin)  # the budget is the tenant's
    _, events = await turn(anthropic, admin, other, "Hello?")
    assert frames(events)[0]["error_message"] == "daily_budget_exceeded: limit=30 used=40"
    summary = await (await anthropic.get(f"/chat/sessions/{other}", headers=admin.headers)).json()
    assert (summary["message_count"], summary["title"]) == (0, None)
    text = await (await anthropic.get("/internal/metrics")).text()
    assert expect.metric(text, "voyagent_agent_turns_total", backend="anthropic", outcome="budget_exceeded") == 2
    patched = await anthropic.patch("/tenant-settings", json={"daily_token_budget": None}, headers=admin.headers)
    assert patched.status == 200
    fake_provider.reply(text_reply(["Back again."]))
    _, events = await turn(anthropic, admin, session_id, "And now?")
    assert kinds_of(frames(events)) == ["text_delta", "final"]


async def test_a_401_from_the_provider_is_an_upstream_error_without_retry(anthropic, fake_provider, admin, db):
    session_id = await create_session(anthropic, admin)
    fake_provider.reply(error_answer(401, "authentication_error"), text_reply(["never"]))
    _, events = await turn(anthropic, admin, session_id, "Hi")
    assert [(ev["kind"], ev["error_message"]) for ev in frames(events)] == [
        ("error", "upstream_error: authentication_error"), ("final", None)]
    assert len(fake_provider.requests) == 1
    assert await message_count(anthropic, admin, session_id) == 1  # the user's message; the turn said nothing else
    assert await costs(db, session_id) == []
    text = await (await anthropic.get("/internal/metrics")).text()
    assert expect.metric(text, "voyagent_agent_turns_total", backend="anthropic", outcome="error") == 1
