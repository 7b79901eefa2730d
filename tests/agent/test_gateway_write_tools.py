"""Side-effecting tools through the gateway (chat-and-agent.md §6.2–§6.3, §9.2–§9.5): effects, audit rows,
preconditions, role refusals and approval requests."""

import json
import uuid

import pytest

from tests.agent.harness import kinds
from voyagent import jsonio

DEL_DXB = {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 2, "cabin": "economy"}
DUBAI = {"city": "Dubai", "check_in": "2026-07-01", "check_out": "2026-07-04", "guests": 3}
FLIGHT, HOTEL = "FLT-20526D6B", "HTL-FF773A59"
BOOK_SUMMARY = "Book flight 6E893 DEL-DXB on 2026-07-01 (FLT-20526D6B) for INR 54,208.00. Not reversible."


def wire(value):
    return json.loads(jsonio.dumps(value))


async def audit_rows(harness, tenant_id, *tools):
    """The tenant's audit rows in order (of ``tools`` only, when named)."""
    rows = await harness.db.fetch(
        "SELECT tool, actor_id, actor_kind::text, driver, entity_refs, inputs, outputs, error, approval_required, "
        "approved_by, approved_at, status::text, completed_at FROM audit_events WHERE tenant_id = $1 "
        "AND (cardinality($2::text[]) = 0 OR tool = any($2::text[])) ORDER BY started_at, id", tenant_id, list(tools))
    return [{**dict(row), **{k: json.loads(row[k]) for k in ("entity_refs", "inputs", "outputs")}} for row in rows]


async def planned(harness, user, *offers, session_id=None):
    """A session with the flight (and hotel) vectors searched and added."""
    session_id = session_id or await harness.new_session(user)
    gateway = harness.gateway(user, session_id)
    await gateway.invoke("search_flights", DEL_DXB)
    await gateway.invoke("search_hotels", DUBAI)
    for offer_id in offers:
        assert (await gateway.invoke("add_to_itinerary", {"offer_id": offer_id})).kind == "success"
    harness.take()
    harness.counted.clear()
    return session_id


async def test_add_to_itinerary_stores_a_planned_item_with_its_snapshot_and_audits_it(harness, make_user):
    user = await make_user("agent")
    session_id = await planned(harness, user)
    gateway = harness.gateway(user, session_id)
    outcome = await gateway.invoke("add_to_itinerary", {"offer_id": FLIGHT})
    assert kinds(harness.take()) == ["tool_use", "tool_result"] and outcome.kind == "success"
    output = wire(outcome.output)
    item = output["item"]
    assert output["ok"] is True and list(item) == ["item_id", "kind", "offer_id", "status", "reference", "price",
                                                   "offer"]
    assert (item["kind"], item["offer_id"], item["status"], item["reference"]) == ("flight", FLIGHT, "planned", None)
    assert item["price"] == {"amount": "54208.00", "currency": "INR"}
    assert item["offer"]["flight_number"] == "6E893" and item["offer"]["departure_at"] == "2026-07-01T07:00:00Z"
    row = await harness.db.fetchrow("SELECT * FROM itinerary_items WHERE id = $1", uuid.UUID(item["item_id"]))
    assert (row["session_id"], row["tenant_id"], str(row["price_amount"]), row["price_currency"]) == (
        session_id, user.tenant_id, "54208.00", "INR")
    assert json.loads(row["data"]) == item["offer"]
    [audit] = await audit_rows(harness, user.tenant_id)
    assert audit["tool"] == "add_to_itinerary" and audit["status"] == "succeeded" and audit["actor_kind"] == "agent"
    assert audit["actor_id"] == user.id and audit["driver"] is None and audit["approval_required"] is False
    assert audit["inputs"] == {"offer_id": FLIGHT} and audit["outputs"] == output
    assert audit["entity_refs"] == {"session_id": str(session_id)} and audit["completed_at"] is not None
    assert harness.counted == [("add_to_itinerary", "success")]

    hotel = wire((await gateway.invoke("add_to_itinerary", {"offer_id": HOTEL})).output)["item"]
    assert (hotel["kind"], hotel["price"]["amount"], hotel["offer"]["name"]) == ("hotel", "55812.00", "Royal Dubai Inn")


