"""API keys as an integrator meets them: create (shown once), list, revoke, and using a key end to end."""

import datetime as dt
import hashlib
import json
import re

import asyncpg
import pytest

from tests.clock import FakeClock
from tests.conftest import drain_background
from voyagent.keys import API_KEY_CACHE, BACKGROUND

KEY_RE = re.compile(r"vy_([A-Za-z0-9]{8})_[A-Za-z0-9]{32}")
SUMMARY_KEYS = {"id", "name", "prefix", "scopes", "created_by_user_id", "created_at", "expires_at", "revoked_at",
                "last_used_at"}


def parse_ts(value: str) -> dt.datetime:
    assert value.endswith("Z")
    return dt.datetime.fromisoformat(value[:-1] + "+00:00")


async def create_key(client, admin, **body):
    response = await client.post("/auth/api-keys", json={"name": "integration", **body}, headers=admin.headers)
    assert response.status == 201, await response.text()
    return await response.json()


async def audit_events(db, tenant_id, kind):
    rows = await db.fetch("SELECT actor_id, inputs, status::text FROM audit_events WHERE tenant_id = $1 AND tool = $2 "
                          "ORDER BY started_at", tenant_id, kind)
    return [{**row, "inputs": json.loads(row["inputs"])} for row in rows]


# --- create ------------------------------------------------------------------------------------------------


