"""2FA: setup → verify → two-step sign-in (token or credentials form) → disable."""

import asyncio
import time
import urllib.parse

import jwt
import pytest

from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import (PASSWORD, bearer, enable_totp, fresh_prefix, new_email, sign_in, totp_code,
                                       wrong_code)


async def _totp_token(client, email):
    response = await sign_in(client, email)
    assert response.status == 401
    body = await response.json()
    assert body["detail"] == "totp_required"
    return body["totp_token"]


async def _with_totp(client, make_user, **options):
    user = await make_user(password=PASSWORD, **options)
    secret = await enable_totp(client, user.headers)
    return user, secret


# --- setup and verify ----------------------------------------------------------------------------------


async def test_setup_stores_an_unconfirmed_secret_and_returns_the_otpauth_url(client, make_user, db):
    user = await make_user(email=new_email("ada+2fa"))  # "+" and "@" are percent-encoded in the label
    response = await client.post("/auth/totp/setup", headers=user.headers)
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"secret", "otpauth_url"}
    secret = body["secret"]
    assert len(secret) == 32 and set(secret) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
    assert body["otpauth_url"] == (f"otpauth://totp/Voyagent:{urllib.parse.quote(user.email, safe='')}"
                                   f"?secret={secret}&issuer=Voyagent")
    row = await db.fetchrow("SELECT totp_secret, totp_enabled FROM users WHERE id = $1", user.id)
    assert (row["totp_secret"], row["totp_enabled"]) == (secret, False)
    again = await (await client.post("/auth/totp/setup", headers=user.headers)).json()
    assert again["secret"] != secret  # an unconfirmed secret is replaced
    assert (await (await client.get("/auth/me", headers=user.headers)).json())["totp_enabled"] is False


async def test_verify_before_setup_is_400_totp_not_initialized(client, make_user):
    user = await make_user()
    response = await client.post("/auth/totp/verify", json={"code": "123456"}, headers=user.headers)
    assert response.status == 400 and await response.json() == {"detail": "totp_not_initialized"}


async def test_verify_switches_2fa_on_and_audits_it(client, make_user, db):
    user = await make_user()
    secret = (await (await client.post("/auth/totp/setup", headers=user.headers)).json())["secret"]
    for code in (wrong_code(secret), "abcdef", "12345a", "1234567"):
        response = await client.post("/auth/totp/verify", json={"code": code}, headers=user.headers)
        assert response.status == 401 and await response.json() == {"detail": "totp_invalid"}
    assert await db.fetchval("SELECT totp_enabled FROM users WHERE id = $1", user.id) is False

    code = totp_code(secret)
    response = await client.post("/auth/totp/verify", json={"code": f"{code[:3]} {code[3:]}"}, headers=user.headers)
    assert response.status == 200 and await response.json() == {"totp_enabled": True}
    assert (await (await client.get("/auth/me", headers=user.headers)).json())["totp_enabled"] is True
    events = await db.fetch("SELECT tool, actor_id, inputs FROM audit_events WHERE tenant_id = $1", user.tenant_id)
    assert [(e["tool"], e["actor_id"]) for e in events] == [("auth.totp_enabled", user.id)]

    # idempotent once on: the code is not even checked, and nothing is audited again
    again = await client.post("/auth/totp/verify", json={"code": "000000"}, headers=user.headers)
    assert again.status == 200 and await again.json() == {"totp_enabled": True}
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", user.tenant_id) == 1

    setup = await client.post("/auth/totp/setup", headers=user.headers)
    assert setup.status == 409 and await setup.json() == {"detail": "totp_already_enabled"}


@pytest.mark.parametrize(("steps", "accepted"), [(-1, True), (1, True), (-2, False), (3, False)])
async def test_codes_one_step_away_are_accepted(client, make_user, steps, accepted):
    user = await make_user()
    secret = (await (await client.post("/auth/totp/setup", headers=user.headers)).json())["secret"]
    response = await client.post("/auth/totp/verify", json={"code": totp_code(secret, steps)}, headers=user.headers)
    assert (response.status == 200) is accepted


@pytest.mark.parametrize(("payload", "loc", "type_"), [
    ({}, ["body", "code"], "missing"),
    ({"code": "12345"}, ["body", "code"], "string_too_short"),
    ({"code": "123456789"}, ["body", "code"], "string_too_long"),
    ({"code": 123456}, ["body", "code"], "string_type"),
    ({"code": "123456", "extra": 1}, ["body", "extra"], "extra_forbidden"),
])
async def test_malformed_verify_bodies_are_422(client, make_user, payload, loc, type_):
    user = await make_user()
    response = await client.post("/auth/totp/verify", json=payload, headers=user.headers)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, type_)]


# --- sign-in-totp --------------------------------------------------------------------------------------


