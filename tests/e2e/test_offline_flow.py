"""The typical flow of chat-and-agent.md §6.5 through HTTP with the real default backend: search, add, book,
approve through the approvals API, resume, invoice, approve through the ``approvals`` map, resume; then the
session, the approval rows, the audit log, the ledger and the four reports as a client reads them; the metrics
of those turns; and a session promoted from an enquiry, deleted at the end."""

from __future__ import annotations

import datetime as dt
import uuid

import orjson

from tests.chat_client import ids, turn
from tests.chat_client import new_session as create_session
from tests.e2e import expect
from tests.e2e.expect import BOOK_SUMMARY, DEL_DXB, DEL_DXB_OFFERS, FIRST, FIRST_PRICE, frames
from tests.e2e.steps import kinds_of

FIRST_MESSAGE = "   flights DEL to DXB on 2026-07-01 for 2 adults — the Rao family's summer trip, cheapest first ✈️  "


async def get_json(client, user, path, status=200):
    response = await client.get(path, headers=user.headers)
    assert response.status == status, await response.text()
    return await response.json()


async def summary(client, user, session_id):
    return await get_json(client, user, f"/chat/sessions/{session_id}")


async def test_the_typical_flow_from_search_to_invoice(offline, admin, db):
    client = offline
    session_id = await create_session(client, admin)
    tenant_id = admin.tenant_id

    # 1. search: the §3.5 frames, the §11.5 offers
    _, events = await turn(client, admin, session_id, FIRST_MESSAGE)
    data = frames(events)
    assert kinds_of(data) == ["tool_use", "tool_result", "text_delta", "final"]
    assert ids(events) == [1, 2, 3, 4]
    use, result, _, final = data
    assert {ev["session_id"] for ev in data} == {session_id} and len({ev["turn_id"] for ev in data}) == 1
    assert (use["tool_name"], use["tool_input"]) == ("search_flights", DEL_DXB)
    assert (result["tool_name"], result["tool_call_id"]) == ("search_flights", use["tool_call_id"])
    assert result["tool_output"] == {"count": 3, "offers": DEL_DXB_OFFERS}
    title = "flights DEL to DXB on 2026-07-01 for 2 adults — the Rao fami"  # trimmed, 60 code points (not bytes)
    session = await summary(client, admin, session_id)
    assert (session["title"], session["message_count"], session["pending_approvals"]) == (title, 2, [])

    # 2. add
    _, events = await turn(client, admin, session_id, "add flt-20526d6b")
    use, result, _, _ = data = frames(events)
    assert kinds_of(data) == ["tool_use", "tool_result", "text_delta", "final"]
    assert ids(events) == [5, 6, 7, 8]
    assert (use["tool_name"], use["tool_input"]) == ("add_to_itinerary", {"offer_id": FIRST})
    item = result["tool_output"]["item"]
    assert result["tool_output"] == {"ok": True, "item": {
        "item_id": item["item_id"], "kind": "flight", "offer_id": FIRST, "status": "planned", "reference": None,
        "price": FIRST_PRICE, "offer": DEL_DXB_OFFERS[0]}}
    assert uuid.UUID(item["item_id"])

    # 3. book → approval_request, only final after it
    _, events = await turn(client, admin, session_id, "Book FLT-20526D6B")
    use, request, final = data = frames(events)
    assert kinds_of(data) == ["tool_use", "approval_request", "final"] and ids(events) == [9, 10, 11]
    book_id = f"ap-{use['turn_id']}-book_offer"
    assert (use["tool_name"], use["tool_input"]) == ("book_offer", {"offer_id": FIRST})
    assert (request["approval_id"], request["approval_summary"], request["tool_name"], request["tool_call_id"]) == (
        book_id, BOOK_SUMMARY, "book_offer", use["tool_call_id"])
    session = await summary(client, admin, session_id)
    assert session["pending_approvals"] == [{"approval_id": book_id, "tool_name": "book_offer",
                                             "summary": BOOK_SUMMARY}]
    assert session["message_count"] == 6 and session["title"] == title
    pending = await get_json(client, admin, f"/approvals/{book_id}")
    assert (pending["status"], pending["payload"], pending["session_id"]) == ("pending", {"offer_id": FIRST},
                                                                              session_id)
    requested = dt.datetime.fromisoformat(pending["requested_at"])
    assert dt.datetime.fromisoformat(pending["expires_at"]) - requested == dt.timedelta(seconds=900)

    # 4. a human grants it through the approvals API: nothing runs yet
    resolved = await client.post(f"/approvals/{book_id}/resolve", json={"granted": True, "reason": "fare ok"},
                                 headers=admin.headers)
    assert resolved.status == 200
    book_approval = await resolved.json()
    assert (book_approval["status"], book_approval["resolved_by_user_id"], book_approval["reason"]) == (
        "granted", str(admin.id), "fare ok")
    assert await db.fetchval("SELECT count(*) FROM bills WHERE tenant_id = $1", tenant_id) == 0

    # 5. an empty message resumes: approval_granted, tool_result with item and bill, text_delta, final
    _, events = await turn(client, admin, session_id, "")
    granted, result, _, _ = data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "final"]
    assert ids(events) == [12, 13, 14, 15]
    assert (granted["approval_id"], granted["tool_name"], granted["tool_call_id"]) == (book_id, "book_offer",
                                                                                       use["tool_call_id"])
    assert (result["tool_name"], result["tool_call_id"]) == ("book_offer", use["tool_call_id"])
    pnr = expect.reference(tenant_id, session_id, FIRST)
    output = result["tool_output"]
    bill = output["bill"]
    assert output == {"ok": True, "item": {**item, "status": "booked", "reference": pnr}, "bill": {
        "bill_id": bill["bill_id"], "number": expect.document_number("BILL", tenant_id, 1), "party_name": "IndiGo",
        "amount": FIRST_PRICE, "issue_date": expect.today().isoformat(),
        "due_date": (expect.today() + dt.timedelta(days=30)).isoformat(), "status": "received"}}
    session = await summary(client, admin, session_id)
    assert (session["message_count"], session["pending_approvals"]) == (7, [])  # a resume-only turn adds 1

    # 6. invoice → approval; granted through the approvals map of the next message
    _, events = await turn(client, admin, session_id, "invoice to Asha Rao")
    invoice_use, request, _ = data = frames(events)
    assert kinds_of(data) == ["tool_use", "approval_request", "final"]
    invoice_id = f"ap-{invoice_use['turn_id']}-issue_invoice"
    assert invoice_use["tool_input"] == {"customer_name": "Asha Rao", "offer_ids": [FIRST]}
    assert (request["approval_id"], request["approval_summary"]) == (invoice_id, expect.invoice_summary("Asha Rao"))
    _, events = await turn(client, admin, session_id, "", approvals={invoice_id: True})
    granted, result, _, _ = data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "final"]
    assert granted["tool_call_id"] == result["tool_call_id"] == invoice_use["tool_call_id"]
    document = result["tool_output"]["invoice"]
    assert result["tool_output"] == {"ok": True, "invoice": {
        "invoice_id": document["invoice_id"], "number": expect.document_number("INV", tenant_id, 1),
        "party_name": "Asha Rao", "amount": FIRST_PRICE, "issue_date": expect.today().isoformat(),
        "due_date": (expect.today() + dt.timedelta(days=14)).isoformat(), "status": "issued", "offer_ids": [FIRST]}}
    invoice_approval = await get_json(client, admin, f"/approvals/{invoice_id}")
    assert (invoice_approval["status"], invoice_approval["resolved_by_user_id"], invoice_approval["reason"]) == (
        "granted", str(admin.id), None)

    # an empty message with nothing to resume: only final, nothing stored
    _, events = await turn(client, admin, session_id, "   ")
    assert [ev["kind"] for ev in frames(events)] == ["final"]
    session = await summary(client, admin, session_id)
    assert (session["message_count"], session["title"]) == (10, title)  # 2 + 2 + 2 + 1 + 2 + 1 + 0

    await assert_reports(client, admin, session_id, pnr)
    await assert_audit_rows(client, admin, db, book_approval, invoice_approval, bill["bill_id"],
                            document["invoice_id"])
    entries = await db.fetch("SELECT source, a.code, debit, credit FROM journal_entries AS j JOIN ledger_accounts AS a"
                             " ON a.id = j.account_id WHERE j.tenant_id = $1 ORDER BY posted_at, line_no", tenant_id)
    assert [(row["source"], row["code"], str(row["debit"]), str(row["credit"])) for row in entries] == [
        (f"book_offer:{book_id}", "5000", "54208.00", "0.00"), (f"book_offer:{book_id}", "2100", "0.00", "54208.00"),
        (f"issue_invoice:{invoice_id}", "1200", "54208.00", "0.00"),
        (f"issue_invoice:{invoice_id}", "4000", "0.00", "54208.00")]

    text = await (await client.get("/internal/metrics")).text()
    turns = {outcome: expect.metric(text, "voyagent_agent_turns_total", backend="offline", outcome=outcome)
             for outcome in ("completed", "approval_requested", "error", "rate_limited", "timeout")}
    assert turns == {"completed": 5, "approval_requested": 2, "error": 0, "rate_limited": 0, "timeout": 0}
    calls = {(tool, outcome): expect.metric(text, "voyagent_agent_tool_calls_total", tool=tool, outcome=outcome)
             for tool in ("search_flights", "add_to_itinerary", "book_offer", "issue_invoice")
             for outcome in ("success", "error", "approval_requested", "permission_denied")}
    assert {key: value for key, value in calls.items() if value} == {
        ("search_flights", "success"): 1, ("add_to_itinerary", "success"): 1,
        ("book_offer", "approval_requested"): 1, ("book_offer", "success"): 1,
        ("issue_invoice", "approval_requested"): 1, ("issue_invoice", "success"): 1}


