"""Steps of a conversation the end-to-end tests share: a session with an offer in its itinerary, a booking
waiting for approval, and what a client reads about approvals."""

from __future__ import annotations

from tests.chat_client import new_session as create_session
from tests.chat_client import turn
from tests.e2e.expect import FIRST, frames


def kinds_of(data):
    return [ev["kind"] for ev in data]


async def planned_session(client, user):
    """A session of ``user`` with the first DEL→DXB offer in its itinerary."""
    session_id = await create_session(client, user)
    await turn(client, user, session_id, "DEL to DXB 2026-07-01 2 adults")
    _, events = await turn(client, user, session_id, f"add {FIRST}")
    assert frames(events)[1]["tool_output"]["ok"] is True
    return session_id


async def request_booking(client, user, session_id):
    """``book`` → the approval_request; (approval id, the paused call's tool_call_id)."""
    _, events = await turn(client, user, session_id, f"book {FIRST}")
    data = frames(events)
    assert kinds_of(data) == ["tool_use", "approval_request", "final"], data
    return data[1]["approval_id"], data[1]["tool_call_id"]


async def status_of(client, user, approval_id):
    return (await (await client.get(f"/approvals/{approval_id}", headers=user.headers)).json())["status"]


async def pending_rows(db, session_id):
    return await db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1::uuid", session_id)