async def test_create_returns_the_plaintext_once_and_stores_only_its_sha256(client, admin, db):
    response = await client.post("/auth/api-keys", json={"name": "  Booking engine  "}, headers=admin.headers)
    assert response.status == 201
    body = await response.json()
    assert set(body) == {"key", "warning", "api_key"}
    match = KEY_RE.fullmatch(body["key"])
    assert match and len(body["key"]) == 44
    summary = body["api_key"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["name"] == "Booking engine"
    assert summary["prefix"] == match.group(1)
    assert summary["scopes"] == ["full"]
    assert summary["created_by_user_id"] == str(admin.id)
    assert summary["expires_at"] is None and summary["revoked_at"] is None and summary["last_used_at"] is None
    row = await db.fetchrow("SELECT prefix, key_hash FROM api_keys WHERE id = $1::uuid", summary["id"])
    assert row["prefix"] == match.group(1)
    assert row["key_hash"] == hashlib.sha256(body["key"].encode()).hexdigest()
    listed = await (await client.get("/auth/api-keys", headers=admin.headers)).text()
    assert body["key"] not in listed and row["key_hash"] not in listed
    assert match.group(0)[12:] not in listed  # not even the secret body


async def test_scopes_are_stored_and_returned_in_canonical_form(client, admin):
    cases = [
        (["tenant:read", "audit:read", "enquiries:read", "audit:read"],
         ["enquiries:read", "audit:read", "tenant:read"]),
        (["chat:write", "full", "audit:read"], ["full"]),
        (None, ["full"]),
        (["approvals:write"], ["approvals:write"]),
    ]
    for requested, canonical in cases:
        body = await create_key(client, admin, scopes=requested)
        assert body["api_key"]["scopes"] == canonical, requested


async def test_expires_in_days_sets_expires_at(client, admin):
    before = dt.datetime.now(dt.timezone.utc)
    body = await create_key(client, admin, expires_in_days=30)
    expires_at = parse_ts(body["api_key"]["expires_at"])
    assert dt.timedelta(days=30) - dt.timedelta(seconds=5) < expires_at - before < dt.timedelta(days=30, seconds=5)
    assert (await create_key(client, admin, expires_in_days=None))["api_key"]["expires_at"] is None


async def test_create_is_audited_with_the_key_metadata_but_not_the_secret(client, admin, db):
    body = await create_key(client, admin, scopes=["audit:read"], expires_in_days=1)
    [event] = await audit_events(db, admin.tenant_id, "api_key.created")
    assert event["actor_id"] == admin.id and event["status"] == "succeeded"
    summary = body["api_key"]
    assert event["inputs"] == {"api_key_id": summary["id"], "name": "integration", "prefix": summary["prefix"],
                               "scopes": ["audit:read"], "expires_at": summary["expires_at"]}
    assert body["key"] not in str(event["inputs"])


@pytest.mark.parametrize("body, loc, type_", [
    ({}, ["body", "name"], "missing"),
    ({"name": "   "}, ["body", "name"], "value_error"),
    ({"name": "x" * 121}, ["body", "name"], "string_too_long"),
    ({"name": 7}, ["body", "name"], "string_type"),
    ({"name": "k", "scopes": ["enquiries:read", "admin:all"]}, ["body", "scopes", 1], "literal_error"),
    ({"name": "k", "scopes": ["ENQUIRIES:READ"]}, ["body", "scopes", 0], "literal_error"),
    ({"name": "k", "scopes": [42]}, ["body", "scopes", 0], "string_type"),
    ({"name": "k", "scopes": []}, ["body", "scopes"], "too_short"),
    ({"name": "k", "scopes": ["full"] * 12}, ["body", "scopes"], "too_long"),
    ({"name": "k", "scopes": "full"}, ["body", "scopes"], "list_type"),
    ({"name": "k", "expires_in_days": 0}, ["body", "expires_in_days"], "greater_than_equal"),
    ({"name": "k", "expires_in_days": -5}, ["body", "expires_in_days"], "greater_than_equal"),
    ({"name": "k", "expires_in_days": 3651}, ["body", "expires_in_days"], "less_than_equal"),
    ({"name": "k", "expires_in_days": "7"}, ["body", "expires_in_days"], "int_type"),
    ({"name": "k", "tenant_id": "00000000-0000-7000-8000-000000000000"}, ["body", "tenant_id"], "extra_forbidden"),
])
async def test_bad_create_bodies_are_422_and_create_nothing(client, admin, db, body, loc, type_):
    response = await client.post("/auth/api-keys", json=body, headers=admin.headers)
    assert response.status == 422
    detail = (await response.json())["detail"]
    assert any(item["loc"] == loc and item["type"] == type_ for item in detail), detail
    assert await db.fetchval("SELECT count(*) FROM api_keys WHERE tenant_id = $1", admin.tenant_id) == 0


async def test_blank_name_reports_name_required(client, admin):
    response = await client.post("/auth/api-keys", json={"name": " \t "}, headers=admin.headers)
    assert (await response.json())["detail"][0]["msg"] == "Value error, name_required"


# --- who may manage keys ------------------------------------------------------------------------------------


async def test_management_is_for_agency_admins_with_a_jwt(client, admin, make_user, make_api_key):
    agent = await make_user("agent", tenant_id=admin.tenant_id)
    full_key = await make_api_key(admin, ["full"])
    some_id = "00000000-0000-7000-8000-000000000000"
    calls = [("POST", "/auth/api-keys", {"name": "x"}), ("GET", "/auth/api-keys", None),
             ("POST", f"/auth/api-keys/{some_id}/revoke", None)]
    for method, path, body in calls:
        response = await client.request(method, path, json=body, headers=agent.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"}), path
        response = await client.request(method, path, json=body, headers=full_key.headers)
        assert (response.status, await response.json()) == (403, {"detail": "api_key_not_allowed"}), path
        response = await client.request(method, path, json=body)
        assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"


# --- list ---------------------------------------------------------------------------------------------------


async def test_list_shows_every_key_of_the_tenant_newest_first_and_nothing_else(client, admin, make_user,
                                                                                make_api_key):
    other_admin = await make_user("agency_admin")
    foreign = await make_api_key(other_admin)
    expired = await make_api_key(admin, name="old", expires_in=-60)
    revoked = await make_api_key(admin, name="gone", revoked=True)
    fresh = (await create_key(client, admin))["api_key"]
    response = await client.get("/auth/api-keys", headers=admin.headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"items"}
    assert [item["id"] for item in body["items"]] == [fresh["id"], str(revoked.id), str(expired.id)]
    assert all(set(item) == SUMMARY_KEYS for item in body["items"])
    assert body["items"][1]["revoked_at"] is not None
    assert parse_ts(body["items"][2]["expires_at"]) < dt.datetime.now(dt.timezone.utc)
    assert str(foreign.id) not in await response.text()


# --- revoke -------------------------------------------------------------------------------------------------


async def test_revoke_is_204_and_the_key_is_refused_from_the_next_request(client, admin, db):
    created = await create_key(client, admin, scopes=["tenant:read"])
    key_headers = {"Authorization": f"Bearer {created['key']}"}
    assert (await client.get("/tenant-settings", headers=key_headers)).status == 200  # now cached
    response = await client.post(f"/auth/api-keys/{created['api_key']['id']}/revoke", headers=admin.headers)
    assert response.status == 204 and await response.read() == b""
    response = await client.get("/tenant-settings", headers=key_headers)
    assert (response.status, await response.json()) == (401, {"detail": "unauthorized"})
    [event] = await audit_events(db, admin.tenant_id, "api_key.revoked")
    assert event["inputs"] == {"api_key_id": created["api_key"]["id"], "prefix": created["api_key"]["prefix"]}


async def test_revoking_twice_is_204_keeps_revoked_at_and_audits_once(client, admin, db):
    key_id = (await create_key(client, admin))["api_key"]["id"]
    revoked_at = []
    for _ in range(2):
        response = await client.post(f"/auth/api-keys/{key_id}/revoke", headers=admin.headers)
        assert response.status == 204
        revoked_at.append(await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1::uuid", key_id))
    assert revoked_at[0] is not None and revoked_at[1] == revoked_at[0]
    assert len(await audit_events(db, admin.tenant_id, "api_key.revoked")) == 1
    [item] = (await (await client.get("/auth/api-keys", headers=admin.headers)).json())["items"]
    assert parse_ts(item["revoked_at"]) == revoked_at[0]


@pytest.mark.parametrize("key_id", ["not-a-uuid", "00000000-0000-7000-8000-000000000000", "12345",
                                    "0190d3c4-0000-7000-8000-00000000000g", "%20"])
async def test_revoking_an_unknown_or_malformed_id_is_404_not_found(client, admin, key_id):
    response = await client.post(f"/auth/api-keys/{key_id}/revoke", headers=admin.headers)
    assert (response.status, await response.json()) == (404, {"detail": "not_found"})


async def test_another_tenants_key_is_404_and_stays_usable(client, admin, make_user, make_api_key, db):
    other_admin = await make_user("agency_admin")
    foreign = await make_api_key(other_admin, ["tenant:read"])
    response = await client.post(f"/auth/api-keys/{foreign.id}/revoke", headers=admin.headers)
    assert (response.status, await response.json()) == (404, {"detail": "not_found"})
    response = await client.post(f"/auth/api-keys/{str(foreign.id).upper()}/revoke", headers=admin.headers)
    assert response.status == 404
    assert await db.fetchval("SELECT revoked_at FROM api_keys WHERE id = $1", foreign.id) is None
    assert (await client.get("/tenant-settings", headers=foreign.headers)).status == 200


async def test_a_revocation_reaches_every_worker_through_redis(make_client, admin, redis_url, make_api_key):
    worker_a = await make_client(redis_url=redis_url)
    worker_b = await make_client(redis_url=redis_url)
    key = await make_api_key(admin, ["tenant:read"])
    assert (await worker_b.get("/tenant-settings", headers=key.headers)).status == 200  # cached on worker B
    assert (await worker_a.post(f"/auth/api-keys/{key.id}/revoke", headers=admin.headers)).status == 204
    assert (await worker_b.get("/tenant-settings", headers=key.headers)).status == 401
    assert (await worker_a.get("/tenant-settings", headers=key.headers)).status == 401


# --- using a key --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("credential", [
    "vy_short_0123456789abcdefghijABCDEFGHIJkl",
    "vy_Ab3dE6gH_0123456789abcdefghijABCDEFGHIJk",      # body one character short
    "vy_Ab3dE6gH_0123456789abcdefghijABCDEFGHIJk!",     # not alphanumeric
    "vy_Ab3dE6gH_0123456789abcdefghijABCDEFGHIJkl",     # well-formed, unknown prefix
    "vy_",
])
async def test_malformed_or_unknown_keys_are_401(client, credential):
    response = await client.get("/tenant-settings", headers={"Authorization": f"Bearer {credential}"})
    assert (response.status, await response.json()) == (401, {"detail": "unauthorized"})
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_known_prefix_with_the_wrong_secret_is_401(client, admin, make_api_key):
    key = await make_api_key(admin)
    forged = key.key[:-1] + ("A" if key.key[-1] != "A" else "B")
    response = await client.get("/tenant-settings", headers={"Authorization": f"Bearer {forged}"})
    assert response.status == 401
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200


async def test_an_expired_key_is_401(client, admin, make_api_key):
    key = await make_api_key(admin, expires_in=-1)
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 401


async def test_a_key_expiring_while_cached_is_refused_at_its_expiry(client, admin, make_api_key, db):
    key = await make_api_key(admin, expires_in=3600)
    expires_at = (await db.fetchval("SELECT expires_at FROM api_keys WHERE id = $1", key.id)).timestamp()
    cache = client.app[API_KEY_CACHE]
    cache.timer = FakeClock(0.0)  # frozen: the row stays cached throughout
    clock = cache.clock = FakeClock()
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    clock.set(expires_at - 0.001)
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    clock.set(expires_at)  # expires_at ≤ now: refused, though the cached row is still in use
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 401


async def test_scheme_word_is_case_insensitive_and_whitespace_is_trimmed(client, admin, make_api_key):
    key = await make_api_key(admin)
    response = await client.get("/tenant-settings", headers={"Authorization": f"bEaReR   {key.key}  "})
    assert response.status == 200


async def test_keys_are_refused_everywhere_under_auth(client, admin, make_api_key):
    key = await make_api_key(admin, ["full"])
    for method, path in (("GET", "/auth/api-keys"), ("GET", "/auth/invites"), ("POST", "/auth/invites")):
        response = await client.request(method, path, headers=key.headers, json={"email": "a@b.co"})
        assert (response.status, await response.json()) == (403, {"detail": "api_key_not_allowed"}), path


async def test_a_key_needs_the_routes_scope(client, admin, make_api_key, db):
    key = await make_api_key(admin, ["enquiries:read", "audit:read"])
    response = await client.get("/tenant-settings", headers=key.headers)
    assert (response.status, await response.json()) == (403, {"detail": "insufficient_scope"})
    response = await client.patch("/tenant-settings", json={"locale": "hi"}, headers=key.headers)
    assert (response.status, await response.json()) == (403, {"detail": "insufficient_scope"})
    assert (await client.get("/audit", headers=key.headers)).status == 200
    [event] = await db.fetch("SELECT inputs, error FROM audit_events WHERE tenant_id = $1 AND tool = 'auth.verify' "
                             "AND inputs->>'method' = 'GET'", admin.tenant_id)
    assert event["error"] == "insufficient_scope"
    inputs = json.loads(event["inputs"])
    assert inputs["api_key_id"] == str(key.id) and inputs["path"] == "/tenant-settings"


async def test_write_implies_read_and_full_grants_everything(client, admin, make_api_key):
    write_key = await make_api_key(admin, ["tenant:write"])
    assert (await client.get("/tenant-settings", headers=write_key.headers)).status == 200
    assert (await client.patch("/tenant-settings", json={"locale": "hi"}, headers=write_key.headers)).status == 200
    read_key = await make_api_key(admin, ["tenant:read"])
    response = await client.patch("/tenant-settings", json={"locale": "en"}, headers=read_key.headers)
    assert (response.status, await response.json()) == (403, {"detail": "insufficient_scope"})
    full_key = await make_api_key(admin, ["full"])
    for path in ("/tenant-settings", "/audit", "/audit/export.csv"):
        assert (await client.get(path, headers=full_key.headers)).status == 200, path


async def test_a_key_acts_with_its_creators_current_role(client, admin, make_user, make_api_key, db):
    viewer = await make_user("viewer", tenant_id=admin.tenant_id)
    key = await make_api_key(viewer, ["audit:read", "tenant:write"])
    for method, path in (("GET", "/audit"), ("GET", "/audit/export.csv"), ("PATCH", "/tenant-settings")):
        response = await client.request(method, path, json={"locale": "hi"}, headers=key.headers)
        assert (response.status, await response.json()) == (403, {"detail": "forbidden_role"}), path
    # scope is checked before the role: a viewer's key without audit:read says insufficient_scope
    narrow = await make_api_key(viewer, ["tenant:read"])
    response = await client.get("/audit", headers=narrow.headers)
    assert (await response.json()) == {"detail": "insufficient_scope"}
    # the role is the creator's current one (from the database), not the one at the key's creation
    await db.execute("UPDATE users SET role = 'agency_admin' WHERE id = $1", viewer.id)
    fresh = await make_api_key(viewer, ["audit:read"])
    assert (await client.get("/audit", headers=fresh.headers)).status == 200


async def test_a_key_reads_only_its_own_tenant(client, admin, make_user, make_api_key):
    other_admin = await make_user("agency_admin")
    await client.patch("/tenant-settings", json={"timezone": "Asia/Kolkata"}, headers=other_admin.headers)
    key = await make_api_key(admin, ["tenant:read", "audit:read"])
    body = await (await client.get("/tenant-settings", headers=key.headers)).json()
    assert body["tenant_id"] == str(admin.tenant_id) and body["timezone"] == "UTC"
    page = await (await client.get("/audit", headers=key.headers)).json()
    assert all(item["tenant_id"] == str(admin.tenant_id) for item in page["items"])
    assert page["total"] == 0


# --- last_used_at -------------------------------------------------------------------------------------------


async def key_listing(client, admin, key_id):
    items = (await (await client.get("/auth/api-keys", headers=admin.headers)).json())["items"]
    return next(item for item in items if item["id"] == str(key_id))


async def test_last_used_at_is_written_after_a_successful_response_without_delaying_it(client, admin, make_api_key,
                                                                                       database):
    # "visible within 2 seconds" is a figure of bench/timing_bench.py; here: written, and off the request path
    key = await make_api_key(admin, ["tenant:read"])
    before = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=1)
    assert (await key_listing(client, admin, key.id))["last_used_at"] is None
    holder = await asyncpg.connect(database.dsn)  # holds the key's row: the touch cannot write until it lets go
    try:
        async with holder.transaction():
            await holder.execute("SELECT 1 FROM api_keys WHERE id = $1 FOR UPDATE", key.id)
            assert (await client.get("/tenant-settings", headers=key.headers)).status == 200  # not held up
            assert len(client.app[BACKGROUND]) == 1  # the touch, still waiting for the row
    finally:
        await holder.close()
    await drain_background(client)
    last_used = (await key_listing(client, admin, key.id))["last_used_at"]
    assert last_used is not None and parse_ts(last_used) >= before