async def assert_reports(client, user, session_id, pnr):
    itinerary = await get_json(client, user, f"/reports/itinerary?session_id={session_id}")
    assert itinerary == {
        "tenant_id": str(user.tenant_id), "session_id": session_id, "passengers": [],
        "flights": [{"offer_id": FIRST, "pnr": pnr, "origin": "DEL", "dest": "DXB", "depart": "2026-07-01T07:00:00Z",
                     "carrier": "6E", "flight_number": "6E893", "status": "booked", "price": FIRST_PRICE}],
        "hotels": [], "visas": [], "total_cost": FIRST_PRICE}
    day = expect.today().isoformat()
    buckets = [{"bucket": "0-30", "count": 1, "amount": FIRST_PRICE},
               *({"bucket": name, "count": 0, "amount": {"amount": "0.00", "currency": "INR"}}
                 for name in ("31-60", "61-90", "90+"))]
    payables = await get_json(client, user, f"/reports/payables?from={day}&to={day}")
    assert payables == {"tenant_id": str(user.tenant_id), "period": {"from": day, "to": day},
                        "total_outstanding": FIRST_PRICE, "aging_buckets": buckets,
                        "top_debtors": [], "top_creditors": [{"name": "IndiGo", "amount": FIRST_PRICE}]}
    receivables = await get_json(client, user, f"/reports/receivables?from={day}&to={day}")
    assert receivables == {"tenant_id": str(user.tenant_id), "period": {"from": day, "to": day},
                           "total_outstanding": FIRST_PRICE, "aging_buckets": buckets,
                           "top_debtors": [{"name": "Asha Rao", "amount": FIRST_PRICE}], "top_creditors": []}
    balance = await get_json(client, user, "/reports/trial-balance")
    rows = [(a["code"], a["name"], a["type"], a["debit"], a["credit"], a["balance"], a["currency"])
            for a in balance["accounts"]]
    assert rows == [("1200", "Accounts Receivable", "asset", "54208.00", "0.00", "54208.00", "INR"),
                    ("2100", "Accounts Payable", "liability", "0.00", "54208.00", "-54208.00", "INR"),
                    ("4000", "Travel Sales", "revenue", "0.00", "54208.00", "-54208.00", "INR"),
                    ("5000", "Cost of Travel Sales", "expense", "54208.00", "0.00", "54208.00", "INR")]
    assert (balance["total_debit"], balance["total_credit"], balance["in_balance"]) == ("108416.00", "108416.00", True)


