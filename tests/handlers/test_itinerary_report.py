"""GET /reports/itinerary as a client meets it (chat-and-agent.md §7.2; endpoints.md, Reports).

Turns are not built yet, so items are arranged directly in the shapes the chat tools store (§7.1, §9.2–9.4):
flights and hotels with their offer snapshot in ``data`` and their price in the price columns, passengers and
visas with their fields in ``data``.
"""

import datetime as dt
import decimal
import json
import uuid

import pytest
import yaml

from tests.test_openapi_document import OPENAPI_PATH, json_validator
from voyagent.contract import ROLES
from voyagent.ids import new_id

REPORT_KEYS = {"tenant_id", "session_id", "passengers", "flights", "hotels", "visas", "total_cost"}
T0 = dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.timezone.utc)
MALFORMED_IDS = ["nope", "1", "0190a1b2-0000-7000-8000-00000000000g", "0190a1b20000700080000000000000ff",
                 "{0190a1b2-0000-7000-8000-000000000002}", "'; SELECT 1; --", "x" * 5000]

FLIGHT_OFFER = {
    "offer_id": "FLT-20526D6B", "kind": "flight", "carrier": "6E", "carrier_name": "IndiGo",
    "flight_number": "6E893", "origin": "DEL", "destination": "DXB", "departure_at": "2026-07-01T07:00:00Z",
    "arrival_at": "2026-07-01T10:35:00Z", "duration_minutes": 215, "cabin": "economy", "adults": 2,
    "price_per_adult": {"amount": "27104.00", "currency": "INR"}, "price": {"amount": "54208.00", "currency": "INR"}}
HOTEL_OFFER = {
    "offer_id": "HTL-FF773A59", "kind": "hotel", "name": "Royal Dubai Inn", "city": "Dubai", "star_rating": 4,
    "check_in": "2026-07-01", "check_out": "2026-07-04", "nights": 3, "guests": 2, "rooms": 1,
    "nightly_rate": {"amount": "18604.00", "currency": "INR"}, "price": {"amount": "55812.00", "currency": "INR"}}
RETURN_OFFER = {
    **FLIGHT_OFFER, "offer_id": "FLT-0A1B2C3D", "carrier": "EK", "carrier_name": "Emirates",
    "flight_number": "EK512", "origin": "DXB", "destination": "DEL", "departure_at": "2026-07-04T21:45:00Z",
    "arrival_at": "2026-07-05T02:20:00Z", "price": {"amount": "61000.50", "currency": "INR"}}


@pytest.fixture(scope="module")
def itinerary_schema():
    with OPENAPI_PATH.open(encoding="utf-8") as handle:
        return json_validator(yaml.safe_load(handle), "#/components/schemas/Itinerary")


async def detail(response):
    return (await response.json())["detail"]


async def report(client, headers, session_id):
    return await client.get("/reports/itinerary", params={"session_id": str(session_id)}, headers=headers)


async def ok_report(client, user, session_id, itinerary_schema=None):
    response = await report(client, user.headers, session_id)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/json"
    body = await response.json()
    assert set(body) == REPORT_KEYS
    if itinerary_schema is not None:
        errors = [error.message for error in itinerary_schema.iter_errors(body)]
        assert errors == []
    return body


async def add_session(db, user, *, created_at=None):
    session_id = new_id()
    await db.execute("INSERT INTO sessions (id, tenant_id, actor_id, actor_kind, created_at, updated_at) "
                     "VALUES ($1, $2, $3, 'human', coalesce($4, now()), coalesce($4, now()))",
                     session_id, user.tenant_id, user.id, created_at)
    return session_id


async def add_item(db, user, session_id, kind, data, *, created_at, offer_id=None, status=None, reference=None,
                   price=None, currency=None, item_id=None):
    """One itinerary_items row as the chat tools write it; ``price`` is text (NUMERIC), never a float."""
    item_id = item_id or new_id()
    await db.execute(
        "INSERT INTO itinerary_items (id, tenant_id, session_id, kind, offer_id, status, reference, data,"
        " price_amount, price_currency, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4::itinerary_item_kind, $5, $6::itinerary_item_status, $7, $8::jsonb,"
        " $9::numeric, $10, $11, $11)",
        item_id, user.tenant_id, session_id, kind, offer_id, status, reference, json.dumps(data), price, currency,
        created_at)
    return item_id


