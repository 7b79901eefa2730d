"""The itinerary service apart from HTTP: its queries' plans, its fallback currency, and the total-cost rule on
rows the HTTP tests cannot reach through the schema's constraints alone."""

import decimal

import pytest

from tests.test_query_plans import _nodes, _plan
from voyagent.ids import new_id
from voyagent.services import itinerary
from voyagent.services.tenant_settings import DEFAULT_CURRENCY

ITEMS_INDEX = "itinerary_items_session_id_created_at_id_idx"
SESSIONS, ITEMS_PER_SESSION = 300, 40


async def test_the_fallback_currency_is_the_settings_column_default(db):
    default = await db.fetchval("SELECT column_default FROM information_schema.columns "
                                "WHERE table_name = 'tenant_settings' AND column_name = 'default_currency'")

    assert default.split("::")[0] == f"'{DEFAULT_CURRENCY}'"


@pytest.fixture
async def crowded_session(db):
    """One session among many others with items, with fresh statistics; its id and tenant."""
    tenant_id, user_id = new_id(), new_id()
    await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Plans')", tenant_id)
    await db.execute("INSERT INTO users (id, tenant_id, email, display_name) VALUES ($1, $2, $3, 'Plans')",
                     user_id, tenant_id, f"plans-{user_id}@example.com")
    session_ids = [new_id() for _ in range(SESSIONS)]
    await db.copy_records_to_table("sessions", columns=["id", "tenant_id", "actor_id", "actor_kind"],
                                   records=[(s, tenant_id, user_id, "human") for s in session_ids])
    await db.execute(
        "INSERT INTO itinerary_items (id, tenant_id, session_id, kind, data, created_at)"
        " SELECT gen_random_uuid(), $1, s, 'passenger', '{\"full_name\": \"P\", \"passport_number\": null}',"
        "        now() - make_interval(secs => n)"
        " FROM unnest($2::uuid[]) AS s, generate_series(1, $3) AS n", tenant_id, session_ids, ITEMS_PER_SESSION)
    await db.execute("VACUUM (ANALYZE) itinerary_items")
    await db.execute("VACUUM (ANALYZE) sessions")
    return session_ids[SESSIONS // 2], tenant_id


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_items_are_found_through_their_session_index(db, queries, crowded_session, mode):
    """The session's rows come from its (session_id, created_at, id) index, never a scan of the table. With
    items scattered over the heap (sessions interleave in time) the planner may prefer a bitmap scan and sort
    the few rows: both are fine."""
    session_id, tenant_id = crowded_session
    query = queries.list_itinerary_items
    args = [{"session_id": session_id, "tenant_id": tenant_id}[name] for name in query.params]

    plan = await _plan(db, query.sql, args, mode)

    nodes = list(_nodes(plan))
    assert [n.get("Index Name") for n in nodes if "Index" in n["Node Type"]] == [ITEMS_INDEX], plan
    assert not [n for n in nodes if n["Node Type"] == "Seq Scan"], plan
    rows = await query(db, session_id=session_id, tenant_id=tenant_id)
    assert len(rows) == ITEMS_PER_SESSION
    assert [r["created_at"] for r in rows] == sorted(r["created_at"] for r in rows)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_the_session_lookup_reads_two_primary_keys(db, queries, crowded_session, mode):
    session_id, tenant_id = crowded_session
    query = queries.get_itinerary_session
    args = [{"id": session_id, "tenant_id": tenant_id}[name] for name in query.params]

    plan = await _plan(db, query.sql, args, mode)

    scans = {(n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan) if "Relation Name" in n}
    assert scans == {("sessions", "sessions_pkey"), ("tenant_settings", "tenant_settings_pkey")}, plan


def _item(kind, amount=None, currency=None):
    return {"kind": kind, "price_amount": None if amount is None else decimal.Decimal(amount),
            "price_currency": currency}


def test_items_without_a_price_neither_count_nor_choose_the_currency():
    """Only flights and hotels carry prices (§9.2); a row without a price is skipped by the sum."""
    items = [_item("flight"), _item("passenger"), _item("hotel", "10.25", "EUR"), _item("flight", "1.00", "INR"),
             _item("flight", "0.75", "EUR")]

    assert itinerary.total_cost(items, "INR") == {"amount": decimal.Decimal("11.00"), "currency": "EUR"}
    assert itinerary.total_cost(items[:2], "AED") == {"amount": decimal.Decimal("0.00"), "currency": "AED"}