async def assert_audit_rows(client, user, db, book, invoice, bill_id, invoice_document_id):
    session_ref = {"session_id": book["session_id"]}
    [add] = await expect.tool_audit(db, user.tenant_id, "add_to_itinerary")
    assert (add["status"], add["actor_kind"], add["actor_id"], add["approval_required"]) == (
        "succeeded", "agent", user.id, False)
    assert (add["inputs"], add["entity_refs"], add["outputs"]["ok"]) == ({"offer_id": FIRST}, session_ref, True)
    assert add["completed_at"] is not None and add["approved_by"] is None
    for kind, approval, refs in (("book_offer", book, {"bill_id": bill_id}),
                                 ("issue_invoice", invoice, {"invoice_id": invoice_document_id})):
        [row] = await expect.tool_audit(db, user.tenant_id, kind)
        assert (row["status"], row["actor_kind"], row["actor_id"], row["error"]) == ("succeeded", "agent", user.id,
                                                                                     None)
        assert row["approval_required"] is True and row["approved_by"] == user.id
        assert row["approved_at"] == dt.datetime.fromisoformat(approval["resolved_at"])
        assert row["entity_refs"] == {**session_ref, "approval_id": approval["id"], **refs}
        assert row["inputs"] == approval["payload"] and row["outputs"]["ok"] is True
        assert row["driver"] == ("sandbox" if kind == "book_offer" else None)
    decisions = await expect.tool_audit(db, user.tenant_id, "approval.granted")
    assert [(row["actor_kind"], row["actor_id"], row["status"], row["inputs"]) for row in decisions] == [
        ("human", user.id, "succeeded", {"approval_id": book["id"], "session_id": book["session_id"],
                                         "tool_name": "book_offer", "reason": "fare ok"}),
        ("human", user.id, "succeeded", {"approval_id": invoice["id"], "session_id": invoice["session_id"],
                                         "tool_name": "issue_invoice", "reason": None})]
    # the wire shape of the booking's row (endpoints.md AuditEvent)
    listed = await get_json(client, user, "/audit?kind=book_offer")
    [wire] = listed["items"]
    assert (wire["kind"], wire["actor_kind"], wire["status"], wire["summary"]) == (
        "book_offer", "agent", "ok", "book_offer via sandbox (succeeded)")
    payload = wire["payload"]
    assert (payload["approval_required"], payload["approved_by"], payload["driver"]) == (True, str(user.id), "sandbox")
    assert dt.datetime.fromisoformat(payload["approved_at"]) == dt.datetime.fromisoformat(book["resolved_at"])
    assert payload["entity_refs"]["approval_id"] == book["id"] and "completed_at" in payload


