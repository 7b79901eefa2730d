"""GET /enquiries: every filter, exact totals, offset and keyset paging, isolation and hostile input."""

import asyncio
import contextlib
import datetime as dt
import uuid
from urllib.parse import quote

import pytest

from voyagent.ids import new_id
from voyagent.keys import DATABASE, ENQUIRY_TOTALS

T0 = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.timezone.utc)
COLUMNS = ["id", "tenant_id", "created_by_user_id", "customer_name", "customer_email", "customer_phone", "origin",
           "destination", "depart_date", "return_date", "pax_count", "status", "created_at", "updated_at"]


async def seed(db, user, rows):
    """Insert enquiries directly (COPY) so tests control created_at; returns their ids in input order."""
    records, ids = [], []
    for i, row in enumerate(rows):
        created = row.get("created_at", T0 - dt.timedelta(minutes=i))
        enquiry_id = row.get("id") or new_id()
        ids.append(str(enquiry_id))
        records.append((enquiry_id, user.tenant_id, user.id, row.get("customer_name", f"Customer {i}"),
                        row.get("customer_email"), row.get("customer_phone"), row.get("origin"),
                        row.get("destination"), row.get("depart_date"), row.get("return_date"),
                        row.get("pax_count", 1), row.get("status", "new"), created, created))
    await db.copy_records_to_table("enquiries", records=records, columns=COLUMNS)
    return ids


async def listing(client, user, **params):
    response = await client.get("/enquiries", params={k: str(v) for k, v in params.items()}, headers=user.headers)
    assert response.status == 200, await response.text()
    return await response.json()


async def ids_of(client, user, **params):
    return [item["id"] for item in (await listing(client, user, **params))["items"]]


async def error(client, user, **params):
    response = await client.get("/enquiries", params=params, headers=user.headers)
    body = await response.json()
    return response.status, body["detail"]


def sort_key(row_ids_and_times):
    return sorted(row_ids_and_times, key=lambda pair: (pair[1], uuid.UUID(pair[0])), reverse=True)


# --- shape, order, totals ---------------------------------------------------------------------------------------


async def test_an_empty_tenant_lists_nothing(client, admin):
    assert await listing(client, admin) == {"items": [], "total": 0, "limit": 50, "offset": 0, "next_cursor": None}


async def test_newest_first_with_exact_total_and_offset_paging(client, admin, db):
    ids = await seed(db, admin, [{} for _ in range(7)])  # ids[0] is the newest
    page = await listing(client, admin, limit=3)
    assert [i["id"] for i in page["items"]] == ids[:3]
    assert (page["total"], page["limit"], page["offset"]) == (7, 3, 0) and page["next_cursor"]
    page = await listing(client, admin, limit=3, offset=6)
    assert [i["id"] for i in page["items"]] == ids[6:] and page["total"] == 7 and page["next_cursor"] is None
    page = await listing(client, admin, offset=50)
    assert page["items"] == [] and page["total"] == 7
    assert set(page) == {"items", "total", "limit", "offset", "next_cursor"}


async def test_include_total_false_returns_null(client, admin, db):
    await seed(db, admin, [{} for _ in range(3)])
    for value in ("false", "0", "no", "OFF"):
        assert (await listing(client, admin, include_total=value))["total"] is None
    assert (await listing(client, admin, include_total="yes", limit=1))["total"] == 3


async def test_totals_stay_exact_through_creates_and_status_changes(client, admin, db):
    for status in ("new", "new", "quoted", "booked"):
        response = await client.post("/enquiries", json={"customer_name": "A", "status": status},
                                     headers=admin.headers)
        assert response.status == 201
    first = (await listing(client, admin, limit=1))["items"][0]
    await client.patch(f"/enquiries/{first['id']}", json={"status": "cancelled"}, headers=admin.headers)
    expected = await db.fetch("SELECT status::text, count(*) FROM enquiries WHERE tenant_id = $1 GROUP BY 1",
                              admin.tenant_id)
    expected = {row["status"]: row["count"] for row in expected}
    for status in ("new", "quoted", "booked", "cancelled"):
        assert (await listing(client, admin, status=status, limit=1))["total"] == expected.get(status, 0), status
    assert (await listing(client, admin, limit=1))["total"] == 4
    assert (await listing(client, admin, status="all", limit=1))["total"] == 4


