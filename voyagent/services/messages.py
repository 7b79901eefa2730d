"""A turn's rows (chat-and-agent.md §1 Title, §2 steps 5 and 8, §5): the user message, the assistant message built
from the turn's events, the history a backend reads and the id counter stored at the end of the turn."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Iterable, Mapping

import asyncpg

from voyagent.ids import new_id
from voyagent.services.sessions import session_not_found

TITLE_LENGTH = 60  # code points of the first message kept as the title


async def get_turn_session(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID,
                           session_id: uuid.UUID) -> asyncpg.Record:
    """The session (id, title, last_event_id) in the tenant; ``404 session_not_found`` otherwise."""
    row = await sql.get_turn_session(conn, id=session_id, tenant_id=tenant_id)
    if row is None:
        raise session_not_found()
    return row


async def admit_turn(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: uuid.UUID,
                     now: dt.datetime | None = None) -> asyncpg.Record:
    """Under the turn lock (§2 step 1): the session read again (``404 session_not_found`` when a delete committed
    since the first read), its lazy approval sweep, ``unconsumed_approvals`` and the tenant's settings columns
    (all null when the tenant has no settings row yet), in one statement."""
    row = await sql.admit_turn(conn, id=session_id, tenant_id=tenant_id,
                               now=now if now is not None else dt.datetime.now(dt.timezone.utc))
    if row is None:
        raise session_not_found()
    return row


def admitted_settings(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The tenant settings an admitted turn's row carries; None when the tenant has no settings row yet."""
    if row["settings_tenant_id"] is None:
        return None
    return {name: row[name] for name in ("model", "system_prompt_suffix", "rate_limit_per_minute",
                                         "rate_limit_per_hour", "locale", "default_currency")}


def first_title(message: str) -> str:
    """The title a first message gives: trimmed, its first 60 code points."""
    return message.strip()[:TITLE_LENGTH]


async def store_user_message(conn: asyncpg.Connection, sql: Any, *, session_id: uuid.UUID, message: str) -> None:
    """Step 5: the title rule, then the ``user`` row holding the message as received (non-blank messages only);
    one statement."""
    if not message.strip():
        return
    await sql.insert_user_message(conn, id=new_id(), session_id=session_id, title=first_title(message),
                                  content=[{"type": "text", "text": message}])


async def store_assistant_message(conn: asyncpg.Connection, sql: Any, *, session_id: uuid.UUID,
                                  blocks: list[dict[str, Any]], last_event_id: int | None = None) -> None:
    """Step 8: the ``assistant`` row, when the turn produced any block; with ``last_event_id`` (the id the
    turn's final is expected to get) the session's id counter too, in the same statement."""
    if not blocks:
        return
    if last_event_id is None:
        await sql.insert_message(conn, id=new_id(), session_id=session_id, role="assistant", content=blocks)
    else:
        await sql.insert_assistant_message(conn, id=new_id(), session_id=session_id, content=blocks,
                                           last_event_id=last_event_id)


async def history(conn: asyncpg.Connection, sql: Any, *, session_id: uuid.UUID) -> list[dict[str, Any]]:
    """The session's stored messages, oldest first, as ``{"role", "content"}``."""
    return [{"role": row["role"], "content": row["content"]}
            for row in await sql.list_messages(conn, session_id=session_id)]


async def store_last_event_id(conn: asyncpg.Connection, sql: Any, *, session_id: uuid.UUID, last_id: int) -> None:
    """The session's id counter at the end of a turn (never lowered)."""
    await sql.store_last_event_id(conn, id=session_id, last_event_id=last_id)


def assistant_blocks(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """§5: the turn's output as content blocks; consecutive text deltas join into one text block; ``error`` and
    ``final`` events leave no block."""
    blocks: list[dict[str, Any]] = []
    for ev in events:
        kind = ev["kind"]
        if kind == "text_delta":
            if blocks and blocks[-1]["type"] == "text":
                blocks[-1]["text"] += ev["text"]
            else:
                blocks.append({"type": "text", "text": ev["text"]})
        elif kind == "tool_use":
            blocks.append({"type": "tool_use", "id": ev["tool_call_id"], "name": ev["tool_name"],
                           "input": ev["tool_input"]})
        elif kind == "tool_result":
            blocks.append({"type": "tool_result", "tool_use_id": ev["tool_call_id"], "content": ev["tool_output"]})
        elif kind == "approval_request":
            blocks.append({"type": "approval_request", "approval_id": ev["approval_id"],
                           "summary": ev["approval_summary"]})
        elif kind in ("approval_granted", "approval_denied"):
            decision = "granted" if kind == "approval_granted" else (
                "expired" if ev["error_message"] == "approval_expired" else "rejected")
            blocks.append({"type": "approval_decision", "approval_id": ev["approval_id"], "decision": decision})
    return blocks
