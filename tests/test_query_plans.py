"""Every GET /enquiries query shape is served by an index: no sequential scan of enquiries, in either the
custom plan (first executions) or the generic plan a prepared statement may switch to later; an offset page
(any list's) skips on an index-only scan of its keyset index and reads only the rows it keeps."""

import asyncio
import dataclasses
import datetime as dt
import json
import random
import uuid
from decimal import Decimal

import asyncpg
import pytest

from voyagent.ids import new_id
from voyagent.pagination import Page
from voyagent.services import audit_log, sessions
from voyagent.services.enquiries import LISTING, EnquiryFilters

CITIES = ["Lisbon", "Paris", "Rome", "Dubai", "Doha", "Tokyo", "Oslo", "Lima", "Cairo", "Goa", "Kyoto", "Sofia",
          "Riga", "Quito", "Male", "Nice", "Lyon", "Milan", "Perth", "Seoul"]
COLUMNS = ["id", "tenant_id", "created_by_user_id", "customer_name", "customer_email", "customer_phone", "origin",
           "destination", "depart_date", "status", "created_at", "updated_at"]
BIG, OTHERS, PER_OTHER = 6000, 8, 1500


def page_query(tenant_id, filters, page):
    return LISTING.page_sql(tenant_id, filters.values(), page)


def count_query(tenant_id, filters):
    return LISTING.count_sql(tenant_id, filters.values())


async def _seed(db, tenant_id, user_id, count, rnd):
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    rows = []
    for i in range(count):
        created = start + dt.timedelta(seconds=rnd.randrange(10_000_000))
        name = f"{rnd.choice(['Asha', 'Ravi', 'Meera', 'Omar', 'Lena'])} {rnd.choice(['Rao', 'Khan', 'Berg'])}"
        rows.append((new_id(), tenant_id, user_id, name, f"{name.replace(' ', '.').lower()}{i}@example.com",
                     f"+91 98{rnd.randrange(10**7, 10**8)}", rnd.choice(["DEL", "BOM", "BLR"]), rnd.choice(CITIES),
                     (created + dt.timedelta(days=rnd.randrange(5, 90))).date(),
                     rnd.choice(["new", "new", "quoted", "booked", "cancelled"]), created, created))
    await db.copy_records_to_table("enquiries", records=rows, columns=COLUMNS)


@dataclasses.dataclass(frozen=True)
class Tenant:
    tenant_id: uuid.UUID


async def _tenant(conn):
    tenant_id, user_id = new_id(), new_id()
    await conn.execute("INSERT INTO tenants (id, display_name) VALUES ($1, 'Plans')", tenant_id)
    await conn.execute("INSERT INTO users (id, tenant_id, email, display_name) VALUES ($1, $2, $3, 'Plans')",
                       user_id, tenant_id, f"plans-{user_id}@example.com")
    return tenant_id, user_id


@pytest.fixture(scope="module")
def big_tenant(database):
    """One large tenant among several others, with fresh statistics (seeded once for the module)."""
    async def seed():
        rnd = random.Random(6)
        conn = await asyncpg.connect(database.dsn)
        try:
            tenant_id, user_id = await _tenant(conn)
            await _seed(conn, tenant_id, user_id, BIG, rnd)
            for _ in range(OTHERS):
                await _seed(conn, *(await _tenant(conn)), PER_OTHER, rnd)
            await conn.execute("ANALYZE enquiries")
            return Tenant(tenant_id)
        finally:
            await conn.close()

    return asyncio.run(seed())


def _nodes(plan):
    yield plan
    for child in plan.get("Plans", ()):
        yield from _nodes(child)


async def _plan(db, text, args, mode):
    await db.execute(f"SET plan_cache_mode = {mode}")
    try:
        raw = await db.fetchval("EXPLAIN (FORMAT JSON) " + text, *args)
        return json.loads(raw)[0]["Plan"]
    finally:
        await db.execute("RESET plan_cache_mode")


def _assert_indexed(plan, label):
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [s for s in scans if s[0] == "Seq Scan" and s[1] == "enquiries"], (label, scans)
    assert any(s[2] for s in scans), (label, scans)  # some index does the work