async def test_concurrent_creates_keep_the_total_exact(client, admin):
    responses = await asyncio.gather(*(client.post("/enquiries", json={"customer_name": f"C{i}"},
                                                   headers=admin.headers) for i in range(20)))
    assert [r.status for r in responses] == [201] * 20
    assert (await listing(client, admin, limit=1))["total"] == 20


async def test_counters_survive_deletes_and_a_tenants_removal(client, make_user, db):
    user = await make_user("agency_admin")
    ids = await seed(db, user, [{"status": "new"}, {"status": "booked"}, {"status": "new"}])
    await db.execute("DELETE FROM enquiries WHERE id = $1::uuid", ids[0])
    assert (await listing(client, user, limit=1))["total"] == 2
    assert (await listing(client, user, status="new", limit=1))["total"] == 1
    await db.execute("DELETE FROM tenants WHERE id = $1", user.tenant_id)  # cascades to enquiries and counters
    assert await db.fetchval("SELECT count(*) FROM enquiry_counts WHERE tenant_id = $1", user.tenant_id) == 0


async def test_filtered_totals_stay_exact_as_rows_change(client, admin, make_user, db):
    ids = await seed(db, admin, [{"destination": "Lisbon"}, {"destination": "Lisbon"}, {"destination": "Porto"}])
    totals = client.server.app[ENQUIRY_TOTALS]

    async def total():
        return (await listing(client, admin, destination="lisb", limit=1))["total"]

    assert await total() == 2
    assert await total() == 2  # second time from the cache
    assert any(key[0] == admin.tenant_id for key in totals._totals)
    await seed(db, admin, [{"destination": "LISBON"}])  # written behind the API's back
    assert await total() == 3
    await client.patch(f"/enquiries/{ids[0]}", json={"destination": "Faro"}, headers=admin.headers)
    assert await total() == 2
    await client.patch(f"/enquiries/{ids[2]}", json={"destination": "Lisboa", "status": "booked"},
                       headers=admin.headers)
    assert await total() == 3
    await db.execute("UPDATE enquiries SET customer_name = 'x' WHERE id = $1::uuid", ids[1])
    assert await total() == 3
    other = await make_user("agency_admin")
    await seed(db, other, [{"destination": "Lisbon"}])
    assert await total() == 3
    assert (await listing(client, other, destination="lisb", limit=1))["total"] == 1


async def test_the_change_counter_moves_only_on_changes_a_filter_can_see(client, admin, db):
    async def version():
        return await db.fetchval("SELECT sum(version) FROM enquiry_counts WHERE tenant_id = $1", admin.tenant_id)

    created = (await (await client.post("/enquiries", json={"customer_name": "A"}, headers=admin.headers)).json())
    path = f"/enquiries/{created['id']}"
    start = await version()
    for body in ({"notes": "n"}, {"budget_amount": 5, "budget_currency": "EUR"}, {"pax_count": 4},
                 {"session_id": str(uuid.uuid4())}, {"return_date": "2026-09-01"}, {}):
        await client.patch(path, json=body, headers=admin.headers)
    await client.post(path + "/promote-to-session", headers=admin.headers)
    assert await version() == start
    seen = start
    for body in ({"destination": "Oslo"}, {"origin": "DEL"}, {"customer_email": "a@b.c"}, {"customer_phone": "1"},
                 {"customer_name": "B"}, {"depart_date": "2026-08-01"}, {"status": "quoted"}):
        await client.patch(path, json=body, headers=admin.headers)
        assert await version() > seen, body
        seen = await version()


