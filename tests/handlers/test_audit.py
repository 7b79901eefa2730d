"""The audit log as an admin or an integrator reads it: filters, keyset paging, and the streamed CSV export."""

import asyncio
import csv
import datetime as dt
import io
import json
import uuid

import pytest

from tests.conftest import wait_until
from voyagent.ids import new_id
from voyagent.keys import AUDIT_EXPORTS

UTC = dt.timezone.utc
EVENT_KEYS = {"id", "tenant_id", "actor_kind", "actor_id", "actor_email", "kind", "summary", "payload", "status",
              "created_at"}
CSV_HEADER = "created_at,kind,actor_kind,actor_id,actor_email,status,summary,payload_json\r\n"


async def add_event(db, tenant_id, *, kind="invite.created", at=None, actor_id=None, actor_kind="human",
                    status="succeeded", error=None, driver=None, inputs=None, outputs=None, entity_refs=None,
                    approval_required=False, approved_by=None, approved_at=None, completed_at=None, event_id=None):
    """Arrange one stored audit row exactly as given; returns its id."""
    event_id = event_id or new_id()
    await db.execute(
        "INSERT INTO audit_events (id, tenant_id, actor_id, actor_kind, tool, driver, entity_refs, inputs, outputs,"
        " error, approval_required, approved_by, approved_at, started_at, completed_at, status) VALUES ($1, $2, $3,"
        " $4::actor_kind, $5, $6, $7::jsonb, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14, $15, $16::audit_status)",
        event_id, tenant_id, actor_id, actor_kind, kind, driver, json.dumps(entity_refs or {}),
        json.dumps(inputs or {}), json.dumps(outputs or {}), error, approval_required, approved_by, approved_at,
        at or dt.datetime.now(UTC), completed_at, status)
    return event_id


async def add_many(db, tenant_id, count, *, start, step=dt.timedelta(seconds=1), kind="bulk.event"):
    """``count`` events one ``step`` apart from ``start`` (oldest first), inserted in one statement."""
    await db.execute(
        "INSERT INTO audit_events (id, tenant_id, actor_kind, tool, started_at, status, inputs) "
        "SELECT gen_random_uuid(), $1, 'system', $2, $3::timestamptz + (n * $4::interval), 'succeeded', "
        "jsonb_build_object('n', n, 'text', repeat('x', 200)) FROM generate_series(0, $5 - 1) AS n",
        tenant_id, kind, start, step, count)


