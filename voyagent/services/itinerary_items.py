"""The itinerary tools' effects (chat-and-agent.md §9.2–§9.5): offers and passengers added to a session, holds,
bookings with their bill, and the invoice of booked items.

Every function runs in the caller's transaction. The precondition checks (``*_subject``) lock the rows they read,
so the gateway's check at request time and the same check again at execution (§9.4) see what the effects change;
a failed check is a ``ToolFailure`` with the contract's code.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import hashlib
import uuid
from typing import Any, Mapping, Protocol, Sequence

import asyncpg

from voyagent.ids import new_id
from voyagent.services import billing
from voyagent.services.itinerary import money
from voyagent.services.tools import ToolFailure

Item = Mapping[str, Any]


class Offer(Protocol):
    """A supplier's offer as the itinerary keeps it (``voyagent.agent.sandbox`` makes them)."""

    kind: str
    offer_id: str

    def output(self) -> dict[str, Any]:
        """The offer's JSON object (FlightOffer / HotelOffer of §9.1), with its ``price``."""


def booking_reference(tenant_id: object, session_id: object, offer_id: str) -> str:
    """§9.4: the PNR / confirmation code, first 6 characters of base32(SHA-256("<tenant>|<session>|<offer>"))."""
    digest = hashlib.sha256(f"{tenant_id}|{session_id}|{offer_id}".encode("utf-8")).digest()
    return base64.b32encode(digest).decode("ascii")[:6]


@dataclasses.dataclass(frozen=True, slots=True)
class Where:
    """The session whose itinerary a tool reads or changes."""

    tenant_id: uuid.UUID
    session_id: uuid.UUID


def item_output(item: Item) -> dict[str, Any]:
    """The ItineraryItem of §7.1 (outputs of add_to_itinerary, hold_offer, book_offer)."""
    return {"item_id": str(item["id"]), "kind": item["kind"], "offer_id": item["offer_id"], "status": item["status"],
            "reference": item["reference"], "price": money(item["price_amount"], item["price_currency"]),
            "offer": item["data"]}


def _not_in_itinerary(offer_id: str) -> ToolFailure:
    return ToolFailure("offer_not_in_itinerary", f"{offer_id} is not in this session's itinerary; add it first.")


# --- add_to_itinerary and add_passenger (§9.2, §9.3) ----------------------------------------------------


async def offer_in_session(conn: asyncpg.Connection, sql: Any, where: Where, offer_id: str) -> Item | None:
    """The session's item of ``offer_id`` (locked), or None."""
    return await sql.get_session_offer_item(conn, tenant_id=where.tenant_id, session_id=where.session_id,
                                            offer_id=offer_id)


async def require_not_in_itinerary(conn: asyncpg.Connection, sql: Any, where: Where, offer_id: str) -> None:
    if await offer_in_session(conn, sql, where, offer_id) is not None:
        raise ToolFailure("already_in_itinerary", f"{offer_id} is already in this session's itinerary.")


async def add_offer(conn: asyncpg.Connection, sql: Any, where: Where, offer: Offer) -> dict[str, Any]:
    """A ``planned`` item holding the offer's snapshot and price; ``already_in_itinerary`` when it is there."""
    snapshot = offer.output()
    price = snapshot["price"]
    item = await sql.insert_offer_item(conn, id=new_id(), tenant_id=where.tenant_id, session_id=where.session_id,
                                       kind=offer.kind, offer_id=offer.offer_id, data=snapshot,
                                       price_amount=price["amount"], price_currency=price["currency"])
    if item is None:  # added by a concurrent call since the check
        raise ToolFailure("already_in_itinerary", f"{offer.offer_id} is already in this session's itinerary.")
    return {"ok": True, "item": item_output(item)}


async def add_passenger(conn: asyncpg.Connection, sql: Any, where: Where, full_name: str,
                        passport_number: str | None) -> dict[str, Any]:
    """A passenger item (the same name may be added twice)."""
    item = await sql.insert_passenger_item(conn, id=new_id(), tenant_id=where.tenant_id,
                                           session_id=where.session_id,
                                           data={"full_name": full_name, "passport_number": passport_number})
    return {"ok": True, "passenger": {"item_id": str(item["id"]), "full_name": item["data"]["full_name"],
                                      "passport_number": item["data"]["passport_number"]}}


# --- hold_offer and book_offer (§9.4) -------------------------------------------------------------------


async def _item_not_yet(conn: asyncpg.Connection, sql: Any, where: Where, offer_id: str,
                        refused: tuple[str, ...]) -> Item:
    """The session's item of the offer unless its status is one of ``refused`` (``already_<status>``)."""
    item = await offer_in_session(conn, sql, where, offer_id)
    if item is None:
        raise _not_in_itinerary(offer_id)
    if item["status"] in refused:
        raise ToolFailure(f"already_{item['status']}", f"{offer_id} is already {item['status']}.")
    return item