async def test_token_form_signs_in_once(client, make_user, db):
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": totp_code(secret)})
    assert response.status == 200
    body = await response.json()
    assert body["user"]["totp_enabled"] is True and body["user"]["id"] == str(user.id)
    assert (await client.get("/auth/me", headers=bearer(body["access_token"]))).status == 200
    assert await db.fetchval("SELECT last_login_at IS NOT NULL FROM users WHERE id = $1", user.id)

    reuse = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": totp_code(secret)})
    assert reuse.status == 401 and await reuse.json() == {"detail": "invalid_totp_token"}


async def test_a_wrong_code_leaves_the_token_usable(client, make_user):
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    for code in (wrong_code(secret), "abcdef", "12 34 5"):
        response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": code})
        assert response.status == 401 and await response.json() == {"detail": "totp_invalid"}
    code = totp_code(secret)
    response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": f" {code} "})
    assert response.status == 200


async def test_concurrent_uses_of_one_token_sign_in_once(client, make_user):
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    payload = {"totp_token": token, "totp_code": totp_code(secret)}
    responses = await asyncio.gather(*(client.post("/auth/sign-in-totp", json=payload) for _ in range(4)))
    assert sorted(r.status for r in responses) == [200, 401, 401, 401]


def _forge(claims_changes, secret=TEST_SECRET, algorithm="HS256"):
    now = int(time.time())
    claims = {"sub": "00000000-0000-7000-8000-000000000000", "typ": "totp", "iat": now, "exp": now + 300,
              "jti": "f" * 32, "iss": "voyagent", "aud": "voyagent-totp", **claims_changes}
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, secret, algorithm=algorithm)


async def test_bad_intermediate_tokens_are_invalid_totp_token(client, make_user, db):
    user, secret = await _with_totp(client, make_user)
    sub = str(user.id)
    now = int(time.time())
    unsigned = jwt.encode({"sub": sub, "typ": "totp", "iat": now, "exp": now + 300, "jti": "a" * 32,
                           "iss": "voyagent", "aud": "voyagent-totp"}, None, algorithm="none")
    tokens = {
        "expired": _forge({"sub": sub, "iat": now - 400, "exp": now - 100}),
        "other secret": _forge({"sub": sub}, secret="another-secret-" + "y" * 40),
        "wrong audience": _forge({"sub": sub, "aud": "voyagent-api"}),
        "wrong typ": _forge({"sub": sub, "typ": "access"}),
        "no jti": _forge({"sub": sub, "jti": None}),
        "not a uuid": _forge({"sub": "user-1"}),
        "alg none": unsigned,
        "garbage": "not.a.jwt",
        "access token": user.token,
    }
    for name, token in tokens.items():
        response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": totp_code(secret)})
        assert response.status == 401, name
        assert await response.json() == {"detail": "invalid_totp_token"}, name

    token = await _totp_token(client, user.email)
    await db.execute("DELETE FROM users WHERE id = $1", user.id)
    gone = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": totp_code(secret)})
    assert gone.status == 401 and await gone.json() == {"detail": "invalid_totp_token"}


async def test_credentials_form_repeats_the_password_check(client, make_user):
    user, secret = await _with_totp(client, make_user)
    wrong = await client.post("/auth/sign-in-totp", json={"email": user.email, "password": "Wrong-passw0rd-1",
                                                          "totp_code": totp_code(secret)})
    assert wrong.status == 401 and await wrong.json() == {"detail": "invalid_credentials"}
    bad_code = await client.post("/auth/sign-in-totp", json={"email": user.email, "password": PASSWORD,
                                                             "totp_code": wrong_code(secret)})
    assert bad_code.status == 401 and await bad_code.json() == {"detail": "totp_invalid"}
    ok = await client.post("/auth/sign-in-totp", json={"email": user.email.upper(), "password": PASSWORD,
                                                       "totp_code": totp_code(secret)})
    assert ok.status == 200


async def test_unverified_users_and_users_without_2fa_are_refused_in_order(client, make_user, db):
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    await db.execute("UPDATE users SET email_verified = false WHERE id = $1", user.id)
    response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": wrong_code(secret)})
    assert response.status == 401 and await response.json() == {"detail": "email_not_verified"}

    plain = await make_user(password=PASSWORD)
    response = await client.post("/auth/sign-in-totp", json={"email": plain.email, "password": PASSWORD,
                                                             "totp_code": "123456"})
    assert response.status == 400 and await response.json() == {"detail": "totp_not_enabled"}


@pytest.mark.parametrize("payload", [
    {"totp_code": "123456"},
    {"email": "a@example.com", "totp_code": "123456"},
    {"totp_token": "t", "email": "a@example.com", "password": "p", "totp_code": "123456"},
    {"totp_token": "t", "password": "p", "totp_code": "123456"},
])
async def test_neither_or_both_forms_is_422_credentials_required(client, payload):
    response = await client.post("/auth/sign-in-totp", json=payload)
    assert response.status == 422
    assert (await response.json())["detail"] == [
        {**(await response.json())["detail"][0], "loc": ["body"], "type": "value_error"}]
    assert (await response.json())["detail"][0]["msg"] == "Value error, credentials_required"


