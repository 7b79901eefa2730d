"""The Anthropic backend (chat-and-agent.md §10.2) against a local fake of the Messages API replaying streams in
the provider's event format, with real PostgreSQL for ``session_costs`` and the daily token budget."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.agent.fake_anthropic import (Answer, FakeAnthropic, Stream, chunks, error_answer, message_end,
                                        message_start, sse, text_block, text_reply, tool_block)
from voyagent.agent.anthropic import MAX_ROUNDS, SYSTEM_PROMPT, AnthropicBackend, create_anthropic_backend
from voyagent.agent.interface import ResumedApproval, TenantAgentSettings, ToolOutcome, Turn
from voyagent.config import Settings
from voyagent.db import Database

NOW = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.timezone.utc)
SEARCH_SCHEMA = {"type": "object", "additionalProperties": False,
                 "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 80},
                                "check_in": {"type": "string", "format": "date"}},
                 "required": ["city", "check_in"]}
ITINERARY_SCHEMA = {"type": "object", "additionalProperties": False, "properties": {}}


@dataclasses.dataclass(frozen=True)
class Spec:
    """The ToolSpec attributes a backend reads (§6.1)."""

    name: str
    description: str
    input_schema: dict[str, Any]


class RecordingTools:
    """The gateway as the backend sees it: records each call and answers the scripted outcome (else success)."""

    def __init__(self, outcomes: dict[str, ToolOutcome] | None = None) -> None:
        self.outcomes = outcomes or {}
        self.calls: list[tuple[str, Any]] = []

    def specs(self) -> list[Spec]:
        return [Spec("search_hotels", "Search hotels in a city.", SEARCH_SCHEMA),
                Spec("get_itinerary", "The session's itinerary.", ITINERARY_SCHEMA),
                Spec("book_offer", "Book an offer (needs approval).", ITINERARY_SCHEMA)]

    async def invoke(self, name: str, tool_input: Any) -> ToolOutcome:
        self.calls.append((name, tool_input))
        return self.outcomes.get(name, ToolOutcome("success", {"count": len(self.calls), "name": name}))


class Sleeps:
    """The injected sleep: records the waits, spends none."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
async def fake(aiohttp_server: Any) -> Any:
    provider = FakeAnthropic()
    provider.server = await aiohttp_server(provider.app)
    return provider


@pytest.fixture
async def voyagent_db(database: Any) -> Any:
    db = await Database.connect(database.dsn, 1, 2)
    yield db
    await db.close()


@pytest.fixture
async def http() -> Any:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def backend(fake: Any, http: Any, voyagent_db: Any, queries: Any, sleeps: Sleeps) -> AnthropicBackend:
    return AnthropicBackend(api_key="sk-ant-test-key", base_url=str(fake.server.make_url("/")),
                            default_model="claude-sonnet-4-5", max_tokens=512, http=http, database=voyagent_db,
                            sql=queries, sleep=sleeps, clock=lambda: NOW)


def make_turn(user: Any, message: str = "Hotels in Zürich?", *, history: list[dict[str, Any]] | None = None,
              model: str | None = None, suffix: str | None = "Answer in French.", resumed: tuple = ()) -> Turn:
    user_row = {"role": "user", "content": [{"type": "text", "text": message}]}
    return Turn(session_id=uuid.uuid4(), tenant_id=user.tenant_id, user_id=user.id, role=user.role,
                turn_id="t-" + uuid.uuid4().hex[:12], message=message, history=[*(history or []), user_row],
                resumed=resumed, settings=TenantAgentSettings(model=model, system_prompt_suffix=suffix, locale="en",
                                                              default_currency="INR"))


async def run(backend: AnthropicBackend, turn: Turn, tools: RecordingTools | None = None) -> list[dict[str, Any]]:
    events = []
    async for item in backend.run_turn(turn, tools or RecordingTools()):
        assert item["kind"] in ("text_delta", "error")
        assert (item["session_id"], item["turn_id"]) == (str(turn.session_id), turn.turn_id)
        events.append(item)
    return events


