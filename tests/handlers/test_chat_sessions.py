"""Chat sessions as a client meets them through HTTP: create (with Idempotency-Key), list, get, rename, delete.

Messages, approvals and itinerary items are arranged the way the chat layer writes them (approvals through
``request_approval``, the agent's function; the other rows directly); the turns themselves are
tests/handlers/test_chat_stream.py's.
"""

import asyncio
import datetime as dt
import secrets
import uuid

import pytest
import redis.asyncio as aioredis

from voyagent.contract import ROLES
from voyagent.ids import new_id
from voyagent.keys import DATABASE, QUERIES, TURN_LOCK
from voyagent.services.approvals import request_approval
from voyagent.services.event_log import session_keys

SUMMARY_KEYS = {"session_id", "tenant_id", "actor_id", "title", "message_count", "pending_approvals", "created_at"}
ITEM_KEYS = {"id", "title", "created_at", "message_count"}
PAGE_KEYS = {"sessions", "total", "limit", "offset", "next_cursor"}
MALFORMED_IDS = ["nope", "1", "0190a1b2-0000-7000-8000-00000000000g", "0190a1b20000700080000000000000ff",
                 "'; SELECT 1; --", "x" * 5000]


def parse_ts(value):
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value[:-1] + "+00:00")


async def detail(response):
    return (await response.json())["detail"]


def types(body):
    return [(item["loc"], item["type"]) for item in body["detail"]]


async def create(client, user, **kwargs):
    response = await client.post("/chat/sessions", headers=user.headers, **kwargs)
    assert response.status == 201, await response.text()
    return (await response.json())["session_id"]


async def get(client, user, session_id):
    return await client.get(f"/chat/sessions/{session_id}", headers=user.headers)


async def rename(client, user, session_id, body):
    return await client.patch(f"/chat/sessions/{session_id}", json=body, headers=user.headers)


async def delete(client, user, session_id):
    return await client.delete(f"/chat/sessions/{session_id}", headers=user.headers)


async def add_messages(db, session_id, count):
    """Stored messages of an earlier day: they count in message_count, not in the active-sessions gauge (which
    the metrics tests read across the whole database)."""
    for sequence in range(count):
        await db.execute("INSERT INTO messages (id, session_id, role, content, sequence, created_at) VALUES ($1, "
                         "$2::uuid, $3, '[{\"type\": \"text\", \"text\": \"hi\"}]', $4, now() - interval '1 day')",
                         new_id(), session_id, "user" if sequence % 2 == 0 else "assistant", sequence)


async def add_approval(client, user, session_id, tool_name="hold_offer", *, ttl=900, now=None):
    app = client.server.app
    async with app[DATABASE].transaction() as conn:
        return await request_approval(
            conn, app[QUERIES], tenant_id=user.tenant_id, session_id=uuid.UUID(session_id),
            turn_id=f"t-{secrets.token_hex(6)}", tool_name=tool_name, tool_call_id=f"tc-{secrets.token_hex(8)}",
            payload={"offer_id": "FLT-20526D6B"}, summary=f"{tool_name} FLT-20526D6B.", ttl_seconds=ttl, now=now)


async def add_itinerary_item(db, user, session_id):
    await db.execute("INSERT INTO itinerary_items (id, tenant_id, session_id, kind, offer_id, status, data) "
                     "VALUES ($1, $2, $3::uuid, 'flight', 'FLT-20526D6B', 'planned', '{}')",
                     new_id(), user.tenant_id, session_id)


async def counts(db, session_id):
    """Rows that belong to the session, by table."""
    return {table: await db.fetchval(f"SELECT count(*) FROM {table} WHERE {column} = $1::uuid", session_id)
            for table, column in (("sessions", "id"), ("messages", "session_id"),
                                  ("pending_approvals", "session_id"), ("itinerary_items", "session_id"))}


