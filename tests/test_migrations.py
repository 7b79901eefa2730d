"""Migrations: schema.sql is version 0001, recorded once; concurrent starts apply it exactly once."""

import asyncio
import datetime as dt
from decimal import Decimal

import asyncpg

from tests import finance
from voyagent.migrations import discover, migrate


async def test_two_concurrent_migrations_apply_each_version_once(empty_database):
    dsn = empty_database
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        every_version = [version for version, _ in discover()]
        assert every_version[0] == "0001"
        results = await asyncio.gather(migrate(first), migrate(second))
        assert sorted(results, key=len) == [[], every_version]  # one applied all, the other none
        rows = await first.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == every_version
        assert await migrate(first) == []
        extensions = {r["extname"] for r in await first.fetch("SELECT extname FROM pg_extension")}
        assert {"pg_trgm", "btree_gin"} <= extensions
    finally:
        await first.close()
        await second.close()


async def test_numbered_migrations_follow_the_baseline_in_lexical_order(tmp_path, empty_database):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0003_more.sql").write_text("ALTER TABLE probe ADD COLUMN extra int;")
    (folder / "0002_probe.sql").write_text("CREATE TABLE probe (id int);")
    files = discover(directory=folder)
    assert [v for v, _ in files] == ["0001", "0002", "0003"]
    dsn = empty_database
    conn = await asyncpg.connect(dsn)
    try:
        assert await migrate(conn, files) == ["0001", "0002", "0003"]
        assert await conn.fetchval("SELECT count(*) FROM information_schema.columns WHERE table_name='probe'") == 2
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_half_applied(tmp_path, empty_database):
    folder = tmp_path / "migrations"
    folder.mkdir()
    (folder / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    dsn = empty_database
    conn = await asyncpg.connect(dsn)
    try:
        try:
            await migrate(conn, discover(directory=folder))
        except asyncpg.PostgresError:
            pass
        else:
            raise AssertionError("the broken migration should have failed")
        versions = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")]
        assert versions == ["0001"]
        assert await conn.fetchval("SELECT to_regclass('half')") is None
    finally:
        await conn.close()


async def test_0004_adds_totp_last_step_to_a_database_made_before_it(empty_database):
    dsn = empty_database
    conn = await asyncpg.connect(dsn)
    try:
        files = discover()
        before = [f for f in files if f[0] < "0004"]
        assert await migrate(conn, before) == [v for v, _ in before]
        await conn.execute("INSERT INTO tenants (id, display_name) VALUES ('00000000-0000-7000-8000-000000000001',"
                           " 'T')")
        await conn.execute("INSERT INTO users (id, tenant_id, email, display_name, totp_secret, totp_enabled)"
                           " VALUES ('00000000-0000-7000-8000-000000000002', '00000000-0000-7000-8000-000000000001',"
                           " 'a@example.com', 'A', 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', true)")
        assert "0004" in await migrate(conn, files)
        row = await conn.fetchrow("SELECT email, totp_enabled, totp_last_step FROM users")
        assert tuple(row) == ("a@example.com", True, None)
        column = await conn.fetchrow("SELECT data_type, is_nullable FROM information_schema.columns"
                                     " WHERE table_name = 'users' AND column_name = 'totp_last_step'")
        assert tuple(column) == ("bigint", "YES")
    finally:
        await conn.close()


async def test_0008_counts_the_open_documents_already_there(empty_database):
    dsn = empty_database
    conn = await asyncpg.connect(dsn)
    try:
        files = discover()
        assert await migrate(conn, [f for f in files if f[0] < "0008"])
        tenant_id = await finance.new_tenant(conn)
        accounts = await finance.chart(conn, tenant_id)
        for party, status, paid in (("Asha", "issued", "0"), ("Asha", "partially_paid", "4"), ("Ravi", "paid", "9"),
                                    ("Omar", "draft", "0"), ("Lena", "issued", "9")):  # Lena's is paid up
            await finance.invoice(conn, tenant_id, accounts, party=party, issue_date=dt.date(2026, 5, 1),
                                  due_date=dt.date(2026, 5, 20), total=Decimal("9.00"), paid=Decimal(paid),
                                  status=status)
        await finance.bill(conn, tenant_id, accounts, party="Air", issue_date=dt.date(2026, 5, 2),
                           due_date=dt.date(2026, 6, 1), total=Decimal("7.00"), status="scheduled")
        assert await migrate(conn, [f for f in files if f[0] <= "0008"]) == ["0008"]
        kept = await finance.open_totals_kept(conn, tenant_id)
        assert kept == await finance.open_totals_of_documents(conn, tenant_id)
        assert kept["party_name"] == {("receivables", "INR", "Asha"): (2, Decimal("14.00")),
                                      ("payables", "INR", "Air"): (1, Decimal("7.00"))}
    finally:
        await conn.close()


async def test_0009_writes_the_csv_record_of_the_events_already_there(empty_database):
    conn = await asyncpg.connect(empty_database)
    try:
        files = discover()
        assert await migrate(conn, [f for f in files if f[0] < "0009"])
        tenant_id = await finance.new_tenant(conn)
        await conn.execute("INSERT INTO audit_events (id, tenant_id, actor_kind, tool, inputs, started_at, status)"
                           " VALUES ('00000000-0000-7000-8000-0000000000a1', $1, 'system', '=sum', '{\"a\": 1}',"
                           " '2026-05-01T10:00:00Z', 'succeeded')", tenant_id)
        assert "0009" in await migrate(conn, files)
        row = await conn.fetchrow("SELECT csv_record_head, csv_record_tail FROM audit_events")
        assert tuple(row) == ("2026-05-01T10:00:00Z,'=sum,system,",
                              'ok,\'=sum (succeeded),"{""inputs"":{""a"": 1},""outputs"":{},""entity_refs"":{}}"\r\n')
    finally:
        await conn.close()