async def test_the_custom_plan_setting_of_a_search_does_not_leak_to_other_requests(client, admin, db):
    await seed(db, admin, [{"destination": "Lisbon"} for _ in range(3)])
    for _ in range(3):
        await listing(client, admin, destination="lisb", limit=1)
    database = client.server.app[DATABASE]
    async with contextlib.AsyncExitStack() as stack:  # every pooled connection, the idle ones first
        connections = [await stack.enter_async_context(database.connection()) for _ in range(database.pool.size)]
        assert {await c.fetchval("SHOW plan_cache_mode") for c in connections} == {"auto"}


async def test_other_tenants_rows_never_appear_or_count(client, admin, make_user, db):
    other = await make_user("agency_admin")
    await seed(db, other, [{"destination": "Paris"} for _ in range(5)])
    mine = await seed(db, admin, [{"destination": "Paris"}])
    page = await listing(client, admin, destination="paris")
    assert [i["id"] for i in page["items"]] == mine and page["total"] == 1
    assert (await listing(client, admin, limit=1))["total"] == 1


# --- filters ------------------------------------------------------------------------------------------------------


async def test_status_filter(client, admin, db):
    ids = await seed(db, admin, [{"status": s} for s in ("new", "quoted", "booked", "cancelled", "quoted")])
    assert await ids_of(client, admin, status="quoted") == [ids[1], ids[4]]
    assert await ids_of(client, admin, status="all") == ids
    status, detail = await error(client, admin, status="open")
    assert status == 422 and [(i["loc"], i["type"]) for i in detail] == [(["query", "status"], "literal_error")]


async def test_q_matches_any_of_the_five_columns_case_insensitively(client, admin, db):
    ids = await seed(db, admin, [
        {"customer_name": "Asha MARKER"}, {"customer_email": "marker@example.com"},
        {"customer_phone": "+91 MaRkEr"}, {"origin": "Old Marker Town"}, {"destination": "markerville"},
        {"customer_name": "Nobody", "notes": "marker"},
    ])
    assert await ids_of(client, admin, q="marker") == ids[:5]
    assert await ids_of(client, admin, q="MARKER") == ids[:5]
    assert (await listing(client, admin, q="arke", limit=2))["total"] == 5


@pytest.mark.parametrize("field", ["customer_email", "destination", "origin"])
async def test_column_filters_are_case_insensitive_substrings_of_that_column_only(client, admin, db, field):
    others = [f for f in ("customer_email", "destination", "origin") if f != field]
    ids = await seed(db, admin, [{field: "Rio de Janeiro"}, {field: "RIO"}, {others[0]: "rio"},
                                 {others[1]: "Rio"}, {field: None}])
    assert await ids_of(client, admin, **{field: "rIo"}) == ids[:2]
    assert await ids_of(client, admin, **{field: "janeiro"}) == ids[:1]


async def test_empty_substring_filters_mean_no_filter(client, admin, db):
    ids = await seed(db, admin, [{}, {"destination": "Goa"}])
    assert await ids_of(client, admin, q="", destination="", origin="", customer_email="") == ids


@pytest.mark.parametrize("term, expected", [
    ("100%", [0]), ("%", [0]), ("a_b", [1]), ("_", [1]), ("back\\slash", [2]), ("\\", [2]),
    ("'", [3]), ("o'brien", [3]), ('"', [4]), ("%_\\", []),
])
async def test_like_wildcards_and_quotes_match_literally(client, admin, db, term, expected):
    ids = await seed(db, admin, [{"customer_name": "100% sure"}, {"customer_name": "a_b"},
                                 {"customer_name": "back\\slash"}, {"customer_name": "O'Brien"},
                                 {"customer_name": 'say "hi"'}, {"customer_name": "a1b 1000 sure"}])
    assert await ids_of(client, admin, q=term) == [ids[i] for i in expected]


