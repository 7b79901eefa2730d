"""Idempotent creates (README, Idempotent creates) as an integrator retrying POST /enquiries meets them."""

import asyncio
import json

import pytest

from voyagent.keys import QUERIES
from voyagent.services import idempotency
from voyagent.services.idempotency import KeyScope, body_hash

BODY = {"customer_name": "Asha Rao", "destination": "Dubai", "budget_amount": 1200.5, "pax_count": 2}


async def post(client, user, body, key=None, **headers):
    if key is not None:
        headers["Idempotency-Key"] = key
    return await client.post("/enquiries", json=body, headers={**user.headers, **headers})


async def count_rows(db, user):
    return await db.fetchval("SELECT count(*) FROM enquiries WHERE tenant_id = $1", user.tenant_id)


async def test_a_retry_replays_the_first_response_and_writes_nothing(client, admin, db):
    first = await post(client, admin, BODY, key="retry-1")
    assert first.status == 201 and "Idempotent-Replayed" not in first.headers
    created = await first.json()
    again = await post(client, admin, BODY, key="retry-1")
    assert again.status == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert await again.json() == created
    assert await count_rows(db, admin) == 1
    stored = await db.fetchrow("SELECT principal, route, status, request_hash FROM idempotency_keys "
                               "WHERE tenant_id = $1 AND key = 'retry-1'", admin.tenant_id)
    assert dict(stored) == {"principal": f"user:{admin.id}", "route": "POST /enquiries", "status": 201,
                            "request_hash": body_hash(BODY)}


async def test_the_replay_is_the_stored_response_not_the_current_row(client, admin):
    created = await (await post(client, admin, BODY, key="k-snapshot")).json()
    await client.patch(f"/enquiries/{created['id']}", json={"notes": "changed"}, headers=admin.headers)
    replay = await post(client, admin, BODY, key="k-snapshot")
    assert (await replay.json())["notes"] is None


async def test_the_body_is_compared_as_parsed_json(client, admin, db):
    await post(client, admin, BODY, key="k-json")
    reordered = json.dumps(dict(reversed(list(BODY.items()))), indent=3).encode()
    response = await client.post("/enquiries", data=reordered, headers={
        **admin.headers, "Idempotency-Key": "k-json", "Content-Type": "application/json"})
    assert response.status == 201 and response.headers.get("Idempotent-Replayed") == "true"
    assert await count_rows(db, admin) == 1


@pytest.mark.parametrize("changed", [
    {**BODY, "pax_count": 3}, {**BODY, "notes": None}, {k: v for k, v in BODY.items() if k != "destination"},
    {**BODY, "budget_amount": "1200.5"},
])
async def test_the_same_key_with_another_body_is_422(client, admin, db, changed):
    await post(client, admin, BODY, key="k-body")
    response = await post(client, admin, changed, key="k-body")
    assert (response.status, (await response.json())["detail"]) == (422, "idempotency_key_reused")
    assert await count_rows(db, admin) == 1


async def test_the_same_key_on_another_route_is_422(client, admin, db):
    await db.execute(
        "INSERT INTO idempotency_keys (tenant_id, principal, key, route, request_hash, status, response) "
        "VALUES ($1, $2, 'k-route', 'POST /chat/sessions', $3, 201, '{\"session_id\": \"x\"}')",
        admin.tenant_id, f"user:{admin.id}", body_hash(BODY))
    response = await post(client, admin, BODY, key="k-route")
    assert (response.status, (await response.json())["detail"]) == (422, "idempotency_key_reused")
    assert await count_rows(db, admin) == 0


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "tab\there", "ümlaut", " "])
async def test_malformed_keys_are_422(client, admin, db, key):
    response = await client.post("/enquiries", json=BODY, headers={
        **admin.headers, "Idempotency-Key": key.encode("utf-8").decode("latin-1")})
    assert (response.status, (await response.json())["detail"]) == (422, "invalid_idempotency_key")
    assert await count_rows(db, admin) == 0


@pytest.mark.parametrize("key", ["a", "x" * 255, "!~#$%&'*+-.^_`|", "550e8400-e29b-41d4-a716-446655440000"])
async def test_every_visible_ascii_key_up_to_255_is_accepted(client, admin, key):
    assert (await post(client, admin, BODY, key=key)).status == 201
    assert (await post(client, admin, BODY, key=key)).headers["Idempotent-Replayed"] == "true"


async def test_request_validation_comes_before_the_key_check(client, admin):
    response = await post(client, admin, {"customer_name": ""}, key="has space")
    assert response.status == 422
    assert (await response.json())["detail"][0]["type"] == "string_too_short"


async def test_the_key_check_comes_before_the_endpoint_checks(client, admin):
    await post(client, admin, BODY, key="k-order")
    response = await post(client, admin, {**BODY, "budget_currency": "bad"}, key="k-order")
    assert (response.status, (await response.json())["detail"]) == (422, "idempotency_key_reused")