def texts(events: list[dict[str, Any]]) -> str:
    return "".join(item["text"] for item in events if item["kind"] == "text_delta")


def errors(events: list[dict[str, Any]]) -> list[str]:
    return [item["error_message"] for item in events if item["kind"] == "error"]


async def costs(db: Any, turn: Turn) -> list[Any]:
    return await db.fetch("SELECT tenant_id, session_id, turn_id, model, input_tokens, output_tokens, total_tokens,"
                          " cost_usd, created_at FROM session_costs WHERE turn_id = $1", turn.turn_id)


async def test_text_streams_as_it_arrives_and_the_request_is_the_messages_api_s(backend, fake, admin, db):
    pieces = ["Bonjour ! ", "Voici des hôtels à Zürich 🏨", " : trois offres."]
    fake.reply(Stream(chunks(text_reply(pieces, input_tokens=25, output_tokens=15), 7)))
    turn = make_turn(admin)

    events = await run(backend, turn)

    assert [item["text"] for item in events] == pieces  # one event per provider delta, in order
    assert errors(events) == []
    [request] = fake.requests
    assert request.headers["x-api-key"] == "sk-ant-test-key"
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert request.headers["Content-Type"] == "application/json"
    body = request.body
    assert (body["model"], body["max_tokens"], body["stream"]) == ("claude-sonnet-4-5", 512, True)
    assert body["system"].startswith(SYSTEM_PROMPT) and body["system"].endswith("\n\nAnswer in French.")
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hotels in Zürich?"}]}]
    assert body["tools"] == [
        {"name": "search_hotels", "description": "Search hotels in a city.", "input_schema": SEARCH_SCHEMA},
        {"name": "get_itinerary", "description": "The session's itinerary.", "input_schema": ITINERARY_SCHEMA},
        {"name": "book_offer", "description": "Book an offer (needs approval).", "input_schema": ITINERARY_SCHEMA}]
    [row] = await costs(db, turn)
    assert (row["tenant_id"], row["session_id"]) == (admin.tenant_id, turn.session_id)
    assert row["model"] == "claude-sonnet-4-5"
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (25, 15, 40)
    assert row["cost_usd"] == Decimal("0.00030000")  # 25 × 3/10⁶ + 15 × 15/10⁶
    assert row["created_at"] == NOW


async def test_the_tenant_model_and_no_suffix(backend, fake, admin, db):
    fake.reply(text_reply(["Hi"], input_tokens=1000, output_tokens=100))
    turn = make_turn(admin, model="claude-haiku-4-5-20251001", suffix=None)
    assert texts(await run(backend, turn)) == "Hi"
    body = fake.requests[0].body
    assert body["model"] == "claude-haiku-4-5-20251001"
    assert body["system"].startswith(SYSTEM_PROMPT) and "French" not in body["system"]
    [row] = await costs(db, turn)
    assert (row["model"], row["cost_usd"]) == ("claude-haiku-4-5-20251001", Decimal("0.00120000"))  # 0.0008 + 0.0004


async def test_usage_takes_the_last_message_delta_not_a_sum(backend, fake, admin, db):
    stream = sse(message_start(40, 1),
                 *text_block(0, ["a", "b"]),
                 {"type": "message_delta", "delta": {"stop_reason": None, "stop_sequence": None},
                  "usage": {"output_tokens": 5}},
                 *message_end("end_turn", 12, input_tokens=41))
    fake.reply(stream)
    turn = make_turn(admin)
    assert texts(await run(backend, turn)) == "ab"
    [row] = await costs(db, turn)
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (41, 12, 53)