async def test_last_used_at_is_not_set_by_refused_requests(client, admin, make_api_key):
    key = await make_api_key(admin, ["enquiries:read"])
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 403
    assert (await client.get("/audit?limit=0", headers=key.headers)).status == 403
    await drain_background(client)  # whatever the responses set off has finished
    assert (await key_listing(client, admin, key.id))["last_used_at"] is None


async def test_last_used_at_is_written_at_most_once_a_minute(client, admin, make_api_key, db):
    clock = client.app[API_KEY_CACHE].clock = FakeClock()
    key = await make_api_key(admin, ["tenant:read"])
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    await drain_background(client)
    first = (await key_listing(client, admin, key.id))["last_used_at"]
    assert first is not None
    for _ in range(5):
        assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    await drain_background(client)
    assert (await key_listing(client, admin, key.id))["last_used_at"] == first
    # a minute on (for this worker, and for the database's guard) the next request records its use again
    await db.execute("UPDATE api_keys SET last_used_at = last_used_at - interval '61 seconds' WHERE id = $1", key.id)
    moved = (await key_listing(client, admin, key.id))["last_used_at"]
    clock.advance(60)
    assert (await client.get("/tenant-settings", headers=key.headers)).status == 200
    await drain_background(client)
    assert parse_ts((await key_listing(client, admin, key.id))["last_used_at"]) > parse_ts(moved)


