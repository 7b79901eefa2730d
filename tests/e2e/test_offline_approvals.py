"""Who may ask for and decide what (chat-and-agent.md §6.1–§6.5, endpoints.md Approvals) through HTTP with the
offline backend: role refusals in the stream, decisions by the wrong role, rejected and expired approvals, and a
grant whose re-check fails."""

from __future__ import annotations

from tests.chat_client import detail, turn
from tests.conftest import wait_until
from tests.e2e import expect
from tests.e2e.expect import BOOK_SUMMARY, FIRST, HOLD_SUMMARY, frames
from tests.e2e.steps import kinds_of, pending_rows, planned_session, request_booking, status_of


async def test_an_agent_asking_to_book_or_invoice_is_refused_in_the_stream_and_audited(offline, admin, make_user,
                                                                                        db):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    session_id = await planned_session(offline, agent)  # searching and adding need no role
    _, events = await turn(offline, agent, session_id, f"book {FIRST}")
    data = frames(events)
    assert kinds_of(data) == ["tool_use", "tool_result", "text_delta", "final"]
    assert data[1]["tool_output"] == {"ok": False, "error": "permission_denied",
                                      "detail": "role agent may not request book_offer"}
    # the role is checked before the preconditions: nothing is booked, yet the refusal is the role's
    _, events = await turn(offline, agent, session_id, "invoice")
    data = frames(events)
    assert kinds_of(data) == ["tool_use", "tool_result", "text_delta", "final"]
    assert data[1]["tool_output"]["error"] == "permission_denied"
    assert await pending_rows(db, session_id) == 0
    for tool, inputs in (("book_offer", {"offer_id": FIRST}),
                         ("issue_invoice", {"customer_name": "Walk-in customer", "offer_ids": []})):
        [row] = await expect.tool_audit(db, admin.tenant_id, tool)
        assert (row["status"], row["actor_kind"], row["actor_id"], row["approval_required"]) == (
            "rejected", "agent", agent.id, True)
        assert row["error"] == f"permission_denied: role agent may not request {tool}"
        assert (row["inputs"], row["entity_refs"]) == (inputs, {"session_id": session_id})
    # hold_offer allows any role: the agent's hold waits for a decision
    _, events = await turn(offline, agent, session_id, f"hold {FIRST}")
    assert kinds_of(frames(events)) == ["tool_use", "approval_request", "final"]
    text = await (await offline.get("/internal/metrics")).text()
    for tool in ("book_offer", "issue_invoice"):
        assert expect.metric(text, "voyagent_agent_tool_calls_total", tool=tool, outcome="permission_denied") == 1
    assert expect.metric(text, "voyagent_agent_tool_calls_total", tool="hold_offer",
                         outcome="approval_requested") == 1


async def test_a_viewer_chats_holds_and_decides_a_hold_but_may_not_book(offline, admin, make_user, db):
    viewer = await make_user("viewer", tenant_id=admin.tenant_id)
    session_id = await planned_session(offline, viewer)
    _, events = await turn(offline, viewer, session_id, f"hold {FIRST}")
    use, request, _ = frames(events)
    assert (request["approval_summary"], request["approval_id"]) == (HOLD_SUMMARY, f"ap-{use['turn_id']}-hold_offer")
    _, events = await turn(offline, viewer, session_id, "", approvals={request["approval_id"]: True})
    data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "final"]
    item = data[1]["tool_output"]["item"]
    assert (item["status"], item["reference"]) == ("held", expect.reference(admin.tenant_id, session_id, FIRST))
    _, events = await turn(offline, viewer, session_id, f"book {FIRST}")
    assert frames(events)[1]["tool_output"]["error"] == "permission_denied"
    [hold] = await expect.tool_audit(db, admin.tenant_id, "hold_offer")
    assert (hold["status"], hold["approved_by"], hold["driver"]) == ("succeeded", viewer.id, "sandbox")


