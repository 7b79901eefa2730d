"""The offline agent's English (chat-and-agent.md §8): the help text and one short paragraph per tool outcome.

The wording is not contractual (the events, tool inputs and outputs are); every reply is non-empty and says
what to type next.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from voyagent.agent.summaries import describe_offer, format_money

HELP = (
    "I can search, plan, hold, book and invoice trips. Try:\n"
    "- flights DEL to DXB on 2026-07-01 for 2 adults (add 'business', 'first class' or 'premium economy')\n"
    "- hotels in Dubai from 2026-07-01 for 3 nights for 3 guests\n"
    "- add FLT-20526D6B (an offer id from a search)\n"
    "- add passenger Asha Rao passport P1234567\n"
    "- show itinerary\n"
    "- hold FLT-20526D6B, book FLT-20526D6B (each waits for an approval)\n"
    "- invoice to Asha Rao (invoices the booked items)")


def help_text(asked: bool) -> str:
    return HELP if asked else "Sorry, I did not understand that. " + HELP


def _money(value: Mapping[str, Any]) -> str:
    return format_money(value["amount"], value["currency"])


def _flight_line(offer: Mapping[str, Any]) -> str:
    return (f"{offer['offer_id']}: {offer['carrier_name']} {offer['flight_number']}, departs "
            f"{str(offer['departure_at'])[11:16]}, arrives {str(offer['arrival_at'])[11:16]} UTC "
            f"({offer['duration_minutes']} min), {_money(offer['price'])} for {offer['adults']} adult(s)")


def _hotel_line(offer: Mapping[str, Any]) -> str:
    return (f"{offer['offer_id']}: {offer['name']} ({offer['star_rating']}★), {_money(offer['nightly_rate'])} a "
            f"night, {_money(offer['price'])} for {offer['nights']} night(s), {offer['rooms']} room(s)")


def _search(output: Mapping[str, Any]) -> str:
    offers = output["offers"]
    if not offers:
        return "I found no offers for that search. Try another date or place."
    first = offers[0]
    if first["kind"] == "flight":
        head = (f"I found {output['count']} flights from {first['origin']} to {first['destination']} on "
                f"{str(first['departure_at'])[:10]} ({first['cabin'].replace('_', ' ')}):")
        lines = [_flight_line(offer) for offer in offers]
    else:
        head = (f"I found {output['count']} hotels in {first['city']} from {first['check_in']} to "
                f"{first['check_out']} for {first['guests']} guest(s):")
        lines = [_hotel_line(offer) for offer in offers]
    return "\n".join([head, *(f"{n}. {line}" for n, line in enumerate(lines, 1)),
                      f"To keep one, type: add {first['offer_id']}"])


def _added(output: Mapping[str, Any]) -> str:
    item = output["item"]
    return (f"Added {describe_offer(item['offer'])} ({item['offer_id']}) to the itinerary for "
            f"{_money(item['price'])}. Next: 'hold {item['offer_id']}' or 'book {item['offer_id']}'.")


def _passenger(output: Mapping[str, Any]) -> str:
    passenger = output["passenger"]
    passport = f" (passport {passenger['passport_number']})" if passenger["passport_number"] else ""
    return f"Added passenger {passenger['full_name']}{passport}. Type 'show itinerary' to see the whole trip."


def _itinerary(output: Mapping[str, Any]) -> str:
    parts = [f"{row['full_name']} (passenger)" for row in output["passengers"]]
    parts += [f"flight {row['flight_number']} {row['origin']}-{row['dest']} ({row['offer_id']}, {row['status']}"
              f"{', PNR ' + row['pnr'] if row['pnr'] else ''})" for row in output["flights"]]
    parts += [f"{row['name']} from {row['check_in']} to {row['check_out']} ({row['offer_id']}, {row['status']}"
              f"{', confirmation ' + row['confirmation'] if row['confirmation'] else ''})" for row in output["hotels"]]
    parts += [f"visa for {row['country'] or 'an unnamed country'}" for row in output["visas"]]
    if not parts:
        return "The itinerary is empty. Search for flights or hotels, then add an offer by its id."
    return f"The itinerary: {'; '.join(parts)}. Total cost {_money(output['total_cost'])}."


def _held(output: Mapping[str, Any]) -> str:
    item = output["item"]
    return (f"Held {describe_offer(item['offer'])} ({item['offer_id']}), reference {item['reference']}. "
            f"Type 'book {item['offer_id']}' to book it.")


def _booked(output: Mapping[str, Any]) -> str:
    item, bill = output["item"], output["bill"]
    return (f"Booked {describe_offer(item['offer'])} ({item['offer_id']}), reference {item['reference']}. "
            f"Supplier bill {bill['number']} for {_money(bill['amount'])} is due on {bill['due_date']}. "
            "Type 'invoice to <customer name>' to invoice the customer.")


def _invoiced(output: Mapping[str, Any]) -> str:
    invoice = output["invoice"]
    return (f"Issued invoice {invoice['number']} to {invoice['party_name']} for {_money(invoice['amount'])} "
            f"covering {', '.join(invoice['offer_ids'])}; due on {invoice['due_date']}.")


_SUCCESS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "search_flights": _search, "search_hotels": _search, "get_itinerary": _itinerary, "add_to_itinerary": _added,
    "add_passenger": _passenger, "hold_offer": _held, "book_offer": _booked, "issue_invoice": _invoiced,
}

_FAILURE_HINTS = {
    "offer_not_found": "Search again, then add the offer by its id.",
    "offer_not_in_itinerary": "Add the offer to the itinerary first (add <offer id>).",
    "already_in_itinerary": "Type 'show itinerary' to see it.",
    "already_held": "You can book it now.",
    "already_booked": "Type 'show itinerary' to see its reference.",
    "nothing_to_invoice": "Only booked items that have no invoice yet can be invoiced.",
    "permission_denied": "Ask a colleague whose role allows it.",
}


def result_text(tool_name: str, output: Mapping[str, Any]) -> str:
    """A paragraph about one tool output (success, or ``{"ok": false, …}``)."""
    if output.get("ok") is False:
        code = output.get("error", "error")
        hint = _FAILURE_HINTS.get(code, "Type 'help' to see what I can do.")
        return f"I could not do that ({code}: {output.get('detail', '')}). {hint}"
    return _SUCCESS[tool_name](output)


def denied_text(summary: str, expired: bool) -> str:
    """The reply to a rejected or expired approval (§6.5)."""
    if expired:
        return f"The approval expired before anyone decided, so nothing was done: {summary} Ask again if needed."
    return f"The request was rejected, so nothing was done: {summary}"
