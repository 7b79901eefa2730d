"""The gateway's procedure for read-only tools and its input checks (chat-and-agent.md §6.2, §9.1, §9.6, §11.5)."""

import json

import pytest

from tests.agent.harness import kinds
from voyagent import jsonio
from voyagent.agent.sandbox import FlightOffer

DEL_DXB = {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 2, "cabin": "economy"}
DUBAI = {"city": "Dubai", "check_in": "2026-07-01", "check_out": "2026-07-04", "guests": 3}


def wire(value):
    """As the stream carries it."""
    return json.loads(jsonio.dumps(value))


async def test_search_flights_gives_the_first_vector_and_caches_each_offer(harness, make_user):
    user = await make_user("agent")
    session_id = await harness.new_session(user)
    gateway = harness.gateway(user, session_id)
    outcome = await gateway.invoke("search_flights", DEL_DXB)
    events = harness.take()
    assert kinds(events) == ["tool_use", "tool_result"]
    use, result = events
    assert use["tool_name"] == result["tool_name"] == "search_flights"
    assert use["tool_call_id"] == result["tool_call_id"] and use["tool_call_id"].startswith("tc-")
    assert len(use["tool_call_id"]) == 19 and use["tool_input"] == DEL_DXB
    assert use["turn_id"] == gateway.context.turn_id and use["session_id"] == str(session_id)
    output = wire(result["tool_output"])
    assert outcome.kind == "success" and wire(outcome.output) == output and output["count"] == 3
    rows = [(o["offer_id"], o["flight_number"], o["departure_at"], o["arrival_at"], o["duration_minutes"],
             o["price_per_adult"], o["price"]) for o in output["offers"]]
    inr = lambda amount: {"amount": amount, "currency": "INR"}  # noqa: E731
    assert rows == [
        ("FLT-20526D6B", "6E893", "2026-07-01T07:00:00Z", "2026-07-01T16:05:00Z", 545, inr("27104.00"), inr("54208.00")),
        ("FLT-19876437", "BA970", "2026-07-01T12:30:00Z", "2026-07-01T15:05:00Z", 155, inr("36363.00"), inr("72726.00")),
        ("FLT-8A11C423", "6E522", "2026-07-01T09:45:00Z", "2026-07-01T16:00:00Z", 375, inr("44642.00"), inr("89284.00"))]
    first = output["offers"][0]
    assert list(first) == ["offer_id", "kind", "carrier", "carrier_name", "flight_number", "origin", "destination",
                           "departure_at", "arrival_at", "duration_minutes", "cabin", "adults", "price_per_adult",
                           "price"]
    assert (first["kind"], first["carrier"], first["carrier_name"], first["adults"]) == ("flight", "6E", "IndiGo", 2)
    for offer in output["offers"]:
        cached = await harness.services.offers.get(user.tenant_id, offer["offer_id"])
        assert isinstance(cached, FlightOffer) and wire(cached.output()) == offer
    assert await harness.services.offers.get(user.tenant_id.hex, "FLT-20526D6B") is None  # keyed by the tenant
    assert harness.counted == [("search_flights", "success")]


async def test_search_flights_business_vector(harness, make_user):
    user = await make_user("viewer")
    gateway = harness.gateway(user, await harness.new_session(user))
    outcome = await gateway.invoke("search_flights", {**DEL_DXB, "adults": 1, "cabin": "business"})
    rows = [(o["offer_id"], o["flight_number"], o["price"]["amount"]) for o in wire(outcome.output)["offers"]]
    assert rows == [("FLT-8FE0F5FE", "BA276", "11592.00"), ("FLT-B0D35AA3", "UK353", "32763.00"),
                    ("FLT-66D0BC38", "BA292", "146448.00")]


