"""Stored messages (§5) as a Messages-API conversation: alternating roles, every tool_use answered by a
tool_result at the start of the next user message, approvals and late results as text, no blank text."""

from __future__ import annotations

from typing import Any

from voyagent.agent.conversation import NO_RESULT, to_messages
from voyagent.agent.interface import ResumedApproval


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": text}]}


def assistant(*blocks: dict[str, Any]) -> dict[str, Any]:
    return {"role": "assistant", "content": list(blocks)}


def text(value: str) -> dict[str, Any]:
    return {"type": "text", "text": value}


def use(call_id: str, name: str = "search_flights", tool_input: Any = None) -> dict[str, Any]:
    return {"type": "tool_use", "id": call_id, "name": name, "input": tool_input if tool_input is not None else {}}


def result(call_id: str, output: Any) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": call_id, "content": output}


def assert_valid(messages: list[dict[str, Any]]) -> None:
    """The provider's rules: user first and last, roles alternate, each tool_use answered at the start of the
    next message, no empty content, no blank text."""
    assert messages[0]["role"] == "user" and messages[-1]["role"] == "user"
    for before, after in zip(messages, messages[1:]):
        assert before["role"] != after["role"]
    for index, message in enumerate(messages):
        assert message["content"]
        for block in message["content"]:
            assert block["type"] != "text" or block["text"].strip()
        calls = [b["id"] for b in message["content"] if b["type"] == "tool_use"]
        if calls:
            answers = messages[index + 1]["content"]
            leading = [b["tool_use_id"] for b in answers[:len(calls)] if b["type"] == "tool_result"]
            assert sorted(leading) == sorted(calls)
        if message["role"] == "assistant":
            assert not any(b["type"] == "tool_result" for b in message["content"])


def test_a_search_turn_splits_into_calls_and_results():
    history = [user("flights DEL to DXB"),
               assistant(text("Searching."), use("tc-1", tool_input={"origin": "DEL"}), result("tc-1", {"count": 3}),
                         text("Three flights.")),
               user("add the first")]
    messages = to_messages(history, "add the first")
    assert_valid(messages)
    assert messages == [
        user("flights DEL to DXB"),
        assistant(text("Searching."), use("tc-1", tool_input={"origin": "DEL"})),
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tc-1", "content": '{"count":3}'}]},
        assistant(text("Three flights.")),
        user("add the first")]


def test_a_failed_result_is_marked_as_an_error():
    messages = to_messages([user("x"), assistant(use("tc-1"), result("tc-1", {"ok": False, "error": "e"})),
                            user("y")], "y")
    assert messages[2]["content"][0]["is_error"] is True


def test_a_paused_call_is_answered_by_its_approval_and_its_later_result_is_text():
    history = [user("book FLT-20526D6B"),
               assistant(use("tc-1", "book_offer"),
                         {"type": "approval_request", "approval_id": "ap-t-1-book_offer", "summary": "Book it."}),
               user("ok"),
               assistant({"type": "approval_decision", "approval_id": "ap-t-1-book_offer", "decision": "granted"},
                         result("tc-1", {"ok": True}), text("Booked.")),
               user("thanks")]
    messages = to_messages(history, "thanks")
    assert_valid(messages)
    paused = messages[2]["content"][0]
    assert paused["tool_use_id"] == "tc-1" and "ap-t-1-book_offer" in paused["content"]
    assert "Book it." in paused["content"]
    assert [block["type"] for block in messages[2]["content"]] == ["tool_result", "text", "text", "text"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant", "user"]
    assert messages[3] == assistant(text("Booked."))
    late_texts = [b["text"] for b in messages[2]["content"] if b["type"] == "text"]
    assert late_texts[0] == "ok"
    assert "granted" in late_texts[1] and "book_offer" in late_texts[2] and '{"ok":true}' in late_texts[2]


def test_a_call_left_open_gets_a_result_saying_so():
    messages = to_messages([user("x"), assistant(text("Trying."), use("tc-1"), use("tc-2")), user("and?")], "and?")
    assert_valid(messages)
    assert messages[2]["content"][:2] == [{"type": "tool_result", "tool_use_id": "tc-1", "content": NO_RESULT},
                                          {"type": "tool_result", "tool_use_id": "tc-2", "content": NO_RESULT}]


def test_parallel_calls_with_one_result_get_the_other_closed_before_the_next_call():
    history = [user("x"), assistant(use("tc-1"), use("tc-2"), result("tc-1", {"a": 1}), use("tc-3"),
                                    result("tc-3", {"c": 3})), user("y")]
    messages = to_messages(history, "y")
    assert_valid(messages)
    assert [b["tool_use_id"] for b in messages[2]["content"]] == ["tc-1", "tc-2"]


def test_blank_text_unknown_blocks_and_odd_rows_are_dropped():
    history = [{"role": "assistant", "content": [text("Welcome back.")]},
               user("   "),
               {"role": "user", "content": [{"type": "image"}, "not a block", text("hello")]},
               assistant(text(""), {"type": "thinking"}),
               {"role": "user", "content": "plain string content"}]
    messages = to_messages(history, "plain string content")
    assert_valid(messages)
    assert messages[0]["content"] == [text("(earlier conversation)")]
    assert messages[1] == assistant(text("Welcome back."))
    assert messages[2]["content"] == [text("hello"), text("plain string content")]


def test_resumed_decisions_come_just_before_the_user_message():
    resumed = [ResumedApproval("ap-1", "hold_offer", "tc-9", "expired", None)]
    messages = to_messages([user("hi"), assistant(text("Hello.")), user("status?")], "status?", resumed)
    assert_valid(messages)
    note, question = messages[2]["content"]
    assert "ap-1" in note["text"] and "expired" in note["text"] and question == text("status?")


def test_a_history_without_this_turn_s_message_gets_it():
    resumed = [ResumedApproval("ap-1", "hold_offer", "tc-9", "rejected", None)]
    messages = to_messages([user("hi"), assistant(text("Hello."))], "again", resumed)
    assert_valid(messages)
    assert messages[-1]["content"][-1] == text("again") and "rejected" in messages[-1]["content"][0]["text"]
    assert to_messages([], "first") == [user("first")]