async def test_sql_looking_filters_are_just_text(client, admin, db):
    ids = await seed(db, admin, [{"destination": "x'); DROP TABLE enquiries; --"}, {"destination": "Oslo"}])
    for term in ("'; DROP TABLE enquiries; --", "' OR '1'='1", "1) OR (1=1", "$1", ":tenant_id", "%' OR 1=1 --"):
        page = await listing(client, admin, destination=term, q=term)
        assert page["items"] == [] and page["total"] == 0
    assert await ids_of(client, admin, destination="DROP TABLE") == ids[:1]
    assert await db.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1", admin.tenant_id) == 2


async def test_depart_range_is_inclusive_and_skips_rows_without_a_date(client, admin, db):
    days = [dt.date(2026, 7, d) for d in (1, 5, 10)]
    ids = await seed(db, admin, [{"depart_date": days[0]}, {"depart_date": days[1]}, {"depart_date": days[2]}, {}])
    assert await ids_of(client, admin, depart_from="2026-07-05") == ids[1:3]
    assert await ids_of(client, admin, depart_to="2026-07-05") == ids[0:2]
    assert await ids_of(client, admin, depart_from="2026-07-05", depart_to="2026-07-05") == [ids[1]]
    assert await ids_of(client, admin, depart_from="0001-01-01", depart_to="9999-12-31") == ids[:3]


async def test_created_range_covers_whole_utc_days(client, admin, db):
    stamps = [dt.datetime(2026, 4, 1, 0, 0, tzinfo=dt.timezone.utc),
              dt.datetime(2026, 4, 1, 23, 59, 59, 999_999, tzinfo=dt.timezone.utc),
              dt.datetime(2026, 4, 2, 0, 0, tzinfo=dt.timezone.utc),
              dt.datetime(2026, 3, 31, 23, 59, 59, 999_999, tzinfo=dt.timezone.utc)]
    ids = await seed(db, admin, [{"created_at": s} for s in stamps])
    assert await ids_of(client, admin, created_from="2026-04-01", created_to="2026-04-01") == [ids[1], ids[0]]
    assert await ids_of(client, admin, created_from="2026-04-02") == [ids[2]]
    assert await ids_of(client, admin, created_to="2026-03-31") == [ids[3]]
    assert len(await ids_of(client, admin, created_from="0001-01-01", created_to="9999-12-31")) == 4


async def test_filters_combine_with_and(client, admin, db):
    ids = await seed(db, admin, [
        {"destination": "Paris", "status": "new", "depart_date": dt.date(2026, 8, 1)},
        {"destination": "Paris", "status": "quoted", "depart_date": dt.date(2026, 8, 1)},
        {"destination": "Paris", "status": "new", "depart_date": dt.date(2026, 9, 1)},
        {"destination": "Rome", "status": "new", "depart_date": dt.date(2026, 8, 1)},
    ])
    page = await listing(client, admin, destination="par", status="new", depart_to="2026-08-31", limit=1)
    assert [i["id"] for i in page["items"]] == [ids[0]] and page["total"] == 1


@pytest.mark.parametrize("params, code", [
    ({"depart_from": "2026-07-02", "depart_to": "2026-07-01"}, "invalid_depart_range"),
    ({"created_from": "2026-07-02", "created_to": "2026-07-01"}, "invalid_created_range"),
    ({"depart_from": "2026-07-02", "depart_to": "2026-07-01", "created_from": "2026-07-02",
      "created_to": "2026-07-01"}, "invalid_depart_range"),
])
async def test_inverted_ranges_are_422_codes(client, admin, params, code):
    assert await error(client, admin, **params) == (422, code)


