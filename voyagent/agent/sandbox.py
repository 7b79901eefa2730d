"""The sandbox supplier of the offline agent (chat-and-agent.md §11): deterministic flight and hotel offers.

The same search inputs always give the same offers (ids, schedules, prices), derived from SHA-256 of the search
key, so a conversation can be replayed and the conformance vectors of §11.5 hold byte for byte. Money is
``Decimal`` with two places, in INR. ``SandboxSupplier`` waits ``VOYAGENT_SANDBOX_LATENCY_MS`` before every
call, as a real supplier would take time (operations.md §4).

The tools (``voyagent.agent.toolbox``) call it and store what it returns in the offer cache
(``voyagent.agent.offer_cache``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import math
from decimal import Decimal
from typing import Any, Awaitable, Callable

from voyagent.services.itinerary import money

CURRENCY = "INR"
CABIN_MULTIPLIER = {"economy": Decimal(1), "premium_economy": Decimal("1.5"), "business": Decimal(3),
                    "first": Decimal(5)}
CARRIERS = (("AI", "Air India"), ("EK", "Emirates"), ("6E", "IndiGo"), ("UK", "Vistara"), ("QR", "Qatar Airways"),
            ("SQ", "Singapore Airlines"), ("LH", "Lufthansa"), ("BA", "British Airways"))
HOTEL_PREFIXES = ("Grand", "Royal", "Park", "City", "Harbour", "Palm", "Crown", "Garden")
HOTEL_SUFFIXES = ("Hotel", "Inn", "Suites", "Residency")
OFFERS_PER_SEARCH = 3
_TWO_PLACES = Decimal("0.01")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _n(h: str, a: int, b: int) -> int:
    """``n(a, b)`` of §11: the hex digits ``h[a:b]`` as an integer."""
    return int(h[a:b], 16)


def normalise_city(city: str) -> str:
    """§11.3: trim, collapse whitespace, each space-separated word capitalised (``new york`` → ``New York``)."""
    return " ".join(word[:1].upper() + word[1:].lower() for word in city.split())


class _JsonOffer:
    """``output()``: the §9.1 JSON shape; ``from_output()``: back from it (through ``jsonio``), e.g. a cache entry."""

    __slots__ = ()

    def output(self) -> dict[str, Any]:
        return _output(self)

    @classmethod
    def from_output(cls, data: dict[str, Any]) -> Any:
        return _from_output(cls, data)


@dataclasses.dataclass(frozen=True, slots=True)
class FlightOffer(_JsonOffer):
    """A FlightOffer of §9.1; ``output()`` is its JSON shape (Money objects, timestamps)."""

    offer_id: str
    carrier: str
    carrier_name: str
    flight_number: str
    origin: str
    destination: str
    departure_at: dt.datetime
    arrival_at: dt.datetime
    duration_minutes: int
    cabin: str
    adults: int
    price_per_adult: Decimal
    price: Decimal
    kind: str = "flight"


@dataclasses.dataclass(frozen=True, slots=True)
class HotelOffer(_JsonOffer):
    """A HotelOffer of §9.1; ``output()`` is its JSON shape (Money objects, dates)."""

    offer_id: str
    name: str
    city: str
    star_rating: int
    check_in: dt.date
    check_out: dt.date
    nights: int
    guests: int
    rooms: int
    nightly_rate: Decimal
    price: Decimal
    kind: str = "hotel"


Offer = FlightOffer | HotelOffer


def offer_from_output(data: dict[str, Any]) -> Offer:
    """A FlightOffer or HotelOffer from its JSON form, by ``kind``."""
    return FlightOffer.from_output(data) if data["kind"] == "flight" else HotelOffer.from_output(data)


def _output(offer: Any) -> dict[str, Any]:
    """The §9.1 JSON shape of an offer: ``offer_id`` and ``kind`` first, then its fields, amounts as Money."""
    out = {"offer_id": offer.offer_id, "kind": offer.kind}
    for field in dataclasses.fields(offer):
        value = getattr(offer, field.name)
        out.setdefault(field.name, money(value, CURRENCY) if isinstance(value, Decimal) else value)
    return out


def _from_output(cls: Any, data: dict[str, Any]) -> Any:
    """The offer ``_output`` gave, from its JSON form: Money → Decimal, ``*_at`` → datetime, check-in/out → date."""
    values = {}
    for field in dataclasses.fields(cls):
        value = data[field.name]
        if isinstance(value, dict):
            value = Decimal(value["amount"])
        elif field.name.endswith("_at"):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        elif field.name in ("check_in", "check_out"):
            value = dt.date.fromisoformat(value)
        values[field.name] = value
    return cls(**values)


def _ordered(offers: list[Any]) -> list[Any]:
    """§11.3: by price ascending, then offer id ascending."""
    return sorted(offers, key=lambda offer: (offer.price, offer.offer_id))


def search_flights(origin: str, destination: str, depart_date: dt.date, adults: int = 1,
                   cabin: str = "economy") -> list[FlightOffer]:
    """The three offers of §11.1 for a validated ``search_flights`` input, in §11.3 order."""
    multiplier = CABIN_MULTIPLIER[cabin]
    midnight = dt.datetime.combine(depart_date, dt.time(), tzinfo=dt.timezone.utc)
    offers = []
    for i in range(OFFERS_PER_SEARCH):
        key = f"flight|{origin}|{destination}|{depart_date.isoformat()}|{cabin}|{i}"
        h = _sha256(key)
        carrier, carrier_name = CARRIERS[_n(h, 0, 2) % 8]
        departure_at = midnight + dt.timedelta(minutes=360 + (_n(h, 6, 8) % 64) * 15)
        duration = 60 + (_n(h, 8, 12) % 121) * 5
        price_per_adult = (3000 + _n(h, 12, 18) % 47001) * multiplier
        offers.append(FlightOffer(
            offer_id="FLT-" + _sha256(f"{key}|{adults}")[:8].upper(), carrier=carrier, carrier_name=carrier_name,
            flight_number=f"{carrier}{100 + _n(h, 2, 6) % 900}", origin=origin, destination=destination,
            departure_at=departure_at, arrival_at=departure_at + dt.timedelta(minutes=duration),
            duration_minutes=duration, cabin=cabin, adults=adults,
            price_per_adult=price_per_adult.quantize(_TWO_PLACES),
            price=(price_per_adult * adults).quantize(_TWO_PLACES)))
    return _ordered(offers)


def search_hotels(city: str, check_in: dt.date, check_out: dt.date, guests: int = 1) -> list[HotelOffer]:
    """The three offers of §11.2 for a validated ``search_hotels`` input (check_out after check_in), in §11.3
    order; ``city`` is normalised here (§11.3), whoever called."""
    nights = (check_out - check_in).days
    if nights < 1:
        raise ValueError("check_out must be after check_in")
    name_city = normalise_city(city)
    rooms = math.ceil(guests / 2)
    offers = []
    for i in range(OFFERS_PER_SEARCH):
        key = f"hotel|{name_city.lower()}|{check_in.isoformat()}|{check_out.isoformat()}|{i}"
        h = _sha256(key)
        nightly_rate = Decimal(2000 + _n(h, 6, 12) % 18001)
        offers.append(HotelOffer(
            offer_id="HTL-" + _sha256(f"{key}|{guests}")[:8].upper(),
            name=f"{HOTEL_PREFIXES[_n(h, 0, 2) % 8]} {name_city} {HOTEL_SUFFIXES[_n(h, 2, 4) % 4]}",
            city=name_city, star_rating=3 + _n(h, 4, 6) % 3, check_in=check_in, check_out=check_out,
            nights=nights, guests=guests, rooms=rooms, nightly_rate=nightly_rate.quantize(_TWO_PLACES),
            price=(nightly_rate * nights * rooms).quantize(_TWO_PLACES)))
    return _ordered(offers)


class SandboxSupplier:
    """The supplier as the tools call it: every call first waits the configured latency (§11, operations.md §4).

    ``sleep`` is injectable so tests see the wait without spending it.
    """

    def __init__(self, latency_ms: int = 0,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        if not 0 <= latency_ms <= 60000:
            raise ValueError("latency_ms must be within 0-60000")
        self.latency_ms = latency_ms
        self._sleep = sleep

    async def wait(self) -> None:
        """The simulated supplier latency; holds and bookings call it before their effects."""
        if self.latency_ms:
            await self._sleep(self.latency_ms / 1000)

    async def search_flights(self, origin: str, destination: str, depart_date: dt.date, adults: int = 1,
                             cabin: str = "economy") -> list[FlightOffer]:
        await self.wait()
        return search_flights(origin, destination, depart_date, adults, cabin)

    async def search_hotels(self, city: str, check_in: dt.date, check_out: dt.date,
                            guests: int = 1) -> list[HotelOffer]:
        await self.wait()
        return search_hotels(city, check_in, check_out, guests)
