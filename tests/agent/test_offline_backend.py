"""The offline backend (chat-and-agent.md §8): the event sequences of §8.4 for every grammar outcome, §9.5's
invoice input, and the typical flow of §6.5 from search to invoice."""

import json
import uuid

import pytest

from tests.agent.harness import kinds
from tests.agent.test_gateway_write_tools import FLIGHT, HOTEL, planned, wire
from tests.agent.test_resume import decide
from voyagent.agent.offline import OfflineBackend

FLIGHT_SEARCH = "flights DEL to DXB on 2026-07-01 for 2 adults"


def texts(events):
    return [e["text"] for e in events if e["kind"] == "text_delta"]


@pytest.mark.parametrize("message", ["help", "?", "what can you do", "hello", "flights DEL to DXB",
                                     "hotels in Dubai", "flights DEL to DEL on 2026-07-01", "add passenger " + "x" * 121,
                                     "flights DEL to DXB on 2026-02-30", "hotels in Dubai from 2026-07-01 for 31 nights"])
async def test_help_unrecognised_and_missing_or_invalid_data_are_one_text(harness, make_user, message):
    user = await make_user("agent")
    events = await harness.turn(user, await harness.new_session(user), message)
    assert kinds(events) == ["text_delta"] and events[0]["text"].strip()
    assert events[0]["tool_name"] is None and harness.counted == []


async def test_an_empty_message_with_nothing_to_resume_emits_nothing(harness, make_user):
    user = await make_user("agent")
    assert await harness.turn(user, await harness.new_session(user), "   ") == []


async def test_a_flight_search_lists_the_offers_and_says_what_to_type(harness, make_user):
    user = await make_user("agent")
    events = await harness.turn(user, await harness.new_session(user), FLIGHT_SEARCH)
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"]
    assert events[0]["tool_input"] == {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01",
                                       "adults": 2, "cabin": "economy"}
    text = events[2]["text"]
    assert all(offer_id in text for offer_id in ("FLT-20526D6B", "FLT-19876437", "FLT-8A11C423"))
    assert "INR 54,208.00" in text and "add FLT-20526D6B" in text
    assert events[2]["turn_id"] == events[0]["turn_id"]


async def test_a_hotel_search_without_redis(local_harness, make_user):
    user = await make_user("agent")
    session_id = await local_harness.new_session(user)
    events = await local_harness.turn(user, session_id, "hotels in dubai from 2026-07-01 for 3 nights for 3 guests")
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"]
    assert events[0]["tool_input"] == {"city": "Dubai", "check_in": "2026-07-01", "check_out": "2026-07-04",
                                       "guests": 3}
    assert "HTL-FF773A59" in events[2]["text"] and "Royal Dubai Inn" in events[2]["text"]
    events = await local_harness.turn(user, session_id, "add htl-ff773a59")
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"]
    assert events[1]["tool_output"]["ok"] is True and events[0]["tool_input"] == {"offer_id": HOTEL}


@pytest.mark.parametrize("message, tool", [
    ("add FLT-20526D6B", "add_to_itinerary"), ("add passenger Asha Rao passport p1234567", "add_passenger"),
    ("show my itinerary", "get_itinerary"), ("add FLT-00000000", "add_to_itinerary")])
async def test_add_add_passenger_and_itinerary_are_a_tool_call_and_a_text(harness, make_user, message, tool):
    user = await make_user("agent")
    session_id = await planned(harness, user)
    events = await harness.turn(user, session_id, message)
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"] and events[0]["tool_name"] == tool
    assert texts(events)[0]
    if tool == "add_passenger":
        assert events[0]["tool_input"] == {"full_name": "Asha Rao", "passport_number": "P1234567"}


@pytest.mark.parametrize("message, role, code", [
    ("hold FLT-20526D6B", "agent", "offer_not_in_itinerary"),
    ("book FLT-20526D6B", "agent", "permission_denied"),
    ("book FLT-20526D6B", "ticketing_lead", "offer_not_in_itinerary"),
    ("invoice", "accounting_lead", "nothing_to_invoice"),
    ("invoice to Asha Rao", "agent", "permission_denied"),
    ("invoice to " + "x" * 256, "accounting_lead", "invalid_input")])
async def test_refused_hold_book_and_invoice_are_a_failed_result_and_a_text(harness, make_user, message, role, code):
    user = await make_user(role)
    events = await harness.turn(user, await harness.new_session(user), message)
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"]
    assert events[1]["tool_output"]["ok"] is False and events[1]["tool_output"]["error"] == code
    assert code in events[2]["text"]


@pytest.mark.parametrize("message, tool", [("hold FLT-20526D6B", "hold_offer"), ("book flt-20526d6b", "book_offer")])
async def test_accepted_hold_and_book_end_with_the_approval_request(harness, make_user, message, tool):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    events = await harness.turn(user, session_id, message)
    assert kinds(events) == ["tool_use", "approval_request"]
    assert events[1]["approval_id"] == f"ap-{events[0]['turn_id']}-{tool}"