async def get_page(client, headers, **params):
    response = await client.get("/audit", params=params, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def at(day, hour=12, minute=0, second=0, micro=0):
    return dt.datetime(2025, 3, day, hour, minute, second, micro, tzinfo=UTC)


# --- the wire shape -----------------------------------------------------------------------------------------


async def test_events_have_the_documented_wire_shape(client, admin, db):
    book = await add_event(db, admin.tenant_id, kind="book_offer", at=at(1, 9), actor_id=admin.id,
                           actor_kind="agent", driver="sandbox", status="started", inputs={"offer_id": "FLT-1A2B3C4D"},
                           entity_refs={"session_id": "s-1"}, approval_required=True, approved_by=admin.id,
                           approved_at=at(1, 9, 0, 5, 120000), completed_at=at(1, 9, 0, 7))
    failed = await add_event(db, admin.tenant_id, kind="issue_invoice", at=at(1, 10), actor_kind="agent",
                             driver="sandbox", status="failed", error="supplier timeout")
    rejected = await add_event(db, admin.tenant_id, kind="auth.verify", at=at(1, 11), actor_id=admin.id,
                               status="rejected", error="forbidden_role")
    cancelled = await add_event(db, admin.tenant_id, kind="hold_offer", at=at(1, 12), actor_kind="system",
                                status="cancelled")
    page = await get_page(client, admin.headers)
    assert set(page) == {"items", "total", "limit", "offset", "next_cursor"}
    by_id = {item["id"]: item for item in page["items"]}
    assert all(set(item) == EVENT_KEYS for item in page["items"])
    assert by_id[str(book)] == {
        "id": str(book), "tenant_id": str(admin.tenant_id), "actor_kind": "agent", "actor_id": str(admin.id),
        "actor_email": admin.email, "kind": "book_offer", "summary": "book_offer via sandbox (started)",
        "payload": {"inputs": {"offer_id": "FLT-1A2B3C4D"}, "outputs": {}, "entity_refs": {"session_id": "s-1"},
                    "driver": "sandbox", "approval_required": True, "approved_by": str(admin.id),
                    "approved_at": "2025-03-01T09:00:05.120000Z", "completed_at": "2025-03-01T09:00:07Z"},
        "status": "ok", "created_at": "2025-03-01T09:00:00Z"}
    assert by_id[str(failed)]["summary"] == "issue_invoice: supplier timeout"  # the error wins over the driver
    assert by_id[str(failed)]["status"] == "error"
    assert by_id[str(failed)]["payload"] == {"inputs": {}, "outputs": {}, "entity_refs": {}, "driver": "sandbox",
                                             "error": "supplier timeout"}
    assert by_id[str(failed)]["actor_id"] is None and by_id[str(failed)]["actor_email"] is None
    assert (by_id[str(rejected)]["actor_kind"], by_id[str(rejected)]["status"]) == ("user", "error")
    assert by_id[str(cancelled)]["summary"] == "hold_offer (cancelled)"
    assert (by_id[str(cancelled)]["actor_kind"], by_id[str(cancelled)]["status"]) == ("system", "ok")
    assert by_id[str(cancelled)]["payload"] == {"inputs": {}, "outputs": {}, "entity_refs": {}}


async def test_a_deleted_actor_leaves_no_email(client, admin, make_user, db):
    leaver = await make_user("agent", tenant_id=admin.tenant_id)
    event = await add_event(db, admin.tenant_id, actor_id=leaver.id)
    await db.execute("DELETE FROM users WHERE id = $1", leaver.id)
    [item] = (await get_page(client, admin.headers))["items"]
    assert item["id"] == str(event) and item["actor_id"] is None and item["actor_email"] is None


async def test_events_written_by_the_api_show_up(client, admin):
    await client.patch("/tenant-settings", json={"locale": "hi"}, headers=admin.headers)
    [item] = (await get_page(client, admin.headers))["items"]
    assert item["kind"] == "tenant_settings.updated" and item["summary"] == "tenant_settings.updated (succeeded)"
    assert item["payload"]["inputs"] == {"fields": {"locale": "hi"}} and item["actor_email"] == admin.email


# --- order, filters, paging ---------------------------------------------------------------------------------


async def test_newest_first_with_ties_broken_by_id(client, admin, db):
    same_time = at(2)
    ids = sorted([await add_event(db, admin.tenant_id, at=same_time) for _ in range(3)], reverse=True)
    older = await add_event(db, admin.tenant_id, at=at(1))
    newer = await add_event(db, admin.tenant_id, at=at(3))
    page = await get_page(client, admin.headers)
    assert [item["id"] for item in page["items"]] == [str(i) for i in [newer, *ids, older]]
    assert (page["total"], page["limit"], page["offset"], page["next_cursor"]) == (5, 50, 0, None)


async def test_filters_by_actor_kind_and_day(client, admin, make_user, db):
    colleague = await make_user("agent", tenant_id=admin.tenant_id)
    first = await add_event(db, admin.tenant_id, kind="a.one", actor_id=admin.id, at=at(10, 0, 0, 0, 0))
    last = await add_event(db, admin.tenant_id, kind="b.two", actor_id=colleague.id, at=at(12, 23, 59, 59, 999999))
    await add_event(db, admin.tenant_id, kind="c.three", actor_id=admin.id, at=at(9, 23, 59, 59, 999999))
    await add_event(db, admin.tenant_id, kind="a.one", actor_id=colleague.id, at=at(13, 0))

    async def ids(**params):
        return [item["id"] for item in (await get_page(client, admin.headers, **params))["items"]]

    assert await ids(**{"from": "2025-03-10", "to": "2025-03-12"}) == [str(last), str(first)]
    assert await ids(**{"from": "2025-03-12", "to": "2025-03-12"}) == [str(last)]
    assert len(await ids(actor_id=str(admin.id))) == 2
    assert await ids(actor_id=str(admin.id).upper(), kind="a.one") == [str(first)]
    assert await ids(actor_id=str(uuid.uuid4())) == []
    assert len(await ids(kind="a.one")) == 2
    assert len(await ids(kind=" a.one , ,b.two,")) == 3
    response = await client.get("/audit?kind=a.one&kind=c.three&kind=", headers=admin.headers)
    assert (await response.json())["total"] == 3
    assert len(await ids(kind=",, ,")) == 4  # no pieces: no filter
    assert await ids(kind="A.ONE") == []  # exact match
    page = await get_page(client, admin.headers, kind="a.one,b.two", to="2025-03-12")
    assert page["total"] == 2 and [i["id"] for i in page["items"]] == [str(last), str(first)]


@pytest.mark.parametrize("params, detail", [
    ({"actor_id": "not-a-uuid"}, "invalid_actor_id"),
    ({"actor_id": "1234"}, "invalid_actor_id"),
    ({"actor_id": ""}, "invalid_actor_id"),
    ({"from": "2025-03-02", "to": "2025-03-01"}, "invalid_period"),
    ({"actor_id": "x", "from": "2025-03-02", "to": "2025-03-01"}, "invalid_actor_id"),
])
async def test_bad_filters_are_422_with_their_code(client, admin, params, detail):
    for path in ("/audit", "/audit/export.csv"):
        response = await client.get(path, params=params, headers=admin.headers)
        assert (response.status, await response.json()) == (422, {"detail": detail}), path


@pytest.mark.parametrize("params, loc, type_", [
    ({"from": "2025-02-30"}, ["query", "from"], "date_from_datetime_parsing"),
    ({"to": "yesterday"}, ["query", "to"], "date_from_datetime_parsing"),
    ({"from": "2025-03-01T00:00:00Z"}, ["query", "from"], "date_from_datetime_parsing"),
    ({"limit": "0"}, ["query", "limit"], "greater_than_equal"),
    ({"limit": "-1"}, ["query", "limit"], "greater_than_equal"),
    ({"limit": "201"}, ["query", "limit"], "less_than_equal"),
    ({"limit": "ten"}, ["query", "limit"], "int_parsing"),
    ({"offset": "-5"}, ["query", "offset"], "greater_than_equal"),
    ({"offset": "1e3"}, ["query", "offset"], "int_parsing"),
    ({"include_total": "maybe"}, ["query", "include_total"], "bool_parsing"),
    ({"kind": "a\x00b"}, ["query", "kind", 0], "value_error"),
])
async def test_malformed_parameters_are_422_list_shape(client, admin, params, loc, type_):
    response = await client.get("/audit", params=params, headers=admin.headers)
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert any(item["loc"] == loc and item["type"] == type_ for item in detail), detail


async def test_limit_offset_and_include_total(client, admin, db):
    await add_many(db, admin.tenant_id, 7, start=at(1))
    page = await get_page(client, admin.headers, limit=3, offset=2)
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (3, 7, 3, 2)
    assert page["items"][0]["payload"]["inputs"]["n"] == 4
    assert page["next_cursor"] is not None
    page = await get_page(client, admin.headers, limit=200, include_total="false")
    assert len(page["items"]) == 7 and page["total"] is None and page["next_cursor"] is None
    page = await get_page(client, admin.headers, offset=100)
    assert page["items"] == [] and page["total"] == 7 and page["next_cursor"] is None
    page = await get_page(client, admin.headers, offset=str(2**63 + 5))
    assert page["items"] == [] and page["offset"] == 2**63 + 5


async def test_the_default_page_is_50_and_a_cursor_walk_sees_every_row_once(client, admin, db):
    await add_many(db, admin.tenant_id, 120, start=at(1), step=dt.timedelta(0))  # one timestamp: ids decide
    first = await get_page(client, admin.headers)
    assert len(first["items"]) == 50 and first["total"] == 120
    seen, cursor = [item["id"] for item in first["items"]], first["next_cursor"]
    while cursor:
        page = await get_page(client, admin.headers, cursor=cursor, include_total="false")
        assert page["offset"] == 0 and page["total"] is None
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
    everything = await get_page(client, admin.headers, limit=200)
    assert seen == [item["id"] for item in everything["items"]] and len(set(seen)) == 120
    # offset mode also hands out a cursor, to switch to keyset paging at any point
    middle = await get_page(client, admin.headers, limit=10, offset=30)
    after = await get_page(client, admin.headers, limit=10, cursor=middle["next_cursor"])
    assert [i["id"] for i in after["items"]] == seen[40:50]


async def test_a_cursor_keeps_working_while_new_events_arrive(client, admin, db):
    await add_many(db, admin.tenant_id, 6, start=at(1))
    first = await get_page(client, admin.headers, limit=3)
    await add_event(db, admin.tenant_id, at=at(20))
    second = await get_page(client, admin.headers, limit=3, cursor=first["next_cursor"])
    assert [i["payload"]["inputs"]["n"] for i in second["items"]] == [2, 1, 0]


async def test_bad_cursors_are_422_invalid_cursor(client, admin, make_user, db):
    await add_many(db, admin.tenant_id, 5, start=at(1), kind="k.a")
    cursor = (await get_page(client, admin.headers, limit=2, kind="k.a"))["next_cursor"]
    other_admin = await make_user("agency_admin")
    await add_many(db, other_admin.tenant_id, 5, start=at(1), kind="k.a")
    tampered = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    cases = [
        (admin, {"cursor": "garbage"}), (admin, {"cursor": "%%%"}), (admin, {"cursor": tampered}),
        (admin, {"cursor": cursor}),  # produced under kind=k.a
        (admin, {"cursor": cursor, "kind": "k.b"}),
        (admin, {"cursor": cursor, "kind": "k.a", "offset": "2"}),
        (admin, {"cursor": "x" * 600}),
        (other_admin, {"cursor": cursor, "kind": "k.a"}),  # another tenant's cursor
    ]
    for user, params in cases:
        response = await client.get("/audit", params=params, headers=user.headers)
        assert (response.status, await response.json()) == (422, {"detail": "invalid_cursor"}), params
    response = await client.get("/audit", params={"cursor": cursor, "kind": "k.a", "offset": "0"},
                                headers=admin.headers)
    assert response.status == 200  # offset 0 with a cursor is fine


# --- access and isolation -----------------------------------------------------------------------------------


async def test_only_admins_and_their_audit_keys_read_the_log(client, admin, make_user, make_api_key):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    agents_key = await make_api_key(agent, ["audit:read"])
    no_scope = await make_api_key(admin, ["enquiries:read", "tenant:write"])
    audit_key = await make_api_key(admin, ["audit:read"])
    for path in ("/audit", "/audit/export.csv"):
        response = await client.get(path, headers=agent.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"})
        response = await client.get(path, headers=agents_key.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"})
        response = await client.get(path, headers=no_scope.headers)
        assert (response.status, await response.json()) == (403, {"detail": "insufficient_scope"})
        assert (await client.get(path)).status == 401
        assert (await client.get(path, headers=audit_key.headers)).status == 200
        assert (await client.get(path, headers=admin.headers)).status == 200


async def test_the_log_never_shows_another_tenant(client, admin, make_user, db):
    other_admin = await make_user("agency_admin")
    mine = await add_event(db, admin.tenant_id, actor_id=admin.id)
    await add_event(db, other_admin.tenant_id, actor_id=other_admin.id)
    await add_event(db, other_admin.tenant_id, kind="invite.created")
    page = await get_page(client, admin.headers)
    assert [item["id"] for item in page["items"]] == [str(mine)] and page["total"] == 1
    page = await get_page(client, admin.headers, actor_id=str(other_admin.id))
    assert page["items"] == [] and page["total"] == 0
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert (await response.text()).count("\r\n") == 2 and str(other_admin.id) not in await response.text()


# --- CSV export ---------------------------------------------------------------------------------------------


async def test_the_export_is_rfc4180_csv_of_the_wire_values(client, admin, db):
    await add_event(db, admin.tenant_id, kind="book_offer", at=at(5, 8), actor_id=admin.id, actor_kind="agent",
                    driver="sandbox", status="failed", error='supplier said "no", then\r\nhung up',
                    inputs={"note": "a,b", "unicode": "Müller ✈", "nested": {"pax": [1, 2.5, None, True]}},
                    approval_required=True, approved_by=admin.id, approved_at=at(5, 8, 0, 1),
                    completed_at=at(5, 8, 0, 2, 500000))
    await add_event(db, admin.tenant_id, kind="tenant_settings.updated", at=at(5, 9, 30, 0, 250))
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    today = dt.datetime.now(UTC).date().isoformat()
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="voyagent-audit-{str(admin.tenant_id)[:8]}-{today}.csv"'
    assert "Content-Length" not in response.headers  # streamed
    # the head the handler sends itself carries the headers of every response
    assert len(response.headers["X-Request-Id"]) == 32 and "RateLimit-Remaining" in response.headers
    raw = await response.read()
    text = raw.decode("utf-8")
    assert text.startswith(CSV_HEADER) and text.endswith("\r\n")
    records = list(csv.reader(io.StringIO(text, newline="")))
    page = await get_page(client, admin.headers)
    for record, item in zip(records[1:], page["items"]):
        assert record[:7] == [item["created_at"], item["kind"], item["actor_kind"], item["actor_id"] or "",
                              item["actor_email"] or "", item["status"], item["summary"]]
        assert json.loads(record[7]) == item["payload"]
    assert len(records) == 3
    # quoting only where needed, quotes doubled, the embedded CRLF kept inside the quoted field
    assert '"book_offer: supplier said ""no"", then\r\nhung up"' in text
    assert "\r\n2025-03-05T09:30:00.000250Z,tenant_settings.updated,user,,,ok,tenant_settings.updated (succeeded)," \
           '"{""inputs"":{},""outputs"":{},""entity_refs"":{}}"\r\n' in text


async def test_the_export_applies_the_filters(client, admin, db):
    await add_event(db, admin.tenant_id, kind="keep", at=at(6))
    await add_event(db, admin.tenant_id, kind="drop", at=at(6))
    await add_event(db, admin.tenant_id, kind="keep", at=at(8))
    response = await client.get("/audit/export.csv", params={"kind": "keep", "to": "2025-03-07"},
                                headers=admin.headers)
    records = list(csv.reader(io.StringIO(await response.text(), newline="")))
    assert [r[1] for r in records[1:]] == ["keep"] and records[1][0] == "2025-03-06T12:00:00Z"


async def test_an_empty_export_is_the_header_alone(client, admin):
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.status == 200 and await response.text() == CSV_HEADER


async def test_an_export_over_the_cap_is_400_export_too_large(make_client, admin, db):
    client = await make_client(audit_export_max_rows=3)
    await add_many(db, admin.tenant_id, 3, start=at(1))
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.status == 200 and (await response.text()).count("\r\n") == 4  # exactly the cap is fine
    await add_event(db, admin.tenant_id)
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert (response.status, await response.json()) == (400, {"detail": "export_too_large"})
    assert response.headers["Content-Type"].startswith("application/json")
    response = await client.get("/audit/export.csv", params={"kind": "bulk.event"}, headers=admin.headers)
    assert response.status == 200  # the cap counts the filtered rows


async def test_a_large_export_streams_every_row_in_order(client, admin, db):
    await add_many(db, admin.tenant_id, 5000, start=at(1))
    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.headers.get("Transfer-Encoding") == "chunked"
    records = list(csv.reader(io.StringIO(await response.text(), newline="")))
    assert len(records) == 5001
    assert [json.loads(r[7])["inputs"]["n"] for r in records[1:]] == list(range(4999, -1, -1))


async def test_a_client_that_goes_away_stops_the_export_query(make_client, admin, db):
    client = await make_client(db_pool_max=2)  # one export slot: half the pool
    await add_many(db, admin.tenant_id, 60_000, start=at(1))  # ~18 MB: more than the socket buffers hold

    async def open_exports() -> int:
        """Server connections of this database still inside a transaction or running the export's COPY (its
        parallel workers, if the plan has some, are not connections)."""
        return await db.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                 "AND pid <> pg_backend_pid() AND backend_type = 'client backend' "
                                 "AND (state LIKE 'idle in transaction%' "
                                 "OR (state = 'active' AND query LIKE 'COPY (%'))")

    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.status == 200
    await response.content.readexactly(64 * 1024)  # started, then the client stops reading...
    server = client.server.runner.server
    await wait_until(lambda: any(c.writing_paused for c in server.connections), what="the server waiting to write")
    assert await open_exports() == 1  # ...and the server waits, cursor open, without buffering the rest
    slot = client.app[AUDIT_EXPORTS]
    second = asyncio.create_task(client.get("/audit/export.csv", params={"kind": "none"}, headers=admin.headers))
    await wait_until(lambda: len(slot._waiters or ()) == 1, what="a second export queueing for the slot")
    assert not second.done()  # a second export waits for the slot instead of taking the pool's last connection
    assert (await client.get("/tenant-settings", headers=admin.headers)).status == 200  # others are served
    response.close()  # ...and hangs up

    async def export_ended() -> bool:
        return await open_exports() == 0

    await wait_until(export_ended, what="the export's transaction ending")
    waited = await asyncio.wait_for(second, 5)
    assert waited.status == 200 and await waited.text() == CSV_HEADER


async def test_the_unfiltered_total_stays_exact_under_concurrent_writes_and_deletes(client, admin, db):
    await add_many(db, admin.tenant_id, 25, start=at(1))
    patches = [client.patch("/tenant-settings", json={"rate_limit_per_hour": n}, headers=admin.headers)
               for n in range(1, 21)]
    assert {r.status for r in await asyncio.gather(*patches)} == {200}
    actual = await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", admin.tenant_id)
    assert actual == 45 and (await get_page(client, admin.headers))["total"] == 45
    await db.execute("DELETE FROM audit_events WHERE tenant_id = $1 AND tool = 'bulk.event'", admin.tenant_id)
    assert (await get_page(client, admin.headers))["total"] == 20
    assert (await get_page(client, admin.headers, kind="tenant_settings.updated"))["total"] == 20


async def test_a_tenant_with_an_audit_log_can_still_be_deleted(admin, db):
    await add_many(db, admin.tenant_id, 3, start=at(1))
    await db.execute("DELETE FROM tenants WHERE id = $1", admin.tenant_id)
    assert await db.fetchval("SELECT count(*) FROM audit_event_counts WHERE tenant_id = $1", admin.tenant_id) == 0


# --- spreadsheet safety of the export (endpoints.md, GET /audit/export.csv) ----------------------------------

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value):
    """What the export must write for a wire value: a leading ' before a formula start, null → empty."""
    if value is None:
        return ""
    return "'" + value if value[:1] in FORMULA_STARTS else value


async def test_the_export_neutralises_formulas_in_every_column_a_user_controls(client, admin, make_user, db):
    tag = uuid.uuid4().hex[:8]
    # actor_email: the e-mail rule lets an address begin with = + - (not @, TAB or CR: those never reach the log)
    actors = [await make_user("agent", tenant_id=admin.tenant_id, email=f"{start}cmd{tag}@example.com")
              for start in ("=", "+", "-")]
    # kind (and the summary, which begins with it): every formula start, with commas and quotes to be quoted after
    kinds = ['=HYPERLINK("http://evil.example/?x=1","click")', "+1+2", "-2+3", "@SUM(1,2)", "\t=1+2", "\r=1+2",
             "=1\r\n=2"]
    payload = {"note": "=cmd|' /C calc'!A0", "+x": "-1", "list": ["@SUM(A1)", "\t=1"]}
    for n, actor in enumerate(actors):
        await add_event(db, admin.tenant_id, kind="invite.created", at=at(9, 8, n), actor_id=actor.id,
                        inputs=payload)
    for n, kind in enumerate(kinds):
        await add_event(db, admin.tenant_id, kind=kind, at=at(9, 9, n), actor_id=actors[0].id, inputs=payload)
    await add_event(db, admin.tenant_id, kind="book_offer", at=at(9, 10), status="failed", error="=1+2",
                    driver="-sandbox")  # the summary begins with the kind: only the start of a field matters

    response = await client.get("/audit/export.csv", headers=admin.headers)
    assert response.status == 200
    text = await response.text()
    records = list(csv.reader(io.StringIO(text, newline="")))[1:]
    items = (await get_page(client, admin.headers))["items"]
    assert len(records) == len(items) == 11
    for record, item in zip(records, items):
        assert record[:7] == [item["created_at"], neutralised(item["kind"]), item["actor_kind"], item["actor_id"] or "",
                              neutralised(item["actor_email"]), item["status"], neutralised(item["summary"])]
        assert record[7].startswith("{") and json.loads(record[7]) == item["payload"]  # values inside stay as they are
    by_kind = {record[1]: record for record in records}
    for kind in kinds:
        assert by_kind["'" + kind][6] == "'" + kind + " (succeeded)"
    assert {record[4] for record in records if record[4]} == {"'" + actor.email for actor in actors}
    assert by_kind["book_offer"][6] == "book_offer: =1+2"
    # the quote is part of the value, so RFC 4180 quoting applies after it
    assert '"\'=HYPERLINK(""http://evil.example/?x=1"",""click"")"' in text
    assert "\"'\r=1+2\"," in text and "\"'\t=1+2 (succeeded)\"" not in text  # a TAB alone needs no quotes
    assert "'\t=1+2 (succeeded)," in text


async def test_get_audit_still_returns_the_values_without_the_quote(client, admin, make_user, db):
    actor = await make_user("agent", tenant_id=admin.tenant_id, email=f"=1+2{uuid.uuid4().hex[:8]}@example.com")
    await add_event(db, admin.tenant_id, kind="@SUM(1,2)", actor_id=actor.id, inputs={"note": "-5"})
    [item] = (await get_page(client, admin.headers))["items"]
    assert item["kind"] == "@SUM(1,2)" and item["summary"] == "@SUM(1,2) (succeeded)"
    assert item["actor_email"] == actor.email and actor.email.startswith("=")
    assert item["payload"]["inputs"] == {"note": "-5"}


# --- auth.verify: at most 5 per minute per (principal, route template) (data-model.md) -------------------------


async def verify_rows(db, tenant_id):
    rows = await db.fetch("SELECT actor_id, error, inputs FROM audit_events WHERE tenant_id = $1 "
                          "AND tool = 'auth.verify' ORDER BY started_at, id", tenant_id)
    return [{"actor_id": r["actor_id"], "error": r["error"], **json.loads(r["inputs"])} for r in rows]


async def test_varying_ids_in_the_path_cannot_flood_the_audit_log(make_client, admin, make_user, db):
    client = await make_client(trusted_proxy_hops=1)
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    paths = [f"/auth/invites/{uuid.uuid4()}/revoke" for _ in range(6)]
    for n, path in enumerate(paths):  # a new id and a new client address every time
        response = await client.post(path + "?attempt=1", headers={**agent.headers, "X-Forwarded-For": f"192.0.2.{n}"})
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"})
    rows = await verify_rows(db, admin.tenant_id)
    assert len(rows) == 5
    # the row keeps the raw request path (not the template), without the query string, and the client address
    assert [(r["path"], r["remote_addr"]) for r in rows] == [(paths[n], f"192.0.2.{n}") for n in range(5)]
    assert all(r["actor_id"] == agent.id and r["error"] == "forbidden_role" and r["method"] == "POST" for r in rows)

    # the same principal on another route template, and another principal on this one, are counted apart
    assert (await client.post(f"/auth/api-keys/{uuid.uuid4()}/revoke", headers=agent.headers)).status == 403
    other = await make_user("agent", tenant_id=admin.tenant_id)
    assert (await client.post(paths[5], headers=other.headers)).status == 403
    assert (await client.post(paths[0], headers=agent.headers)).status == 403  # still over its allowance
    rows = await verify_rows(db, admin.tenant_id)
    assert len(rows) == 7
    assert {(r["actor_id"], r["path"].split("/")[2]) for r in rows[5:]} == {(agent.id, "api-keys"),
                                                                            (other.id, "invites")}


async def test_an_api_key_is_its_own_principal_for_the_audit_limiter(client, admin, make_user, make_api_key, db):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    key = await make_api_key(agent, ["enquiries:read"])
    for _ in range(6):
        response = await client.post(f"/auth/api-keys/{uuid.uuid4()}/revoke", headers=key.headers)
        assert (response.status, await response.json()) == (403, {"detail": "api_key_not_allowed"})
    rows = await verify_rows(db, admin.tenant_id)
    assert len(rows) == 5 and all(r["api_key_id"] == str(key.id) for r in rows)
    # the key's creator, with a JWT, on the same route template: another principal, so still recorded
    assert (await client.post(f"/auth/api-keys/{uuid.uuid4()}/revoke", headers=agent.headers)).status == 403
    rows = await verify_rows(db, admin.tenant_id)
    assert len(rows) == 6 and "api_key_id" not in rows[-1] and rows[-1]["error"] == "forbidden_role"


@pytest.mark.redis
async def test_with_redis_workers_share_the_audit_limiter(make_client, admin, make_user, db, redis_url, settings):
    prefix = f"{settings.redis_prefix}{uuid.uuid4().hex[:8]}:"
    worker_a = await make_client(redis_url=redis_url, redis_prefix=prefix)
    worker_b = await make_client(redis_url=redis_url, redis_prefix=prefix)
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    for worker in (worker_a, worker_b, worker_a, worker_b, worker_a, worker_b):
        assert (await worker.post(f"/auth/invites/{uuid.uuid4()}/revoke", headers=agent.headers)).status == 403
    assert len(await verify_rows(db, admin.tenant_id)) == 5