async def add_offer(db, user, session_id, offer, *, created_at, status="planned", reference=None, price=None,
                    currency=None):
    return await add_item(db, user, session_id, offer["kind"], offer, created_at=created_at,
                          offer_id=offer["offer_id"], status=status, reference=reference,
                          price=price or offer["price"]["amount"], currency=currency or offer["price"]["currency"])


async def add_passenger(db, user, session_id, full_name, passport_number, *, created_at):
    return await add_item(db, user, session_id, "passenger",
                          {"full_name": full_name, "passport_number": passport_number}, created_at=created_at)


def at(minutes):
    return T0 + dt.timedelta(minutes=minutes)


async def test_the_report_maps_every_item_kind_in_creation_order(client, admin, db, itinerary_schema):
    session_id = await add_session(db, admin)
    # Inserted out of creation order: the report follows created_at, not the physical order of the rows.
    await add_offer(db, admin, session_id, RETURN_OFFER, created_at=at(5), status="held", reference="Q7ZK2M")
    await add_passenger(db, admin, session_id, "Asha Rao", "P1234567", created_at=at(0))
    await add_offer(db, admin, session_id, HOTEL_OFFER, created_at=at(3))
    await add_offer(db, admin, session_id, FLIGHT_OFFER, created_at=at(2), status="booked", reference="IMJBYR")
    await add_passenger(db, admin, session_id, "Vikram Rao", None, created_at=at(1))
    await add_item(db, admin, session_id, "visa", {"country": "AE", "status": "applied"}, created_at=at(4))
    await add_item(db, admin, session_id, "visa", {}, created_at=at(6))

    body = await ok_report(client, admin, session_id, itinerary_schema)

    assert body == {
        "tenant_id": str(admin.tenant_id),
        "session_id": str(session_id),
        "passengers": [{"full_name": "Asha Rao", "passport_number": "P1234567"},
                       {"full_name": "Vikram Rao", "passport_number": None}],
        "flights": [
            {"offer_id": "FLT-20526D6B", "pnr": "IMJBYR", "origin": "DEL", "dest": "DXB",
             "depart": "2026-07-01T07:00:00Z", "carrier": "6E", "flight_number": "6E893", "status": "booked",
             "price": {"amount": "54208.00", "currency": "INR"}},
            {"offer_id": "FLT-0A1B2C3D", "pnr": "Q7ZK2M", "origin": "DXB", "dest": "DEL",
             "depart": "2026-07-04T21:45:00Z", "carrier": "EK", "flight_number": "EK512", "status": "held",
             "price": {"amount": "61000.50", "currency": "INR"}}],
        "hotels": [
            {"offer_id": "HTL-FF773A59", "name": "Royal Dubai Inn", "city": "Dubai", "check_in": "2026-07-01",
             "check_out": "2026-07-04", "confirmation": None, "status": "planned",
             "price": {"amount": "55812.00", "currency": "INR"}}],
        "visas": [{"country": "AE", "status": "applied"}, {"country": None, "status": None}],
        "total_cost": {"amount": "171020.50", "currency": "INR"},
    }


async def test_the_spec_example_reads_back_exactly(client, admin, db, itinerary_schema):
    session_id = await add_session(db, admin)
    await add_passenger(db, admin, session_id, "Asha Rao", "P1234567", created_at=at(0))
    await add_offer(db, admin, session_id, FLIGHT_OFFER, created_at=at(1), status="booked", reference="IMJBYR")
    await add_offer(db, admin, session_id, HOTEL_OFFER, created_at=at(2))

    body = await ok_report(client, admin, session_id, itinerary_schema)

    assert body["visas"] == []
    assert body["total_cost"] == {"amount": "110020.00", "currency": "INR"}
    assert [flight["pnr"] for flight in body["flights"]] == ["IMJBYR"]
    assert [hotel["confirmation"] for hotel in body["hotels"]] == [None]


async def test_items_created_at_the_same_instant_keep_their_time_ordered_ids_order(client, admin, db):
    """Items one tool call writes in one transaction share created_at; the UUIDv7 id orders them."""
    session_id = await add_session(db, admin)
    first, second, third = sorted(new_id() for _ in range(3))
    for item_id, name in [(third, "Third"), (first, "First"), (second, "Second")]:
        await add_item(db, admin, session_id, "passenger", {"full_name": name, "passport_number": None},
                       created_at=T0, item_id=item_id)

    body = await ok_report(client, admin, session_id)

    assert [p["full_name"] for p in body["passengers"]] == ["First", "Second", "Third"]


