"""LLM token usage (chat-and-agent.md §10.2): a turn's tokens and price in ``session_costs``, and the daily token
budget of §2 step 4 read from them."""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import uuid
from decimal import Decimal
from typing import Any

import asyncpg

from voyagent.ids import new_id

log = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)
COST_PLACES = Decimal("0.00000001")  # session_costs.cost_usd is numeric(14,8)


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens."""

    input: Decimal
    output: Decimal


# By model family: the contract's three models and their dated or gateway-prefixed variants.
PRICES: dict[str, Price] = {
    "sonnet": Price(Decimal("3"), Decimal("15")),
    "opus": Price(Decimal("15"), Decimal("75")),
    "haiku": Price(Decimal("0.80"), Decimal("4")),
}


def price_of(model: str) -> Price | None:
    """The price of ``model``'s family (``claude-sonnet-4-5`` → sonnet), None for a model of no known family."""
    lowered = model.lower()
    for family, price in PRICES.items():
        if family in lowered:
            return price
    return None


def cost_usd(model: str, input_tokens: int, output_tokens: int) -> Decimal:
    """``input/10⁶ × in_price + output/10⁶ × out_price``, to the column's 8 places; 0 for an unknown model."""
    price = price_of(model)
    if price is None:
        log.warning("no price for model %s: its usage is recorded at cost 0", model)
        return Decimal(0).quantize(COST_PLACES)
    cost = (input_tokens * price.input + output_tokens * price.output) / MILLION
    return cost.quantize(COST_PLACES)


@dataclasses.dataclass(slots=True)
class TokenUsage:
    """Tokens one turn consumed, summed over its provider requests."""

    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, input_tokens: int, output_tokens: int) -> None:
        self.input_tokens += input_tokens
        self.output_tokens += output_tokens


def start_of_day(now: dt.datetime) -> dt.datetime:
    """00:00 UTC of ``now``'s UTC day: where the daily token budget starts counting."""
    utc = now.astimezone(dt.timezone.utc)
    return utc.replace(hour=0, minute=0, second=0, microsecond=0)


async def record_turn_usage(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, session_id: uuid.UUID,
                            turn_id: str, model: str, usage: TokenUsage, now: dt.datetime) -> Decimal:
    """Insert the turn's ``session_costs`` row; returns its cost in USD."""
    cost = cost_usd(model, usage.input_tokens, usage.output_tokens)
    await sql.insert_session_cost(conn, id=new_id(), tenant_id=tenant_id, session_id=session_id, turn_id=turn_id,
                                  model=model, input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
                                  total_tokens=usage.total_tokens, cost_usd=cost, created_at=now)
    return cost


@dataclasses.dataclass(frozen=True, slots=True)
class DailyBudget:
    """The tenant's daily token budget (None: unlimited) and the tokens it used since 00:00 UTC."""

    limit: int | None
    used: int

    @property
    def exceeded(self) -> bool:
        return self.limit is not None and self.used >= self.limit

    def refusal(self) -> str:
        """The turn's ``error_message`` when the budget is spent (§2 step 4)."""
        return f"daily_budget_exceeded: limit={self.limit} used={self.used}"


async def daily_budget(conn: asyncpg.Connection, sql: Any, *, tenant_id: uuid.UUID, now: dt.datetime) -> DailyBudget:
    """The tenant's budget and today's usage, in one statement (no settings row: no budget)."""
    row = await sql.get_daily_token_budget(conn, tenant_id=tenant_id, since=start_of_day(now))
    return DailyBudget(limit=row["budget"], used=int(row["used"]))