async def test_add_to_itinerary_preconditions_write_no_audit_row(harness, make_user):
    user = await make_user("agent")
    session_id = await planned(harness, user, FLIGHT)
    gateway = harness.gateway(user, session_id)
    again = await gateway.invoke("add_to_itinerary", {"offer_id": FLIGHT})
    unknown = await gateway.invoke("add_to_itinerary", {"offer_id": "FLT-00000000"})
    assert again.output["error"] == "already_in_itinerary" and unknown.output["error"] == "offer_not_found"
    assert again.kind == unknown.kind == "error" and all(o.output["ok"] is False for o in (again, unknown))
    assert kinds(harness.take()) == ["tool_use", "tool_result"] * 2
    assert [a["status"] for a in await audit_rows(harness, user.tenant_id)] == ["succeeded"]  # the first add only
    other = await make_user("agent")  # the cache is per tenant
    other_session = await harness.new_session(other)
    foreign = await harness.gateway(other, other_session).invoke("add_to_itinerary", {"offer_id": FLIGHT})
    assert foreign.output["error"] == "offer_not_found"


async def test_an_offer_may_be_added_to_two_sessions(harness, make_user):
    user = await make_user("agent")
    await planned(harness, user, FLIGHT)
    second = await harness.new_session(user)
    outcome = await harness.gateway(user, second).invoke("add_to_itinerary", {"offer_id": FLIGHT})
    assert outcome.kind == "success"


async def test_add_passenger_twice_and_audit(harness, make_user):
    user = await make_user("viewer")
    session_id = await harness.new_session(user)
    gateway = harness.gateway(user, session_id)
    first = await gateway.invoke("add_passenger", {"full_name": "Asha Rao", "passport_number": "P1234567"})
    second = await gateway.invoke("add_passenger", {"full_name": "Asha Rao"})
    assert list(first.output) == ["ok", "passenger"] and first.output["ok"] is True
    assert first.output["passenger"]["full_name"] == "Asha Rao"
    assert first.output["passenger"]["passport_number"] == "P1234567"
    assert second.output["passenger"]["passport_number"] is None
    assert first.output["passenger"]["item_id"] != second.output["passenger"]["item_id"]
    assert [(a["tool"], a["status"], a["inputs"]) for a in await audit_rows(harness, user.tenant_id)] == [
        ("add_passenger", "succeeded", {"full_name": "Asha Rao", "passport_number": "P1234567"}),
        ("add_passenger", "succeeded", {"full_name": "Asha Rao", "passport_number": None})]
    itinerary = wire((await gateway.invoke("get_itinerary", {})).output)
    assert itinerary["passengers"] == [{"full_name": "Asha Rao", "passport_number": "P1234567"},
                                       {"full_name": "Asha Rao", "passport_number": None}]


async def test_get_itinerary_shows_the_report_rows(harness, make_user):
    user = await make_user("agent")
    session_id = await planned(harness, user, FLIGHT, HOTEL)
    output = wire((await harness.gateway(user, session_id).invoke("get_itinerary", {})).output)
    assert list(output) == ["passengers", "flights", "hotels", "visas", "total_cost"]
    assert output["flights"] == [{"offer_id": FLIGHT, "pnr": None, "origin": "DEL", "dest": "DXB",
                                  "depart": "2026-07-01T07:00:00Z", "carrier": "6E", "flight_number": "6E893",
                                  "status": "planned", "price": {"amount": "54208.00", "currency": "INR"}}]
    assert output["hotels"][0]["name"] == "Royal Dubai Inn" and output["hotels"][0]["confirmation"] is None
    assert output["total_cost"] == {"amount": "110020.00", "currency": "INR"}


