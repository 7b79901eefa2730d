"""voyagent/listing.py: what every paginated list gets from it beyond what the endpoint tests see."""

import datetime as dt
import uuid

import pytest

from voyagent.db import Database
from voyagent.errors import ApiError
from voyagent.ids import new_id
from voyagent.pagination import CursorCodec, Page
from voyagent.services import approvals, audit_log, enquiries

CODEC = CursorCodec("listing-test-secret")
WHEN = dt.datetime(2026, 5, 1, 12, 0, 0, 123_456, tzinfo=dt.timezone.utc)
FIRST = Page(limit=10, offset=0, after=None, include_total=True)


def test_a_cursor_page_holds_the_position_in_the_lists_own_types():
    tenant_id, row_id = new_id(), new_id()
    cursor = CODEC.encode("enquiries", tenant_id, {}, WHEN, str(row_id))
    page = enquiries.LISTING.paging(CODEC, {"limit": 5, "cursor": cursor}, tenant_id, {}).page
    assert page.after == (WHEN, row_id) and isinstance(page.after[1], uuid.UUID)
    text_id = "ap-turn-1-create_booking-2"  # approvals have text ids
    cursor = CODEC.encode("approvals", tenant_id, {}, WHEN, text_id)
    assert approvals.LISTING.paging(CODEC, {"limit": 5, "cursor": cursor}, tenant_id, {}).page.after == (WHEN, text_id)


def test_a_signed_cursor_whose_id_is_not_of_the_lists_type_is_invalid():
    tenant_id = new_id()
    cursor = CODEC.encode("enquiries", tenant_id, {}, WHEN, "ap-turn-1-create_booking")
    with pytest.raises(ApiError) as raised:
        enquiries.LISTING.paging(CODEC, {"limit": 5, "cursor": cursor}, tenant_id, {})
    assert (raised.value.status, raised.value.detail) == (422, "invalid_cursor")


def test_an_unknown_filter_name_is_a_programming_error_not_a_dropped_filter():
    with pytest.raises(KeyError, match="destinaton"):
        enquiries.LISTING.page_sql(new_id(), {"destinaton": "Lisbon"}, FIRST)


def test_statement_text_depends_on_the_shape_only():
    first = enquiries.LISTING.page_sql(new_id(), {"destination": "Lisbon", "status": "new"}, FIRST)
    second = enquiries.LISTING.page_sql(new_id(), {"status": "booked", "destination": "Oslo"}, FIRST)
    assert first[0] is second[0]  # built once per shape, whatever the values or their order
    assert first[1][1:] == ["new", "%Lisbon%", 11]  # parameters in the declared order of the filters
    deep = enquiries.LISTING.page_sql(new_id(), {}, Page(limit=10, offset=2**64, after=None, include_total=True))
    assert deep[1][-2:] == [11, 2**63 - 1]  # an offset past PostgreSQL's bigint: every page is empty anyway


async def test_the_export_select_returns_one_text_record_per_event_for_the_binary_copy(db):
    text, _ = audit_log.export_statement(new_id(), audit_log.AuditFilters(kinds=("a", "b")))
    statement = await db.prepare(text)
    assert [(a.name, a.type.name) for a in statement.get_attributes()] == [("record", "text")]


async def test_a_value_dependent_filter_plans_for_its_values_only_inside_the_callers_transaction(db):
    tenant_id = new_id()
    values = enquiries.EnquiryFilters(destination="Lisbon").values()
    with pytest.raises(RuntimeError, match="transaction"):  # SET LOCAL outside one would do nothing
        await enquiries.LISTING.fetch(db, tenant_id, values, FIRST)
    async with db.transaction():
        assert await enquiries.LISTING.fetch(db, tenant_id, values, FIRST) == ([], 0)
        assert await db.fetchval("SHOW plan_cache_mode") == "force_custom_plan"
    assert await db.fetchval("SHOW plan_cache_mode") == "auto"
    async with db.transaction():  # status alone: the generic plan is fine, no setting
        await enquiries.LISTING.fetch(db, tenant_id, {"status": "new"}, FIRST)
        assert await db.fetchval("SHOW plan_cache_mode") == "auto"


async def test_a_page_and_its_total_read_one_snapshot(database, db):
    """The list handlers read in ``read_transaction``: rows committed after the page was read are not counted."""
    tenant_id, user_id = new_id(), new_id()
    await db.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Snapshot')", tenant_id)
    await db.execute("INSERT INTO users (id, tenant_id, email, display_name) VALUES ($1, $2, $3, 'S')",
                     user_id, tenant_id, f"snapshot-{user_id}@example.com")

    async def insert(count):
        await db.executemany("INSERT INTO enquiries (id, tenant_id, created_by_user_id, customer_name) "
                             "VALUES ($1, $2, $3, 'S')", [(new_id(), tenant_id, user_id) for _ in range(count)])

    await insert(3)
    values = enquiries.EnquiryFilters(destination=None).values()
    pooled = await Database.connect(database.dsn, 1, 1)
    try:
        async with pooled.read_transaction() as conn:
            text, args = enquiries.LISTING.page_sql(tenant_id, values, Page(1, 0, None, True))
            assert len(await conn.fetch(text, *args)) == 2
            await insert(2)  # committed by another connection after the page was read
            assert await enquiries.LISTING.count(conn, tenant_id, values) == 3
        async with pooled.read_transaction() as conn:
            assert await enquiries.LISTING.count(conn, tenant_id, values) == 5
    finally:
        await pooled.close()