async def test_ping_and_unknown_event_types_are_ignored(backend, fake, admin):
    stream = sse(message_start(10),
                 {"type": "ping"},
                 *text_block(0, ["one"])[:2],
                 {"type": "ping"},
                 {"type": "content_block_future_thing", "index": 0, "payload": {"x": 1}},
                 {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta", "citation": {}}},
                 *text_block(0, [" two"])[1:],
                 {"type": "brand_new_event"},
                 *message_end("end_turn", 3))
    fake.reply(stream)
    events = await run(backend, make_turn(admin))
    assert texts(events) == "one two" and errors(events) == []


async def test_two_tool_blocks_split_at_awkward_places_are_parsed_when_each_block_stops(backend, fake, admin, db):
    first_input = {"city": "Zürich \"Altstadt\" \\ 🏨", "check_in": "2026-07-01"}
    encoded = json.dumps(first_input)  # ASCII escapes: \u00fc, \", \\ and the surrogate pair \ud83c\udfe8
    assert "\\u00fc" in encoded and "\\ud83c\\udfe8" in encoded
    cut = [encoded.index("\\u00fc") + 4,  # inside \u00fc
           encoded.index('\\"') + 1,  # between the backslash and its quote
           encoded.index("\\\\") + 1,  # inside the escaped backslash
           encoded.index("\\udfe8"),  # between the two halves of the surrogate pair
           encoded.index("\\udfe8") + 3]
    fragments = [encoded[a:b] for a, b in zip([0, *cut], [*cut, len(encoded)])]
    assert "".join(fragments) == encoded and len(fragments) == 6
    fake.reply(
        Stream(chunks(sse(message_start(100, 2),
                          *text_block(0, ["Je cherche…"]),
                          *tool_block(1, "toolu_01A", "search_hotels", ["", *fragments]),
                          {"type": "ping"},
                          *tool_block(2, "toolu_01B", "get_itinerary", []),  # no parameters: no JSON at all
                          *message_end("tool_use", 40)), 5)),
        text_reply(["Trois hôtels."], input_tokens=150, output_tokens=20))
    tools = RecordingTools({"get_itinerary": ToolOutcome("error", {"ok": False, "error": "boom", "detail": "x"})})
    turn = make_turn(admin)

    events = await run(backend, turn, tools)

    assert texts(events) == "Je cherche…Trois hôtels."
    assert tools.calls == [("search_hotels", first_input), ("get_itinerary", {})]
    assert len(fake.requests) == 2
    second = fake.requests[1].body["messages"]
    assert second[0] == {"role": "user", "content": [{"type": "text", "text": "Hotels in Zürich?"}]}
    assert second[1] == {"role": "assistant", "content": [
        {"type": "text", "text": "Je cherche…"},
        {"type": "tool_use", "id": "toolu_01A", "name": "search_hotels", "input": first_input},
        {"type": "tool_use", "id": "toolu_01B", "name": "get_itinerary", "input": {}}]}
    assert second[2]["role"] == "user"
    first_result, second_result = second[2]["content"]
    assert first_result == {"type": "tool_result", "tool_use_id": "toolu_01A",
                            "content": '{"count":1,"name":"search_hotels"}'}
    assert second_result == {"type": "tool_result", "tool_use_id": "toolu_01B", "is_error": True,
                             "content": '{"ok":false,"error":"boom","detail":"x"}'}
    assert len(second) == 3
    [row] = await costs(db, turn)  # one row per turn: both requests summed
    assert (row["input_tokens"], row["output_tokens"], row["total_tokens"]) == (250, 60, 310)
    assert row["cost_usd"] == Decimal("0.00165000")  # 250 × 3/10⁶ + 60 × 15/10⁶


async def test_an_input_that_is_not_json_goes_to_the_gateway_as_text(backend, fake, admin):
    fake.reply(sse(message_start(5), *tool_block(0, "toolu_01", "search_hotels", ['{"city": "Par']),
                   *message_end("tool_use", 4)),
               text_reply(["Sorry."]))
    tools = RecordingTools({"search_hotels": ToolOutcome("error", {"ok": False, "error": "invalid_input",
                                                                   "detail": "not an object"})})
    assert texts(await run(backend, make_turn(admin), tools)) == "Sorry."
    assert tools.calls == [("search_hotels", '{"city": "Par')]
    echoed = fake.requests[1].body["messages"][1]["content"][0]
    assert echoed == {"type": "tool_use", "id": "toolu_01", "name": "search_hotels", "input": {}}


async def test_after_an_approval_is_needed_no_further_tool_is_called(backend, fake, admin):
    fake.reply(sse(message_start(5), *tool_block(0, "toolu_01", "book_offer", ['{"offer_id": "FLT-20526D6B"}']),
                   *tool_block(1, "toolu_02", "get_itinerary", ["{}"]), *message_end("tool_use", 9)))
    tools = RecordingTools({"book_offer": ToolOutcome("approval_needed", {"approval_id": "ap-1"}, "ap-1")})
    events = await run(backend, make_turn(admin, "book FLT-20526D6B"), tools)
    assert events == []
    assert tools.calls == [("book_offer", {"offer_id": "FLT-20526D6B"})]
    assert len(fake.requests) == 1


async def test_a_turn_stops_after_eight_rounds(backend, fake, admin, db):
    for round_no in range(MAX_ROUNDS + 2):
        fake.reply(sse(message_start(10), *text_block(0, [f"r{round_no} "]),
                       *tool_block(1, f"toolu_{round_no}", "get_itinerary", ["{}"]), *message_end("tool_use", 5)))
    tools = RecordingTools()
    turn = make_turn(admin)

    events = await run(backend, turn, tools)

    assert len(fake.requests) == MAX_ROUNDS == 8
    assert len(tools.calls) == MAX_ROUNDS  # the eighth round's call runs; no ninth request sees its result
    assert texts(events) == "".join(f"r{n} " for n in range(MAX_ROUNDS)) and errors(events) == []
    last = fake.requests[-1].body["messages"]
    assert len(last) == 1 + 2 * (MAX_ROUNDS - 1)
    assert [m["role"] for m in last] == ["user", "assistant"] * (MAX_ROUNDS - 1) + ["user"]
    [row] = await costs(db, turn)
    assert (row["input_tokens"], row["output_tokens"]) == (80, 40)


async def test_overloaded_mid_stream_is_retried_without_sending_text_twice(backend, fake, admin, sleeps, db):
    broken = sse(message_start(30), *text_block(0, ["Hello, I am ", "look"])[:3],
                 {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    fake.reply(Stream([broken]), text_reply(["Hello, I am looking", " for hotels."], input_tokens=30,
                                            output_tokens=8))
    turn = make_turn(admin)

    events = await run(backend, turn)

    assert texts(events) == "Hello, I am looking for hotels."
    assert [item["text"] for item in events] == ["Hello, I am ", "look", "ing", " for hotels."]
    assert sleeps.waits == [1.0] and len(fake.requests) == 2
    assert fake.requests[0].body == fake.requests[1].body
    [row] = await costs(db, turn)  # what the failed attempt reported counts too
    assert (row["input_tokens"], row["output_tokens"]) == (60, 9)


async def test_a_retry_that_words_it_differently_continues_after_a_paragraph_break(backend, fake, admin):
    broken = sse(message_start(30), *text_block(0, ["I found three"])[:2],
                 {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    fake.reply(Stream([broken]), text_reply(["I found 3 hotels."]))
    assert texts(await run(backend, make_turn(admin))) == "I found three\n\n3 hotels."


async def test_a_429_waits_its_retry_after(backend, fake, admin, sleeps):
    fake.reply(error_answer(429, "rate_limit_error", {"Retry-After": "7"}), text_reply(["ok"]))
    events = await run(backend, make_turn(admin))
    assert texts(events) == "ok" and errors(events) == []
    assert sleeps.waits == [7.0] and len(fake.requests) == 2


async def test_a_rate_limit_without_retry_after_waits_1_then_2_seconds_then_fails(backend, fake, admin, sleeps, db):
    fake.reply(*[error_answer(429, "rate_limit_error")] * 3, text_reply(["never"]))
    turn = make_turn(admin)
    events = await run(backend, turn)
    assert errors(events) == ["upstream_error: rate_limit_error"] and texts(events) == ""
    assert sleeps.waits == [1.0, 2.0] and len(fake.requests) == 3
    assert await costs(db, turn) == []  # no tokens reported, no row


async def test_an_overloaded_529_is_retried_like_a_rate_limit(backend, fake, admin, sleeps):
    fake.reply(error_answer(529, "overloaded_error"), error_answer(529, "overloaded_error", {"Retry-After": "3"}),
               text_reply(["fine"]))
    assert texts(await run(backend, make_turn(admin))) == "fine"
    assert sleeps.waits == [1.0, 3.0]


@pytest.mark.parametrize(("status", "error_type"), [(401, "authentication_error"), (400, "invalid_request_error"),
                                                    (403, "permission_error")])
async def test_authentication_and_bad_request_errors_are_not_retried(backend, fake, admin, sleeps, status, error_type):
    fake.reply(error_answer(status, error_type), text_reply(["never"]))
    events = await run(backend, make_turn(admin))
    assert [item["kind"] for item in events] == ["error"]
    assert errors(events) == [f"upstream_error: {error_type}"]
    assert sleeps.waits == [] and len(fake.requests) == 1


async def test_an_error_answer_without_a_json_body_is_named_after_its_status(backend, fake, admin):
    fake.reply(Answer(401, {"unexpected": True}))
    assert errors(await run(backend, make_turn(admin))) == ["upstream_error: authentication_error"]


async def test_a_broken_connection_is_retried_once_after_one_second(backend, fake, admin, sleeps):
    partial = sse(message_start(10), *text_block(0, ["Partial "])[:2])
    fake.reply(Stream([partial], abort=True), text_reply(["Partial answer."]))
    events = await run(backend, make_turn(admin))
    assert texts(events) == "Partial answer." and errors(events) == []
    assert sleeps.waits == [1.0] and len(fake.requests) == 2


async def test_a_second_broken_connection_is_final(backend, fake, admin, sleeps):
    partial = sse(message_start(10), *text_block(0, ["Partial "])[:2])
    fake.reply(Stream([partial], abort=True), Stream([partial], abort=True), text_reply(["never"]))
    events = await run(backend, make_turn(admin))
    assert texts(events) == "Partial " and errors(events) == ["upstream_error: connection_error"]
    assert sleeps.waits == [1.0] and len(fake.requests) == 2


async def test_a_stream_that_ends_without_message_stop_is_a_connection_error(backend, fake, admin, sleeps):
    truncated = sse(message_start(10), *text_block(0, ["Hi"]))
    fake.reply(truncated, truncated)
    assert errors(await run(backend, make_turn(admin))) == ["upstream_error: connection_error"]
    assert sleeps.waits == [1.0]


async def test_an_unreachable_provider_is_a_connection_error(http, voyagent_db, queries, admin, sleeps,
                                                            unused_tcp_port):
    backend = AnthropicBackend(api_key="k", base_url=f"http://127.0.0.1:{unused_tcp_port}", default_model="m",
                               max_tokens=64, http=http, database=voyagent_db, sql=queries, sleep=sleeps)
    assert errors(await run(backend, make_turn(admin))) == ["upstream_error: connection_error"]
    assert sleeps.waits == [1.0]


async def test_history_and_resumed_decisions_reach_the_provider_in_its_shape(backend, fake, admin):
    history = [
        {"role": "user", "content": [{"type": "text", "text": "book FLT-20526D6B"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "tc-00112233445566aa", "name": "book_offer",
             "input": {"offer_id": "FLT-20526D6B"}},
            {"type": "approval_request", "approval_id": "ap-t-1-book_offer", "summary": "Book flight 6E893."}]},
    ]
    resumed = (ResumedApproval("ap-t-1-book_offer", "book_offer", "tc-00112233445566aa", "granted",
                               {"ok": True, "item": {"status": "booked"}}),)
    fake.reply(text_reply(["Booked."]))
    turn = make_turn(admin, "what now?", history=history, resumed=resumed)
    assert texts(await run(backend, turn)) == "Booked."
    messages = fake.requests[0].body["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [{"type": "tool_use", "id": "tc-00112233445566aa", "name": "book_offer",
                                       "input": {"offer_id": "FLT-20526D6B"}}]
    result, note, question = messages[2]["content"]
    assert result["type"] == "tool_result" and result["tool_use_id"] == "tc-00112233445566aa"
    assert "ap-t-1-book_offer" in result["content"] and "Book flight 6E893." in result["content"]
    assert note["type"] == "text" and "granted" in note["text"] and '"status":"booked"' in note["text"]
    assert question == {"type": "text", "text": "what now?"}


async def test_a_blank_message_asks_nothing(backend, fake, admin, db):
    turn = make_turn(admin, "   ")
    assert await run(backend, turn) == []
    assert fake.requests == [] and await costs(db, turn) == []


# --- daily token budget (§2 step 4) and readiness ----------------------------------------------------------------


async def test_the_daily_budget_refuses_once_todays_tokens_reach_it(backend, fake, admin, db):
    await db.execute("UPDATE tenant_settings SET daily_token_budget = 100 WHERE tenant_id = $1", admin.tenant_id)
    turn = make_turn(admin)
    assert await backend.refuse_turn(turn) is None
    fake.reply(text_reply(["a"], input_tokens=40, output_tokens=20))  # 60 < 100
    await run(backend, turn)
    assert await backend.refuse_turn(make_turn(admin)) is None
    fake.reply(text_reply(["b"], input_tokens=30, output_tokens=10))  # 100 ≥ 100
    await run(backend, make_turn(admin))
    assert await backend.refuse_turn(make_turn(admin)) == "daily_budget_exceeded: limit=100 used=100"


async def test_the_budget_counts_from_midnight_utc_and_only_the_tenant(backend, admin, make_user, db):
    other = await make_user("agency_admin")
    await db.execute("UPDATE tenant_settings SET daily_token_budget = 50 WHERE tenant_id = $1", admin.tenant_id)
    midnight = NOW.replace(hour=0)
    rows = [(admin.tenant_id, midnight - dt.timedelta(microseconds=1), 500),  # yesterday
            (admin.tenant_id, midnight, 30),  # today, at the first instant
            (other.tenant_id, NOW, 500)]  # another tenant
    for tenant_id, at, tokens in rows:
        await db.execute("INSERT INTO session_costs (id, tenant_id, session_id, turn_id, model, total_tokens,"
                         " created_at) VALUES ($1, $2, $3, 't-000000000000', 'claude-sonnet-4-5', $4, $5)",
                         uuid.uuid4(), tenant_id, uuid.uuid4(), tokens, at)
    assert await backend.refuse_turn(make_turn(admin)) is None  # 30 < 50
    await db.execute("UPDATE tenant_settings SET daily_token_budget = 30 WHERE tenant_id = $1", admin.tenant_id)
    assert await backend.refuse_turn(make_turn(admin)) == "daily_budget_exceeded: limit=30 used=30"
    assert await backend.refuse_turn(make_turn(other)) is None  # no budget set: unlimited


async def test_without_an_api_key_the_backend_is_not_ready(http, voyagent_db, queries):
    settings = Settings(agent_backend="anthropic", anthropic_base_url="http://127.0.0.1:1/gw/",
                        agent_model="claude-opus-4-6", agent_max_tokens=2048)
    backend = create_anthropic_backend(settings, http=http, database=voyagent_db, sql=queries)
    assert backend.name == "anthropic" and backend.ready is False
    assert backend.url == "http://127.0.0.1:1/gw/v1/messages"
    assert (backend.default_model, backend.max_tokens) == ("claude-opus-4-6", 2048)
    keyed = create_anthropic_backend(dataclasses.replace(settings, anthropic_api_key="sk-ant-x"), http=http,
                                     database=voyagent_db, sql=queries)
    assert keyed.ready is True and keyed.api_key == "sk-ant-x"
