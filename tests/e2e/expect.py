"""What the contract says a client sees, written from the spec's own text and vectors (never from the code under
test): the §11.5 offers, the §6.3 summaries, the §9.4 reference, the §4 frame shapes, and readers for the
metrics and the audit rows the end-to-end tests compare against."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import uuid
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from tests.chat_client import agent_events

KEYS = ["kind", "session_id", "turn_id", "timestamp", "text", "tool_name", "tool_input", "tool_output",
        "tool_call_id", "approval_id", "approval_summary", "error_message"]
ALWAYS = {"kind", "session_id", "turn_id", "timestamp"}
# §4: the keys each kind must fill; every other key is null (``approval_denied`` may carry an error_message)
FILLED = {"text_delta": {"text"}, "tool_use": {"tool_name", "tool_call_id", "tool_input"},
          "tool_result": {"tool_name", "tool_call_id", "tool_output"},
          "approval_request": {"approval_id", "approval_summary", "tool_name", "tool_call_id"},
          "approval_granted": {"approval_id", "tool_name", "tool_call_id"},
          "approval_denied": {"approval_id", "tool_name", "tool_call_id"}, "error": {"error_message"}, "final": set()}
TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
TURN_ID = re.compile(r"^t-[0-9a-f]{12}$")
TOOL_CALL_ID = re.compile(r"^tc-[0-9a-f]{16}$")

DEL_DXB = {"origin": "DEL", "destination": "DXB", "depart_date": "2026-07-01", "adults": 2, "cabin": "economy"}
FIRST = "FLT-20526D6B"


def _flight(offer_id: str, carrier: str, carrier_name: str, number: str, departs: str, arrives: str, minutes: int,
            per_adult: str, price: str) -> dict[str, Any]:
    return {"offer_id": offer_id, "kind": "flight", "carrier": carrier, "carrier_name": carrier_name,
            "flight_number": number, "origin": "DEL", "destination": "DXB", "departure_at": f"2026-07-01T{departs}Z",
            "arrival_at": f"2026-07-01T{arrives}Z", "duration_minutes": minutes, "cabin": "economy", "adults": 2,
            "price_per_adult": {"amount": per_adult, "currency": "INR"}, "price": {"amount": price, "currency": "INR"}}


# §11.5, first vector, in the FlightOffer shape of §9.1 (carrier names from the §11.1 table)
DEL_DXB_OFFERS = [
    _flight("FLT-20526D6B", "6E", "IndiGo", "6E893", "07:00:00", "16:05:00", 545, "27104.00", "54208.00"),
    _flight("FLT-19876437", "BA", "British Airways", "BA970", "12:30:00", "15:05:00", 155, "36363.00", "72726.00"),
    _flight("FLT-8A11C423", "6E", "IndiGo", "6E522", "09:45:00", "16:00:00", 375, "44642.00", "89284.00"),
]
FIRST_PRICE = {"amount": "54208.00", "currency": "INR"}
BOOK_SUMMARY = "Book flight 6E893 DEL-DXB on 2026-07-01 (FLT-20526D6B) for INR 54,208.00. Not reversible."
HOLD_SUMMARY = "Hold flight 6E893 DEL-DXB on 2026-07-01 (FLT-20526D6B) for INR 54,208.00. Reversible."


def invoice_summary(customer: str, money: str = "INR 54,208.00", items: int = 1) -> str:
    return f"Issue invoice to {customer} for {money} covering {items} item(s). Reversible by voiding."


def reference(tenant_id: Any, session_id: Any, offer_id: str) -> str:
    """§9.4: the first 6 characters of base32(SHA-256("<tenant_id>|<session_id>|<offer_id>"))."""
    digest = hashlib.sha256(f"{tenant_id}|{session_id}|{offer_id}".encode()).digest()
    return base64.b32encode(digest).decode()[:6]


def document_number(prefix: str, tenant_id: uuid.UUID, sequence: int) -> str:
    """data-model.md: ``<prefix>-<T8>-<NNNN>``."""
    return f"{prefix}-{tenant_id.hex[:8].upper()}-{sequence:04d}"


def today() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()


def frames(events: list[Any]) -> list[dict[str, Any]]:
    """The agent events of a stream, each checked against §3.1/§4: the frame's three lines, all twelve keys in
    order, the kind's keys filled and the others null, the id formats."""
    out = []
    for event in agent_events(events):
        assert event.lines[:2] == [f"id: {event.id}", "event: agent_event"] and len(event.lines) == 3, event.lines
        data = event.json
        assert list(data) == KEYS, list(data)
        kind = data["kind"]
        allowed = ALWAYS | FILLED[kind] | ({"error_message"} if kind == "approval_denied" else set())
        assert {key for key, value in data.items() if value is not None} - allowed == set(), data
        assert all(data[key] is not None for key in FILLED[kind] | ALWAYS), data
        assert TIMESTAMP.match(data["timestamp"]), data["timestamp"]
        assert data["turn_id"] in ("replay", "error") or TURN_ID.match(data["turn_id"]), data["turn_id"]
        if data["tool_call_id"] is not None:
            assert TOOL_CALL_ID.match(data["tool_call_id"]), data["tool_call_id"]
        if kind == "text_delta":
            assert data["text"].strip(), data
        out.append(data)
    return out


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the exposition, whatever the order of its labels (0 when the series was never written)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


async def tool_audit(db: Any, tenant_id: uuid.UUID, tool: str) -> list[dict[str, Any]]:
    """The stored audit rows of one kind in the tenant, oldest first."""
    rows = await db.fetch("SELECT actor_id, actor_kind::text, tool, driver, entity_refs, inputs, outputs, error,"
                          " approval_required, approved_by, approved_at, completed_at, status::text FROM audit_events"
                          " WHERE tenant_id = $1 AND tool = $2 ORDER BY started_at, id", tenant_id, tool)
    out = []
    for row in rows:
        item = dict(row)
        for key in ("entity_refs", "inputs", "outputs"):
            item[key] = orjson.loads(item[key])
        out.append(item)
    return out


DUBAI_STAY = {"city": "Dubai", "check_in": "2026-07-01", "check_out": "2026-07-04", "guests": 3}


def _hotel(offer_id: str, name: str, stars: int, nightly: str, price: str) -> dict[str, Any]:
    return {"offer_id": offer_id, "kind": "hotel", "name": name, "city": "Dubai", "star_rating": stars,
            "check_in": "2026-07-01", "check_out": "2026-07-04", "nights": 3, "guests": 3, "rooms": 2,
            "nightly_rate": {"amount": nightly, "currency": "INR"}, "price": {"amount": price, "currency": "INR"}}


# §11.5, the hotel vector, in the HotelOffer shape of §9.1
DUBAI_OFFERS = [_hotel("HTL-FF773A59", "Royal Dubai Inn", 4, "9302.00", "55812.00"),
                _hotel("HTL-C7010406", "Royal Dubai Residency", 4, "14915.00", "89490.00"),
                _hotel("HTL-51B4AE97", "Crown Dubai Inn", 5, "17103.00", "102618.00")]