@pytest.mark.parametrize(("payload", "loc", "type_"), [
    ({"totp_token": "t"}, ["body", "totp_code"], "missing"),
    ({"totp_token": "t", "totp_code": "12345"}, ["body", "totp_code"], "string_too_short"),
    ({"totp_token": "t" * 2049, "totp_code": "123456"}, ["body", "totp_token"], "string_too_long"),
    ({"totp_token": "t", "totp_code": "123456", "remember": True}, ["body", "remember"], "extra_forbidden"),
])
async def test_malformed_sign_in_totp_bodies_are_422(client, payload, loc, type_):
    response = await client.post("/auth/sign-in-totp", json=payload)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, type_)]


@pytest.mark.redis
async def test_a_spent_intermediate_token_is_spent_on_every_worker(make_client, make_user, redis_url,
                                                                   settings):
    prefix = fresh_prefix(settings)
    worker_a = await make_client(redis_url=redis_url, redis_prefix=prefix)
    worker_b = await make_client(redis_url=redis_url, redis_prefix=prefix)
    user, secret = await _with_totp(worker_a, make_user)
    token = await _totp_token(worker_a, user.email)
    payload = {"totp_token": token, "totp_code": totp_code(secret)}
    assert (await worker_a.post("/auth/sign-in-totp", json=payload)).status == 200
    response = await worker_b.post("/auth/sign-in-totp", json=payload)
    assert response.status == 401 and await response.json() == {"detail": "invalid_totp_token"}


async def test_spending_the_token_with_redis_down_is_503(make_client, make_user):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": totp_code(secret)})
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}


# --- disable -------------------------------------------------------------------------------------------


async def test_disable_checks_password_then_state_then_code(client, make_user, db):
    user, secret = await _with_totp(client, make_user)
    wrong_password = await client.post("/auth/totp/disable", json={"password": "nope", "code": totp_code(secret)},
                                       headers=user.headers)
    assert wrong_password.status == 403 and await wrong_password.json() == {"detail": "invalid_password"}
    wrong = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": wrong_code(secret)},
                              headers=user.headers)
    assert wrong.status == 403 and await wrong.json() == {"detail": "totp_invalid"}
    letters = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": "abcdef"},
                                headers=user.headers)
    assert letters.status == 403 and await letters.json() == {"detail": "totp_invalid"}
    assert await db.fetchval("SELECT totp_enabled FROM users WHERE id = $1", user.id) is True

    ok = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": totp_code(secret)},
                           headers=user.headers)
    assert ok.status == 200 and await ok.json() == {"totp_enabled": False}
    row = await db.fetchrow("SELECT totp_enabled, totp_secret FROM users WHERE id = $1", user.id)
    assert (row["totp_enabled"], row["totp_secret"]) == (False, None)
    kinds = await db.fetch("SELECT tool FROM audit_events WHERE tenant_id = $1 ORDER BY started_at", user.tenant_id)
    assert [k["tool"] for k in kinds] == ["auth.totp_enabled", "auth.totp_disabled"]
    assert (await sign_in(client, user.email)).status == 200  # no second step any more


async def test_disable_when_off_is_200_without_checking_the_code(client, make_user, db):
    user = await make_user(password=PASSWORD)
    response = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": "000000"},
                                 headers=user.headers)
    assert response.status == 200 and await response.json() == {"totp_enabled": False}
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1", user.tenant_id) == 0
    wrong_password = await client.post("/auth/totp/disable", json={"password": "nope", "code": "000000"},
                                       headers=user.headers)
    assert wrong_password.status == 403 and await wrong_password.json() == {"detail": "invalid_password"}


@pytest.mark.parametrize(("payload", "loc", "type_"), [
    ({"password": PASSWORD}, ["body", "code"], "missing"),
    ({"code": "123456"}, ["body", "password"], "missing"),
    ({"password": "", "code": "123456"}, ["body", "password"], "string_too_short"),
    ({"password": PASSWORD, "code": "123456", "x": 1}, ["body", "x"], "extra_forbidden"),
])
async def test_malformed_disable_bodies_are_422(client, make_user, payload, loc, type_):
    user = await make_user(password=PASSWORD)
    response = await client.post("/auth/totp/disable", json=payload, headers=user.headers)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, type_)]


async def test_totp_routes_refuse_api_keys(client, admin, make_api_key):
    key = await make_api_key(admin, ["full"])
    for path in ("/auth/totp/setup", "/auth/totp/verify", "/auth/totp/disable"):
        response = await client.post(path, json={}, headers=key.headers)
        assert response.status == 403 and await response.json() == {"detail": "api_key_not_allowed"}
