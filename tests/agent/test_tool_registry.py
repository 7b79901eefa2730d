"""The tool registry of chat-and-agent.md §6.1: one spec per tool with its schema, invariants and input check."""

import pytest

from voyagent.services.tools import OFFER_ID_PATTERN, TOOLS, ToolFailure, ToolSpec

SCHEMA = "https://json-schema.org/draft/2020-12/schema"


def test_every_tool_has_a_description_and_a_closed_draft_2020_12_object_schema():
    assert list(TOOLS) == ["search_flights", "search_hotels", "get_itinerary", "add_to_itinerary", "add_passenger",
                           "hold_offer", "book_offer", "issue_invoice"]
    for spec in TOOLS.values():
        schema = spec.input_schema
        assert spec.description and schema["$schema"] == SCHEMA and schema["type"] == "object"
        assert schema["additionalProperties"] is False
        assert spec.llm_tool() == {"name": spec.name, "description": spec.description, "input_schema": schema}


def test_required_properties_and_defaults_are_those_of_the_contract():
    required = {name: spec.input_schema["required"] for name, spec in TOOLS.items()}
    assert required == {"search_flights": ["origin", "destination", "depart_date"],
                        "search_hotels": ["city", "check_in", "check_out"], "get_itinerary": [],
                        "add_to_itinerary": ["offer_id"], "add_passenger": ["full_name"], "hold_offer": ["offer_id"],
                        "book_offer": ["offer_id"], "issue_invoice": ["customer_name", "offer_ids"]}
    assert TOOLS["search_flights"].validated({"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01"}) == {
        "origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 1, "cabin": "economy"}
    assert TOOLS["search_hotels"].validated({"city": "Dubai", "check_in": "2026-07-01", "check_out": "2026-07-02"})[
        "guests"] == 1
    assert TOOLS["add_passenger"].validated({"full_name": "Asha Rao"}) == {"full_name": "Asha Rao",
                                                                           "passport_number": None}
    assert TOOLS["issue_invoice"].validated({"customer_name": "A", "offer_ids": []}) == {"customer_name": "A",
                                                                                        "offer_ids": []}
    assert TOOLS["search_flights"].validated({"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01",
                                              "adults": 2.0})["adults"] == 2  # 2.0 is a JSON Schema integer
    assert TOOLS["search_flights"].input_schema["properties"]["cabin"]["enum"] == [
        "economy", "premium_economy", "business", "first"]
    assert TOOLS["hold_offer"].input_schema["properties"]["offer_id"]["pattern"] == OFFER_ID_PATTERN


@pytest.mark.parametrize("name, tool_input, where", [
    ("search_flights", {"origin": "del", "destination": "DXB", "depart_date": "2026-07-01"}, "origin"),
    ("search_flights", {"origin": "DEL", "destination": "DXB", "depart_date": "2026-02-30"}, "depart_date"),
    ("search_flights", {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 10}, "adults"),
    ("search_flights", {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 0}, "adults"),
    ("search_flights", {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "cabin": "coach"},
     "cabin"),
    ("search_flights", {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "seat": "1A"}, "seat"),
    ("search_hotels", {"city": "", "check_in": "2026-07-01", "check_out": "2026-07-02"}, "city"),
    ("search_hotels", {"city": "x" * 81, "check_in": "2026-07-01", "check_out": "2026-07-02"}, "city"),
    ("search_hotels", {"city": "Dubai", "check_in": "2026-07-01"}, "check_out"),
    ("get_itinerary", {"session": "x"}, "session"),
    ("add_to_itinerary", {"offer_id": "FLT-20526d6b"}, "offer_id"),
    ("add_to_itinerary", {"offer_id": "XYZ-20526D6B"}, "offer_id"),
    ("add_to_itinerary", {}, "offer_id"),
    ("add_passenger", {"full_name": "x" * 121}, "full_name"),
    ("add_passenger", {"full_name": "A", "passport_number": "p1234567"}, "passport_number"),
    ("book_offer", {"offer_id": 7}, "offer_id"),
    ("issue_invoice", {"customer_name": "x" * 256, "offer_ids": []}, "customer_name"),
    ("issue_invoice", {"customer_name": "A", "offer_ids": ["FLT-1"]}, "offer_ids.0"),
    ("issue_invoice", {"customer_name": "A"}, "offer_ids"),
    ("hold_offer", ["FLT-20526D6B"], "input"),
])
def test_a_bad_input_is_invalid_input_naming_the_field(name, tool_input, where):
    with pytest.raises(ToolFailure) as caught:
        TOOLS[name].validated(tool_input)
    assert caught.value.code == "invalid_input"
    assert caught.value.detail.startswith(f"{where}: ")
    assert caught.value.output() == {"ok": False, "error": "invalid_input", "detail": caught.value.detail}


def test_the_offer_id_pattern_is_anchored_and_linear():
    check = TOOLS["book_offer"].check
    assert check.errors({"offer_id": "FLT-ABCDEF12"}, []) == []
    assert check.errors({"offer_id": "xFLT-ABCDEF12"}, []) and check.errors({"offer_id": "FLT-ABCDEF123"}, [])
    assert check.errors({"offer_id": "F" * 100_000}, [])  # the linear engine: no backtracking blow-up


def test_registration_invariants_still_hold():
    with pytest.raises(ValueError):
        ToolSpec("x", side_effect=True, reversible=False, approval_required=False)
    with pytest.raises(ValueError):
        ToolSpec("x", side_effect=False, reversible=True, approval_required=True)