async def test_a_decision_by_a_role_the_tool_does_not_allow_is_403_and_changes_nothing(offline, admin, make_user,
                                                                                      db):
    users = {role: await make_user(role, tenant_id=admin.tenant_id)
             for role in ("agent", "viewer", "accounting_lead", "ticketing_lead")}
    session_id = await planned_session(offline, admin)
    book_id, _ = await request_booking(offline, admin, session_id)
    for role in ("agent", "viewer", "accounting_lead"):
        user = users[role]
        for granted in (True, False):
            response = await offline.post(f"/approvals/{book_id}/resolve", json={"granted": granted},
                                          headers=user.headers)
            assert await detail(response) == (403, "forbidden_role"), role
        response = await offline.post(f"/chat/sessions/{session_id}/messages",
                                      json={"message": "", "approvals": {book_id: True}}, headers=user.headers)
        assert await detail(response) == (403, "forbidden_role"), role
    assert await status_of(offline, admin, book_id) == "pending"
    assert await expect.tool_audit(db, admin.tenant_id, "approval.granted") == []
    assert await expect.tool_audit(db, admin.tenant_id, "approval.rejected") == []
    # each 403 is audited as auth.verify, the approval API's and the chat map's alike (data-model.md)
    refusals = await expect.tool_audit(db, admin.tenant_id, "auth.verify")
    assert sorted((row["actor_id"], row["inputs"]["method"], row["inputs"]["path"], row["error"], row["status"])
                  for row in refusals) == sorted(
        (users[role].id, "POST", path, "forbidden_role", "rejected") for role in ("agent", "viewer", "accounting_lead")
        for path in (f"/approvals/{book_id}/resolve",) * 2 + (f"/chat/sessions/{session_id}/messages",))
    # the lock went back after each refused map: the ticketing lead decides and the turn resumes the booking
    _, events = await turn(offline, users["ticketing_lead"], session_id, "", approvals={book_id: True})
    data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "final"]
    assert data[1]["tool_output"]["item"]["status"] == "booked"
    [booking] = await expect.tool_audit(db, admin.tenant_id, "book_offer")
    assert booking["approved_by"] == users["ticketing_lead"].id and booking["actor_id"] == users["ticketing_lead"].id
    # issue_invoice: agency_admin and accounting_lead decide, a ticketing lead may not
    _, events = await turn(offline, admin, session_id, "invoice for Asha Rao")
    invoice_id = frames(events)[1]["approval_id"]
    response = await offline.post(f"/approvals/{invoice_id}/resolve", json={"granted": True},
                                  headers=users["ticketing_lead"].headers)
    assert await detail(response) == (403, "forbidden_role")
    response = await offline.post(f"/approvals/{invoice_id}/resolve", json={"granted": True},
                                  headers=users["accounting_lead"].headers)
    assert response.status == 200


async def test_a_rejected_booking_is_reported_once_and_books_nothing(offline, admin, db):
    session_id = await planned_session(offline, admin)
    book_id, call_id = await request_booking(offline, admin, session_id)
    response = await offline.post(f"/approvals/{book_id}/resolve", json={"granted": False, "reason": "too dear"},
                                  headers=admin.headers)
    assert (response.status, (await response.json())["status"]) == (200, "rejected")
    _, events = await turn(offline, admin, session_id, "")
    denied, text, _ = data = frames(events)
    assert kinds_of(data) == ["approval_denied", "text_delta", "final"]
    assert (denied["approval_id"], denied["tool_name"], denied["tool_call_id"], denied["error_message"]) == (
        book_id, "book_offer", call_id, None)
    [row] = await expect.tool_audit(db, admin.tenant_id, "book_offer")
    assert (row["status"], row["error"], row["approval_required"], row["actor_kind"]) == ("rejected", None, True,
                                                                                       "agent")
    assert row["entity_refs"] == {"session_id": session_id, "approval_id": book_id}
    assert row["inputs"] == {"offer_id": FIRST}
    assert await db.fetchval("SELECT count(*) FROM bills WHERE tenant_id = $1", admin.tenant_id) == 0
    _, events = await turn(offline, admin, session_id, "")  # consumed: acted on exactly once
    assert kinds_of(frames(events)) == ["final"]
    # rejected through the map this time; asked again, the booking gets a new approval of its own
    again, _ = await request_booking(offline, admin, session_id)
    assert again != book_id
    _, events = await turn(offline, admin, session_id, "itinerary", approvals={again: False})
    data = frames(events)
    assert kinds_of(data) == ["approval_denied", "text_delta", "tool_use", "tool_result", "text_delta", "final"]
    assert data[3]["tool_output"]["flights"][0]["status"] == "planned"
    assert [r["status"] for r in await expect.tool_audit(db, admin.tenant_id, "book_offer")] == ["rejected"] * 2


async def test_an_approval_past_its_expiry_is_swept_by_the_next_turn_and_reported(offline, admin, db):
    session_id = await planned_session(offline, admin)
    book_id, call_id = await request_booking(offline, admin, session_id)
    await db.execute("UPDATE pending_approvals SET requested_at = requested_at - interval '1 hour',"
                     " expires_at = now() - interval '1 second' WHERE id = $1", book_id)
    _, events = await turn(offline, admin, session_id, "")  # the turn's own sweep expires it
    denied, _, _ = data = frames(events)
    assert kinds_of(data) == ["approval_denied", "text_delta", "final"]
    assert (denied["approval_id"], denied["tool_call_id"], denied["error_message"]) == (book_id, call_id,
                                                                                       "approval_expired")
    assert await status_of(offline, admin, book_id) == "expired"
    [row] = await expect.tool_audit(db, admin.tenant_id, "book_offer")
    assert (row["status"], row["error"], row["approval_required"]) == ("cancelled", "approval_expired", True)
    assert row["entity_refs"] == {"session_id": session_id, "approval_id": book_id}
    response = await offline.post(f"/approvals/{book_id}/resolve", json={"granted": True}, headers=admin.headers)
    assert await detail(response) == (409, "approval_already_resolved")


