"""The approval summaries of chat-and-agent.md §6.3: contractual text, so one module writes them.

``<money>`` is ``<CUR> <amount>`` with comma thousands and two decimals; ``<desc>`` names the flight or the stay.
The templates' ``night(s)`` and ``item(s)`` are written as the contract spells them.
"""

from __future__ import annotations

import decimal
from typing import Any, Mapping

_CENT = decimal.Decimal("0.01")


def format_money(amount: decimal.Decimal | str, currency: str) -> str:
    """``INR 54,208.00``."""
    value = decimal.Decimal(amount).quantize(_CENT, rounding=decimal.ROUND_HALF_UP)
    return f"{currency} {value:,.2f}"


def describe_offer(offer: Mapping[str, Any]) -> str:
    """``flight 6E893 DEL-DXB on 2026-07-01`` or ``3 night(s) at Royal Dubai Inn, Dubai from 2026-07-01`` for an
    offer snapshot (the JSON form of §9.1, as an item's ``data`` holds it)."""
    if offer["kind"] == "flight":
        return (f"flight {offer['flight_number']} {offer['origin']}-{offer['destination']} "
                f"on {str(offer['departure_at'])[:10]}")
    return f"{offer['nights']} night(s) at {offer['name']}, {offer['city']} from {offer['check_in']}"


def hold_summary(offer: Mapping[str, Any], amount: decimal.Decimal, currency: str) -> str:
    return f"Hold {describe_offer(offer)} ({offer['offer_id']}) for {format_money(amount, currency)}. Reversible."


def book_summary(offer: Mapping[str, Any], amount: decimal.Decimal, currency: str) -> str:
    return (f"Book {describe_offer(offer)} ({offer['offer_id']}) for {format_money(amount, currency)}. "
            "Not reversible.")


def invoice_summary(customer_name: str, amount: decimal.Decimal, currency: str, items: int) -> str:
    return (f"Issue invoice to {customer_name} for {format_money(amount, currency)} covering {items} item(s). "
            "Reversible by voiding.")
