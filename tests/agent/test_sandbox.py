"""The sandbox supplier (chat-and-agent.md §11): conformance vectors, ordering, city normalisation, latency, and
the offer cache in process and in real Redis."""

import datetime as dt
import hashlib
import secrets
import uuid
from decimal import Decimal

import pytest
import redis.asyncio as aioredis

from tests.clock import FakeClock
from tests.conftest import wait_until
from voyagent import jsonio
from voyagent.agent.offer_cache import LocalOfferCache, RedisOfferCache, create_offer_cache, offer_key
from voyagent.agent.sandbox import (
    FlightOffer,
    HotelOffer,
    SandboxSupplier,
    normalise_city,
    offer_from_output,
    search_flights,
    search_hotels,
)
from voyagent.services.itinerary_items import booking_reference
from voyagent.services.itinerary import itinerary

JULY_1 = dt.date(2026, 7, 1)


# §11.5, first vector: DEL→DXB 2026-07-01, 2 adults, economy.
def test_vector_flights_two_adults_economy():
    offers = search_flights("DEL", "DXB", JULY_1, 2, "economy")
    rows = [(o.offer_id, o.flight_number, jsonio.timestamp(o.departure_at), jsonio.timestamp(o.arrival_at),
             o.duration_minutes, str(o.price_per_adult), str(o.price)) for o in offers]
    assert rows == [
        ("FLT-20526D6B", "6E893", "2026-07-01T07:00:00Z", "2026-07-01T16:05:00Z", 545, "27104.00", "54208.00"),
        ("FLT-19876437", "BA970", "2026-07-01T12:30:00Z", "2026-07-01T15:05:00Z", 155, "36363.00", "72726.00"),
        ("FLT-8A11C423", "6E522", "2026-07-01T09:45:00Z", "2026-07-01T16:00:00Z", 375, "44642.00", "89284.00"),
    ]
    first = offers[0]
    assert (first.carrier, first.carrier_name, first.origin, first.destination, first.cabin, first.adults) == (
        "6E", "IndiGo", "DEL", "DXB", "economy", 2)
    assert offers[1].carrier_name == "British Airways"


# §11.5, second vector: same route and date, 1 adult, business.
def test_vector_flights_one_adult_business():
    offers = search_flights("DEL", "DXB", JULY_1, 1, "business")
    assert [(o.offer_id, o.flight_number, str(o.price)) for o in offers] == [
        ("FLT-8FE0F5FE", "BA276", "11592.00"), ("FLT-B0D35AA3", "UK353", "32763.00"),
        ("FLT-66D0BC38", "BA292", "146448.00")]
    assert all(o.price == o.price_per_adult and o.cabin == "business" for o in offers)


# §11.5, third vector: Dubai 2026-07-01 → 2026-07-04, 3 guests (3 nights, 2 rooms).
def test_vector_hotels_dubai_three_guests():
    offers = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)
    assert [(o.offer_id, o.name, o.star_rating, str(o.nightly_rate), str(o.price)) for o in offers] == [
        ("HTL-FF773A59", "Royal Dubai Inn", 4, "9302.00", "55812.00"),
        ("HTL-C7010406", "Royal Dubai Residency", 4, "14915.00", "89490.00"),
        ("HTL-51B4AE97", "Crown Dubai Inn", 5, "17103.00", "102618.00")]
    assert all((o.nights, o.rooms, o.guests, o.city) == (3, 2, 3, "Dubai") for o in offers)


# §9.4's example reference.
def test_booking_reference_example():
    assert booking_reference(uuid.UUID("0190a1b2-0000-7000-8000-000000000001"),
                             "0190a1b2-0000-7000-8000-000000000002", "FLT-ABCDEF12") == "IMJBYR"


def test_flight_output_shape_is_the_flight_offer_of_9_1():
    offer = search_flights("DEL", "DXB", JULY_1, 2, "economy")[0]
    wire = jsonio.loads(jsonio.dumps(offer.output()))
    assert wire == {
        "offer_id": "FLT-20526D6B", "kind": "flight", "carrier": "6E", "carrier_name": "IndiGo",
        "flight_number": "6E893", "origin": "DEL", "destination": "DXB", "departure_at": "2026-07-01T07:00:00Z",
        "arrival_at": "2026-07-01T16:05:00Z", "duration_minutes": 545, "cabin": "economy", "adults": 2,
        "price_per_adult": {"amount": "27104.00", "currency": "INR"},
        "price": {"amount": "54208.00", "currency": "INR"}}
    assert isinstance(offer.price, Decimal) and offer_from_output(wire) == offer


def test_hotel_output_shape_is_the_hotel_offer_of_9_1():
    offer = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)[0]
    wire = jsonio.loads(jsonio.dumps(offer.output()))
    assert wire == {
        "offer_id": "HTL-FF773A59", "kind": "hotel", "name": "Royal Dubai Inn", "city": "Dubai", "star_rating": 4,
        "check_in": "2026-07-01", "check_out": "2026-07-04", "nights": 3, "guests": 3, "rooms": 2,
        "nightly_rate": {"amount": "9302.00", "currency": "INR"},
        "price": {"amount": "55812.00", "currency": "INR"}}
    assert offer_from_output(wire) == offer