async def test_search_hotels_gives_the_hotel_vector_without_redis(local_harness, make_user):
    user = await make_user("agent")
    gateway = local_harness.gateway(user, await local_harness.new_session(user))
    outcome = await gateway.invoke("search_hotels", {**DUBAI, "city": "  dubai "})
    output = wire(outcome.output)
    rows = [(o["offer_id"], o["name"], o["star_rating"], o["nightly_rate"]["amount"], o["price"]["amount"],
             o["nights"], o["rooms"]) for o in output["offers"]]
    assert rows == [("HTL-FF773A59", "Royal Dubai Inn", 4, "9302.00", "55812.00", 3, 2),
                    ("HTL-C7010406", "Royal Dubai Residency", 4, "14915.00", "89490.00", 3, 2),
                    ("HTL-51B4AE97", "Crown Dubai Inn", 5, "17103.00", "102618.00", 3, 2)]
    assert list(output["offers"][0]) == ["offer_id", "kind", "name", "city", "star_rating", "check_in", "check_out",
                                         "nights", "guests", "rooms", "nightly_rate", "price"]
    assert output["offers"][0]["city"] == "Dubai" and output["offers"][0]["check_in"] == "2026-07-01"
    assert await local_harness.services.offers.get(user.tenant_id, "HTL-FF773A59") is not None
    assert kinds(local_harness.take()) == ["tool_use", "tool_result"]


async def test_a_stay_must_end_after_it_starts(harness, make_user):
    user = await make_user("agent")
    gateway = harness.gateway(user, await harness.new_session(user))
    outcome = await gateway.invoke("search_hotels", {**DUBAI, "check_out": "2026-07-01"})
    assert outcome.kind == "error" and outcome.output["error"] == "invalid_input"
    assert outcome.output["detail"].startswith("check_out")


@pytest.mark.parametrize("name, tool_input", [
    ("search_flights", {**DEL_DXB, "origin": "del"}),
    ("search_hotels", {"city": "Dubai"}),
    ("get_itinerary", {"extra": 1}),
    ("add_to_itinerary", {"offer_id": "FLT-1"}),
    ("add_passenger", {"full_name": ""}),
    ("hold_offer", {"offer_id": None}),
    ("book_offer", {}),
    ("issue_invoice", {"customer_name": "A", "offer_ids": "FLT-20526D6B"}),
    ("search_flights", "DEL to DXB"),
])
async def test_invalid_input_is_a_tool_result_and_writes_nothing(harness, make_user, name, tool_input):
    user = await make_user("agency_admin")
    session_id = await harness.new_session(user)
    outcome = await harness.gateway(user, session_id).invoke(name, tool_input)
    events = harness.take()
    assert kinds(events) == ["tool_use", "tool_result"]
    assert events[0]["tool_input"] == (tool_input if isinstance(tool_input, dict) else {})
    assert outcome.kind == "error" and events[1]["tool_output"] == outcome.output
    assert outcome.output["ok"] is False and outcome.output["error"] == "invalid_input"
    assert isinstance(outcome.output["detail"], str) and outcome.output["detail"]
    assert await harness.db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", user.tenant_id) == 0
    assert await harness.db.fetchval("SELECT count(*) FROM pending_approvals WHERE session_id = $1", session_id) == 0
    assert harness.counted == [(name, "error")]


async def test_an_unknown_tool_is_refused_and_counted_under_one_label(harness, make_user):
    user = await make_user("agent")
    outcome = await harness.gateway(user, await harness.new_session(user)).invoke("cancel_booking", {})
    assert outcome.output == {"ok": False, "error": "unknown_tool", "detail": "there is no tool named 'cancel_booking'"}
    assert kinds(harness.take()) == ["tool_use", "tool_result"] and harness.counted == [("unknown", "error")]


async def test_get_itinerary_of_an_empty_session_uses_the_tenant_currency(harness, make_user):
    user = await make_user("viewer")
    await harness.db.execute("UPDATE tenant_settings SET default_currency = 'AED' WHERE tenant_id = $1",
                             user.tenant_id)
    outcome = await harness.gateway(user, await harness.new_session(user)).invoke("get_itinerary", {})
    assert wire(outcome.output) == {"passengers": [], "flights": [], "hotels": [], "visas": [],
                                    "total_cost": {"amount": "0.00", "currency": "AED"}}
    assert outcome.kind == "success"


async def test_specs_are_the_registry(harness, make_user):
    user = await make_user("agent")
    specs = harness.gateway(user, await harness.new_session(user)).specs()
    assert [spec.name for spec in specs][:3] == ["search_flights", "search_hotels", "get_itinerary"]
    assert all(spec.input_schema and spec.description for spec in specs)