async def test_failed_requests_are_not_remembered(client, admin, db):
    response = await post(client, admin, {**BODY, "budget_currency": "bad"}, key="k-fail")
    assert (response.status, (await response.json())["detail"]) == (400, "invalid_currency")
    assert await db.fetchval("SELECT count(*) FROM idempotency_keys WHERE tenant_id = $1", admin.tenant_id) == 0
    response = await post(client, admin, BODY, key="k-fail")
    assert response.status == 201 and "Idempotent-Replayed" not in response.headers


async def test_keys_are_scoped_to_the_credential_and_tenant(client, admin, make_user, make_api_key, db):
    colleague = await make_user("agent", tenant_id=admin.tenant_id)
    key_a = await make_api_key(admin, ["enquiries:write"])
    key_b = await make_api_key(admin, ["enquiries:write"])
    ids = set()
    for caller in (admin, colleague, key_a, key_b):
        response = await post(client, caller, BODY, key="shared-key")
        assert response.status == 201 and "Idempotent-Replayed" not in response.headers
        ids.add((await response.json())["id"])
    assert len(ids) == 4 and await count_rows(db, admin) == 4
    replay = await post(client, key_a, BODY, key="shared-key")
    assert replay.headers["Idempotent-Replayed"] == "true"
    principals = await db.fetch("SELECT principal FROM idempotency_keys WHERE tenant_id = $1 ORDER BY principal",
                                admin.tenant_id)
    assert sorted(r["principal"] for r in principals) == sorted(
        [f"user:{admin.id}", f"user:{colleague.id}", f"key:{key_a.id}", f"key:{key_b.id}"])


async def test_keys_are_forgotten_after_24_hours(client, admin, db):
    first = await (await post(client, admin, BODY, key="k-old")).json()
    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '24 hours 1 second' "
                     "WHERE tenant_id = $1", admin.tenant_id)
    response = await post(client, admin, {**BODY, "pax_count": 5}, key="k-old")
    assert response.status == 201 and "Idempotent-Replayed" not in response.headers
    second = await response.json()
    assert second["id"] != first["id"] and await count_rows(db, admin) == 2
    replay = await post(client, admin, {**BODY, "pax_count": 5}, key="k-old")
    assert (await replay.json())["id"] == second["id"]


async def test_a_key_held_by_a_running_request_is_409(client, admin, db):
    scope = KeyScope(tenant_id=admin.tenant_id, principal=f"user:{admin.id}", key="k-busy", route="", request_hash="")
    async with db.transaction():  # stands in for the first request, still inside its transaction
        assert await db.fetchval("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", scope.lock_text)
        response = await post(client, admin, BODY, key="k-busy")
        assert (response.status, (await response.json())["detail"]) == (409, "idempotency_request_in_progress")
        other_key = await post(client, admin, BODY, key="k-free")
        assert other_key.status == 201
    assert (await post(client, admin, BODY, key="k-busy")).status == 201
    assert await count_rows(db, admin) == 2


async def test_concurrent_duplicates_create_exactly_one_row(client, admin, db):
    responses = await asyncio.gather(*(post(client, admin, BODY, key="k-race") for _ in range(10)))
    statuses = [r.status for r in responses]
    assert set(statuses) <= {201, 409} and 201 in statuses
    created = [await r.json() for r in responses if r.status == 201]
    assert len({body["id"] for body in created}) == 1
    fresh = [r for r in responses if r.status == 201 and "Idempotent-Replayed" not in r.headers]
    assert len(fresh) == 1
    for r in responses:
        if r.status == 409:
            assert (await r.json())["detail"] == "idempotency_request_in_progress"
    assert await count_rows(db, admin) == 1


async def test_the_sweep_deletes_only_keys_older_than_24_hours(client, admin, db):
    for key in ("sweep-old", "sweep-new"):
        await post(client, admin, BODY, key=key)
    await db.execute("UPDATE idempotency_keys SET created_at = now() - interval '25 hours' "
                     "WHERE tenant_id = $1 AND key = 'sweep-old'", admin.tenant_id)
    deleted = await idempotency.sweep_expired(db, client.server.app[QUERIES])
    assert deleted >= 1
    keys = {r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys WHERE tenant_id = $1",
                                             admin.tenant_id)}
    assert keys == {"sweep-new"}


def test_the_body_hash_ignores_key_order_and_whitespace():
    assert body_hash({"a": 1, "b": [1, {"y": 2, "x": 1}]}) == body_hash({"b": [1, {"x": 1, "y": 2}], "a": 1})
    assert body_hash({"a": 1}) != body_hash({"a": 2})
    assert len(body_hash(None)) == 64