async def test_a_promoted_enquiry_s_session_chats_and_invoices_its_customer_then_is_deleted(offline, admin, db):
    client = offline
    created = await client.post("/enquiries", json={"customer_name": "Meera Iyer", "destination": "DXB"},
                                headers=admin.headers)
    enquiry = await created.json()
    promoted = await client.post(f"/enquiries/{enquiry['id']}/promote-to-session", headers=admin.headers)
    assert promoted.status == 200
    session_id = (await promoted.json())["session_id"]
    assert (await promoted.json())["enquiry"]["session_id"] == session_id

    _, events = await turn(client, admin, session_id, "DEL-DXB 2026-07-01 2 pax")
    assert frames(events)[1]["tool_output"]["offers"] == DEL_DXB_OFFERS
    await turn(client, admin, session_id, f"add {FIRST}")
    await turn(client, admin, session_id, "add passenger Meera Iyer passport p1234567")
    _, events = await turn(client, admin, session_id, f"book {FIRST}")
    book_id = frames(events)[1]["approval_id"]
    # the decision is acted on first, then the message's command: issue_invoice without a name (§9.5)
    _, events = await turn(client, admin, session_id, "invoice", approvals={book_id: True})
    data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "tool_use",
                                           "approval_request", "final"]
    assert data[1]["tool_output"]["ok"] is True
    assert data[3]["tool_input"] == {"customer_name": "Meera Iyer", "offer_ids": [FIRST]}
    invoice_id = data[4]["approval_id"]
    assert data[4]["approval_summary"] == expect.invoice_summary("Meera Iyer")
    _, events = await turn(client, admin, session_id, "", approvals={invoice_id: True})
    assert frames(events)[1]["tool_output"]["invoice"]["party_name"] == "Meera Iyer"
    itinerary = await get_json(client, admin, f"/reports/itinerary?session_id={session_id}")
    assert itinerary["passengers"] == [{"full_name": "Meera Iyer", "passport_number": "P1234567"}]

    # deleting the session keeps the finance documents, the ledger and the audit log; drops the rest
    tenant = admin.tenant_id
    kept = {"bills": 1, "invoices": 1, "journal_entries": 4}
    assert {table: await db.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant)
            for table in kept} == kept
    audit_before = await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", tenant)
    deleted = await client.delete(f"/chat/sessions/{session_id}", headers=admin.headers)
    assert deleted.status == 204
    assert {table: await db.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant)
            for table in kept} == kept
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", tenant) == audit_before
    for table in ("messages", "pending_approvals", "itinerary_items"):
        assert await db.fetchval(f"SELECT count(*) FROM {table} WHERE session_id = $1::uuid", session_id) == 0, table
    assert (await get_json(client, admin, f"/enquiries/{enquiry['id']}"))["session_id"] is None
    await get_json(client, admin, f"/chat/sessions/{session_id}", status=404)
    await get_json(client, admin, f"/approvals/{book_id}", status=404)
    await get_json(client, admin, f"/reports/itinerary?session_id={session_id}", status=404)
    day = expect.today().isoformat()
    receivables = await get_json(client, admin, f"/reports/receivables?from={day}&to={day}")
    assert receivables["top_debtors"] == [{"name": "Meera Iyer", "amount": FIRST_PRICE}]
    assert (await get_json(client, admin, "/reports/trial-balance"))["in_balance"] is True
    bill = await db.fetchrow("SELECT party_reference, vendor_reference FROM bills WHERE tenant_id = $1", tenant)
    assert (bill["party_reference"], bill["vendor_reference"]) == (session_id,
                                                                   expect.reference(tenant, session_id, FIRST))
    assert orjson.loads(await db.fetchval("SELECT entity_refs FROM audit_events WHERE tenant_id = $1 AND"
                                          " tool = 'issue_invoice'", tenant))["approval_id"] == invoice_id


