"""What each tool of chat-and-agent.md §9 does behind the gateway (``voyagent.agent.gateway``).

Read-only tools have one step, ``run``. Side-effecting tools have three: ``check`` (the §9 preconditions, in the
caller's transaction, returning what the other steps need: the offer, the item, the items to invoice),
``summary`` (the §6.3 approval text, for tools that need an approval) and ``execute`` (the effects, in the same
transaction as the tool's audit row). The gateway runs ``check`` at request time and again at execution.
``services`` is the gateway's ``ToolServices`` and ``where`` the session (``itinerary_items.Where``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

import asyncpg

from voyagent.agent import summaries
from voyagent.services import itinerary_items
from voyagent.services.billing import Posting
from voyagent.services.itinerary import itinerary
from voyagent.services.itinerary_items import Item, Where
from voyagent.services.tenant_settings import DEFAULT_CURRENCY
from voyagent.services.tools import ToolFailure


def _searched(offers: Sequence[Any]) -> dict[str, Any]:
    return {"count": len(offers), "offers": [offer.output() for offer in offers]}


class SearchFlights:
    async def run(self, services: Any, where: Where, tool_input: dict[str, Any]) -> dict[str, Any]:
        offers = await services.supplier.search_flights(
            tool_input["origin"], tool_input["destination"], dt.date.fromisoformat(tool_input["depart_date"]),
            tool_input["adults"], tool_input["cabin"])
        await services.offers.put(where.tenant_id, offers)
        return _searched(offers)


class SearchHotels:
    async def run(self, services: Any, where: Where, tool_input: dict[str, Any]) -> dict[str, Any]:
        check_in = dt.date.fromisoformat(tool_input["check_in"])
        check_out = dt.date.fromisoformat(tool_input["check_out"])
        if check_out <= check_in:
            raise ToolFailure("invalid_input", "check_out: must be after check_in")
        offers = await services.supplier.search_hotels(tool_input["city"], check_in, check_out, tool_input["guests"])
        await services.offers.put(where.tenant_id, offers)
        return _searched(offers)


class GetItinerary:
    async def run(self, services: Any, where: Where, tool_input: dict[str, Any]) -> dict[str, Any]:
        async with services.database.read_transaction() as conn:
            session = await services.sql.get_itinerary_session(conn, id=where.session_id, tenant_id=where.tenant_id)
            items = await services.sql.list_itinerary_items(conn, session_id=where.session_id,
                                                             tenant_id=where.tenant_id)
        currency = (session["default_currency"] if session is not None else None) or DEFAULT_CURRENCY
        return itinerary(items, currency)


class AddToItinerary:
    document = None  # the id key of a document the execution creates

    async def check(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any]) -> Any:
        offer_id = tool_input["offer_id"]
        offer = await services.offers.get(where.tenant_id, offer_id)
        if offer is None:
            raise ToolFailure("offer_not_found", f"{offer_id} is not among the recent search results; search again.")
        await itinerary_items.require_not_in_itinerary(conn, services.sql, where, offer_id)
        return offer

    async def execute(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any],
                      offer: Any, posting: Posting | None) -> dict[str, Any]:
        return await itinerary_items.add_offer(conn, services.sql, where, offer)


class AddPassenger:
    document = None

    async def check(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any]) -> Any:
        return None  # no preconditions (§9.3)

    async def execute(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any],
                      subject: Any, posting: Posting | None) -> dict[str, Any]:
        return await itinerary_items.add_passenger(conn, services.sql, where, tool_input["full_name"],
                                                   tool_input["passport_number"])


class HoldOffer:
    document = None

    async def check(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any]) -> Item:
        return await itinerary_items.holdable_item(conn, services.sql, where, tool_input["offer_id"])

    def summary(self, tool_input: dict[str, Any], item: Item) -> str:
        return summaries.hold_summary(item["data"], item["price_amount"], item["price_currency"])

    async def execute(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any],
                      item: Item, posting: Posting | None) -> dict[str, Any]:
        return await itinerary_items.hold(conn, services.sql, where, item)


class BookOffer:
    document = "bill_id"

    async def check(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any]) -> Item:
        return await itinerary_items.bookable_item(conn, services.sql, where, tool_input["offer_id"])

    def summary(self, tool_input: dict[str, Any], item: Item) -> str:
        return summaries.book_summary(item["data"], item["price_amount"], item["price_currency"])

    async def execute(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any],
                      item: Item, posting: Posting | None) -> dict[str, Any]:
        assert posting is not None
        return await itinerary_items.book(conn, services.sql, where, item, posting)


class IssueInvoice:
    document = "invoice_id"

    async def check(self, services: Any, where: Where, conn: asyncpg.Connection,
                    tool_input: dict[str, Any]) -> list[Item]:
        return await itinerary_items.invoiceable_items(conn, services.sql, where, tool_input["offer_ids"])

    def summary(self, tool_input: dict[str, Any], items: list[Item]) -> str:
        return summaries.invoice_summary(tool_input["customer_name"], itinerary_items.invoice_total(items),
                                         items[0]["price_currency"], len(items))

    async def execute(self, services: Any, where: Where, conn: asyncpg.Connection, tool_input: dict[str, Any],
                      items: list[Item], posting: Posting | None) -> dict[str, Any]:
        assert posting is not None
        return await itinerary_items.invoice(conn, services.sql, where, items,
                                             customer_name=tool_input["customer_name"], posting=posting)


READ_TOOLS: dict[str, Any] = {"search_flights": SearchFlights(), "search_hotels": SearchHotels(),
                              "get_itinerary": GetItinerary()}
WRITE_TOOLS: dict[str, Any] = {"add_to_itinerary": AddToItinerary(), "add_passenger": AddPassenger(),
                               "hold_offer": HoldOffer(), "book_offer": BookOffer(), "issue_invoice": IssueInvoice()}
