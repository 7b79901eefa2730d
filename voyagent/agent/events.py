"""Agent events (chat-and-agent.md §4): the twelve-key objects every backend, the tool gateway and the turn emit.

One constructor for every kind, so that no event ever lacks a key, and one encoder, so that the ``data`` line
of an SSE frame is the same compact JSON whether it is sent live or replayed.
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from typing import Any

from voyagent import jsonio

KINDS = ("text_delta", "tool_use", "tool_result", "approval_request", "approval_granted", "approval_denied",
         "error", "final")
KEYS = ("kind", "session_id", "turn_id", "timestamp", "text", "tool_name", "tool_input", "tool_output",
        "tool_call_id", "approval_id", "approval_summary", "error_message")

REPLAY_TURN_ID = "replay"  # turn_id of the synthetic replay_failed frame (§3.3)
NO_TURN_ID = "error"  # turn_id of an internal_error raised before the turn had an id (§2)
REPLAY_FAILED = "replay_failed: Last-Event-ID outside server buffer"


def new_turn_id() -> str:
    """``t-`` + 12 lowercase hex characters (§2 step 2)."""
    return "t-" + secrets.token_hex(6)


def new_tool_call_id() -> str:
    """``tc-`` + 16 lowercase hex characters (§6.2 step 1)."""
    return "tc-" + secrets.token_hex(8)


def event(kind: str, session_id: uuid.UUID | str, turn_id: str, *, now: dt.datetime | None = None,
          **fields: Any) -> dict[str, Any]:
    """An AgentEvent with all twelve keys, unused ones null; ``fields`` are the kind's keys (§4)."""
    if kind not in KINDS:
        raise ValueError(f"unknown agent event kind {kind!r}")
    unknown = fields.keys() - KEYS
    if unknown:
        raise ValueError(f"unknown agent event keys {sorted(unknown)}")
    when = now if now is not None else dt.datetime.now(dt.timezone.utc)
    data: dict[str, Any] = dict.fromkeys(KEYS)
    data.update(fields)
    data["kind"] = kind
    data["session_id"] = str(session_id)
    data["turn_id"] = turn_id
    data["timestamp"] = jsonio.timestamp(when)
    return data


def encode(data: dict[str, Any]) -> bytes:
    """The ``data`` line's payload: one line of compact JSON (Decimal as two-decimal strings, ``Z`` times)."""
    return jsonio.dumps(data)
