"""``voyagent demo`` on a fresh database: what it makes, that its members can sign in, and that a second run
changes nothing."""

from __future__ import annotations

import dataclasses
import io
import stat

import asyncpg
import pytest

from voyagent.app import create_app
from voyagent.demo import people, run_demo
from voyagent.demo.progress import Progress


@pytest.fixture
async def demo(fresh_database, settings, tmp_path):
    demo_settings = dataclasses.replace(settings, db_url=fresh_database, data_dir=tmp_path / "data")
    lines = io.StringIO()
    outcome = await run_demo(demo_settings, fresh_database, Progress(lines, bar=False))
    return demo_settings, outcome, lines.getvalue()


async def table_counts(dsn, tenant_id):
    conn = await asyncpg.connect(dsn)
    try:
        return {table: await conn.fetchval(f"SELECT count(*) FROM {table} WHERE tenant_id = $1", tenant_id)
                for table in ("users", "enquiries", "invites", "audit_events")}
    finally:
        await conn.close()


async def test_the_demo_makes_an_agency_with_every_role_and_a_year_of_enquiries(demo, fresh_database):
    settings, outcome, lines = demo
    assert outcome.created
    assert sorted(member["role"] for member in outcome.credentials) == sorted(role for _, _, role in people.STAFF)
    counts = await table_counts(fresh_database, outcome.tenant_id)
    assert counts["users"] == len(people.STAFF)
    assert counts["enquiries"] == outcome.counts["enquiries"] >= 1000
    conn = await asyncpg.connect(fresh_database)
    try:
        span = await conn.fetchval("SELECT max(created_at) - min(created_at) FROM enquiries WHERE tenant_id = $1",
                                   outcome.tenant_id)
        statuses = {row["status"] for row in await conn.fetch(
            "SELECT DISTINCT status::text AS status FROM enquiries WHERE tenant_id = $1", outcome.tenant_id)}
    finally:
        await conn.close()
    assert span.days >= 300
    assert statuses == {"new", "quoted", "booked", "cancelled"}
    assert "demo: agency: 6 done" in lines and "demo: enquiries:" in lines  # one plain line per stage, no bar


async def test_the_credentials_file_is_private_and_every_member_signs_in(demo, aiohttp_client, contract, queries):
    settings, outcome, _ = demo
    path = settings.data_dir / people.CREDENTIALS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    client = await aiohttp_client(create_app(settings, dsn=settings.db_url, contract=contract, queries=queries))
    for member in outcome.credentials:
        response = await client.post("/auth/sign-in", json={"email": member["email"], "password": member["password"]})
        assert response.status == 200, member
        assert (await response.json())["user"]["role"] == member["role"]


async def test_a_second_run_says_the_demo_exists_and_changes_nothing(demo, fresh_database):
    settings, outcome, _ = demo
    before = await table_counts(fresh_database, outcome.tenant_id)
    lines = io.StringIO()
    again = await run_demo(settings, fresh_database, Progress(lines, bar=False))
    assert not again.created
    assert again.tenant_id == outcome.tenant_id
    assert again.credentials == outcome.credentials
    assert await table_counts(fresh_database, outcome.tenant_id) == before
    assert lines.getvalue() == ""
