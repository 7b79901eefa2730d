"""The offline backend (chat-and-agent.md §8): the grammar's command through the gateway, and a short reply.

At most one tool per message. A command that needs approval ends with the gateway's ``approval_request`` and no
text (§8.4); every other outcome gets one ``text_delta``. The only input the grammar cannot build alone is
``issue_invoice``'s (§9.5): the session's booked, un-invoiced offers and, when the message names nobody, the
customer of the session's enquiry or its first passenger.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from voyagent.agent import grammar, replies
from voyagent.agent.events import event
from voyagent.agent.interface import Tools, Turn
from voyagent.services import itinerary_items

WALK_IN_CUSTOMER = "Walk-in customer"


class OfflineBackend:
    name = "offline"
    reads_history = False  # §8: the grammar reads the message alone

    def __init__(self, database: Any, sql: Any) -> None:
        self.database = database
        self.sql = sql

    async def run_turn(self, turn: Turn, tools: Tools) -> AsyncIterator[dict[str, Any]]:
        command = grammar.parse(turn.message)
        if isinstance(command, grammar.NoCommand):
            return
        if isinstance(command, grammar.Help):
            yield self._text(turn, replies.help_text(command.asked))
            return
        if isinstance(command, grammar.Explain):
            yield self._text(turn, command.text)
            return
        if isinstance(command, grammar.IssueInvoice):
            tool_input = await self.invoice_input(turn, command)
        else:
            tool_input = command.tool_input()
        outcome = await tools.invoke(command.tool, tool_input)
        if outcome.kind == "approval_needed":
            return
        yield self._text(turn, replies.result_text(command.tool, outcome.output))

    async def invoice_input(self, turn: Turn, command: grammar.IssueInvoice) -> dict[str, Any]:
        """§9.5: the booked offers without invoice; the named customer, else the enquiry's, else the first
        passenger's, else ``Walk-in customer``."""
        where = itinerary_items.Where(turn.tenant_id, turn.session_id)
        async with self.database.read_transaction() as conn:
            offer_ids = await itinerary_items.uninvoiced_booked_offer_ids(conn, self.sql, where)
            name = command.customer_name or await itinerary_items.invoice_customer_name(conn, self.sql, where)
        return command.tool_input(name or WALK_IN_CUSTOMER, offer_ids)

    @staticmethod
    def _text(turn: Turn, text: str) -> dict[str, Any]:
        return event("text_delta", turn.session_id, turn.turn_id, text=text)