# --- the key's rate-limit bucket ----------------------------------------------------------------------------


async def set_rate_limit(client, admin, per_minute):
    response = await client.patch("/tenant-settings", json={"rate_limit_per_minute": per_minute}, headers=admin.headers)
    assert response.status == 200


async def test_each_key_has_a_bucket_sized_by_the_tenants_rate_limit(client, admin, make_api_key):
    await set_rate_limit(client, admin, 3)
    key = await make_api_key(admin, ["tenant:read"])
    for remaining in (2, 1, 0):
        response = await client.get("/tenant-settings", headers=key.headers)
        assert response.status == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert response.headers["RateLimit-Remaining"] == str(remaining)
        assert response.headers["RateLimit-Policy"] == '"api_key";q=3;w=60'
        reset = int(response.headers["RateLimit-Reset"])
        assert response.headers["RateLimit"] == f'"api_key";r={remaining};t={reset}'
        assert reset == 20 * (3 - remaining)
    response = await client.get("/tenant-settings", headers=key.headers)
    assert (response.status, await response.json()) == (429, {"detail": "rate_limited"})
    assert 1 <= int(response.headers["Retry-After"]) <= 20
    assert response.headers["RateLimit-Remaining"] == "0"
    # another key of the tenant, and the admin's own JWT, have buckets of their own
    other = await make_api_key(admin, ["tenant:read"])
    assert (await client.get("/tenant-settings", headers=other.headers)).headers["RateLimit-Remaining"] == "2"
    response = await client.get("/tenant-settings", headers=admin.headers)
    assert response.status == 200 and response.headers["RateLimit-Policy"] == '"user";q=600;w=60'