@pytest.mark.parametrize("params, loc, kind", [
    ({"depart_from": "2026-02-30"}, "depart_from", "date_from_datetime_parsing"),
    ({"created_to": "10000-01-01"}, "created_to", "date_from_datetime_parsing"),
    ({"created_from": "0000-12-31"}, "created_from", "date_from_datetime_parsing"),
    ({"depart_to": "yesterday"}, "depart_to", "date_from_datetime_parsing"),
    ({"q": "x" * 256}, "q", "string_too_long"),
    ({"q": "x" * 10_240}, "q", "string_too_long"),
    ({"customer_email": "e" * 256}, "customer_email", "string_too_long"),
    ({"destination": "d" * 129}, "destination", "string_too_long"),
    ({"origin": "o" * 129}, "origin", "string_too_long"),
    ({"q": "a\x00b"}, "q", "value_error"),
    ({"destination": "\x00"}, "destination", "value_error"),
    ({"limit": "0"}, "limit", "greater_than_equal"),
    ({"limit": "501"}, "limit", "less_than_equal"),
    ({"limit": "ten"}, "limit", "int_parsing"),
    ({"limit": "99999999999999999999999"}, "limit", "int_parsing"),
    ({"offset": "-1"}, "offset", "greater_than_equal"),
    ({"include_total": "maybe"}, "include_total", "bool_parsing"),
])
async def test_bad_query_values_are_422_list_shape(client, admin, params, loc, kind):
    status, detail = await error(client, admin, **params)
    assert status == 422
    assert [(i["loc"], i["type"]) for i in detail] == [(["query", loc], kind)]


@pytest.mark.parametrize("offset", ["9223372036854775807", "9999999999999999999", "0009"])
async def test_any_offset_up_to_19_digits_is_a_page(client, admin, db, offset):
    await seed(db, admin, [{} for _ in range(10)])
    page = await listing(client, admin, offset=offset, limit=1, destination="")
    assert page["total"] == 10 and page["offset"] == int(offset)
    assert len(page["items"]) == (1 if int(offset) < 10 else 0)
    assert (await listing(client, admin, offset=offset, q="customer"))["total"] == 10


async def test_the_longest_allowed_terms_and_odd_unicode_work(client, admin, db):
    ids = await seed(db, admin, [{"customer_name": "東京 ✈ Zoë"}])
    assert await ids_of(client, admin, q="x" * 255, customer_email="e" * 255, destination="d" * 128,
                        origin="o" * 128) == []
    assert await ids_of(client, admin, q="zOË") == ids
    assert await ids_of(client, admin, q="京 ✈") == ids
    response = await client.get("/enquiries?q=%ED%A0%80%FF", headers=admin.headers)  # invalid UTF-8
    assert response.status == 200  # undecodable bytes arrive as replacement characters: no match, no 500


async def test_repeated_parameters_take_the_last_value(client, admin, db):
    ids = await seed(db, admin, [{"status": "new"}, {"status": "booked"}])
    response = await client.get("/enquiries?status=new&status=booked", headers=admin.headers)
    assert [i["id"] for i in (await response.json())["items"]] == [ids[1]]


# --- keyset paging ------------------------------------------------------------------------------------------------


async def walk(client, user, limit, **params):
    """Follow next_cursor from the first page to the end; returns every id seen, in order."""
    seen, cursor = [], None
    while True:
        page = await listing(client, user, limit=limit, **params, **({"cursor": cursor} if cursor else {}))
        if cursor:
            assert page["offset"] == 0
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return seen
        assert len(seen) < 10_000


async def test_cursor_paging_returns_every_row_once_even_when_timestamps_tie(client, admin, db):
    tied = T0.replace(microsecond=123_456)
    rows = [{"created_at": tied} for _ in range(23)] + [{"created_at": tied - dt.timedelta(microseconds=1)}
                                                        for _ in range(5)] + [{} for _ in range(4)]
    ids = await seed(db, admin, rows)
    stamps = [r.get("created_at", T0 - dt.timedelta(minutes=i)) for i, r in enumerate(rows)]
    expected = [i for i, _ in sort_key(list(zip(ids, stamps)))]
    for limit in (1, 4, 7, 50):
        assert await walk(client, admin, limit) == expected, limit
    offset_pages = []
    for offset in range(0, len(ids), 6):
        offset_pages += await ids_of(client, admin, limit=6, offset=offset)
    assert offset_pages == expected