async def test_invoice_input_names_the_customer_by_the_rules_of_9_5(harness, make_user):
    user = await make_user("accounting_lead")
    session_id = await planned(harness, user, FLIGHT, HOTEL)
    backend = OfflineBackend(harness.services.database, harness.services.sql)

    async def invoice_input(message):
        events = await harness.turn(user, session_id, message)
        assert kinds(events) in (["tool_use", "approval_request"], ["tool_use", "tool_result", "text_delta"])
        await harness.db.execute("DELETE FROM pending_approvals WHERE session_id = $1", session_id)
        return events[0]["tool_input"]

    assert await invoice_input("invoice") == {"customer_name": "Walk-in customer", "offer_ids": []}
    await harness.db.execute("UPDATE itinerary_items SET status = 'booked' WHERE session_id = $1 AND offer_id = $2",
                             session_id, HOTEL)
    await harness.gateway(user, session_id).invoke("add_passenger", {"full_name": "Ravi Rao"})
    await harness.gateway(user, session_id).invoke("add_passenger", {"full_name": "Asha Rao"})
    harness.take()
    assert await invoice_input("invoice") == {"customer_name": "Ravi Rao", "offer_ids": [HOTEL]}
    for name in ("Later Enquiry", "First Enquiry"):
        await harness.db.execute(
            "INSERT INTO enquiries (id, tenant_id, created_by_user_id, customer_name, session_id, created_at) "
            "VALUES ($1, $2, $3, $4, $5, now() - make_interval(secs => $6))", uuid.uuid4(), user.tenant_id, user.id,
            name, session_id, 10 if name == "First Enquiry" else 5)
    await harness.db.execute("UPDATE itinerary_items SET status = 'booked' WHERE session_id = $1 AND offer_id = $2",
                             session_id, FLIGHT)
    assert await invoice_input("Issue an invoice") == {"customer_name": "First Enquiry",
                                                       "offer_ids": [FLIGHT, HOTEL]}
    assert (await invoice_input("invoice for  Meera   Iyer "))["customer_name"] == "Meera Iyer"
    assert backend.name == "offline"


async def test_the_typical_flow_of_6_5(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await harness.new_session(user)

    # 1. search
    events = await harness.turn(user, session_id, FLIGHT_SEARCH)
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"] and events[1]["tool_output"]["count"] == 3
    # 2. add
    events = await harness.turn(user, session_id, "add FLT-20526D6B")
    assert kinds(events) == ["tool_use", "tool_result", "text_delta"] and events[1]["tool_output"]["ok"] is True
    # 3. book → approval request
    events = await harness.turn(user, session_id, "book FLT-20526D6B")
    assert kinds(events) == ["tool_use", "approval_request"]
    booking = events[1]
    assert booking["approval_summary"] == (
        "Book flight 6E893 DEL-DXB on 2026-07-01 (FLT-20526D6B) for INR 54,208.00. Not reversible.")
    # 4. a human grants it
    await decide(harness, user, booking["approval_id"])
    # 5. an empty message resumes it
    events = await harness.turn(user, session_id, "")
    assert kinds(events) == ["approval_granted", "tool_result", "text_delta"]
    assert {e["tool_call_id"] for e in events[:2]} == {booking["tool_call_id"]}
    booked = wire(events[1]["tool_output"])
    assert booked["item"]["status"] == "booked" and booked["bill"]["status"] == "received"
    # 6. invoice → approval, granted, then executed at the next turn (before that turn's own command)
    events = await harness.turn(user, session_id, "invoice to Asha Rao")
    assert kinds(events) == ["tool_use", "approval_request"]
    assert events[0]["tool_input"] == {"customer_name": "Asha Rao", "offer_ids": [FLIGHT]}
    assert events[1]["approval_summary"] == (
        "Issue invoice to Asha Rao for INR 54,208.00 covering 1 item(s). Reversible by voiding.")
    await decide(harness, user, events[1]["approval_id"])
    events = await harness.turn(user, session_id, "show itinerary")
    assert kinds(events) == ["approval_granted", "tool_result", "text_delta", "tool_use", "tool_result", "text_delta"]
    invoice = wire(events[1]["tool_output"])["invoice"]
    assert invoice["party_name"] == "Asha Rao" and invoice["offer_ids"] == [FLIGHT]
    assert invoice["amount"] == {"amount": "54208.00", "currency": "INR"}
    report = wire(events[4]["tool_output"])
    assert report["flights"][0]["status"] == "booked" and report["flights"][0]["pnr"] == booked["item"]["reference"]
    ids = [e["tool_call_id"] for e in events if e["tool_call_id"]]
    assert len(set(ids)) == 2  # the resumed call's id and this turn's own call
    audit = await harness.db.fetch("SELECT tool, status::text FROM audit_events WHERE tenant_id = $1 "
                                   "ORDER BY started_at, id", user.tenant_id)
    assert [tuple(r) for r in audit] == [("add_to_itinerary", "succeeded"), ("book_offer", "succeeded"),
                                         ("issue_invoice", "succeeded")]
    stored = await harness.db.fetchval("SELECT payload FROM pending_approvals WHERE id = $1", booking["approval_id"])
    assert json.loads(stored) == {"offer_id": FLIGHT}
