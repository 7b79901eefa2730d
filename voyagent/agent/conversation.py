"""A session's stored messages (chat-and-agent.md §5) as a valid Messages-API conversation.

A stored assistant row holds a whole turn: text, tool calls with their results, approval requests and the
decisions acted on at resume. The provider wants strictly alternating ``user``/``assistant`` messages, the
first from the user, every ``tool_use`` answered by a ``tool_result`` at the start of the next user message and
no empty text. So calls and results are split into alternating messages, a call left open (paused for approval,
or a turn cut short) gets a result saying so, and what has no block of its own in the API (approvals, a result
whose call is no longer open) becomes text.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from voyagent import jsonio
from voyagent.agent.interface import ResumedApproval

NO_RESULT = "No result was recorded for this call."


def tool_result_content(output: Any) -> str:
    """A tool output as the text of a ``tool_result`` block (compact JSON)."""
    return jsonio.dumps(output).decode()


def failed(output: Any) -> bool:
    """Whether a tool output is the gateway's failure shape ``{"ok": false, …}``."""
    return isinstance(output, dict) and output.get("ok") is False


class _Conversation:
    """Builds the alternating messages, one block at a time."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.open_calls: list[str] = []  # tool_use ids of the last assistant message still waiting for a result

    def _append(self, role: str, block: dict[str, Any]) -> None:
        if self.messages and self.messages[-1]["role"] == role:
            self.messages[-1]["content"].append(block)
        else:
            self.messages.append({"role": role, "content": [block]})

    def _close_open_calls(self, note: str = NO_RESULT) -> None:
        for call_id in self.open_calls:
            self._append("user", {"type": "tool_result", "tool_use_id": call_id, "content": note})
        self.open_calls = []

    def text(self, role: str, text: Any) -> None:
        if not isinstance(text, str) or not text.strip():
            return  # the API refuses empty or blank text blocks
        self._close_open_calls()
        self._append(role, {"type": "text", "text": text})

    def tool_use(self, block: dict[str, Any]) -> None:
        call_id, name, tool_input = block.get("id"), block.get("name"), block.get("input")
        if not isinstance(call_id, str) or not isinstance(name, str):
            return
        if self.messages and self.messages[-1]["role"] == "user":
            self._close_open_calls()  # calls of an earlier assistant message still open; this one starts anew
        self._append("assistant", {"type": "tool_use", "id": call_id, "name": name,
                                   "input": tool_input if isinstance(tool_input, dict) else {}})
        self.open_calls.append(call_id)

    def tool_result(self, block: dict[str, Any], name: str | None) -> None:
        call_id, output = block.get("tool_use_id"), block.get("content")
        if isinstance(call_id, str) and call_id in self.open_calls:
            self.open_calls.remove(call_id)
            result = {"type": "tool_result", "tool_use_id": call_id, "content": tool_result_content(output)}
            if failed(output):
                result["is_error"] = True
            self._append("user", result)
        else:  # its call was answered before (paused for approval, run at resume): tell it as text
            self.text("user", f"Result of the earlier {name or 'tool'} call {call_id}: {tool_result_content(output)}")

    def approval_request(self, block: dict[str, Any]) -> None:
        note = (f"Paused for a human decision (approval {block.get('approval_id')}): {block.get('summary')} "
                "Nothing was executed yet; the result will come after a decision.")
        if self.open_calls:  # the gateway emits it right after the paused call's tool_use
            call_id = self.open_calls.pop()
            self._close_open_calls()
            self._append("user", {"type": "tool_result", "tool_use_id": call_id, "content": note})
        else:
            self.text("user", note)

    def approval_decision(self, block: dict[str, Any]) -> None:
        self.text("user", f"Decision on approval {block.get('approval_id')}: {block.get('decision')}.")

    def finish(self) -> list[dict[str, Any]]:
        self._close_open_calls()
        if self.messages and self.messages[0]["role"] != "user":
            self.messages.insert(0, {"role": "user", "content": [{"type": "text", "text": "(earlier conversation)"}]})
        return self.messages


def resumed_note(resumed: ResumedApproval) -> str:
    """What the resume step of this turn did (§6.5), told to the model before the user's message."""
    note = f"Approval {resumed.approval_id} for {resumed.tool_name} (call {resumed.tool_call_id}) was {resumed.status}."
    if resumed.output is not None:
        note += f" Result: {tool_result_content(resumed.output)}"
    return note


def to_messages(history: Sequence[dict[str, Any]], message: str,
                resumed: Sequence[ResumedApproval] = ()) -> list[dict[str, Any]]:
    """The stored messages (oldest first, this turn's user message last) as Messages-API ``messages``, with
    the decisions this turn resumed told just before the user's message; ``message`` is appended when the
    history does not end with the user (it always should)."""
    conversation = _Conversation()
    names: dict[str, str] = {}  # tool_use id → tool name, to word late results
    ends_with_user = bool(history) and history[-1].get("role") == "user"
    for position, stored in enumerate(history):
        role = stored.get("role")
        if ends_with_user and position == len(history) - 1:
            for outcome in resumed:
                conversation.text("user", resumed_note(outcome))
        for block in _blocks(stored.get("content")):
            kind = block.get("type")
            if kind == "text":
                conversation.text("assistant" if role == "assistant" else "user", block.get("text"))
            elif role != "assistant":
                continue  # a user row holds text only (§5)
            elif kind == "tool_use":
                names[str(block.get("id"))] = str(block.get("name"))
                conversation.tool_use(block)
            elif kind == "tool_result":
                conversation.tool_result(block, names.get(str(block.get("tool_use_id"))))
            elif kind == "approval_request":
                conversation.approval_request(block)
            elif kind == "approval_decision":
                conversation.approval_decision(block)
    if not ends_with_user:
        for outcome in resumed:
            conversation.text("user", resumed_note(outcome))
        conversation.text("user", message)
    return conversation.finish()


def _blocks(content: Any) -> Iterable[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [block for block in content if isinstance(block, dict)]
    return []
