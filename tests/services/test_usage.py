"""Token usage prices and the start of the budget's day (chat-and-agent.md §10.2); the rows and the budget
themselves are tested through the backend (tests/agent/test_anthropic.py)."""

import datetime as dt
from decimal import Decimal

import pytest

from voyagent.agent.anthropic import RetryPolicy, TextLedger
from voyagent.agent.messages_api import ProviderError
from voyagent.services.usage import DailyBudget, TokenUsage, cost_usd, price_of, start_of_day


@pytest.mark.parametrize(("model", "expected"), [
    ("claude-sonnet-4-5", Decimal("18.00000000")),  # 1M in × 3 + 1M out × 15
    ("claude-opus-4-6", Decimal("90.00000000")),
    ("claude-haiku-4-5-20251001", Decimal("4.80000000")),
    ("anthropic/Claude-Sonnet-4.5", Decimal("18.00000000")),  # a gateway's spelling of the same family
    ("mystery-model", Decimal("0E-8")),
])
def test_cost_per_million_tokens_by_model_family(model, expected):
    assert cost_usd(model, 1_000_000, 1_000_000) == expected


def test_cost_is_exact_to_eight_places():
    assert cost_usd("claude-haiku-4-5-20251001", 1, 1) == Decimal("0.00000480")
    assert cost_usd("claude-sonnet-4-5", 7, 3) == Decimal("0.00006600")
    assert isinstance(cost_usd("claude-opus-4-6", 1, 0), Decimal)
    assert price_of("claude-3-5-haiku-latest").input == Decimal("0.80")


def test_the_budget_day_starts_at_midnight_utc():
    local = dt.datetime(2026, 7, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=5, minutes=30)))  # 20:00 UTC, 30 Jun
    assert start_of_day(local) == dt.datetime(2026, 6, 30, tzinfo=dt.timezone.utc)


def test_budget_and_usage_values():
    assert not DailyBudget(None, 10**9).exceeded
    assert not DailyBudget(100, 99).exceeded and DailyBudget(100, 100).exceeded
    assert DailyBudget(100, 250).refusal() == "daily_budget_exceeded: limit=100 used=250"
    used = TokenUsage()
    used.add(3, 4)
    used.add(10, 0)
    assert (used.input_tokens, used.output_tokens, used.total_tokens) == (13, 4, 17)


def test_retry_policy_of_section_10_2():
    policy = RetryPolicy()
    assert policy.delay(ProviderError("rate_limit_error", retry_after=600.0)) == 60.0  # capped
    assert policy.delay(ProviderError("overloaded_error")) == 2.0
    assert policy.delay(ProviderError("overloaded_error")) is None  # 3 attempts in all
    policy = RetryPolicy()
    assert policy.delay(ProviderError("connection_error")) == 1.0
    assert policy.delay(ProviderError("connection_error")) is None  # one retry only
    assert policy.delay(ProviderError("api_error")) == 2.0
    assert RetryPolicy().delay(ProviderError("authentication_error")) is None
    assert RetryPolicy().delay(ProviderError("invalid_response")) is None


def test_the_ledger_sends_each_piece_of_text_once():
    ledger = TextLedger()
    assert [ledger.accept(t) for t in ["Hel", "lo wor"]] == ["Hel", "lo wor"]
    ledger.restart()
    assert [ledger.accept(t) for t in ["H", "ello", " world", "!"]] == ["", "", "ld", "!"]
    ledger.restart()
    assert [ledger.accept(t) for t in ["Hello there", " friend"]] == ["\n\nthere", " friend"]
    assert ledger.sent == "Hello world!\n\nthere friend"


@pytest.fixture
async def many_costs(db):
    """Thirty days of usage rows for several tenants, analysed."""
    from voyagent.ids import new_id

    tenants = []
    rows = []
    start = dt.datetime(2026, 6, 1, tzinfo=dt.timezone.utc)
    for t in range(8):
        tenant_id = new_id()
        await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Usage plans')", tenant_id)
        tenants.append(tenant_id)
        rows += [(new_id(), tenant_id, new_id(), "t-000000000000", "claude-sonnet-4-5", 10, 5, 15, Decimal("0.0001"),
                  start + dt.timedelta(minutes=43 * i)) for i in range(1000)]
    await db.copy_records_to_table("session_costs", records=rows, columns=[
        "id", "tenant_id", "session_id", "turn_id", "model", "input_tokens", "output_tokens", "total_tokens",
        "cost_usd", "created_at"])
    await db.execute("ANALYZE session_costs")
    return tenants


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_budget_query_reads_the_tenant_day_index(db, queries, many_costs, mode):
    from tests.test_query_plans import _nodes, _plan

    query = queries.get_daily_token_budget
    values = {"tenant_id": many_costs[0], "since": dt.datetime(2026, 6, 20, tzinfo=dt.timezone.utc)}
    plan = await _plan(db, query.sql, query.args(values), mode)
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [s for s in scans if s[0] == "Seq Scan"], scans
    assert "session_costs_tenant_id_created_at_idx" in {s[2] for s in scans}, scans
    row = await query(db, **values)
    assert row["budget"] is None and row["used"] == 15 * len([i for i in range(1000) if 43 * i >= 19 * 24 * 60])
