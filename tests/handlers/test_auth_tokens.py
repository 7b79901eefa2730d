"""POST /auth/refresh (rotation, reuse detection) and POST /auth/sign-out (always 204, revocations)."""

import asyncio
import hashlib

import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import PASSWORD, bearer, fresh_prefix, sign_in, sign_up


async def _pair(client, make_user, **user_options):
    user = await make_user(password=PASSWORD, **user_options)
    response = await sign_in(client, user.email)
    assert response.status == 200
    return user, await response.json()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def _refresh(client, token):
    return await client.post("/auth/refresh", json={"refresh_token": token})


# --- refresh -------------------------------------------------------------------------------------------


async def test_refresh_rotates_the_token_within_its_family(client, make_user, db):
    user, pair = await _pair(client, make_user)
    response = await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]},
                                 headers={"User-Agent": "voyagent-tests/1.0"})
    assert response.status == 200
    new = await response.json()
    assert set(new) == {"access_token", "refresh_token", "expires_in"} and new["expires_in"] == 3600
    assert new["refresh_token"] != pair["refresh_token"]
    assert "RateLimit-Limit" not in response.headers  # refresh is not rate limited

    old = await db.fetchrow("SELECT family_id, revoked_at, revoke_reason FROM auth_refresh_tokens "
                            "WHERE token_hash = $1", _digest(pair["refresh_token"]))
    fresh = await db.fetchrow("SELECT family_id, revoked_at, user_agent, ip FROM auth_refresh_tokens "
                              "WHERE token_hash = $1", _digest(new["refresh_token"]))
    assert old["revoke_reason"] == "rotated" and old["revoked_at"] is not None
    assert fresh["family_id"] == old["family_id"] and fresh["revoked_at"] is None
    assert fresh["user_agent"] == "voyagent-tests/1.0" and fresh["ip"] == "127.0.0.1"
    assert (await client.get("/auth/me", headers=bearer(new["access_token"]))).status == 200


async def test_the_new_access_token_carries_the_current_role_and_email(client, make_user, db):
    user, pair = await _pair(client, make_user, role="agent")
    await db.execute("UPDATE users SET role = 'viewer', email = 'renamed-' || email WHERE id = $1", user.id)
    new = await (await _refresh(client, pair["refresh_token"])).json()
    claims = jwt.decode(new["access_token"], TEST_SECRET, algorithms=["HS256"], audience="voyagent-api")
    assert claims["role"] == "viewer" and claims["email"] == "renamed-" + user.email


async def test_reusing_a_rotated_token_revokes_the_whole_family(client, make_user, db):
    user, pair = await _pair(client, make_user)
    other_session = await (await sign_in(client, user.email)).json()
    second = await (await _refresh(client, pair["refresh_token"])).json()
    third = await (await _refresh(client, second["refresh_token"])).json()

    replay = await _refresh(client, pair["refresh_token"])
    assert replay.status == 401 and await replay.json() == {"detail": "invalid_refresh_token"}
    reason = await db.fetchval("SELECT revoke_reason FROM auth_refresh_tokens WHERE token_hash = $1",
                               _digest(third["refresh_token"]))
    assert reason == "reuse_detected"
    assert (await _refresh(client, third["refresh_token"])).status == 401
    # another sign-in is another family and is untouched
    assert (await _refresh(client, other_session["refresh_token"])).status == 200


async def test_concurrent_refreshes_of_one_token_let_at_most_one_win_and_then_revoke_the_family(client, make_user):
    _, pair = await _pair(client, make_user)
    responses = await asyncio.gather(*(_refresh(client, pair["refresh_token"]) for _ in range(3)))
    statuses = sorted(r.status for r in responses)
    assert statuses.count(200) <= 1 and statuses.count(401) >= 2
    for response in responses:
        if response.status == 200:  # the winner's token fell with its family
            assert (await _refresh(client, (await response.json())["refresh_token"])).status == 401


async def test_unknown_expired_and_signed_out_tokens_are_invalid(client, make_user, db):
    _, pair = await _pair(client, make_user)
    unknown = await _refresh(client, "A" * 43)
    assert unknown.status == 401 and await unknown.json() == {"detail": "invalid_refresh_token"}

    _, expiring = await _pair(client, make_user)
    await db.execute("UPDATE auth_refresh_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = $1",
                     _digest(expiring["refresh_token"]))
    assert (await _refresh(client, expiring["refresh_token"])).status == 401

    await client.post("/auth/sign-out", json={"refresh_token": pair["refresh_token"]})
    assert (await _refresh(client, pair["refresh_token"])).status == 401
    reason = await db.fetchval("SELECT revoke_reason FROM auth_refresh_tokens WHERE token_hash = $1",
                               _digest(pair["refresh_token"]))
    assert reason == "signed_out"  # not a reuse: nothing else was revoked