def test_deterministic_and_sorted_by_price_then_id():
    for cabin in ("economy", "premium_economy", "business", "first"):
        offers = search_flights("BOM", "LHR", dt.date(2027, 1, 31), 9, cabin)
        assert offers == search_flights("BOM", "LHR", dt.date(2027, 1, 31), 9, cabin)
        assert [(o.price, o.offer_id) for o in offers] == sorted((o.price, o.offer_id) for o in offers)
        for o in offers:
            assert o.price == o.price_per_adult * 9 and o.price_per_adult == o.price_per_adult.quantize(Decimal("0.01"))
            assert dt.time(6, 0) <= o.departure_at.time() <= dt.time(21, 45) and 60 <= o.duration_minutes <= 660
            assert o.arrival_at - o.departure_at == dt.timedelta(minutes=o.duration_minutes)


def test_cabin_multiplier_applies_to_the_cabins_own_key():
    # §11.1 by hand for premium_economy (×1.5) and first (×5): the cabin is part of the key.
    for cabin, multiplier in (("premium_economy", Decimal("1.5")), ("first", Decimal(5))):
        expected = []
        for i in range(3):
            h = hashlib.sha256(f"flight|DEL|DXB|2026-07-01|{cabin}|{i}".encode()).hexdigest()
            expected.append((3000 + int(h[12:18], 16) % 47001) * multiplier)
        offers = search_flights("DEL", "DXB", JULY_1, 1, cabin)
        assert sorted(o.price_per_adult for o in offers) == sorted(expected)


def test_offer_id_depends_on_adults_but_schedule_does_not():
    one, two = search_flights("DEL", "DXB", JULY_1, 1, "economy"), search_flights("DEL", "DXB", JULY_1, 2, "economy")
    assert {o.offer_id for o in one}.isdisjoint(o.offer_id for o in two)
    assert sorted(o.flight_number for o in one) == sorted(o.flight_number for o in two)


def test_city_normalisation_and_key():
    assert normalise_city("  new   YORK ") == "New York"
    assert normalise_city("o'hare-ville x") == "O'hare-ville X"
    plain = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)
    assert search_hotels("  dUBAI ", JULY_1, dt.date(2026, 7, 4), 3) == plain  # same key, same offers
    new_york = search_hotels("new  york", JULY_1, dt.date(2026, 7, 2), 1)
    assert all(o.city == "New York" and " New York " in o.name for o in new_york)


def test_hotel_rooms_and_guests_change_price_and_id():
    check_out = dt.date(2026, 7, 3)
    one, two = search_hotels("Goa", JULY_1, check_out, 1), search_hotels("Goa", JULY_1, check_out, 2)
    nine = search_hotels("Goa", JULY_1, check_out, 9)
    assert [o.rooms for o in one + two + nine] == [1] * 6 + [5] * 3
    assert [o.price for o in one] == [o.price for o in two]  # 2 guests still fit in one room
    assert [o.price for o in nine] == [o.price * 5 for o in one]
    assert {o.offer_id for o in one}.isdisjoint(o.offer_id for o in two)
    assert all(o.price == o.nightly_rate * 2 * o.rooms and 3 <= o.star_rating <= 5 for o in nine)


def test_hotel_refuses_check_out_not_after_check_in():
    with pytest.raises(ValueError):
        search_hotels("Goa", JULY_1, JULY_1, 1)


async def test_supplier_waits_the_latency_before_every_call():
    waits = []

    async def sleep(seconds):
        waits.append(seconds)

    supplier = SandboxSupplier(250, sleep=sleep)
    flights = await supplier.search_flights("DEL", "DXB", JULY_1, 2, "economy")
    hotels = await supplier.search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)
    await supplier.wait()  # what a hold or a booking calls
    assert waits == [0.25, 0.25, 0.25]
    assert flights[0].offer_id == "FLT-20526D6B" and hotels[0].offer_id == "HTL-FF773A59"
    silent = SandboxSupplier(0, sleep=sleep)
    await silent.search_flights("DEL", "DXB", JULY_1)
    assert waits == [0.25, 0.25, 0.25]
    for bad in (-1, 60001):
        with pytest.raises(ValueError):
            SandboxSupplier(bad)


# Offer cache


@pytest.fixture
def prefix(redis_prefix):
    return f"{redis_prefix}{secrets.token_hex(4)}:"


@pytest.fixture
async def redis_client(redis_url):
    client = aioredis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def cache(request, redis_available, prefix):
    if request.param == "local":
        yield LocalOfferCache(1800, prefix)
        return
    if not redis_available:
        pytest.skip("no Redis server at 127.0.0.1:6379 (set VOYAGENT_TEST_REDIS_URL); Redis-only variant")
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    yield RedisOfferCache(client, prefix, 1800)
    await client.aclose()