async def test_with_a_one_second_ttl_the_approval_expires_and_the_next_turn_says_so(make_chat_client, admin, db):
    client = await make_chat_client(approval_ttl=1)
    session_id = await planned_session(client, admin)
    book_id, _ = await request_booking(client, admin, session_id)

    async def expired():
        return await status_of(client, admin, book_id) == "expired"

    await wait_until(expired, what="the approval's expiry")
    response = await client.post(f"/chat/sessions/{session_id}/messages",
                                 json={"message": "", "approvals": {book_id: True}}, headers=admin.headers)
    assert await detail(response) == (409, "approval_already_resolved")
    summary = await (await client.get(f"/chat/sessions/{session_id}", headers=admin.headers)).json()
    assert summary["pending_approvals"] == []
    _, events = await turn(client, admin, session_id, "")
    assert [(ev["kind"], ev["error_message"]) for ev in frames(events)] == [
        ("approval_denied", "approval_expired"), ("text_delta", None), ("final", None)]


async def test_two_grants_of_one_booking_book_it_once_and_the_second_fails_its_re_check(offline, admin, db):
    session_id = await planned_session(offline, admin)
    first, _ = await request_booking(offline, admin, session_id)
    second, _ = await request_booking(offline, admin, session_id)  # still planned: the request passes
    summary = await (await offline.get(f"/chat/sessions/{session_id}", headers=admin.headers)).json()
    assert [(p["approval_id"], p["summary"]) for p in summary["pending_approvals"]] == [(first, BOOK_SUMMARY),
                                                                                        (second, BOOK_SUMMARY)]
    _, events = await turn(offline, admin, session_id, "", approvals={second: True, first: True})
    data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta"] * 2 + ["final"]
    assert [ev["approval_id"] for ev in data if ev["kind"] == "approval_granted"] == [first, second]  # oldest first
    outputs = [ev["tool_output"] for ev in data if ev["kind"] == "tool_result"]
    assert outputs[0]["ok"] is True and outputs[1] == {"ok": False, "error": "already_booked",
                                                       "detail": outputs[1]["detail"]}
    rows = await expect.tool_audit(db, admin.tenant_id, "book_offer")
    assert [(r["status"], r["error"], r["entity_refs"]["approval_id"]) for r in rows] == [
        ("succeeded", None, first), ("failed", "already_booked", second)]
    assert "bill_id" not in rows[1]["entity_refs"]
    assert await db.fetchval("SELECT count(*) FROM bills WHERE tenant_id = $1", admin.tenant_id) == 1
    text = await (await offline.get("/internal/metrics")).text()
    assert expect.metric(text, "voyagent_agent_tool_calls_total", tool="book_offer", outcome="success") == 1
    assert expect.metric(text, "voyagent_agent_tool_calls_total", tool="book_offer", outcome="error") == 1


async def test_a_valid_last_event_id_replays_and_leaves_the_approvals_map_alone(offline, admin, db):
    session_id = await planned_session(offline, admin)
    book_id, _ = await request_booking(offline, admin, session_id)  # ids 1–11
    _, events = await turn(offline, admin, session_id, f"add {FIRST}", last_event_id="9",
                           approvals={book_id: True})
    assert [int(event.id) for event in events] == [10, 11]  # the request's frames again, nothing new
    assert await status_of(offline, admin, book_id) == "pending"
    _, events = await turn(offline, admin, session_id, "", last_event_id="x", approvals={book_id: True})
    assert kinds_of(frames(events)) == ["error", "approval_granted", "tool_result", "text_delta", "final"]


async def test_an_api_key_drives_the_turns_as_its_creator(offline, admin, make_api_key, db):
    key = await make_api_key(admin, ["chat:write", "chat:read", "approvals:write"])
    session_id = await planned_session(offline, key)
    book_id, _ = await request_booking(offline, key, session_id)
    _, events = await turn(offline, key, session_id, "", approvals={book_id: True})
    assert frames(events)[1]["tool_output"]["ok"] is True
    approval = await db.fetchrow("SELECT resolved_by_user_id, reason FROM pending_approvals WHERE id = $1", book_id)
    assert tuple(approval) == (admin.id, None)
    [decision] = await expect.tool_audit(db, admin.tenant_id, "approval.granted")
    assert (decision["actor_kind"], decision["actor_id"]) == ("human", admin.id)
    for tool in ("add_to_itinerary", "book_offer"):
        [row] = await expect.tool_audit(db, admin.tenant_id, tool)
        assert (row["actor_kind"], row["actor_id"], row["status"]) == ("agent", admin.id, "succeeded")
    [row] = await expect.tool_audit(db, admin.tenant_id, "book_offer")
    assert row["approved_by"] == admin.id