async def test_total_cost_counts_every_status_in_the_earliest_priced_items_currency(client, admin, db):
    session_id = await add_session(db, admin)
    await add_passenger(db, admin, session_id, "Asha Rao", None, created_at=at(0))  # no price: not counted
    await add_offer(db, admin, session_id, {**HOTEL_OFFER, "offer_id": "HTL-00000001"}, created_at=at(3),
                    status="booked", reference="AAAAAA", price="100.10", currency="USD")
    await add_offer(db, admin, session_id, FLIGHT_OFFER, created_at=at(2), price="5000.00", currency="INR")
    await add_offer(db, admin, session_id, RETURN_OFFER, created_at=at(1), status="held", reference="BBBBBB",
                    price="0.20", currency="USD")  # earliest priced item: USD decides
    await add_offer(db, admin, session_id, HOTEL_OFFER, created_at=at(4), price="0.05", currency="USD")

    body = await ok_report(client, admin, session_id)

    assert body["total_cost"] == {"amount": "100.35", "currency": "USD"}
    # The INR flight is still listed with its own price; it is only left out of the sum.
    assert [f["price"] for f in body["flights"]] == [{"amount": "0.20", "currency": "USD"},
                                                     {"amount": "5000.00", "currency": "INR"}]


async def test_an_itinerary_without_flights_or_hotels_costs_zero_in_the_tenant_default_currency(
        client, admin, db):
    await db.execute("UPDATE tenant_settings SET default_currency = 'AED' WHERE tenant_id = $1", admin.tenant_id)
    session_id = await add_session(db, admin)
    await add_passenger(db, admin, session_id, "Asha Rao", "P1234567", created_at=at(0))
    await add_item(db, admin, session_id, "visa", {"country": "AE", "status": "issued"}, created_at=at(1))

    body = await ok_report(client, admin, session_id)

    assert body["total_cost"] == {"amount": "0.00", "currency": "AED"}
    assert (body["flights"], body["hotels"]) == ([], [])


async def test_an_empty_session_has_empty_lists_never_null(client, make_user, itinerary_schema, db):
    viewer = await make_user("viewer")
    session_id = await add_session(db, viewer)

    body = await ok_report(client, viewer, session_id, itinerary_schema)

    assert body == {"tenant_id": str(viewer.tenant_id), "session_id": str(session_id), "passengers": [],
                    "flights": [], "hotels": [], "visas": [], "total_cost": {"amount": "0.00", "currency": "INR"}}


