"""A chat session's itinerary (chat-and-agent.md §7): stored items → the report's lists and total cost.

The chat tools store items in the shapes of §7.1 (flights and hotels carry their offer snapshot in ``data``
and their price in the price columns; passengers and visas carry their fields in ``data``). The same mapping
serves ``GET /reports/itinerary`` (§7.2) and the ``get_itinerary`` tool (§9.6), so both show one itinerary.
"""

from __future__ import annotations

import decimal
import uuid
from typing import Any, Callable, Mapping, Sequence

import asyncpg

from voyagent.services.sessions import parse_session_id, session_not_found
from voyagent.services.tenant_settings import DEFAULT_CURRENCY

Item = Mapping[str, Any]
PRICED_KINDS = ("flight", "hotel")


def money(amount: decimal.Decimal, currency: str) -> dict[str, Any]:
    """A Money object; ``jsonio`` writes the amount as a two-decimal string."""
    return {"amount": amount, "currency": currency}


def _price(item: Item) -> dict[str, Any]:
    return money(item["price_amount"], item["price_currency"])


def passenger_row(item: Item) -> dict[str, Any]:
    data = item["data"]
    return {"full_name": data["full_name"], "passport_number": data.get("passport_number")}


def flight_row(item: Item) -> dict[str, Any]:
    """The offer snapshot (a FlightOffer, §9.1) under the report's names; ``pnr`` is the item's reference."""
    offer = item["data"]
    return {"offer_id": item["offer_id"], "pnr": item["reference"], "origin": offer["origin"],
            "dest": offer["destination"], "depart": offer["departure_at"], "carrier": offer["carrier"],
            "flight_number": offer["flight_number"], "status": item["status"], "price": _price(item)}


def hotel_row(item: Item) -> dict[str, Any]:
    """The offer snapshot (a HotelOffer, §9.1) under the report's names; ``confirmation`` is the reference."""
    offer = item["data"]
    return {"offer_id": item["offer_id"], "name": offer["name"], "city": offer["city"],
            "check_in": offer["check_in"], "check_out": offer["check_out"], "confirmation": item["reference"],
            "status": item["status"], "price": _price(item)}


def visa_row(item: Item) -> dict[str, Any]:
    data = item["data"]
    return {"country": data.get("country"), "status": data.get("status")}


# kind → (the report's list, the row of that list)
_LISTS: dict[str, tuple[str, Callable[[Item], dict[str, Any]]]] = {
    "passenger": ("passengers", passenger_row),
    "flight": ("flights", flight_row),
    "hotel": ("hotels", hotel_row),
    "visa": ("visas", visa_row),
}


def total_cost(items: Sequence[Item], default_currency: str) -> dict[str, Any]:
    """The sum of all flight and hotel prices, whatever their status, in the currency of the earliest priced one;
    items in another currency are left out. None → ``0.00`` in the tenant's default currency."""
    priced = [item for item in items if item["kind"] in PRICED_KINDS and item["price_amount"] is not None]
    if not priced:
        return money(decimal.Decimal("0.00"), default_currency)
    currency = priced[0]["price_currency"]
    amount = sum((item["price_amount"] for item in priced if item["price_currency"] == currency),
                 decimal.Decimal("0.00"))
    return money(amount, currency)


def itinerary(items: Sequence[Item], default_currency: str) -> dict[str, Any]:
    """``{"passengers", "flights", "hotels", "visas", "total_cost"}`` from items in creation order; every list is
    present, empty when there is nothing (the ``get_itinerary`` output, §9.6)."""
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in _LISTS.values()}
    for item in items:
        name, row = _LISTS[item["kind"]]
        lists[name].append(row(item))
    return {**lists, "total_cost": total_cost(items, default_currency)}


async def report(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: str) -> dict[str, Any]:
    """The Itinerary report of one session of the tenant; a malformed, unknown or other-tenant id is
    ``404 session_not_found``. Run it in one snapshot (the caller's read transaction): the session and its
    items then agree even while a delete commits."""
    parsed = parse_session_id(session_id)
    session = await sql.get_itinerary_session(conn, id=parsed, tenant_id=tenant_id)
    if session is None:
        raise session_not_found()
    items = await sql.list_itinerary_items(conn, session_id=parsed, tenant_id=tenant_id)
    default_currency = session["default_currency"] or DEFAULT_CURRENCY
    return {"tenant_id": str(session["tenant_id"]), "session_id": str(session["id"]),
            **itinerary(items, default_currency)}