async def test_a_deleted_user_can_no_longer_refresh(client, make_user, db):
    user, pair = await _pair(client, make_user)
    await db.execute("DELETE FROM users WHERE id = $1", user.id)
    assert (await _refresh(client, pair["refresh_token"])).status == 401


async def test_refresh_works_for_an_unverified_user(client, make_user, db):
    body = await sign_up(client)
    assert body["user"]["email_verified"] is False
    assert (await _refresh(client, body["refresh_token"])).status == 200


@pytest.mark.parametrize("payload", [{}, {"refresh_token": ""}, {"refresh_token": 42}, {"refresh_token": None}])
async def test_a_malformed_refresh_body_is_422(client, payload):
    response = await client.post("/auth/refresh", json=payload)
    assert response.status == 422
    assert (await response.json())["detail"][0]["loc"] == ["body", "refresh_token"]


# --- sign-out ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", [
    {},
    {"json": {}},
    {"json": {"refresh_token": None}},
    {"json": {"refresh_token": "never-issued"}},
    {"headers": {"Authorization": "Bearer not-a-jwt"}},
    {"headers": {"Authorization": "Basic dXNlcjpwdw=="}},
    {"json": {"refresh_token": "x", "unknown": 1}},
])
async def test_sign_out_always_answers_204(client, kwargs):
    response = await client.post("/auth/sign-out", **kwargs)
    assert response.status == 204
    assert await response.read() == b""


async def test_sign_out_revokes_the_refresh_token_and_the_access_token(client, make_user, db):
    user, pair = await _pair(client, make_user)
    _, other = await _pair(client, make_user)
    response = await client.post("/auth/sign-out", json={"refresh_token": pair["refresh_token"]},
                                 headers=bearer(pair["access_token"]))
    assert response.status == 204
    me = await client.get("/auth/me", headers=bearer(pair["access_token"]))
    assert me.status == 401 and me.headers["WWW-Authenticate"] == "Bearer"
    assert (await _refresh(client, pair["refresh_token"])).status == 401
    # the fixture's own token of the same user and another user's session are untouched
    assert (await client.get("/auth/me", headers=user.headers)).status == 200
    assert (await client.get("/auth/me", headers=bearer(other["access_token"]))).status == 200


async def test_sign_out_never_revokes_an_api_key(client, admin, make_api_key):
    key = await make_api_key(admin, ["tenant:read"])
    assert (await client.post("/auth/sign-out", headers=key.headers)).status == 204
    still_valid = await client.get("/auth/me", headers=key.headers)  # authenticated, then refused as a key
    assert still_valid.status == 403 and await still_valid.json() == {"detail": "api_key_not_allowed"}


async def test_a_malformed_sign_out_body_is_422(client):
    response = await client.post("/auth/sign-out", json={"refresh_token": 5})
    assert response.status == 422


@pytest.mark.redis
async def test_a_sign_out_is_seen_at_once_by_every_worker(make_client, make_user, redis_url, settings):
    prefix = fresh_prefix(settings)
    worker_a = await make_client(redis_url=redis_url, redis_prefix=prefix)
    worker_b = await make_client(redis_url=redis_url, redis_prefix=prefix)
    _, pair = await _pair(worker_a, make_user)
    assert (await worker_b.get("/auth/me", headers=bearer(pair["access_token"]))).status == 200
    assert (await worker_a.post("/auth/sign-out", headers=bearer(pair["access_token"]))).status == 204
    assert (await worker_b.get("/auth/me", headers=bearer(pair["access_token"]))).status == 401


async def test_sign_out_with_redis_down_still_answers_204_and_revokes_the_refresh_token(make_client, make_user):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    _, pair = await _pair(client, make_user)
    response = await client.post("/auth/sign-out", json={"refresh_token": pair["refresh_token"]},
                                 headers=bearer(pair["access_token"]))
    assert response.status == 204
    assert (await _refresh(client, pair["refresh_token"])).status == 401