async def test_refused_and_timed_out_turns_are_counted_by_outcome(make_chat_client, admin, db):
    # the supplier outlasts the turn's timeout: the search is cut short
    client = await make_chat_client(turn_timeout=1, sandbox_latency_ms=30_000)
    patched = await client.patch("/tenant-settings", json={"rate_limit_per_hour": 2}, headers=admin.headers)
    assert patched.status == 200
    session_id = await create_session(client, admin)
    _, events = await turn(client, admin, session_id, "help")
    assert kinds_of(frames(events)) == ["text_delta", "final"]
    _, events = await turn(client, admin, session_id, "DEL to DXB 2026-07-01")
    data = frames(events)
    assert [(ev["kind"], ev["error_message"]) for ev in data] == [
        ("tool_use", None), ("error", "turn_timeout"), ("final", None)]
    assert (await summary(client, admin, session_id))["message_count"] == 4
    _, events = await turn(client, admin, session_id, "help")  # the hour's two turns are used up
    assert [(ev["kind"], ev["error_message"]) for ev in frames(events)] == [
        ("error", "rate_limited: hour"), ("final", None)]
    assert (await summary(client, admin, session_id))["message_count"] == 4
    text = await (await client.get("/internal/metrics")).text()
    turns = {outcome: expect.metric(text, "voyagent_agent_turns_total", backend="offline", outcome=outcome)
             for outcome in ("completed", "timeout", "rate_limited", "error", "approval_requested")}
    assert turns == {"completed": 1, "timeout": 1, "rate_limited": 1, "error": 0, "approval_requested": 0}
    assert "voyagent_agent_tool_calls_total{" not in text  # the cut-short search never finished


