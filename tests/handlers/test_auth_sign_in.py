"""POST /auth/sign-in: the checks in order, equal answers and timing for every credential failure, re-hashing."""

import jwt
import pytest

from tests.argon2_spy import RecordingHasher, argon2_parameters
from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import PASSWORD, bearer, enable_totp, new_email, sign_in, sign_up
from voyagent.keys import PASSWORDS

INVALID = {"detail": "invalid_credentials"}


async def test_sign_in_returns_a_new_pair_and_records_the_login(client, make_user, db):
    user = await make_user("agent", password=PASSWORD)
    response = await sign_in(client, user.email.upper())
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"access_token", "refresh_token", "expires_in", "user"}
    assert body["user"]["id"] == str(user.id) and body["user"]["role"] == "agent"
    assert body["user"]["tenant_name"] == "Test Agency"
    assert await db.fetchval("SELECT last_login_at > now() - interval '1 minute' FROM users WHERE id = $1", user.id)
    me = await client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status == 200


async def test_each_sign_in_starts_its_own_family_and_earlier_pairs_stay_valid(client, make_user, db):
    user = await make_user(password=PASSWORD)
    first = await (await sign_in(client, user.email)).json()
    second = await (await sign_in(client, user.email)).json()
    families = await db.fetchval("SELECT count(DISTINCT family_id) FROM auth_refresh_tokens WHERE user_id = $1",
                                 user.id)
    assert families == 2
    for pair in (first, second):
        assert (await client.get("/auth/me", headers=bearer(pair["access_token"]))).status == 200
        assert (await client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]})).status == 200


async def test_unknown_email_wrong_password_and_no_password_get_the_same_answer(client, make_user, db):
    user = await make_user(password=PASSWORD)
    passwordless = await make_user()
    attempts = [(new_email("nobody"), PASSWORD), (user.email, PASSWORD + "x"), (passwordless.email, PASSWORD)]
    for email, password in attempts:
        response = await sign_in(client, email, password)
        assert response.status == 401
        assert await response.json() == INVALID
        assert "WWW-Authenticate" not in response.headers
    assert await db.fetchval("SELECT last_login_at FROM users WHERE id = $1", user.id) is None
    assert await db.fetchval("SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1", user.id) == 0


async def test_an_unknown_email_costs_as_much_as_a_wrong_password(client):
    # The same work: one Argon2 verify at the same cost (the timing itself: bench/timing_bench.py).
    email = new_email()
    await sign_up(client, email=email)
    spy = client.app[PASSWORDS].hasher = RecordingHasher(client.app[PASSWORDS].hasher)
    for address in (email, new_email("nobody")):
        response = await sign_in(client, address, "Wrong-passw0rd-1")
        assert response.status == 401 and await response.json() == INVALID
    [(known, _), (unknown, _)] = spy.verified
    assert unknown != known and argon2_parameters(unknown) == argon2_parameters(known)


async def test_a_right_password_for_an_unverified_user_is_email_not_verified(client, make_user):
    user = await make_user(password=PASSWORD, verified=False)
    response = await sign_in(client, user.email)
    assert response.status == 401 and await response.json() == {"detail": "email_not_verified"}
    wrong = await sign_in(client, user.email, "Wrong-passw0rd-1")
    assert await wrong.json() == INVALID  # the password is checked first


async def test_a_user_with_2fa_gets_totp_required_and_an_intermediate_token(client, make_user, db):
    user = await make_user(password=PASSWORD)
    await enable_totp(client, user.headers)
    response = await sign_in(client, user.email)
    assert response.status == 401
    body = await response.json()
    assert set(body) == {"detail", "totp_token"} and body["detail"] == "totp_required"
    claims = jwt.decode(body["totp_token"], TEST_SECRET, algorithms=["HS256"], audience="voyagent-totp")
    assert claims["sub"] == str(user.id) and claims["typ"] == "totp" and claims["iss"] == "voyagent"
    assert claims["exp"] - claims["iat"] == 300 and len(claims["jti"]) == 32
    assert await db.fetchval("SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1", user.id) == 0
    # it is not an access token
    assert (await client.get("/auth/me", headers=bearer(body["totp_token"]))).status == 401


async def test_a_hash_with_old_parameters_is_upgraded_at_the_next_successful_sign_in(make_client, make_user, db):
    user = await make_user(password=PASSWORD)  # hashed with t=1
    client = await make_client(argon2_time_cost=2)
    assert (await sign_in(client, user.email, "Wrong-passw0rd-1")).status == 401
    assert "t=1," in await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
    assert (await sign_in(client, user.email)).status == 200
    upgraded = await db.fetchval("SELECT password_hash FROM users WHERE id = $1", user.id)
    assert upgraded.startswith("$argon2id$v=19$m=8192,t=2,p=1$")
    assert (await sign_in(client, user.email)).status == 200  # the new hash verifies


async def test_an_authorization_header_is_ignored_on_sign_in(client, make_user):
    user = await make_user(password=PASSWORD)
    response = await client.post("/auth/sign-in", json={"email": user.email, "password": PASSWORD},
                                 headers={"Authorization": "Bearer garbage"})
    assert response.status == 200


async def test_unknown_fields_are_ignored(client, make_user):
    user = await make_user(password=PASSWORD)
    response = await client.post("/auth/sign-in", json={"email": user.email, "password": PASSWORD, "remember": True})
    assert response.status == 200


@pytest.mark.parametrize(("payload", "loc", "type_"), [
    ({"email": "a@example.com"}, ["body", "password"], "missing"),
    ({"password": PASSWORD}, ["body", "email"], "missing"),
    ({"email": "a@example.com", "password": ""}, ["body", "password"], "string_too_short"),
    ({"email": "a@example.com", "password": "p" * 257}, ["body", "password"], "string_too_long"),
    ({"email": "a@example.com", "password": 12345}, ["body", "password"], "string_type"),
    ({"email": "nope", "password": PASSWORD}, ["body", "email"], "value_error"),
    ({"email": "a@example.com", "password": "pass\x00word"}, ["body", "password"], "value_error"),
])
async def test_malformed_bodies_are_422(client, payload, loc, type_):
    response = await client.post("/auth/sign-in", json=payload)
    assert response.status == 422
    items = (await response.json())["detail"]
    assert [(i["loc"], i["type"]) for i in items] == [(loc, type_)]