async def test_the_cursor_of_an_offset_page_continues_after_it(client, admin, db):
    ids = await seed(db, admin, [{} for _ in range(10)])
    page = await listing(client, admin, limit=3, offset=4)
    after = await listing(client, admin, limit=3, cursor=page["next_cursor"])
    assert [i["id"] for i in after["items"]] == ids[7:10] and after["next_cursor"] is None
    assert after["total"] == 10  # total ignores the cursor


async def test_cursor_paging_with_filters(client, admin, db):
    ids = await seed(db, admin, [{"destination": "Lisbon" if i % 3 else "Porto"} for i in range(20)])
    expected = [ids[i] for i in range(20) if i % 3]
    assert await walk(client, admin, 4, destination="lisb") == expected


async def test_rows_created_after_the_first_page_do_not_shift_the_next(client, admin, db):
    ids = await seed(db, admin, [{} for _ in range(6)])
    page = await listing(client, admin, limit=3)
    await client.post("/enquiries", json={"customer_name": "newcomer"}, headers=admin.headers)
    nxt = await listing(client, admin, limit=3, cursor=page["next_cursor"])
    assert [i["id"] for i in nxt["items"]] == ids[3:6]


async def test_cursors_cannot_be_replayed_across_tenants_filters_or_offsets(client, admin, make_user, db):
    await seed(db, admin, [{"destination": "Oslo", "status": "new"} for _ in range(4)])
    page = await listing(client, admin, limit=1, destination="oslo")
    cursor = page["next_cursor"]
    colleague = await make_user("agent", tenant_id=admin.tenant_id)
    assert (await listing(client, colleague, limit=1, destination="oslo", cursor=cursor))["items"]  # same tenant
    other = await make_user("agency_admin")
    assert await error(client, other, destination="oslo", cursor=cursor) == (422, "invalid_cursor")
    assert await error(client, admin, destination="osl", cursor=cursor) == (422, "invalid_cursor")
    assert await error(client, admin, cursor=cursor) == (422, "invalid_cursor")
    assert await error(client, admin, destination="oslo", status="new", cursor=cursor) == (422, "invalid_cursor")
    assert await error(client, admin, destination="oslo", offset="1", cursor=cursor) == (422, "invalid_cursor")
    assert (await listing(client, admin, destination="oslo", offset=0, limit=2, cursor=cursor))["items"]


@pytest.mark.parametrize("cursor", ["", "abc", "!!!", "x" * 600, "eyJhIjoxfQ", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                    quote("ünïcode"), "null", "W10"])
async def test_garbage_cursors_are_422(client, admin, cursor):
    assert await error(client, admin, cursor=cursor) == (422, "invalid_cursor")


async def test_a_tampered_cursor_is_422(client, admin, db):
    await seed(db, admin, [{} for _ in range(3)])
    cursor = (await listing(client, admin, limit=1))["next_cursor"]
    flipped = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    assert await error(client, admin, cursor=flipped) == (422, "invalid_cursor")


# --- API keys -----------------------------------------------------------------------------------------------------


async def test_read_scope_lists_the_creators_tenant(client, admin, make_api_key, db):
    ids = await seed(db, admin, [{}])
    reader = await make_api_key(admin, ["enquiries:read"])
    assert await ids_of(client, reader) == ids
    other = await make_api_key(admin, ["audit:read"])
    response = await client.get("/enquiries", headers=other.headers)
    assert (response.status, (await response.json())["detail"]) == (403, "insufficient_scope")