async def test_a_flight_a_held_then_booked_hotel_a_passenger_and_one_invoice_for_both(offline, admin, db):
    client = offline
    session_id = await create_session(client, admin)
    await turn(client, admin, session_id, "DEL to DXB 2026-07-01 for 2 adults")
    await turn(client, admin, session_id, f"add {FIRST}")
    _, events = await turn(client, admin, session_id, "Hotels in dubai from 2026-07-01 to 2026-07-04 for 3 guests")
    use, result, _, _ = frames(events)
    assert (use["tool_name"], use["tool_input"]) == ("search_hotels", expect.DUBAI_STAY)
    assert result["tool_output"] == {"count": 3, "offers": expect.DUBAI_OFFERS}
    hotel = "HTL-FF773A59"
    await turn(client, admin, session_id, f"add {hotel.lower()}")
    _, events = await turn(client, admin, session_id, "add passenger Asha Rao passport P1234567")
    assert frames(events)[1]["tool_output"]["passenger"]["passport_number"] == "P1234567"
    _, events = await turn(client, admin, session_id, "show my itinerary")
    listed = frames(events)[1]["tool_output"]
    report = await get_json(client, admin, f"/reports/itinerary?session_id={session_id}")
    assert listed == {key: value for key, value in report.items() if key not in ("tenant_id", "session_id")}  # §9.6
    assert report["total_cost"] == {"amount": "110020.00", "currency": "INR"}  # the §7.2 example's sum

    _, events = await turn(client, admin, session_id, f"hold {hotel}")
    hold_id = frames(events)[1]["approval_id"]
    assert frames(events)[1]["approval_summary"] == (
        "Hold 3 night(s) at Royal Dubai Inn, Dubai from 2026-07-01 (HTL-FF773A59) for INR 55,812.00. Reversible.")
    _, events = await turn(client, admin, session_id, f"book {hotel}", approvals={hold_id: True})
    data = frames(events)
    assert kinds_of(data) == ["approval_granted", "tool_result", "text_delta", "tool_use", "approval_request",
                              "final"]
    confirmation = expect.reference(admin.tenant_id, session_id, hotel)
    assert (data[1]["tool_output"]["item"]["status"], data[1]["tool_output"]["item"]["reference"]) == (
        "held", confirmation)
    hotel_book = data[4]["approval_id"]
    _, events = await turn(client, admin, session_id, f"book {FIRST}", approvals={hotel_book: True})
    data = frames(events)
    assert data[1]["tool_output"]["bill"]["party_name"] == "Royal Dubai Inn"
    assert data[1]["tool_output"]["item"]["reference"] == confirmation  # the hold's reference is kept
    _, events = await turn(client, admin, session_id, "", approvals={data[4]["approval_id"]: True})
    assert frames(events)[1]["tool_output"]["bill"]["number"] == expect.document_number("BILL", admin.tenant_id, 2)
    _, events = await turn(client, admin, session_id, "issue an invoice")  # no name, no enquiry: the passenger
    use, request, _ = frames(events)
    assert use["tool_input"] == {"customer_name": "Asha Rao", "offer_ids": [FIRST, hotel]}  # creation order
    assert request["approval_summary"] == expect.invoice_summary("Asha Rao", "INR 110,020.00", 2)
    _, events = await turn(client, admin, session_id, "invoice", approvals={request["approval_id"]: True})
    data = frames(events)
    assert data[1]["tool_output"]["invoice"]["amount"] == {"amount": "110020.00", "currency": "INR"}
    assert data[1]["tool_output"]["invoice"]["offer_ids"] == [FIRST, hotel]
    assert [(ev["kind"], (ev["tool_output"] or {}).get("error")) for ev in data[3:]] == [
        ("tool_use", None), ("tool_result", "nothing_to_invoice"), ("text_delta", None), ("final", None)]
    assert data[3]["tool_input"] == {"customer_name": "Asha Rao", "offer_ids": []}
    report = await get_json(client, admin, f"/reports/itinerary?session_id={session_id}")
    assert report["passengers"] == [{"full_name": "Asha Rao", "passport_number": "P1234567"}]
    assert report["hotels"] == [{"offer_id": hotel, "name": "Royal Dubai Inn", "city": "Dubai",
                                 "check_in": "2026-07-01", "check_out": "2026-07-04", "confirmation": confirmation,
                                 "status": "booked", "price": {"amount": "55812.00", "currency": "INR"}}]
    assert [f["status"] for f in report["flights"]] == ["booked"] and report["visas"] == []
    balance = await get_json(client, admin, "/reports/trial-balance")
    assert (balance["total_debit"], balance["in_balance"]) == ("220040.00", True)