# --- create -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, None])
async def test_create_makes_an_empty_session_of_the_callers_tenant(client, admin, db, body):
    kwargs = {} if body is None else {"json": body}
    session_id = await create(client, admin, **kwargs)
    assert uuid.UUID(session_id).version == 7 and session_id == session_id.lower()
    row = await db.fetchrow("SELECT tenant_id, actor_id, actor_kind::text, title, last_event_id FROM sessions "
                            "WHERE id = $1::uuid", session_id)
    assert dict(row) == {"tenant_id": admin.tenant_id, "actor_id": admin.id, "actor_kind": "human", "title": None,
                         "last_event_id": 0}


@pytest.mark.parametrize("body, expected", [
    ({"title": "x"}, [(["body", "title"], "extra_forbidden")]),
    ({"tenant_id": str(uuid.uuid4())}, [(["body", "tenant_id"], "extra_forbidden")]),
    ([], [(["body"], "model_attributes_type")]),
    ("text", [(["body"], "model_attributes_type")]),
])
async def test_create_with_anything_but_an_empty_object_is_422_and_creates_nothing(client, admin, db, body, expected):
    response = await client.post("/chat/sessions", json=body, headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == expected
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_create_with_an_api_key_makes_its_creator_the_actor(client, admin, make_api_key, db):
    key = await make_api_key(admin, ["chat:write"])
    session_id = await create(client, key)
    assert await db.fetchval("SELECT actor_id FROM sessions WHERE id = $1::uuid", session_id) == admin.id


async def test_a_retry_with_the_same_key_replays_and_creates_nothing(client, admin, db):
    headers = {**admin.headers, "Idempotency-Key": "session-retry-1"}
    first = await client.post("/chat/sessions", json={}, headers=headers)
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    again = await client.post("/chat/sessions", json={}, headers=headers)
    assert again.status == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == await first.json()
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 1
    route = await db.fetchval("SELECT route FROM idempotency_keys WHERE tenant_id = $1 AND key = 'session-retry-1'",
                              admin.tenant_id)
    assert route == "POST /chat/sessions"


async def test_the_same_key_on_another_route_or_body_is_422_reused(client, admin, db):
    headers = {**admin.headers, "Idempotency-Key": "shared-key"}
    assert (await client.post("/enquiries", json={"customer_name": "Asha"}, headers=headers)).status == 201
    response = await client.post("/chat/sessions", json={}, headers=headers)
    assert (response.status, await detail(response)) == (422, "idempotency_key_reused")
    headers = {**admin.headers, "Idempotency-Key": "body-key"}
    assert (await client.post("/chat/sessions", json={}, headers=headers)).status == 201
    response = await client.post("/chat/sessions", headers=headers)  # no body: another parsed body than {}
    assert (response.status, await detail(response)) == (422, "idempotency_key_reused")
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 1


async def test_keys_are_scoped_to_the_credential(client, admin, make_user, db):
    colleague = await make_user("agent", tenant_id=admin.tenant_id)
    first = await client.post("/chat/sessions", json={}, headers={**admin.headers, "Idempotency-Key": "k"})
    second = await client.post("/chat/sessions", json={}, headers={**colleague.headers, "Idempotency-Key": "k"})
    assert first.status == second.status == 201 and "Idempotent-Replayed" not in second.headers
    assert (await first.json()) != (await second.json())


@pytest.mark.parametrize("key", ["", " ", "x" * 256, "has space", "tab\tkey", "caf\u00e9"])
async def test_a_malformed_idempotency_key_is_422_and_creates_nothing(client, admin, db, key):
    response = await client.post("/chat/sessions", json={}, headers={
        **admin.headers, "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert (response.status, await detail(response)) == (422, "invalid_idempotency_key")
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_concurrent_duplicates_create_exactly_one_session(client, admin, db):
    headers = {**admin.headers, "Idempotency-Key": "race-1"}
    responses = await asyncio.gather(*(client.post("/chat/sessions", json={}, headers=headers) for _ in range(6)))
    statuses = sorted(response.status for response in responses)
    assert set(statuses) <= {201, 409} and 201 in statuses
    bodies = [await response.json() for response in responses]
    assert {body["session_id"] for body in bodies if "session_id" in body} == {
        str(await db.fetchval("SELECT id FROM sessions WHERE tenant_id = $1", admin.tenant_id))}
    assert all(body == {"detail": "idempotency_request_in_progress"} for body in bodies if "session_id" not in body)
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 1


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_shows_the_tenants_sessions_newest_first_with_their_message_counts(client, admin, make_user, db):
    other = await make_user("agency_admin")
    await create(client, other)
    ids = [await create(client, admin) for _ in range(3)]
    await add_messages(db, ids[1], 4)
    await rename(client, admin, ids[2], {"title": "Goa in May"})
    response = await client.get("/chat/sessions", headers=admin.headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == PAGE_KEYS
    assert (body["total"], body["limit"], body["offset"], body["next_cursor"]) == (3, 200, 0, None)
    assert [item["id"] for item in body["sessions"]] == ids[::-1]
    assert all(set(item) == ITEM_KEYS for item in body["sessions"])
    assert [(item["title"], item["message_count"]) for item in body["sessions"]] == [
        ("Goa in May", 0), (None, 4), (None, 0)]
    stored = await db.fetch("SELECT id::text, created_at FROM sessions WHERE tenant_id = $1", admin.tenant_id)
    assert {item["id"]: parse_ts(item["created_at"]) for item in body["sessions"]} == {
        row["id"]: row["created_at"] for row in stored}


async def test_an_empty_tenant_lists_nothing(client, admin):
    body = await (await client.get("/chat/sessions", headers=admin.headers)).json()
    assert body == {"sessions": [], "total": 0, "limit": 200, "offset": 0, "next_cursor": None}


async def test_offset_and_cursor_pages_walk_the_same_order(client, admin, db):
    ids = [await create(client, admin) for _ in range(7)][::-1]
    # Two sessions with the same created_at: the id breaks the tie (created_at DESC, id DESC).
    await db.execute("UPDATE sessions SET created_at = (SELECT created_at FROM sessions WHERE id = $1::uuid) "
                     "WHERE id = $2::uuid", ids[3], ids[4])
    expected = [row["id"] for row in await db.fetch(
        "SELECT id::text FROM sessions WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC", admin.tenant_id)]
    seen, cursor = [], None
    while True:
        query = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        body = await (await client.get("/chat/sessions", params=query, headers=admin.headers)).json()
        assert body["offset"] == 0 and body["total"] == 7
        seen += [item["id"] for item in body["sessions"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    offset_page = await (await client.get("/chat/sessions", params={"limit": 3, "offset": 3},
                                          headers=admin.headers)).json()
    assert [item["id"] for item in offset_page["sessions"]] == expected[3:6]
    assert offset_page["offset"] == 3 and offset_page["total"] == 7
    # the offset page's cursor continues where it ended
    rest = await (await client.get("/chat/sessions", params={"cursor": offset_page["next_cursor"]},
                                   headers=admin.headers)).json()
    assert [item["id"] for item in rest["sessions"]] == expected[6:]
    beyond = await (await client.get("/chat/sessions", params={"offset": 50}, headers=admin.headers)).json()
    assert (beyond["sessions"], beyond["total"], beyond["next_cursor"]) == ([], 7, None)


async def test_include_total_false_gives_a_null_total(client, admin):
    await create(client, admin)
    for value in ("false", "0", "off"):
        body = await (await client.get("/chat/sessions", params={"include_total": value},
                                       headers=admin.headers)).json()
        assert body["total"] is None and len(body["sessions"]) == 1


@pytest.mark.parametrize("query, loc, type_", [
    ({"limit": "0"}, ["query", "limit"], "greater_than_equal"),
    ({"limit": "201"}, ["query", "limit"], "less_than_equal"),
    ({"limit": "ten"}, ["query", "limit"], "int_parsing"),
    ({"offset": "-1"}, ["query", "offset"], "greater_than_equal"),
    ({"include_total": "maybe"}, ["query", "include_total"], "bool_parsing"),
])
async def test_bad_paging_parameters_are_422_list_shape(client, admin, query, loc, type_):
    response = await client.get("/chat/sessions", params=query, headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == [(loc, type_)]


async def test_bad_cursors_are_422_invalid_cursor(client, admin, make_user):
    for _ in range(3):
        await create(client, admin)
    cursor = (await (await client.get("/chat/sessions", params={"limit": 1},
                                      headers=admin.headers)).json())["next_cursor"]
    other = await make_user("agency_admin")
    await client.post("/enquiries", json={"customer_name": "A"}, headers=admin.headers)
    await client.post("/enquiries", json={"customer_name": "B"}, headers=admin.headers)
    enquiry_cursor = (await (await client.get("/enquiries", params={"limit": 1},
                                              headers=admin.headers)).json())["next_cursor"]
    cases = [
        (admin, {"cursor": "garbage"}), (admin, {"cursor": ""}), (admin, {"cursor": cursor[:-2]}),
        (admin, {"cursor": cursor + "AA"}), (admin, {"cursor": "x" * 600}),
        (admin, {"cursor": cursor, "offset": "1"}),  # a cursor with a non-zero offset
        (admin, {"cursor": enquiry_cursor}),  # another list's cursor
        (other, {"cursor": cursor}),  # another tenant's cursor
    ]
    for user, query in cases:
        response = await client.get("/chat/sessions", params=query, headers=user.headers)
        assert (response.status, await detail(response)) == (422, "invalid_cursor"), query
    ok = await client.get("/chat/sessions", params={"cursor": cursor, "offset": "0"}, headers=admin.headers)
    assert ok.status == 200


# --- get ----------------------------------------------------------------------------------------------------


async def test_get_returns_the_summary_without_message_bodies(client, admin, db):
    session_id = await create(client, admin)
    await add_messages(db, session_id, 3)
    response = await get(client, admin, session_id)
    assert response.status == 200
    body = await response.json()
    assert set(body) == SUMMARY_KEYS
    created_at = await db.fetchval("SELECT created_at FROM sessions WHERE id = $1::uuid", session_id)
    assert body == {"session_id": session_id, "tenant_id": str(admin.tenant_id), "actor_id": str(admin.id),
                    "title": None, "message_count": 3, "pending_approvals": [], "created_at": body["created_at"]}
    assert parse_ts(body["created_at"]) == created_at
    upper = await get(client, admin, session_id.upper())
    assert (await upper.json())["session_id"] == session_id


async def test_get_sweeps_overdue_approvals_and_lists_pending_ones_oldest_first(client, admin, db):
    session_id = await create(client, admin)
    start = dt.datetime.now(dt.timezone.utc)
    first = await add_approval(client, admin, session_id, "hold_offer", now=start - dt.timedelta(seconds=5))
    overdue = await add_approval(client, admin, session_id, "book_offer", ttl=60,
                                 now=start - dt.timedelta(seconds=3600))
    second = await add_approval(client, admin, session_id, "issue_invoice", now=start)
    body = await (await get(client, admin, session_id)).json()
    assert body["pending_approvals"] == [
        {"approval_id": first.id, "tool_name": "hold_offer", "summary": "hold_offer FLT-20526D6B."},
        {"approval_id": second.id, "tool_name": "issue_invoice", "summary": "issue_invoice FLT-20526D6B."}]
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", overdue.id) == "expired"
    await client.post(f"/approvals/{first.id}/resolve", json={"granted": True}, headers=admin.headers)
    body = await (await get(client, admin, session_id)).json()
    assert [item["approval_id"] for item in body["pending_approvals"]] == [second.id]


async def test_the_actor_is_null_once_its_user_is_deleted(client, admin, make_user, db):
    colleague = await make_user("agent", tenant_id=admin.tenant_id)
    session_id = await create(client, colleague)
    await db.execute("DELETE FROM users WHERE id = $1", colleague.id)
    assert (await (await get(client, admin, session_id)).json())["actor_id"] is None


@pytest.mark.parametrize("session_id", MALFORMED_IDS + [str(uuid.uuid4())])
async def test_malformed_or_unknown_ids_are_404_everywhere(client, admin, session_id):
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        response = await client.request(method, f"/chat/sessions/{session_id}", json=body, headers=admin.headers)
        assert (response.status, await detail(response)) == (404, "session_not_found"), method


async def test_another_tenants_session_is_404_everywhere_and_stays_intact(client, admin, make_user, db):
    other = await make_user("agency_admin")
    theirs = await create(client, other)
    await rename(client, other, theirs, {"title": "Private trip"})
    await add_messages(db, theirs, 2)
    for method, body in (("GET", None), ("PATCH", {"title": "mine now"}), ("DELETE", None)):
        response = await client.request(method, f"/chat/sessions/{theirs}", json=body, headers=admin.headers)
        assert (response.status, await detail(response)) == (404, "session_not_found"), method
    assert await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", theirs) == "Private trip"
    assert (await counts(db, theirs))["messages"] == 2
    listed = await (await client.get("/chat/sessions", headers=admin.headers)).json()
    assert listed["sessions"] == [] and listed["total"] == 0


async def test_nul_in_the_path_is_422(client, admin):
    response = await client.get("/chat/sessions/abc%00def", headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == [(["path", "session_id"], "value_error")]


# --- rename -------------------------------------------------------------------------------------------------


async def test_rename_stores_the_trimmed_title_and_returns_the_summary(client, admin, db):
    session_id = await create(client, admin)
    before = await db.fetchval("SELECT updated_at FROM sessions WHERE id = $1::uuid", session_id)
    response = await rename(client, admin, session_id, {"title": "  \tDubai, July \n"})
    assert response.status == 200
    body = await response.json()
    assert set(body) == SUMMARY_KEYS and body["title"] == "Dubai, July" and body["session_id"] == session_id
    row = await db.fetchrow("SELECT title, updated_at FROM sessions WHERE id = $1::uuid", session_id)
    assert row["title"] == "Dubai, July" and row["updated_at"] > before
    assert (await (await get(client, admin, session_id)).json())["title"] == "Dubai, July"


@pytest.mark.parametrize("title, stored", [
    ("x" * 200, "x" * 200), ("  " + "y" * 200 + "  ", "y" * 200), ("\U0001F30D" * 200, "\U0001F30D" * 200),
    ("a", "a"), ("Lisbon\u00a0", "Lisbon"),
])
async def test_titles_of_one_to_two_hundred_characters_after_trimming_are_kept(client, admin, title, stored):
    session_id = await create(client, admin)
    response = await rename(client, admin, session_id, {"title": title})
    assert response.status == 200 and (await response.json())["title"] == stored


@pytest.mark.parametrize("title, code", [
    ("", "title_empty"), ("   ", "title_empty"), ("\t\n\u2003", "title_empty"),
    ("x" * 201, "title_too_long"), (" " + "z" * 201 + " ", "title_too_long"), ("\U0001F30D" * 201, "title_too_long"),
])
async def test_blank_or_too_long_titles_are_422_and_change_nothing(client, admin, db, title, code):
    session_id = await create(client, admin)
    await rename(client, admin, session_id, {"title": "Kept"})
    response = await rename(client, admin, session_id, {"title": title})
    assert (response.status, await detail(response)) == (422, code)
    assert await db.fetchval("SELECT title FROM sessions WHERE id = $1::uuid", session_id) == "Kept"


@pytest.mark.parametrize("session_id", ["nope", str(uuid.uuid4())])
async def test_title_checks_come_before_the_session_lookup(client, admin, session_id):
    for title, code in (("  ", "title_empty"), ("x" * 201, "title_too_long")):
        response = await rename(client, admin, session_id, {"title": title})
        assert (response.status, await detail(response)) == (422, code)


@pytest.mark.parametrize("body, expected", [
    ({}, [(["body", "title"], "missing")]),
    ({"title": None}, [(["body", "title"], "string_type")]),
    ({"title": 5}, [(["body", "title"], "string_type")]),
    ({"title": ["a"]}, [(["body", "title"], "string_type")]),
    ({"title": "ok", "pinned": True}, [(["body", "pinned"], "extra_forbidden")]),
    ([], [(["body"], "model_attributes_type")]),
])
async def test_bad_rename_bodies_are_422_list_shape(client, admin, body, expected):
    session_id = await create(client, admin)
    response = await rename(client, admin, session_id, body)
    assert response.status == 422
    assert types(await response.json()) == expected


async def test_a_missing_rename_body_is_422(client, admin):
    session_id = await create(client, admin)
    response = await client.patch(f"/chat/sessions/{session_id}", headers=admin.headers)
    assert response.status == 422 and types(await response.json()) == [(["body"], "missing")]


async def test_rename_sweeps_the_sessions_approvals_like_get(client, admin, db):
    session_id = await create(client, admin)
    overdue = await add_approval(client, admin, session_id, ttl=60,
                                 now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=1))
    body = await (await rename(client, admin, session_id, {"title": "Swept"})).json()
    assert body["pending_approvals"] == []
    assert await db.fetchval("SELECT status::text FROM pending_approvals WHERE id = $1", overdue.id) == "expired"


async def test_rename_while_a_turn_runs_is_allowed(client, admin, db):
    """The contract gives PATCH no 409: a title does not disturb a running turn."""
    session_id = await create(client, admin)
    lock = client.server.app[TURN_LOCK]
    token = await lock.acquire(uuid.UUID(session_id))
    assert token is not None
    try:
        response = await rename(client, admin, session_id, {"title": "Renamed mid-turn"})
        assert response.status == 200 and (await response.json())["title"] == "Renamed mid-turn"
        assert await lock.is_held(uuid.UUID(session_id))  # the turn keeps its lock
    finally:
        await lock.release(uuid.UUID(session_id), token)


# --- delete -------------------------------------------------------------------------------------------------


async def test_delete_cascades_unlinks_enquiries_and_keeps_finance_and_audit(client, admin, make_user, db):
    session_id = await create(client, admin)
    kept = await create(client, admin)
    for sid in (session_id, kept):
        await add_messages(db, sid, 2)
        await add_approval(client, admin, sid)
        await add_itinerary_item(db, admin, sid)
    enquiry = await (await client.post("/enquiries", json={"customer_name": "Asha", "session_id": session_id},
                                       headers=admin.headers)).json()
    # another tenant's enquiry may name the same id (a soft link): it is not the deleting tenant's to change
    other = await make_user("agency_admin")
    foreign = await (await client.post("/enquiries", json={"customer_name": "Omar", "session_id": session_id},
                                       headers=other.headers)).json()
    invoice_id = new_id()
    await db.execute("INSERT INTO invoices (id, tenant_id, number, party_name, party_reference, issue_date, due_date,"
                     " total_amount, currency) VALUES ($1, $2, 'INV-1', 'Asha', $3, current_date, current_date, 10,"
                     " 'INR')", invoice_id, admin.tenant_id, session_id)
    await db.execute("UPDATE itinerary_items SET invoice_id = $1 WHERE session_id = $2::uuid", invoice_id,
                     session_id)
    audit_before = await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", admin.tenant_id)

    response = await delete(client, admin, session_id)
    assert response.status == 204 and await response.read() == b""

    assert await counts(db, session_id) == {"sessions": 0, "messages": 0, "pending_approvals": 0,
                                            "itinerary_items": 0}
    assert await counts(db, kept) == {"sessions": 1, "messages": 2, "pending_approvals": 1, "itinerary_items": 1}
    unlinked = await (await client.get(f"/enquiries/{enquiry['id']}", headers=admin.headers)).json()
    assert unlinked["session_id"] is None and unlinked["updated_at"] > enquiry["updated_at"]
    assert (await (await client.get(f"/enquiries/{foreign['id']}", headers=other.headers)).json())[
        "session_id"] == session_id
    assert await db.fetchval("SELECT count(*) FROM invoices WHERE id = $1", invoice_id) == 1
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1",
                             admin.tenant_id) == audit_before


async def test_a_deleted_session_is_gone_at_once(client, admin):
    session_id = await create(client, admin)
    assert (await delete(client, admin, session_id)).status == 204
    for method, body in (("GET", None), ("PATCH", {"title": "x"}), ("DELETE", None)):
        response = await client.request(method, f"/chat/sessions/{session_id}", json=body, headers=admin.headers)
        assert (response.status, await detail(response)) == (404, "session_not_found"), method
    listed = await (await client.get("/chat/sessions", headers=admin.headers)).json()
    assert listed["sessions"] == [] and listed["total"] == 0


async def test_delete_while_a_turn_holds_the_lock_is_409_and_deletes_nothing(client, admin, db):
    session_id = await create(client, admin)
    await add_messages(db, session_id, 2)
    lock = client.server.app[TURN_LOCK]
    token = await lock.acquire(uuid.UUID(session_id))
    response = await delete(client, admin, session_id)
    assert (response.status, await detail(response)) == (409, "turn_in_progress")
    assert await counts(db, session_id) == {"sessions": 1, "messages": 2, "pending_approvals": 0,
                                            "itinerary_items": 0}
    assert await lock.is_held(uuid.UUID(session_id))  # the refused delete left the turn's lock alone
    await lock.release(uuid.UUID(session_id), token)
    assert (await delete(client, admin, session_id)).status == 204
    assert not await lock.is_held(uuid.UUID(session_id))  # the delete gave its own hold back


async def test_a_body_sent_with_delete_is_ignored(client, admin, db):
    session_id = await create(client, admin)
    response = await client.delete(f"/chat/sessions/{session_id}", data=b'{"cascade": false', headers={
        **admin.headers, "Content-Type": "application/json"})
    assert response.status == 204
    assert (await counts(db, session_id))["sessions"] == 0


async def test_concurrent_deletes_answer_204_once_and_404_otherwise(client, admin):
    session_id = await create(client, admin)
    responses = await asyncio.gather(*(delete(client, admin, session_id) for _ in range(5)))
    assert sorted(response.status for response in responses) == [204, 404, 404, 404, 404]
    assert all([await detail(r) for r in responses if r.status == 404])


# --- with Redis: the lock and the buffer are shared by every worker -----------------------------------------


async def test_a_turn_lock_held_by_another_worker_refuses_the_delete(make_client, admin, redis_url, settings, db):
    worker_a = await make_client(redis_url=redis_url)
    worker_b = await make_client(redis_url=redis_url)
    session_id = await create(worker_a, admin)
    token = await worker_a.server.app[TURN_LOCK].acquire(uuid.UUID(session_id))
    assert token is not None
    response = await delete(worker_b, admin, session_id)
    assert (response.status, await detail(response)) == (409, "turn_in_progress")
    assert (await counts(db, session_id))["sessions"] == 1
    await worker_a.server.app[TURN_LOCK].release(uuid.UUID(session_id), token)
    assert (await delete(worker_b, admin, session_id)).status == 204
    response = await get(worker_a, admin, session_id)  # no cache anywhere: gone on the other worker at once
    assert (response.status, await detail(response)) == (404, "session_not_found")


async def test_delete_drops_the_sessions_event_buffer_in_redis(make_client, admin, redis_url, settings):
    client = await make_client(redis_url=redis_url)
    session_id = await create(client, admin)
    kept = await create(client, admin)
    redis = aioredis.from_url(redis_url)
    try:
        for sid in (session_id, kept):
            seq, buf, live = session_keys(settings.redis_prefix, uuid.UUID(sid))
            await redis.set(seq, 7)
            await redis.xadd(buf, {"d": "{}", "t": "t-000000000000", "f": "0"}, id="7-0")
            await redis.set(live, "t-000000000000")
        assert (await delete(client, admin, session_id)).status == 204
        assert await redis.exists(*session_keys(settings.redis_prefix, uuid.UUID(session_id))) == 0
        assert await redis.exists(*session_keys(settings.redis_prefix, uuid.UUID(kept))) == 3
        assert await redis.exists(f"{settings.redis_prefix}turnlock:{session_id}") == 0  # the lock went back
    finally:
        await redis.aclose()


async def test_delete_with_redis_unreachable_is_503_and_deletes_nothing(make_client, admin, db):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    session_id = await create(client, admin)
    await add_messages(db, session_id, 1)
    response = await delete(client, admin, session_id)
    assert (response.status, await detail(response)) == (503, "redis_unreachable")
    assert await counts(db, session_id) == {"sessions": 1, "messages": 1, "pending_approvals": 0,
                                            "itinerary_items": 0}


# --- access -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
async def test_every_role_may_use_every_session_endpoint(client, make_user, role):
    user = await make_user(role)
    session_id = await create(client, user)
    assert (await client.get("/chat/sessions", headers=user.headers)).status == 200
    assert (await get(client, user, session_id)).status == 200
    assert (await rename(client, user, session_id, {"title": role})).status == 200
    assert (await delete(client, user, session_id)).status == 204


async def test_a_colleague_in_the_same_tenant_sees_and_manages_the_session(client, admin, make_user):
    colleague = await make_user("viewer", tenant_id=admin.tenant_id)
    session_id = await create(client, admin)
    assert (await get(client, colleague, session_id)).status == 200
    assert (await delete(client, colleague, session_id)).status == 204


async def test_api_keys_need_chat_read_to_read_and_chat_write_to_write(client, admin, make_api_key):
    session_id = await create(client, admin)
    reader = await make_api_key(admin, ["chat:read"])
    writer = await make_api_key(admin, ["chat:write"])
    stranger = await make_api_key(admin, ["enquiries:write", "audit:read"])
    full = await make_api_key(admin, ["full"])
    reads = [("GET", "/chat/sessions", None), ("GET", f"/chat/sessions/{session_id}", None)]
    writes = [("POST", "/chat/sessions", {}), ("PATCH", f"/chat/sessions/{session_id}", {"title": "k"})]
    for key, allowed in ((reader, reads), (writer, reads + writes), (full, reads + writes), (stranger, [])):
        for method, path, body in reads + writes:
            response = await client.request(method, path, json=body, headers=key.headers)
            if (method, path, body) in allowed:
                assert response.status in (200, 201), (key.scopes, method, path)
            else:
                assert (response.status, await detail(response)) == (403, "insufficient_scope"), (key.scopes, path)
    response = await client.delete(f"/chat/sessions/{session_id}", headers=reader.headers)
    assert (response.status, await detail(response)) == (403, "insufficient_scope")
    assert (await client.delete(f"/chat/sessions/{session_id}", headers=writer.headers)).status == 204


async def test_every_endpoint_needs_a_credential(client):
    sid = str(uuid.uuid4())
    for method, path in (("GET", "/chat/sessions"), ("POST", "/chat/sessions"), ("GET", f"/chat/sessions/{sid}"),
                         ("PATCH", f"/chat/sessions/{sid}"), ("DELETE", f"/chat/sessions/{sid}")):
        response = await client.request(method, path, json={"title": "x"} if method == "PATCH" else None)
        assert (response.status, await detail(response)) == (401, "unauthorized"), (method, path)


# --- promote-to-session makes the same sessions ----------------------------------------------------------------


async def test_a_promoted_enquirys_session_is_a_chat_session_like_any_other(client, admin, make_user, db):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    enquiry = await (await client.post("/enquiries", json={"customer_name": "Asha"}, headers=admin.headers)).json()
    promoted = await (await client.post(f"/enquiries/{enquiry['id']}/promote-to-session",
                                        headers=agent.headers)).json()
    session_id = promoted["session_id"]
    direct = await create(client, agent)
    rows = {row["id"]: row for row in await db.fetch(
        "SELECT id::text, tenant_id, actor_id, actor_kind::text, title, last_event_id FROM sessions "
        "WHERE id = ANY($1::uuid[])", [session_id, direct])}
    assert {k: v for k, v in rows[session_id].items() if k != "id"} == \
        {k: v for k, v in rows[direct].items() if k != "id"}
    summary = await (await get(client, admin, session_id)).json()
    assert {k: summary[k] for k in ("session_id", "actor_id", "title", "message_count", "pending_approvals")} == {
        "session_id": session_id, "actor_id": str(agent.id), "title": None, "message_count": 0,
        "pending_approvals": []}
    listed = await (await client.get("/chat/sessions", headers=admin.headers)).json()
    assert {item["id"] for item in listed["sessions"]} == {session_id, direct}
    # deleting it clears the enquiry's link; promoting again then makes a fresh session
    assert (await delete(client, admin, session_id)).status == 204
    assert (await (await client.get(f"/enquiries/{enquiry['id']}", headers=admin.headers)).json())[
        "session_id"] is None
    again = await (await client.post(f"/enquiries/{enquiry['id']}/promote-to-session",
                                     headers=admin.headers)).json()
    assert again["session_id"] not in (session_id, None)
    assert (await get(client, admin, again["session_id"])).status == 200