async def test_hold_requests_an_approval_with_its_summary(harness, make_user):
    user = await make_user("viewer")  # any role may request a hold
    session_id = await planned(harness, user, HOTEL)
    gateway = harness.gateway(user, session_id)
    outcome = await gateway.invoke("hold_offer", {"offer_id": HOTEL})
    events = harness.take()
    assert kinds(events) == ["tool_use", "approval_request"]
    request = events[1]
    approval_id = f"ap-{gateway.context.turn_id}-hold_offer"
    summary = "Hold 3 night(s) at Royal Dubai Inn, Dubai from 2026-07-01 (HTL-FF773A59) for INR 55,812.00. Reversible."
    assert (request["approval_id"], request["approval_summary"], request["tool_name"]) == (approval_id, summary,
                                                                                           "hold_offer")
    assert request["tool_call_id"] == events[0]["tool_call_id"] and request["tool_output"] is None
    assert outcome.kind == "approval_needed" and outcome.approval_id == approval_id
    row = await harness.db.fetchrow("SELECT * FROM pending_approvals WHERE id = $1", approval_id)
    assert (row["status"], row["summary"], row["tool_call_id"], row["turn_id"], row["session_id"]) == (
        "pending", summary, request["tool_call_id"], gateway.context.turn_id, session_id)
    assert json.loads(row["payload"]) == {"offer_id": HOTEL}
    assert row["requested_at"] == harness.clock.now
    assert (row["expires_at"] - row["requested_at"]).total_seconds() == 900
    assert await audit_rows(harness, user.tenant_id, "hold_offer") == []  # nothing runs before the decision
    status = await harness.db.fetchval("SELECT status::text FROM itinerary_items WHERE offer_id = $1 "
                                       "AND session_id = $2", HOTEL, session_id)
    assert status == "planned" and harness.counted == [("hold_offer", "approval_requested")]

    # The turn is paused: a further call is refused without events and without effects.
    refused = await gateway.invoke("get_itinerary", {})
    assert refused.kind == "error" and refused.output["error"] == "approval_pending" and harness.take() == []


async def test_the_book_summary_of_the_contract(harness, make_user):
    user = await make_user("ticketing_lead")
    session_id = await planned(harness, user, FLIGHT)
    gateway = harness.gateway(user, session_id)
    outcome = await gateway.invoke("book_offer", {"offer_id": FLIGHT})
    assert outcome.output == {"approval_id": f"ap-{gateway.context.turn_id}-book_offer",
                              "approval_summary": BOOK_SUMMARY}


async def test_invoice_summary_counts_the_items(harness, make_user):
    user = await make_user("accounting_lead")
    session_id = await planned(harness, user, FLIGHT, HOTEL)
    await harness.db.execute("UPDATE itinerary_items SET status = 'booked' WHERE session_id = $1", session_id)
    gateway = harness.gateway(user, session_id)
    outcome = await gateway.invoke("issue_invoice", {"customer_name": "Asha Rao", "offer_ids": [HOTEL, FLIGHT]})
    assert outcome.output["approval_summary"] == (
        "Issue invoice to Asha Rao for INR 110,020.00 covering 2 item(s). Reversible by voiding.")


@pytest.mark.parametrize("tool, role", [("book_offer", "agent"), ("book_offer", "accounting_lead"),
                                        ("book_offer", "viewer"), ("issue_invoice", "ticketing_lead"),
                                        ("issue_invoice", "agent")])
async def test_a_role_outside_the_tools_roles_is_refused_with_a_rejected_audit_row(harness, make_user, tool, role):
    user = await make_user(role)
    session_id = await planned(harness, user, FLIGHT)
    tool_input = {"offer_id": FLIGHT} if tool == "book_offer" else {"customer_name": "A", "offer_ids": [FLIGHT]}
    outcome = await harness.gateway(user, session_id).invoke(tool, tool_input)
    assert kinds(harness.take()) == ["tool_use", "tool_result"]
    assert outcome.kind == "permission_denied"
    assert outcome.output == {"ok": False, "error": "permission_denied",
                              "detail": f"role {role} may not request {tool}"}
    [audit] = await audit_rows(harness, user.tenant_id, tool)
    assert (audit["tool"], audit["status"], audit["error"], audit["approval_required"]) == (
        tool, "rejected", f"permission_denied: role {role} may not request {tool}", True)
    assert audit["actor_kind"] == "agent" and audit["actor_id"] == user.id and audit["inputs"] == tool_input
    assert audit["entity_refs"] == {"session_id": str(session_id)}
    assert audit["driver"] == ("sandbox" if tool == "book_offer" else None)
    assert await harness.db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1", session_id) == 0
    assert harness.counted == [(tool, "permission_denied")]


async def test_the_role_check_comes_after_the_schema_and_before_the_preconditions(harness, make_user):
    user = await make_user("agent")
    session_id = await harness.new_session(user)
    gateway = harness.gateway(user, session_id)
    assert (await gateway.invoke("book_offer", {"offer_id": "bad"})).output["error"] == "invalid_input"
    assert (await gateway.invoke("book_offer", {"offer_id": FLIGHT})).output["error"] == "permission_denied"