async def test_a_tenant_without_a_settings_row_gets_the_default_currency_and_no_row(client, admin, db):
    await db.execute("DELETE FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id)
    session_id = await add_session(db, admin)

    body = await ok_report(client, admin, session_id)

    assert body["total_cost"] == {"amount": "0.00", "currency": "INR"}
    assert await db.fetchval("SELECT count(*) FROM tenant_settings WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_only_the_named_sessions_items_are_reported(client, admin, db):
    session_id, other_id = await add_session(db, admin), await add_session(db, admin)
    await add_offer(db, admin, other_id, FLIGHT_OFFER, created_at=at(0))
    await add_passenger(db, admin, other_id, "Someone Else", None, created_at=at(0))
    await add_offer(db, admin, session_id, HOTEL_OFFER, created_at=at(1))

    body = await ok_report(client, admin, session_id)

    assert (body["passengers"], body["flights"]) == ([], [])
    assert [hotel["offer_id"] for hotel in body["hotels"]] == ["HTL-FF773A59"]
    assert body["total_cost"] == {"amount": "55812.00", "currency": "INR"}


async def test_an_upper_case_session_id_names_the_same_session(client, admin, db):
    session_id = await add_session(db, admin)
    await add_offer(db, admin, session_id, HOTEL_OFFER, created_at=at(0))

    body = await ok_report(client, admin, str(session_id).upper())

    assert body["session_id"] == str(session_id)
    assert len(body["hotels"]) == 1


async def test_unknown_and_deleted_sessions_are_session_not_found(client, admin, db):
    session_id = await add_session(db, admin)
    await add_offer(db, admin, session_id, FLIGHT_OFFER, created_at=at(0))
    await db.execute("DELETE FROM sessions WHERE id = $1", session_id)

    for unknown in (session_id, uuid.uuid4(), "00000000-0000-0000-0000-000000000000"):
        response = await report(client, admin.headers, unknown)
        assert (response.status, await detail(response)) == (404, "session_not_found"), unknown


@pytest.mark.parametrize("malformed", MALFORMED_IDS)
async def test_a_session_id_that_is_not_a_uuid_is_session_not_found(client, admin, malformed):
    response = await report(client, admin.headers, malformed)

    assert (response.status, await detail(response)) == (404, "session_not_found")


async def test_another_tenants_session_is_reported_like_an_unknown_one(client, admin, make_user, db):
    stranger = await make_user("agency_admin")
    foreign_id = await add_session(db, stranger)
    await add_offer(db, stranger, foreign_id, FLIGHT_OFFER, created_at=at(0), status="booked", reference="IMJBYR")

    response = await report(client, admin.headers, foreign_id)

    assert (response.status, await detail(response)) == (404, "session_not_found")
    assert (await report(client, stranger.headers, foreign_id)).status == 200


async def test_a_missing_or_empty_session_id_is_a_422_list(client, admin):
    missing = await client.get("/reports/itinerary", headers=admin.headers)
    empty = await client.get("/reports/itinerary?session_id=", headers=admin.headers)

    assert missing.status == 422
    assert [(item["loc"], item["type"]) for item in await detail(missing)] == [(["query", "session_id"], "missing")]
    assert empty.status == 422
    assert [item["loc"] for item in await detail(empty)] == [["query", "session_id"]]


async def test_a_session_id_with_a_nul_is_a_422(client, admin):
    response = await client.get("/reports/itinerary?session_id=%00", headers=admin.headers)

    assert response.status == 422
    assert [item["loc"] for item in await detail(response)] == [["query", "session_id"]]


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_reads_the_report(client, make_user, db, role):
    user = await make_user(role)
    session_id = await add_session(db, user)
    await add_passenger(db, user, session_id, "Asha Rao", None, created_at=at(0))

    body = await ok_report(client, user, session_id)

    assert body["passengers"] == [{"full_name": "Asha Rao", "passport_number": None}]


@pytest.mark.parametrize("scopes", [["reports:read"], ["full"], ["reports:read", "chat:read"]])
async def test_api_keys_with_reports_read_read_the_creators_tenant(client, make_user, make_api_key, db, scopes):
    viewer = await make_user("viewer")
    key = await make_api_key(viewer, scopes)
    session_id = await add_session(db, viewer)
    await add_offer(db, viewer, session_id, HOTEL_OFFER, created_at=at(0))

    response = await report(client, key.headers, session_id)

    assert response.status == 200, await response.text()
    assert (await response.json())["total_cost"] == {"amount": "55812.00", "currency": "INR"}


@pytest.mark.parametrize("scopes", [["chat:read"], ["chat:write"], ["enquiries:read", "audit:read", "tenant:write"]])
async def test_api_keys_without_reports_read_are_insufficient_scope(client, admin, make_api_key, db, scopes):
    key = await make_api_key(admin, scopes)
    session_id = await add_session(db, admin)

    response = await report(client, key.headers, session_id)

    assert (response.status, await detail(response)) == (403, "insufficient_scope")


async def test_an_api_key_of_another_tenant_gets_session_not_found(client, admin, make_user, make_api_key, db):
    session_id = await add_session(db, admin)
    stranger_key = await make_api_key(await make_user("agency_admin"), ["reports:read"])

    response = await report(client, stranger_key.headers, session_id)

    assert (response.status, await detail(response)) == (404, "session_not_found")


async def test_scope_is_checked_before_the_session_id(client, admin, make_api_key):
    key = await make_api_key(admin, ["chat:read"])

    response = await report(client, key.headers, "nope")

    assert (response.status, await detail(response)) == (403, "insufficient_scope")


async def test_no_credential_is_401(client, admin, db):
    session_id = await add_session(db, admin)

    response = await report(client, {}, session_id)

    assert (response.status, await detail(response)) == (401, "unauthorized")


async def test_large_amounts_keep_every_cent(client, admin, db):
    """NUMERIC(14,2) prices summed as Decimal: no float rounding at any size."""
    session_id = await add_session(db, admin)
    for minute in range(3):
        await add_offer(db, admin, session_id, {**HOTEL_OFFER, "offer_id": f"HTL-0000000{minute}"},
                        created_at=at(minute), price="999999999999.99", currency="INR")

    body = await ok_report(client, admin, session_id)

    assert body["total_cost"] == {"amount": str(decimal.Decimal("999999999999.99") * 3), "currency": "INR"}
    assert all(h["price"]["amount"] == "999999999999.99" for h in body["hotels"])