async def test_a_changed_rate_limit_applies_to_the_next_request_with_tokens_clamped(client, admin, make_api_key):
    key = await make_api_key(admin, ["tenant:read"])
    response = await client.get("/tenant-settings", headers=key.headers)
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == ("60", "59")
    await set_rate_limit(client, admin, 5)
    response = await client.get("/tenant-settings", headers=key.headers)
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == ("5", "4")
    await set_rate_limit(client, admin, 100)
    response = await client.get("/tenant-settings", headers=key.headers)
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == ("100", "3")


async def test_a_changed_rate_limit_reaches_every_worker_through_redis(make_client, admin, redis_url,
                                                                        make_api_key):
    worker_a = await make_client(redis_url=redis_url)
    worker_b = await make_client(redis_url=redis_url)
    key = await make_api_key(admin, ["tenant:read"])
    response = await worker_b.get("/tenant-settings", headers=key.headers)  # row cached on worker B at 60
    assert response.headers["RateLimit-Limit"] == "60"
    await set_rate_limit(worker_a, admin, 2)
    response = await worker_b.get("/tenant-settings", headers=key.headers)
    assert (response.headers["RateLimit-Limit"], response.headers["RateLimit-Remaining"]) == ("2", "1")
    assert (await worker_a.get("/tenant-settings", headers=key.headers)).status == 200  # one shared bucket
    response = await worker_b.get("/tenant-settings", headers=key.headers)
    assert response.status == 429 and response.headers["RateLimit-Policy"] == '"api_key";q=2;w=60'