async def holdable_item(conn: asyncpg.Connection, sql: Any, where: Where, offer_id: str) -> Item:
    """The session's ``planned`` item of the offer; else ``offer_not_in_itinerary`` / ``already_held`` /
    ``already_booked``."""
    return await _item_not_yet(conn, sql, where, offer_id, ("held", "booked"))


async def bookable_item(conn: asyncpg.Connection, sql: Any, where: Where, offer_id: str) -> Item:
    """The session's ``planned`` or ``held`` item of the offer; else ``offer_not_in_itinerary`` /
    ``already_booked``."""
    return await _item_not_yet(conn, sql, where, offer_id, ("booked",))


def _reference(where: Where, item: Item) -> str:
    """The item's reference, or the one §9.4 derives when it has none yet."""
    return item["reference"] or booking_reference(where.tenant_id, where.session_id, item["offer_id"])


async def hold(conn: asyncpg.Connection, sql: Any, where: Where, item: Item) -> dict[str, Any]:
    """Status ``held`` and the reference set (a holdable item, locked by ``holdable_item``)."""
    held = await sql.update_item_status(conn, id=item["id"], tenant_id=where.tenant_id, status="held",
                                        reference=_reference(where, item), bill_id=None)
    return {"ok": True, "item": item_output(held)}


def supplier_name(item: Item) -> str:
    """The bill's party: the carrier's name for a flight, the hotel's name for a hotel."""
    offer = item["data"]
    return offer["carrier_name"] if item["kind"] == "flight" else offer["name"]


async def book(conn: asyncpg.Connection, sql: Any, where: Where, item: Item,
               posting: billing.Posting) -> dict[str, Any]:
    """Status ``booked``, the reference set, the supplier's bill (Dr 5000 / Cr 2100) linked to the item."""
    reference = _reference(where, item)
    bill = await billing.create_bill(
        conn, sql, tenant_id=where.tenant_id, party_name=supplier_name(item), party_reference=str(where.session_id),
        vendor_reference=reference, amount=item["price_amount"], currency=item["price_currency"], posting=posting)
    booked = await sql.update_item_status(conn, id=item["id"], tenant_id=where.tenant_id, status="booked",
                                          reference=reference, bill_id=uuid.UUID(bill["bill_id"]))
    return {"ok": True, "item": item_output(booked), "bill": bill}


# --- issue_invoice (§9.5) --------------------------------------------------------------------------------


async def invoiceable_items(conn: asyncpg.Connection, sql: Any, where: Where,
                            offer_ids: Sequence[str]) -> list[Item]:
    """Of ``offer_ids``, the session's booked items without invoice in creation order (locked), those in the first
    one's currency (an invoice has one currency); ``nothing_to_invoice`` when there is none."""
    items = await sql.list_invoiceable_items(conn, tenant_id=where.tenant_id, session_id=where.session_id,
                                             offer_ids=list(offer_ids))
    if not items:
        raise ToolFailure("nothing_to_invoice", "No booked item of this session is waiting for an invoice.")
    currency = items[0]["price_currency"]
    return [item for item in items if item["price_currency"] == currency]


def invoice_total(items: Sequence[Item]) -> decimal.Decimal:
    return sum((item["price_amount"] for item in items), decimal.Decimal("0.00"))


async def invoice(conn: asyncpg.Connection, sql: Any, where: Where, items: Sequence[Item], *, customer_name: str,
                  posting: billing.Posting) -> dict[str, Any]:
    """One ``issued`` invoice for ``items`` (Dr 1200 / Cr 4000), each item linked to it."""
    document = await billing.create_invoice(
        conn, sql, tenant_id=where.tenant_id, party_name=customer_name, party_reference=str(where.session_id),
        amount=invoice_total(items), currency=items[0]["price_currency"], posting=posting)
    await sql.set_items_invoice(conn, tenant_id=where.tenant_id, invoice_id=uuid.UUID(document["invoice_id"]),
                                ids=[item["id"] for item in items])
    return {"ok": True, "invoice": {**document, "offer_ids": [item["offer_id"] for item in items]}}


async def uninvoiced_booked_offer_ids(conn: asyncpg.Connection, sql: Any, where: Where) -> list[str]:
    """The offline agent's ``offer_ids`` (§9.5): booked flights and hotels without invoice, in creation order."""
    rows = await sql.list_uninvoiced_booked_offer_ids(conn, tenant_id=where.tenant_id, session_id=where.session_id)
    return [row["offer_id"] for row in rows]


async def invoice_customer_name(conn: asyncpg.Connection, sql: Any, where: Where) -> str | None:
    """The earliest linked enquiry's customer, else the first passenger's name, else None (§9.5)."""
    return await sql.get_invoice_customer_name(conn, tenant_id=where.tenant_id, session_id=where.session_id)