FILTERS = {
    "none": {},
    "status": {"status": "quoted"},
    "q": {"q": "lisb"},
    "destination": {"destination": "isbo"},
    "customer_email": {"customer_email": "asha.rao1"},
    "origin": {"origin": "del"},
    "depart range": {"depart_from": dt.date(2026, 3, 1), "depart_to": dt.date(2026, 3, 7)},
    "created range": {"created_from": dt.date(2026, 2, 1), "created_to": dt.date(2026, 2, 3)},
    "status + destination": {"status": "new", "destination": "tokyo"},
    "q + depart range": {"q": "rome", "depart_from": dt.date(2026, 3, 1), "depart_to": dt.date(2026, 4, 1)},
}


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("label", list(FILTERS))
async def test_list_and_count_queries_use_indexes(db, big_tenant, label, mode):
    filters = EnquiryFilters(**FILTERS[label])
    first = Page(limit=50, offset=0, after=None, include_total=True)
    text, args = page_query(big_tenant.tenant_id, filters, first)
    plan = await _plan(db, text, args, mode)
    _assert_indexed(plan, f"page {label} {mode}")
    if label in ("none", "status"):  # the index yields the list order: the page stops after limit + 1 rows
        assert not [n for n in _nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")], plan
    text, args = count_query(big_tenant.tenant_id, filters)
    if label != "none":  # the unfiltered total comes from enquiry_counts, never from a count(*)
        _assert_indexed(await _plan(db, text, args, mode), f"count {label} {mode}")


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("label", ["none", "status", "destination"])
async def test_a_deep_cursor_page_is_an_index_range_scan(db, big_tenant, label, mode):
    filters = EnquiryFilters(**FILTERS[label])
    deep = await db.fetchrow("SELECT created_at, id::text FROM enquiries WHERE tenant_id = $1 "
                             "ORDER BY created_at DESC, id DESC OFFSET $2 LIMIT 1", big_tenant.tenant_id, BIG * 3 // 4)
    page = Page(limit=50, offset=0, after=(deep["created_at"], deep["id"]), include_total=False)
    text, args = page_query(big_tenant.tenant_id, filters, page)
    plan = await _plan(db, text, args, mode)
    _assert_indexed(plan, f"deep {label} {mode}")
    if label != "destination":
        assert not [n for n in _nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")], plan
        assert any(n["Node Type"] in ("Index Scan", "Index Only Scan") and "created_at" in str(n.get("Index Cond", ""))
                   for n in _nodes(plan)), plan


async def test_the_unfiltered_total_reads_the_counter_row(db, big_tenant, queries):
    plan = await _plan(db, queries.get_enquiry_totals.sql, [["new", "quoted"], big_tenant.tenant_id],
                       "force_custom_plan")
    assert all(n.get("Relation Name") != "enquiries" for n in _nodes(plan))
    totals = await queries.get_enquiry_totals(db, statuses=["new", "quoted", "booked", "cancelled"],
                                              tenant_id=big_tenant.tenant_id)
    assert totals["total"] == BIG == await db.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1",
                                             big_tenant.tenant_id)


# --- offset pages: the deferred join of voyagent/listing.py --------------------------------------------------------


async def _generic_plan(db, text, args):
    """The plan a prepared statement really gets once PostgreSQL settles on a generic one: EXPLAIN EXECUTE under
    force_generic_plan (an EXPLAIN with bound parameters is always planned for their values)."""
    name = f"plan_{uuid.uuid4().hex}"
    await db.execute(f"PREPARE {name} AS {text}")
    literals = ", ".join("'" + str(arg).replace("'", "''") + "'" for arg in args)
    await db.execute("SET plan_cache_mode = force_generic_plan")
    try:
        raw = await db.fetchval(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({literals})")
        return json.loads(raw)[0]["Plan"]
    finally:
        await db.execute("RESET plan_cache_mode")
        await db.execute(f"DEALLOCATE {name}")


def _assert_deferred_join(plan, keyset_index, label, table="enquiries", per_row=frozenset()):
    """The skip is an index-only scan of the keyset index under the LIMIT/OFFSET, with no sort below it; the table
    itself is read only for the rows kept, by primary key (and ``per_row`` indexes serve the kept rows' subqueries)."""
    limits = [n for n in _nodes(plan) if n["Node Type"] == "Limit"]
    assert len(limits) == 1, (label, plan)
    under_limit = list(_nodes(limits[0]))
    assert [(n["Node Type"], n.get("Index Name")) for n in under_limit[1:]] == [("Index Only Scan", keyset_index)], \
        (label, plan)
    outside = [n for n in _nodes(plan) if not any(n is m for m in under_limit)]
    assert not [n for n in outside if n["Node Type"] == "Seq Scan" and n.get("Relation Name") == table], (label, plan)
    indexes = {n["Index Name"] for n in outside if "Index Name" in n}  # (bitmap) index scans of the kept ids
    assert f"{table}_pkey" in indexes and all(name.endswith("_pkey") or name in per_row for name in indexes), \
        (label, plan)


@pytest.fixture(scope="module")
def vacuumed(big_tenant, database):
    """The visibility map set, as autovacuum leaves a table that is mostly read: index-only scans need it."""
    async def vacuum():
        conn = await asyncpg.connect(database.dsn)
        try:
            await conn.execute("VACUUM (ANALYZE) enquiries")
        finally:
            await conn.close()

    asyncio.run(vacuum())
    return big_tenant


@pytest.mark.parametrize("label, index", [("none", "enquiries_tenant_id_created_at_id_idx"),
                                          ("status", "enquiries_tenant_id_status_created_at_id_idx")])
async def test_a_deep_offset_page_skips_on_an_index_only_scan_then_reads_its_rows_by_id(db, vacuumed, label, index):
    filters = EnquiryFilters(**FILTERS[label])
    deep = Page(limit=50, offset=BIG * 2 // 3 if label == "none" else BIG // 6, after=None, include_total=False)
    text, args = page_query(vacuumed.tenant_id, filters, deep)
    _assert_deferred_join(await _plan(db, text, args, "force_custom_plan"), index, f"custom {label}")
    _assert_deferred_join(await _generic_plan(db, text, args), index, f"generic {label}")
    expected = await db.fetch(
        "SELECT id::text FROM enquiries WHERE tenant_id = $1 AND ($2::enquiry_status IS NULL OR status = $2) "
        "ORDER BY created_at DESC, id DESC OFFSET $3 LIMIT 51", vacuumed.tenant_id, filters.status, deep.offset)
    assert [row["id"] for row in await db.fetch(text, *args)] == [row["id"] for row in expected]


@pytest.mark.parametrize("label", ["destination", "created range"])
async def test_a_filtered_offset_page_keeps_its_filter_index(db, vacuumed, label):
    filters = EnquiryFilters(**FILTERS[label])
    text, args = page_query(vacuumed.tenant_id, filters, Page(limit=50, offset=30, after=None, include_total=True))
    _assert_indexed(await _plan(db, text, args, "force_custom_plan"), f"offset {label}")


async def test_a_deep_offset_page_of_the_audit_log_is_a_deferred_join_too(db, database):
    """The listing module serves every list: GET /audit's deep offset page skips on its keyset index."""
    tenant_id, user_id = await _tenant(db)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    for tenant, actor, count in [(tenant_id, user_id, 4000)] + [(*(await _tenant(db)), 500) for _ in range(4)]:
        await db.copy_records_to_table(
            "audit_events", columns=["id", "tenant_id", "actor_id", "actor_kind", "tool", "started_at", "status"],
            records=[(new_id(), tenant, actor, "human", "enquiry.created", start + dt.timedelta(seconds=i),
                      "succeeded") for i in range(count)])
    await db.execute("VACUUM (ANALYZE) audit_events")
    text, args = audit_log.LISTING.page_sql(tenant_id, audit_log.AuditFilters().values(),
                                            Page(limit=50, offset=3000, after=None, include_total=False))
    for plan, mode in ((await _plan(db, text, args, "force_custom_plan"), "custom"),
                       (await _generic_plan(db, text, args), "generic")):
        _assert_deferred_join(plan, "audit_events_tenant_id_started_at_id_idx", f"audit {mode}", "audit_events")
    rows = await db.fetch(text, *args)
    assert [row["started_at"] for row in rows] == [start + dt.timedelta(seconds=999 - i) for i in range(51)]


# --- GET /chat/sessions ----------------------------------------------------------------------------------------

SESSIONS_INDEX = "sessions_tenant_id_created_at_id_idx"
MESSAGES_INDEX = "messages_session_id_sequence_key"


@pytest.fixture(scope="module")
def chat_tenant(database):
    """A tenant with 4,000 sessions (some with messages) among four others, vacuumed and analysed."""
    async def seed():
        conn = await asyncpg.connect(database.dsn)
        try:
            start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            tenant_id, _ = await _tenant(conn)
            for tenant, count in [(tenant_id, 4000)] + [((await _tenant(conn))[0], 1000) for _ in range(4)]:
                rows = [(new_id(), tenant, start + dt.timedelta(seconds=i)) for i in range(count)]
                await conn.copy_records_to_table("sessions", columns=["id", "tenant_id", "created_at"], records=rows)
                await conn.copy_records_to_table(  # of an earlier day: not in the active-sessions gauge
                    "messages", columns=["id", "session_id", "role", "content", "sequence", "created_at"],
                    records=[(new_id(), row[0], "user", "[]", n, start) for row in rows[::10] for n in range(3)])
            await conn.execute("VACUUM (ANALYZE) sessions")
            await conn.execute("VACUUM (ANALYZE) messages")
            return tenant_id
        finally:
            await conn.close()

    return asyncio.run(seed())


def _assert_sessions_indexed(plan, label):
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [s for s in scans if s[0] == "Seq Scan"], (label, scans)
    assert not [n for n in _nodes(plan) if n["Node Type"] in ("Sort", "Incremental Sort")], (label, plan)
    assert {s[2] for s in scans if s[2]} <= {SESSIONS_INDEX, MESSAGES_INDEX, "sessions_pkey"}, (label, scans)
    assert any(s[2] == SESSIONS_INDEX for s in scans), (label, scans)
    assert any(s[2] == MESSAGES_INDEX for s in scans), (label, scans)  # message_count per row, by index


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
async def test_chat_session_first_and_cursor_pages_are_index_range_scans(db, chat_tenant, mode):
    first = Page(limit=200, offset=0, after=None, include_total=True)
    text, args = sessions.LISTING.page_sql(chat_tenant, {}, first)
    _assert_sessions_indexed(await _plan(db, text, args, mode), f"first {mode}")
    deep = await db.fetchrow("SELECT created_at, id FROM sessions WHERE tenant_id = $1 "
                             "ORDER BY created_at DESC, id DESC OFFSET 3000 LIMIT 1", chat_tenant)
    cursor = Page(limit=200, offset=0, after=(deep["created_at"], deep["id"]), include_total=False)
    text, args = sessions.LISTING.page_sql(chat_tenant, {}, cursor)
    _assert_sessions_indexed(await _plan(db, text, args, mode), f"cursor {mode}")
    rows = await db.fetch(text, *args)
    assert len(rows) == 201 and rows[0]["created_at"] < deep["created_at"]
    text, args = sessions.LISTING.count_sql(chat_tenant, {})  # no counter table: a plain count (see decisions)
    assert await db.fetchval(text, *args) == 4000


async def test_a_deep_chat_session_offset_page_is_a_deferred_join(db, chat_tenant):
    text, args = sessions.LISTING.page_sql(chat_tenant, {}, Page(limit=50, offset=3500, after=None,
                                                                 include_total=False))
    for plan, mode in ((await _plan(db, text, args, "force_custom_plan"), "custom"),
                       (await _generic_plan(db, text, args), "generic")):
        _assert_deferred_join(plan, SESSIONS_INDEX, f"sessions {mode}", "sessions", per_row={MESSAGES_INDEX})
    rows = await db.fetch(text, *args)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    assert [row["created_at"] for row in rows] == [start + dt.timedelta(seconds=499 - i) for i in range(51)]
    assert {row["message_count"] for row in rows} == {0, 3}



# --- the start of a chat turn (sql/messages.sql, sql/approval_resume.sql): one statement per step, by index ----------

APPROVAL_COLUMNS = ["id", "tenant_id", "session_id", "tool_name", "tool_call_id", "summary", "turn_id", "expires_at",
                    "status", "granted", "consumed_at"]
TURN_INDEXES = {"sessions_pkey", "tenant_settings_pkey", MESSAGES_INDEX, "pending_approvals_session_id_requested_at_idx",
                "pending_approvals_pending_expires_at_idx", "pending_approvals_tenant_id_status_requested_at_id_idx"}


@pytest.fixture(scope="module")
def turn_approvals(chat_tenant, database):
    """Two approvals for each session of the chat tenants (one pending, one decided and consumed) and the settings
    rows of 3,000 more tenants, vacuumed and analysed."""
    async def seed():
        conn = await asyncpg.connect(database.dsn)
        try:
            sessions_ = await conn.fetch("SELECT id, tenant_id FROM sessions ORDER BY id")
            start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
            rows = []
            for n, (session_id, tenant_id) in enumerate(sessions_):
                for k, (status, granted, consumed) in enumerate((("pending", None, None), ("granted", True, start))):
                    rows.append((f"ap-{n}-{k}", tenant_id, session_id, "book_offer", f"tc-{n}-{k}", "Book", "t-1",
                                 start + dt.timedelta(hours=n % 48), status, granted, consumed))
            await conn.copy_records_to_table("pending_approvals", records=rows, columns=APPROVAL_COLUMNS)
            await conn.copy_records_to_table("tenants", columns=["id", "display_name"],  # settings of many tenants
                                             records=[(new_id(), f"Other {i}") for i in range(3000)])
            await conn.execute("INSERT INTO tenant_settings (tenant_id) SELECT id FROM tenants ON CONFLICT DO NOTHING")
            for table in ("pending_approvals", "tenant_settings", "sessions", "messages"):
                await conn.execute(f"VACUUM (ANALYZE) {table}")
            return sessions_[len(sessions_) // 2]["id"]
        finally:
            await conn.close()

    return asyncio.run(seed())


def _assert_turn_step_indexed(plan, label):
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [s for s in scans if s[0] == "Seq Scan"], (label, scans)
    assert {s[2] for s in scans if s[2]} <= TURN_INDEXES and any(s[2] for s in scans), (label, scans)


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("name", ["admit_turn", "insert_user_message", "sweep_unconsumed_decisions"])
async def test_each_statement_before_a_turns_first_frame_reads_by_index(db, queries, chat_tenant, turn_approvals,
                                                                       name, mode):
    session_id = turn_approvals
    tenant_id = await db.fetchval("SELECT tenant_id FROM sessions WHERE id = $1", session_id)
    now = dt.datetime(2026, 1, 2, tzinfo=dt.timezone.utc)
    values = {"admit_turn": {"id": session_id, "tenant_id": tenant_id, "now": now},
              "insert_user_message": {"id": new_id(), "session_id": session_id, "title": "t",
                                      "content": json.dumps([{"type": "text", "text": "t"}])},
              "sweep_unconsumed_decisions": {"session_id": session_id, "tenant_id": tenant_id, "now": now}}[name]
    query = getattr(queries, name)
    _assert_turn_step_indexed(await _plan(db, query.sql, query.args(values), mode), f"{name} {mode}")


# --- finance reports (sql/reports.sql): aging on its covering index (0005), trial balance on daily totals (0007)

FINANCE_COLUMNS = ["id", "tenant_id", "number", "party_name", "issue_date", "due_date", "total_amount", "currency",
                   "amount_paid", "status"]
LINE_COLUMNS = ["entry_id", "line_no", "tenant_id", "account_id", "debit", "credit", "currency", "posted_at"]


async def _seed_finance(conn, tenant_id, documents, entries, rnd):
    from tests import finance

    accounts = await finance.chart(conn, tenant_id)
    start = dt.date(2025, 1, 1)
    for table, statuses in (("invoices", ["draft", "issued", "partially_paid", "paid", "void"]),
                            ("bills", ["draft", "received", "scheduled", "paid", "void"])):
        rows = []
        for i in range(documents):
            issue = start + dt.timedelta(days=rnd.randrange(540))
            total = Decimal(rnd.randrange(100, 10_000_000)).scaleb(-2)
            rows.append((new_id(), tenant_id, f"{table}-{i}", f"Party {rnd.randrange(300)}", issue,
                         issue + dt.timedelta(days=rnd.randrange(60)), total, rnd.choice(["INR", "INR", "USD"]),
                         rnd.choice([Decimal(0), total / 2, total]).quantize(Decimal("0.01")), rnd.choice(statuses)))
        columns = FINANCE_COLUMNS + (["vendor_reference"] if table == "bills" else [])
        if table == "bills":
            rows = [row + (f"V-{row[0].hex}",) for row in rows]
        await conn.copy_records_to_table(table, records=rows, columns=columns)
    lines = []
    codes = [("1200", "4000"), ("5000", "2100"), ("1000", "1200"), ("2100", "1000")]
    for _ in range(entries):
        entry_id, (debit, credit) = new_id(), rnd.choice(codes)
        amount = Decimal(rnd.randrange(100, 1_000_000)).scaleb(-2)
        posted = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc) + dt.timedelta(seconds=rnd.randrange(46_000_000))
        lines.append((entry_id, 1, tenant_id, accounts[debit], amount, Decimal(0), "INR", posted))
        lines.append((entry_id, 2, tenant_id, accounts[credit], Decimal(0), amount, "INR", posted))
    await conn.copy_records_to_table("journal_entries", records=lines, columns=LINE_COLUMNS)


@pytest.fixture(scope="module")
def finance_tenant(database):
    """One tenant with many documents and ledger lines among several small ones, vacuumed and analysed."""
    async def seed():
        rnd = random.Random(12)
        conn = await asyncpg.connect(database.dsn)
        try:
            big, _user = await _tenant(conn)
            await _seed_finance(conn, big, 6000, 10_000, rnd)
            for _ in range(OTHERS):
                await _seed_finance(conn, (await _tenant(conn))[0], 600, 500, rnd)
            for table in ("invoices", "bills", "journal_entries", "ledger_accounts"):
                await conn.execute(f"VACUUM ANALYZE {table}")
            return Tenant(big)
        finally:
            await conn.close()

    return asyncio.run(seed())


REPORT_PLANS = {
    "receivables": ("get_aging", "invoices", "invoices_aging_idx"),
    "payables": ("get_aging", "bills", "bills_aging_idx"),
    "trial balance": ("get_trial_balance", "ledger_daily_totals", "ledger_daily_totals_pkey"),
}
REPORT_ARGS = {
    "full period": {"from_date": dt.date(2025, 1, 1), "to_date": dt.date(2026, 12, 31), "currency": None},
    "one week in USD": {"from_date": dt.date(2025, 6, 1), "to_date": dt.date(2025, 6, 7), "currency": "USD"},
}


@pytest.mark.parametrize("mode", ["force_custom_plan", "force_generic_plan"])
@pytest.mark.parametrize("args", list(REPORT_ARGS))
@pytest.mark.parametrize("report", list(REPORT_PLANS))
async def test_each_report_reads_its_index(db, queries, finance_tenant, report, args, mode):
    name, table, index = REPORT_PLANS[report]
    query = getattr(queries, name)
    if report == "trial balance":
        values = {"tenant_id": finance_tenant.tenant_id, "include_zero": args == "full period",
                  "as_of": REPORT_ARGS[args]["to_date"]}
    else:
        values = {"kind": report, "tenant_id": finance_tenant.tenant_id, "today": dt.date(2026, 6, 15),
                  **REPORT_ARGS[args]}
    plan = await _plan(db, query.sql, query.args(values), mode)
    scans = [(n["Node Type"], n.get("Relation Name"), n.get("Index Name")) for n in _nodes(plan)]
    assert not [s for s in scans if s[0] == "Seq Scan" and s[1] == table], (report, scans)
    if report == "trial balance":  # a range of the account's days (index or bitmap scan); never the lines
        assert index in {s[2] for s in scans} and not [s for s in scans if s[1] == "journal_entries"], scans
    else:
        assert ("Index Only Scan", table, index) in scans, (report, scans)
