"""Enquiries as staff and integrators meet them: create, get, patch and promote-to-session, through HTTP."""

import asyncio
import datetime as dt
import uuid

import pytest

ENQUIRY_KEYS = {"id", "tenant_id", "created_by_user_id", "customer_name", "customer_email", "customer_phone",
                "origin", "destination", "depart_date", "return_date", "pax_count", "budget_amount",
                "budget_currency", "status", "notes", "session_id", "created_at", "updated_at"}
FULL = {"customer_name": "Asha Rao", "customer_email": "Asha@Example.com", "customer_phone": "+91 98450 00000",
        "origin": "DEL", "destination": "Dubai", "depart_date": "2026-07-01", "return_date": "2026-07-08",
        "pax_count": 2, "budget_amount": 80000, "budget_currency": "INR", "status": "quoted",
        "notes": "Window seats", "session_id": None}


def parse_ts(value: str) -> dt.datetime:
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value[:-1] + "+00:00")


async def create(client, user, **body):
    response = await client.post("/enquiries", json={"customer_name": "Asha Rao", **body}, headers=user.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def detail(response):
    return (await response.json())["detail"]


def types(body):
    return [(item["loc"], item["type"]) for item in body["detail"]]


# --- create -------------------------------------------------------------------------------------------------


async def test_create_returns_the_enquiry_in_wire_format(client, admin, db):
    response = await client.post("/enquiries", json=FULL, headers=admin.headers)
    assert response.status == 201
    body = await response.json()
    assert set(body) == ENQUIRY_KEYS
    assert uuid.UUID(body["id"]).version == 7
    assert body["tenant_id"] == str(admin.tenant_id)
    assert body["created_by_user_id"] == str(admin.id)
    assert body["customer_email"] == "Asha@Example.com"  # free text: stored as sent
    assert body["depart_date"] == "2026-07-01" and body["return_date"] == "2026-07-08"
    assert body["budget_amount"] == "80000.00" and body["budget_currency"] == "INR"
    assert body["status"] == "quoted" and body["pax_count"] == 2
    assert body["created_at"] == body["updated_at"]
    assert abs(parse_ts(body["created_at"]) - dt.datetime.now(dt.timezone.utc)) < dt.timedelta(seconds=30)
    stored = await db.fetchrow("SELECT tenant_id, budget_amount, status::text FROM enquiries WHERE id = $1::uuid",
                               body["id"])
    assert stored["tenant_id"] == admin.tenant_id and str(stored["budget_amount"]) == "80000.00"


async def test_create_fills_defaults_and_nulls(client, admin):
    body = await create(client, admin)
    assert body["status"] == "new" and body["pax_count"] == 1
    for key in ("customer_email", "customer_phone", "origin", "destination", "depart_date", "return_date",
                "budget_amount", "budget_currency", "notes", "session_id"):
        assert body[key] is None, key


@pytest.mark.parametrize("sent, shown", [
    (10.005, "10.01"), ("10.005", "10.01"), ("12", "12.00"), (0, "0.00"), ("+7.1", "7.10"),
    ("999999999999.994", "999999999999.99"), (2.675, "2.68"),
])
async def test_budget_amount_is_a_two_decimal_string_rounded_half_up(client, admin, sent, shown):
    assert (await create(client, admin, budget_amount=sent))["budget_amount"] == shown


@pytest.mark.parametrize("sent, error", [
    (-0.01, "greater_than_equal"), ("-1", "greater_than_equal"), (1e12, "less_than"),
    ("1000000000000", "less_than"), ("abc", "decimal_parsing"), ("1e5", "decimal_parsing"),
    ("NaN", "decimal_parsing"), (" 5", "decimal_parsing"), (True, "decimal_type"),
])
async def test_bad_budget_amounts_are_422(client, admin, sent, error):
    response = await client.post("/enquiries", json={"customer_name": "A", "budget_amount": sent},
                                 headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == [(["body", "budget_amount"], error)]


async def test_create_checks_run_in_the_documented_order(client, admin, db):
    bad = {"customer_name": "A", "budget_currency": "inr", "depart_date": "2026-07-08",
           "return_date": "2026-07-01", "pax_count": 0, "session_id": "not-a-uuid"}
    expected = [(400, "invalid_currency", "budget_currency"), (400, "invalid_date_range", "return_date"),
                (400, "invalid_pax_count", "pax_count"), (422, "invalid_session_id", "session_id")]
    for status, code, fix in expected:
        response = await client.post("/enquiries", json=bad, headers=admin.headers)
        assert (response.status, await detail(response)) == (status, code)
        bad.pop(fix)
    assert (await client.post("/enquiries", json=bad, headers=admin.headers)).status == 201
    assert await db.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1", admin.tenant_id) == 1


@pytest.mark.parametrize("currency", ["inr", "INRR", "IN", "", "IN1", "ÍNR", "INR\n", " INR"])
async def test_currency_must_be_three_uppercase_ascii_letters(client, admin, currency):
    response = await client.post("/enquiries", json={"customer_name": "A", "budget_currency": currency},
                                 headers=admin.headers)
    assert (response.status, await detail(response)) == (400, "invalid_currency")


async def test_same_day_return_is_allowed_and_one_sided_dates_are_fine(client, admin):
    assert (await create(client, admin, depart_date="2026-07-01", return_date="2026-07-01"))["return_date"]
    assert (await create(client, admin, return_date="2026-07-01"))["depart_date"] is None


@pytest.mark.parametrize("pax, status, code", [
    (0, 400, "invalid_pax_count"), (-5, 400, "invalid_pax_count"), (-(2 ** 63), 400, "invalid_pax_count"),
    (-1e300, 400, "invalid_pax_count"),
])
async def test_pax_count_below_one_is_400_not_422(client, admin, pax, status, code):
    response = await client.post("/enquiries", json={"customer_name": "A", "pax_count": pax}, headers=admin.headers)
    assert (response.status, await detail(response)) == (status, code)


async def test_pax_count_bounds_and_integral_floats(client, admin):
    assert (await create(client, admin, pax_count=2147483647))["pax_count"] == 2147483647
    assert (await create(client, admin, pax_count=3.0))["pax_count"] == 3
    for too_big in (2 ** 31, 1e300):
        response = await client.post("/enquiries", json={"customer_name": "A", "pax_count": too_big},
                                     headers=admin.headers)
        assert response.status == 422
        assert types(await response.json()) == [(["body", "pax_count"], "less_than_equal")]
    response = await client.post("/enquiries", json={"customer_name": "A", "pax_count": 1.5}, headers=admin.headers)
    assert types(await response.json()) == [(["body", "pax_count"], "int_type")]


@pytest.mark.parametrize("field, value, error", [
    ("customer_name", "x" * 256, "string_too_long"), ("customer_name", "", "string_too_short"),
    ("customer_email", "e" * 256, "string_too_long"), ("customer_phone", "1" * 65, "string_too_long"),
    ("origin", "o" * 129, "string_too_long"), ("destination", "d" * 129, "string_too_long"),
    ("notes", "n" * 10_001, "string_too_long"), ("status", "open", "literal_error"),
    ("depart_date", "2026-02-30", "date_from_datetime_parsing"),
    ("depart_date", "10000-01-01", "date_from_datetime_parsing"),
    ("return_date", "0000-01-01", "date_from_datetime_parsing"),
    ("depart_date", "01/07/2026", "date_from_datetime_parsing"),
    ("customer_name", "Asha\u0000Rao", "value_error"), ("notes", "a\u0000", "value_error"),
    ("tenant_id", str(uuid.uuid4()), "extra_forbidden"), ("id", str(uuid.uuid4()), "extra_forbidden"),
    ("pax_count", "2", "int_type"), ("customer_name", 5, "string_type"),
])
async def test_invalid_fields_are_422_list_shape_and_store_nothing(client, admin, db, field, value, error):
    response = await client.post("/enquiries", json={"customer_name": "Asha", **{field: value}},
                                 headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == [(["body", field], error)]
    assert await db.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_null_status_on_create_is_a_list_shape_422(client, admin):
    response = await client.post("/enquiries", json={"customer_name": "A", "status": None}, headers=admin.headers)
    assert response.status == 422
    assert {tuple(item["loc"]) for item in (await response.json())["detail"]} == {("body", "status")}


async def test_missing_name_or_body_is_422(client, admin):
    response = await client.post("/enquiries", json={"notes": "x"}, headers=admin.headers)
    assert types(await response.json()) == [(["body", "customer_name"], "missing")]
    response = await client.post("/enquiries", headers=admin.headers)
    assert types(await response.json()) == [(["body"], "missing")]
    response = await client.post("/enquiries", data=b"{not json", headers={**admin.headers,
                                                                         "Content-Type": "application/json"})
    assert types(await response.json()) == [(["body"], "json_invalid")]


async def test_sql_looking_and_unicode_text_is_stored_literally(client, admin, db):
    name = "Robert'); DROP TABLE enquiries;-- ✈ 東京 \\ % _"
    body = await create(client, admin, customer_name=name, notes="' OR 1=1 --")
    assert body["customer_name"] == name and body["notes"] == "' OR 1=1 --"
    assert await db.fetchval("SELECT customer_name FROM enquiries WHERE id = $1::uuid", body["id"]) == name


async def test_session_id_is_a_soft_link_in_any_letter_case(client, admin):
    session_id = uuid.uuid4()
    body = await create(client, admin, session_id=str(session_id).upper())
    assert body["session_id"] == str(session_id)


async def test_api_keys_need_the_write_scope_and_act_as_their_creator(client, make_user, make_api_key):
    agent = await make_user("agent")
    reader = await make_api_key(agent, ["enquiries:read"])
    writer = await make_api_key(agent, ["enquiries:write"])
    response = await client.post("/enquiries", json={"customer_name": "A"}, headers=reader.headers)
    assert (response.status, await detail(response)) == (403, "insufficient_scope")
    response = await client.post("/enquiries", json={"customer_name": "A"}, headers=writer.headers)
    assert response.status == 201
    body = await response.json()
    assert body["created_by_user_id"] == str(agent.id) and body["tenant_id"] == str(agent.tenant_id)
    got = await client.get(f"/enquiries/{body['id']}", headers=reader.headers)
    assert got.status == 200


async def test_every_role_may_create_and_read(client, make_user):
    viewer = await make_user("viewer")
    body = await create(client, viewer)
    assert (await client.get(f"/enquiries/{body['id']}", headers=viewer.headers)).status == 200


async def test_without_credentials_the_routes_are_401(client):
    for method, path in (("GET", "/enquiries"), ("POST", "/enquiries"), ("GET", f"/enquiries/{uuid.uuid4()}"),
                         ("PATCH", f"/enquiries/{uuid.uuid4()}"),
                         ("POST", f"/enquiries/{uuid.uuid4()}/promote-to-session")):
        response = await client.request(method, path, json={})
        assert (response.status, await detail(response)) == (401, "unauthorized"), (method, path)


# --- get ----------------------------------------------------------------------------------------------------


async def test_get_returns_the_same_object_as_create(client, admin):
    created = await create(client, admin, **{k: v for k, v in FULL.items() if k != "customer_name"})
    response = await client.get(f"/enquiries/{created['id']}", headers=admin.headers)
    assert response.status == 200
    assert await response.json() == created
    upper = await client.get(f"/enquiries/{created['id'].upper()}", headers=admin.headers)
    assert (await upper.json())["id"] == created["id"]


@pytest.mark.parametrize("enquiry_id", ["nope", "1", "0190a1b2-0000-7000-8000-00000000000g",
                                        "0190a1b20000700080000000000000ff", "'; SELECT 1; --", "x" * 5000])
async def test_malformed_ids_are_404(client, admin, enquiry_id):
    response = await client.get(f"/enquiries/{enquiry_id}", headers=admin.headers)
    assert (response.status, await detail(response)) == (404, "enquiry_not_found")


async def test_another_tenants_enquiry_is_404_everywhere(client, admin, make_user, db):
    other = await make_user("agency_admin")
    theirs = await create(client, other, notes="private")
    path = f"/enquiries/{theirs['id']}"
    for method, url, body in (("GET", path, None), ("PATCH", path, {"notes": "mine now"}),
                              ("POST", path + "/promote-to-session", None)):
        response = await client.request(method, url, json=body, headers=admin.headers)
        assert (response.status, await detail(response)) == (404, "enquiry_not_found"), method
    row = await db.fetchrow("SELECT notes, session_id FROM enquiries WHERE id = $1::uuid", theirs["id"])
    assert row["notes"] == "private" and row["session_id"] is None
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_nul_in_the_path_is_422(client, admin):
    response = await client.get("/enquiries/abc%00def", headers=admin.headers)
    assert response.status == 422
    assert types(await response.json()) == [(["path", "enquiry_id"], "value_error")]


# --- patch --------------------------------------------------------------------------------------------------


async def patch(client, user, enquiry_id, body):
    return await client.patch(f"/enquiries/{enquiry_id}", json=body, headers=user.headers)


async def test_patch_leaves_omitted_fields_and_clears_explicit_nulls(client, admin):
    created = await create(client, admin, **{k: v for k, v in FULL.items() if k != "customer_name"})
    response = await patch(client, admin, created["id"], {"notes": None, "budget_amount": None,
                                                          "budget_currency": None, "destination": "Doha"})
    assert response.status == 200
    body = await response.json()
    assert body["notes"] is None and body["budget_amount"] is None and body["budget_currency"] is None
    assert body["destination"] == "Doha"
    unchanged = {k: v for k, v in created.items() if k not in ("notes", "budget_amount", "budget_currency",
                                                               "destination", "updated_at")}
    assert {k: body[k] for k in unchanged} == unchanged
    assert parse_ts(body["updated_at"]) > parse_ts(created["updated_at"])
    assert body["created_at"] == created["created_at"]


async def test_an_empty_patch_only_touches_updated_at(client, admin):
    created = await create(client, admin, notes="keep")
    body = await (await patch(client, admin, created["id"], {})).json()
    assert body["notes"] == "keep" and body["updated_at"] >= created["updated_at"]


async def test_patch_checks_dates_against_the_stored_values(client, admin):
    created = await create(client, admin, depart_date="2026-07-01", return_date="2026-07-08")
    response = await patch(client, admin, created["id"], {"depart_date": "2026-07-09"})
    assert (response.status, await detail(response)) == (400, "invalid_date_range")
    response = await patch(client, admin, created["id"], {"depart_date": "2026-07-09", "return_date": None})
    assert response.status == 200
    assert (await response.json())["return_date"] is None


async def test_patch_rejects_stored_and_patched_values_alike(client, admin):
    created = await create(client, admin, budget_currency="USD", pax_count=3)
    for body, code in (({"budget_currency": "usd"}, "invalid_currency"), ({"pax_count": 0}, "invalid_pax_count"),
                       ({"pax_count": -2 ** 40}, "invalid_pax_count")):
        response = await patch(client, admin, created["id"], body)
        assert (response.status, await detail(response)) == (400, code)
    assert (await (await client.get(f"/enquiries/{created['id']}", headers=admin.headers)).json())["pax_count"] == 3


@pytest.mark.parametrize("start, target, ok", [
    ("new", "quoted", True), ("quoted", "new", True), ("new", "booked", True), ("quoted", "cancelled", True),
    ("booked", "cancelled", True), ("cancelled", "booked", True), ("booked", "booked", True),
    ("cancelled", "cancelled", True), ("booked", "new", False), ("booked", "quoted", False),
    ("cancelled", "new", False), ("cancelled", "quoted", False),
])
async def test_status_transitions_follow_the_state_machine(client, admin, start, target, ok):
    created = await create(client, admin, status=start)
    response = await patch(client, admin, created["id"], {"status": target})
    if ok:
        assert response.status == 200 and (await response.json())["status"] == target
    else:
        assert (response.status, await detail(response)) == (400, "invalid_status_transition")


@pytest.mark.parametrize("field", ["status", "customer_name", "pax_count"])
async def test_null_on_a_required_column_is_a_422_code(client, admin, field):
    created = await create(client, admin)
    response = await patch(client, admin, created["id"], {field: None})
    assert (response.status, await detail(response)) == (422, f"{field}_cannot_be_null")


async def test_patch_session_id_must_be_a_uuid_and_null_unlinks(client, admin):
    session_id = str(uuid.uuid4())
    created = await create(client, admin, session_id=session_id)
    response = await patch(client, admin, created["id"], {"session_id": "abc"})
    assert (response.status, await detail(response)) == (422, "invalid_session_id")
    response = await patch(client, admin, created["id"], {"session_id": None})
    assert (await response.json())["session_id"] is None


async def test_patch_processing_order(client, admin):
    booked = await create(client, admin, status="booked", return_date="2026-07-08")
    missing = f"/enquiries/{uuid.uuid4()}"
    cases = [
        (missing, {"budget_currency": "x", "status": None}, 404, "enquiry_not_found"),
        (None, {"budget_currency": "x", "status": None}, 400, "invalid_currency"),
        (None, {"depart_date": "2026-07-09", "pax_count": 0}, 400, "invalid_date_range"),
        (None, {"pax_count": 0, "status": None}, 400, "invalid_pax_count"),
        (None, {"status": None, "customer_name": None}, 422, "status_cannot_be_null"),
        (None, {"status": "new", "customer_name": None}, 400, "invalid_status_transition"),
        (None, {"customer_name": None, "session_id": "x"}, 422, "customer_name_cannot_be_null"),
        (None, {"pax_count": None, "session_id": "x"}, 422, "pax_count_cannot_be_null"),
        (None, {"session_id": "x"}, 422, "invalid_session_id"),
    ]
    for path, body, status, code in cases:
        url = path or f"/enquiries/{booked['id']}"
        response = await client.patch(url, json=body, headers=admin.headers)
        assert (response.status, await detail(response)) == (status, code), body
    after = await (await client.get(f"/enquiries/{booked['id']}", headers=admin.headers)).json()
    assert after == booked  # every failed patch rolled back


async def test_patch_body_is_validated_like_create(client, admin):
    created = await create(client, admin)
    response = await patch(client, admin, created["id"], {"customer_name": "", "tenant_id": "x"})
    assert response.status == 422
    assert sorted(types(await response.json())) == [(["body", "customer_name"], "string_too_short"),
                                                    (["body", "tenant_id"], "extra_forbidden")]
    response = await patch(client, admin, created["id"], {"notes": "a\x00"})
    assert types(await response.json()) == [(["body", "notes"], "value_error")]
    response = await patch(client, admin, created["id"], {"status": "open"})
    assert types(await response.json()) == [(["body", "status"], "literal_error")]


async def test_patch_budget_uses_the_decimal_rule(client, admin):
    created = await create(client, admin)
    body = await (await patch(client, admin, created["id"], {"budget_amount": "1234.565"})).json()
    assert body["budget_amount"] == "1234.57"
    response = await patch(client, admin, created["id"], {"budget_amount": -1})
    assert types(await response.json()) == [(["body", "budget_amount"], "greater_than_equal")]


# --- promote-to-session -------------------------------------------------------------------------------------


async def promote(client, user, enquiry_id):
    return await client.post(f"/enquiries/{enquiry_id}/promote-to-session", headers=user.headers)


async def test_promote_creates_one_session_and_links_it(client, admin, db):
    created = await create(client, admin)
    response = await promote(client, admin, created["id"])
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"enquiry", "session_id"}
    assert body["enquiry"]["session_id"] == body["session_id"]
    assert parse_ts(body["enquiry"]["updated_at"]) >= parse_ts(created["updated_at"])
    session = await db.fetchrow("SELECT tenant_id, actor_id, actor_kind::text, title FROM sessions WHERE id = $1::uuid",
                                body["session_id"])
    assert dict(session) == {"tenant_id": admin.tenant_id, "actor_id": admin.id, "actor_kind": "human",
                             "title": None}
    again = await (await promote(client, admin, created["id"])).json()
    assert again == body
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 1


async def test_promote_returns_an_existing_link_unchanged(client, admin, db):
    linked = str(uuid.uuid4())
    created = await create(client, admin, session_id=linked)
    body = await (await promote(client, admin, created["id"])).json()
    assert body["session_id"] == linked and body["enquiry"] == created
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_concurrent_promotes_make_exactly_one_session(client, admin, db):
    created = await create(client, admin)
    responses = await asyncio.gather(*(promote(client, admin, created["id"]) for _ in range(12)))
    assert {r.status for r in responses} == {200}
    ids = {(await r.json())["session_id"] for r in responses}
    assert len(ids) == 1
    assert await db.fetchval("SELECT count(*) FROM sessions WHERE tenant_id = $1", admin.tenant_id) == 1


async def test_promote_ignores_a_body_and_reports_unknown_ids(client, admin, make_user, make_api_key):
    created = await create(client, admin)
    response = await client.post(f"/enquiries/{created['id']}/promote-to-session", json={"anything": [1, 2]},
                                 headers=admin.headers)
    assert response.status == 200
    for bad in ("nope", str(uuid.uuid4())):
        response = await promote(client, admin, bad)
        assert (response.status, await detail(response)) == (404, "enquiry_not_found")
    reader = await make_api_key(admin, ["enquiries:read"])
    response = await promote(client, reader, created["id"])
    assert (response.status, await detail(response)) == (403, "insufficient_scope")


async def test_promote_by_api_key_makes_the_creator_the_actor(client, make_user, make_api_key, db):
    agent = await make_user("agent")
    key = await make_api_key(agent, ["enquiries:write"])
    created = await create(client, agent)
    body = await (await promote(client, key, created["id"])).json()
    assert await db.fetchval("SELECT actor_id FROM sessions WHERE id = $1::uuid", body["session_id"]) == agent.id