@pytest.mark.parametrize("tool, status, code", [
    ("hold_offer", None, "offer_not_in_itinerary"), ("hold_offer", "held", "already_held"),
    ("hold_offer", "booked", "already_booked"), ("book_offer", None, "offer_not_in_itinerary"),
    ("book_offer", "booked", "already_booked")])
async def test_hold_and_book_preconditions_refuse_without_approval_or_audit(harness, make_user, tool, status, code):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, *([FLIGHT] if status else []))
    if status:
        await harness.db.execute("UPDATE itinerary_items SET status = $1::itinerary_item_status WHERE session_id = $2",
                                 status, session_id)
    outcome = await harness.gateway(user, session_id).invoke(tool, {"offer_id": FLIGHT})
    assert kinds(harness.take()) == ["tool_use", "tool_result"]
    assert outcome.kind == "error" and outcome.output["error"] == code and outcome.output["ok"] is False
    assert await audit_rows(harness, user.tenant_id, tool) == []
    assert await harness.db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1", session_id) == 0
    assert harness.counted == [(tool, "error")]


async def test_book_of_a_held_item_is_accepted(harness, make_user):
    user = await make_user("agency_admin")
    session_id = await planned(harness, user, FLIGHT)
    await harness.db.execute("UPDATE itinerary_items SET status = 'held' WHERE session_id = $1", session_id)
    assert (await harness.gateway(user, session_id).invoke("book_offer", {"offer_id": FLIGHT})).kind == (
        "approval_needed")


@pytest.mark.parametrize("offer_ids, status", [([], None), ([FLIGHT], "planned"), ([FLIGHT], "held"),
                                               (["FLT-00000000"], "booked"), ([FLIGHT], "invoiced")])
async def test_nothing_to_invoice(harness, make_user, offer_ids, status):
    user = await make_user("accounting_lead")
    session_id = await planned(harness, user, FLIGHT)
    if status in ("held", "booked"):
        await harness.db.execute("UPDATE itinerary_items SET status = $1::itinerary_item_status "
                                 "WHERE session_id = $2", status, session_id)
    if status == "invoiced":
        invoice_id = uuid.uuid4()
        await harness.db.execute(
            "INSERT INTO invoices (id, tenant_id, number, party_name, issue_date, due_date, total_amount, currency, "
            "status) VALUES ($1, $2, 'X-1', 'A', current_date, current_date, 1, 'INR', 'issued')",
            invoice_id, user.tenant_id)
        await harness.db.execute("UPDATE itinerary_items SET status = 'booked', invoice_id = $1 "
                                 "WHERE session_id = $2", invoice_id, session_id)
    outcome = await harness.gateway(user, session_id).invoke("issue_invoice", {"customer_name": "Asha Rao",
                                                                               "offer_ids": offer_ids})
    assert kinds(harness.take()) == ["tool_use", "tool_result"]
    assert outcome.output["error"] == "nothing_to_invoice" and outcome.kind == "error"
    assert await harness.db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1", session_id) == 0


async def test_an_offer_of_another_session_is_not_in_this_itinerary(harness, make_user):
    user = await make_user("agency_admin")
    await planned(harness, user, FLIGHT)
    other = await harness.new_session(user)
    outcome = await harness.gateway(user, other).invoke("hold_offer", {"offer_id": FLIGHT})
    assert outcome.output["error"] == "offer_not_in_itinerary"


async def test_approval_ids_take_the_next_suffix_when_taken(harness, make_user):
    user = await make_user("agency_admin")
    first = await planned(harness, user, FLIGHT)
    second = await planned(harness, user, FLIGHT)
    third = await planned(harness, user, FLIGHT)
    ids = []
    for session_id in (first, second, third):  # the same turn id in three sessions (ids are global keys)
        outcome = await harness.gateway(user, session_id, "t-0123456789ab").invoke("hold_offer", {"offer_id": FLIGHT})
        ids.append(outcome.approval_id)
    assert ids == ["ap-t-0123456789ab-hold_offer", "ap-t-0123456789ab-hold_offer-2", "ap-t-0123456789ab-hold_offer-3"]