async def test_cache_returns_the_tenants_offers_only(cache):
    tenant, other = uuid.uuid4(), uuid.uuid4()
    flights = search_flights("DEL", "DXB", JULY_1, 2, "economy")
    hotels = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)
    await cache.put(tenant, flights + hotels)
    for offer in flights + hotels:
        assert await cache.get(tenant, offer.offer_id) == offer
    assert isinstance(await cache.get(tenant, "FLT-20526D6B"), FlightOffer)
    assert isinstance(await cache.get(tenant, "HTL-FF773A59"), HotelOffer)
    assert await cache.get(other, "FLT-20526D6B") is None
    assert await cache.get(tenant, "FLT-00000000") is None


async def test_redis_cache_key_value_and_native_expiry(redis_client, prefix):
    tenant = uuid.uuid4()
    cache = RedisOfferCache(redis_client, prefix, 1800)
    offer = search_flights("DEL", "DXB", JULY_1, 2, "economy")[0]
    await cache.put(tenant, [offer])
    key = f"{prefix}offer:{tenant}:FLT-20526D6B"
    assert key == offer_key(prefix, tenant, "FLT-20526D6B")
    assert jsonio.loads(await redis_client.get(key)) == jsonio.loads(jsonio.dumps(offer.output()))
    assert 1_790_000 < await redis_client.pttl(key) <= 1_800_000
    await cache.put(tenant, [offer])  # searching again renews the lifetime, same value
    assert await redis_client.pttl(key) > 1_790_000
    assert await redis_client.pexpire(key, 1)  # Redis owns dropping the key: cut the TTL short and wait for it

    async def gone() -> bool:
        return not await redis_client.exists(key)

    await wait_until(gone, what=f"redis dropping {key}")
    assert await cache.get(tenant, "FLT-20526D6B") is None
    await redis_client.set(key, b"{not json", ex=60)
    assert await cache.get(tenant, "FLT-20526D6B") is None  # a foreign value is a miss, not an error


async def test_local_cache_expires_at_the_ttl():
    clock = FakeClock(1000.0)
    cache = LocalOfferCache(1800, timer=clock)
    tenant = uuid.uuid4()
    offer = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)[0]
    await cache.put(tenant, [offer])
    clock.advance(1799.999)
    assert await cache.get(tenant, offer.offer_id) == offer
    clock.advance(0.001)
    assert await cache.get(tenant, offer.offer_id) is None
    await cache.put(tenant, [offer])  # searching again recreates it
    assert await cache.get(tenant, offer.offer_id) == offer
    clock.advance(3600)
    await cache.put(tenant, [])  # a later write sweeps expired entries
    assert len(cache) == 0


async def test_unreachable_redis_is_a_miss_and_never_fails_a_search():
    client = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    try:
        cache = RedisOfferCache(client, "voyagent:", 1800)
        offer = search_flights("DEL", "DXB", JULY_1, 2, "economy")[0]
        await cache.put(uuid.uuid4(), [offer])  # reported, not raised
        assert await cache.get(uuid.uuid4(), offer.offer_id) is None
        assert cache.redis_state.down
    finally:
        await client.aclose()


def test_factory_is_in_process_without_redis():
    local = create_offer_cache(None, "voyagent:", 60)
    assert isinstance(local, LocalOfferCache) and local.ttl_seconds == 60


def test_factory_picks_redis_when_configured(redis_client, prefix):
    assert isinstance(create_offer_cache(redis_client, prefix, 60), RedisOfferCache)


def test_offer_snapshots_give_the_itinerary_report_example_of_7_2():
    # The tools store an offer's JSON form as the item's snapshot; the report (§7.2) reads it back.
    flight = search_flights("DEL", "DXB", JULY_1, 2, "economy")[0]
    hotel = search_hotels("Dubai", JULY_1, dt.date(2026, 7, 4), 3)[0]
    items = [{"kind": offer.kind, "offer_id": offer.offer_id, "reference": reference, "status": status,
              "data": jsonio.loads(jsonio.dumps(offer.output())), "price_amount": offer.price,
              "price_currency": "INR"}
             for offer, reference, status in ((flight, "IMJBYR", "booked"), (hotel, None, "planned"))]
    report = jsonio.loads(jsonio.dumps(itinerary(items, "INR")))
    assert report["flights"] == [{"offer_id": "FLT-20526D6B", "pnr": "IMJBYR", "origin": "DEL", "dest": "DXB",
                                  "depart": "2026-07-01T07:00:00Z", "carrier": "6E", "flight_number": "6E893",
                                  "status": "booked", "price": {"amount": "54208.00", "currency": "INR"}}]
    assert report["hotels"] == [{"offer_id": "HTL-FF773A59", "name": "Royal Dubai Inn", "city": "Dubai",
                                 "check_in": "2026-07-01", "check_out": "2026-07-04", "confirmation": None,
                                 "status": "planned", "price": {"amount": "55812.00", "currency": "INR"}}]
    assert report["total_cost"] == {"amount": "110020.00", "currency": "INR"}
