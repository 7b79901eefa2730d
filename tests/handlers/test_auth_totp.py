"""2FA: setup → verify → two-step sign-in (token or credentials form) → disable; single-use codes, the fifth
wrong code burning an intermediate token, and the credential e-mail bucket on the token form."""

import asyncio
import collections
import math
import time
import urllib.parse

import jwt
import pytest
import redis.asyncio as aioredis

from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import (PASSWORD, bearer, code_at, current_step, enable_totp, fresh_prefix,
                                       new_email, sign_in, totp_code, wrong_code)

TOTP_INVALID = {"detail": "totp_invalid"}
INVALID_TOKEN = {"detail": "invalid_totp_token"}
NO_BUCKETS = {"rate_limit_auth_ip_per_minute": 0, "rate_limit_auth_email_per_minute": 0}


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


# --- single-use codes (auth.md; users.totp_last_step) ---------------------------------------------------


async def _last_step(db, user):
    return await db.fetchval("SELECT totp_last_step FROM users WHERE id = $1", user.id)


def _wrong_codes(secret, count):
    """``count`` distinct well-formed codes that match none of the accepted steps."""
    near = {totp_code(secret, s) for s in (-2, -1, 0, 1, 2)}
    return [c for c in (f"{n:06d}" for n in range(count + len(near))) if c not in near][:count]


async def _token_form(client, token, code):
    response = await client.post("/auth/sign-in-totp", json={"totp_token": token, "totp_code": code})
    return response, await response.json()


async def test_verify_stores_the_step_and_refuses_one_not_later_than_the_last(client, make_user, db):
    user = await make_user()
    secret = (await (await client.post("/auth/totp/setup", headers=user.headers)).json())["secret"]
    assert await _last_step(db, user) is None
    step = current_step()
    await db.execute("UPDATE users SET totp_last_step = $2 WHERE id = $1", user.id, step)  # a code of `step` was used
    for replayed in (code_at(secret, step), code_at(secret, step - 1)):
        response = await client.post("/auth/totp/verify", json={"code": replayed}, headers=user.headers)
        assert response.status == 401 and await response.json() == TOTP_INVALID
    assert await db.fetchval("SELECT totp_enabled FROM users WHERE id = $1", user.id) is False
    response = await client.post("/auth/totp/verify", json={"code": code_at(secret, step + 1)}, headers=user.headers)
    assert response.status == 200
    assert await _last_step(db, user) == step + 1


async def test_setup_clears_the_last_step(client, make_user, db):
    user = await make_user()
    assert (await client.post("/auth/totp/setup", headers=user.headers)).status == 200
    await db.execute("UPDATE users SET totp_last_step = 42 WHERE id = $1", user.id)
    assert (await client.post("/auth/totp/setup", headers=user.headers)).status == 200
    assert await _last_step(db, user) is None


async def test_the_code_that_confirmed_2fa_is_refused_at_sign_in_and_disable(client, make_user, db):
    user = await make_user(password=PASSWORD)
    secret = (await (await client.post("/auth/totp/setup", headers=user.headers)).json())["secret"]
    code = totp_code(secret)
    assert (await client.post("/auth/totp/verify", json={"code": code}, headers=user.headers)).status == 200
    confirmed_step = await _last_step(db, user)

    token = await _totp_token(client, user.email)
    response, body = await _token_form(client, token, code)
    assert response.status == 401 and body == TOTP_INVALID
    credentials = await client.post("/auth/sign-in-totp", json={"email": user.email, "password": PASSWORD,
                                                                "totp_code": f"{code[:3]} {code[3:]}"})
    assert credentials.status == 401 and await credentials.json() == TOTP_INVALID
    disable = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": code}, headers=user.headers)
    assert disable.status == 403 and await disable.json() == TOTP_INVALID
    assert await _last_step(db, user) == confirmed_step

    response, _ = await _token_form(client, token, totp_code(secret, 1))  # a later code; the token is still good
    assert response.status == 200
    assert await _last_step(db, user) > confirmed_step


async def test_a_code_used_at_sign_in_is_refused_at_every_route(client, make_user, db):
    user, secret = await _with_totp(client, make_user)
    code = totp_code(secret)
    response, _ = await _token_form(client, await _totp_token(client, user.email), code)
    assert response.status == 200
    used_step = await _last_step(db, user)

    token = await _totp_token(client, user.email)
    response, body = await _token_form(client, token, code)
    assert response.status == 401 and body == TOTP_INVALID
    credentials = await client.post("/auth/sign-in-totp", json={"email": user.email, "password": PASSWORD,
                                                                "totp_code": code})
    assert credentials.status == 401 and await credentials.json() == TOTP_INVALID
    disable = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": code}, headers=user.headers)
    assert disable.status == 403 and await disable.json() == TOTP_INVALID
    row = await db.fetchrow("SELECT totp_enabled, totp_last_step FROM users WHERE id = $1", user.id)
    assert (row["totp_enabled"], row["totp_last_step"]) == (True, used_step)

    later = totp_code(secret, 1)
    disable = await client.post("/auth/totp/disable", json={"password": PASSWORD, "code": later}, headers=user.headers)
    assert disable.status == 200
    row = await db.fetchrow("SELECT totp_enabled, totp_secret, totp_last_step FROM users WHERE id = $1", user.id)
    assert tuple(row) == (False, None, None)


async def test_concurrent_requests_with_one_code_succeed_at_most_once(make_client, make_user, db):
    client = await make_client(**NO_BUCKETS)
    user, secret = await _with_totp(client, make_user)
    tokens = [await _totp_token(client, user.email) for _ in range(6)]
    code = totp_code(secret)
    requests = [client.post("/auth/sign-in-totp", json={"totp_token": t, "totp_code": code}) for t in tokens]
    requests += [client.post("/auth/sign-in-totp", json={"email": user.email, "password": PASSWORD,
                                                         "totp_code": code}) for _ in range(3)]
    requests.append(client.post("/auth/totp/disable", json={"password": PASSWORD, "code": code},
                                headers=user.headers))
    responses = await asyncio.gather(*requests)
    outcomes = [(r.status, await r.json()) for r in responses]
    assert [status for status, _ in outcomes].count(200) == 1, outcomes
    # the others lost: a wrong code, or (once the disable won) 2FA is off
    assert all(o in {(401, "totp_invalid"), (403, "totp_invalid"), (400, "totp_not_enabled")}
               for o in [(status, body.get("detail")) for status, body in outcomes if status != 200]), outcomes
    signed_in = await db.fetchval("SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1", user.id)
    disabled = await db.fetchval("SELECT count(*) FROM audit_events WHERE actor_id = $1 AND tool = 'auth.totp_disabled'",
                                 user.id)
    assert signed_in + disabled == 1


# --- the fifth wrong code burns the intermediate token -------------------------------------------------


async def _token_after_wrong_codes(make_client, make_user, count):
    """A client without credential buckets, a 2FA user and an intermediate token that was presented with ``count``
    wrong codes (well-formed ones, letters, digits spaced out to fewer than six), each answered totp_invalid."""
    client = await make_client(**NO_BUCKETS)
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    for code in (*_wrong_codes(secret, count - 2), "abcdef", "1234 5 ")[:count]:
        response, body = await _token_form(client, token, code)
        assert response.status == 401 and body == TOTP_INVALID
    return client, user, secret, token


async def test_four_wrong_codes_leave_the_token_usable(make_client, make_user):
    client, _, secret, token = await _token_after_wrong_codes(make_client, make_user, 4)
    response, _ = await _token_form(client, token, totp_code(secret))
    assert response.status == 200


async def test_the_fifth_wrong_code_burns_the_token(make_client, make_user):
    client, user, secret, token = await _token_after_wrong_codes(make_client, make_user, 5)  # the fifth: totp_invalid
    for code in (totp_code(secret), _wrong_codes(secret, 1)[0]):
        response, body = await _token_form(client, token, code)
        assert response.status == 401 and body == INVALID_TOKEN
    # the account is not locked: a new intermediate token with the right code signs in
    response, _ = await _token_form(client, await _totp_token(client, user.email), totp_code(secret))
    assert response.status == 200


async def test_a_hundred_wrong_codes_on_one_token_are_compared_five_times(make_client, make_user):
    client = await make_client(**NO_BUCKETS)
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    outcomes = []
    for code in _wrong_codes(secret, 100):
        response, body = await _token_form(client, token, code)
        outcomes.append((response.status, body["detail"]))
    assert outcomes == [(401, "totp_invalid")] * 5 + [(401, "invalid_totp_token")] * 95
    response, body = await _token_form(client, token, totp_code(secret))
    assert response.status == 401 and body == INVALID_TOKEN


async def test_a_hundred_concurrent_wrong_codes_on_one_token_are_compared_five_times(make_client, make_user):
    client = await make_client(**NO_BUCKETS)
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    results = await asyncio.gather(*(_token_form(client, token, code) for code in _wrong_codes(secret, 100)))
    outcomes = collections.Counter((response.status, body["detail"]) for response, body in results)
    assert outcomes == {(401, "totp_invalid"): 5, (401, "invalid_totp_token"): 95}


async def test_a_hundred_wrong_codes_with_the_default_buckets_never_sign_in(client, make_user):
    """An attacker who knows the password: re-signs in whenever a token is burned, and never gets through."""
    user, secret = await _with_totp(client, make_user)
    started = time.monotonic()
    token, outcomes = None, collections.Counter()
    for code in _wrong_codes(secret, 100):
        if token is None:
            signed_in = await sign_in(client, user.email)
            body = await signed_in.json()
            assert (signed_in.status, body["detail"]) in {(401, "totp_required"), (429, "rate_limited")}
            token = body.get("totp_token") or "refused-sign-in"
        response, body = await _token_form(client, token, code)
        outcome = (response.status, body["detail"])
        outcomes[outcome] += 1
        if outcome == (401, "invalid_totp_token"):
            token = None
        if response.status == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.headers["RateLimit-Policy"] in {'"auth_email";q=10;w=60', '"auth_ip";q=30;w=60'}
    assert set(outcomes) <= {(401, "totp_invalid"), (401, "invalid_totp_token"), (429, "rate_limited")}, outcomes
    # every compared code took a token from the e-mail bucket (10 a minute), as did each sign-in; every answer
    # other than a 429 took one from the IP bucket (30 a minute)
    elapsed = time.monotonic() - started
    assert 1 <= outcomes[(401, "totp_invalid")] <= 10 + math.ceil(elapsed * 10 / 60)
    assert outcomes[(429, "rate_limited")] >= 100 - 30 - math.ceil(elapsed * 30 / 60)


@pytest.mark.redis
async def test_with_redis_wrong_codes_are_counted_across_workers_until_the_token_expires(make_client, make_user,
                                                                                       redis_url, settings):
    prefix = fresh_prefix(settings)
    options = {"redis_url": redis_url, "redis_prefix": prefix, **NO_BUCKETS}
    worker_a, worker_b = await make_client(**options), await make_client(**options)
    user, secret = await _with_totp(worker_a, make_user)
    token = await _totp_token(worker_a, user.email)
    claims = jwt.decode(token, options={"verify_signature": False})
    codes = _wrong_codes(secret, 6)
    for worker, code in zip((worker_a, worker_b, worker_a, worker_b), codes):
        response, body = await _token_form(worker, token, code)
        assert response.status == 401 and body == TOTP_INVALID
    redis = aioredis.from_url(redis_url)
    try:
        key = f"{prefix}totp_fail:{claims['jti']}"
        assert int(await redis.get(key)) == 4
        assert await redis.expiretime(key) == claims["exp"]
        response, body = await _token_form(worker_a, token, codes[4])
        assert response.status == 401 and body == TOTP_INVALID  # the fifth, on the other worker: burned
        assert await redis.expiretime(f"{prefix}revoked_jti:{claims['jti']}") == claims["exp"]
    finally:
        await redis.aclose()
    response, body = await _token_form(worker_b, token, totp_code(secret))
    assert response.status == 401 and body == INVALID_TOKEN


@pytest.mark.redis
async def test_with_redis_concurrent_wrong_codes_on_two_workers_are_compared_five_times(make_client, make_user,
                                                                                      redis_url, settings):
    prefix = fresh_prefix(settings)
    options = {"redis_url": redis_url, "redis_prefix": prefix, **NO_BUCKETS}
    workers = [await make_client(**options), await make_client(**options)]
    user, secret = await _with_totp(workers[0], make_user)
    token = await _totp_token(workers[0], user.email)
    results = await asyncio.gather(*(_token_form(workers[i % 2], token, code)
                                     for i, code in enumerate(_wrong_codes(secret, 100))))
    outcomes = collections.Counter((response.status, body["detail"]) for response, body in results)
    assert outcomes == {(401, "totp_invalid"): 5, (401, "invalid_totp_token"): 95}


async def test_counting_a_wrong_code_with_redis_down_is_503(make_client, make_user):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)
    response, body = await _token_form(client, token, _wrong_codes(secret, 1)[0])
    assert response.status == 503 and body == {"detail": "redis_unreachable"}


# --- the credential e-mail bucket on the token form ----------------------------------------------------


async def test_the_token_form_takes_an_email_token_once_the_token_verified(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=0, rate_limit_auth_email_per_minute=4)
    user, secret = await _with_totp(client, make_user)
    first = await _totp_token(client, user.email)  # sign-in: e-mail 4 → 3
    second = await _totp_token(client, user.email)  # → 2
    for bad in ("not.a.jwt", _forge({"sub": str(user.id)}, secret="another-secret-" + "y" * 40)):
        response, body = await _token_form(client, bad, totp_code(secret))
        assert response.status == 401 and body == INVALID_TOKEN
        assert "RateLimit-Limit" not in response.headers  # no e-mail token taken (and the IP bucket is off)
    response, body = await _token_form(client, first, _wrong_codes(secret, 1)[0])  # → 1
    assert response.status == 401 and body == TOTP_INVALID
    assert response.headers["RateLimit"].startswith('"auth_email";r=1;')
    response, _ = await _token_form(client, first, totp_code(secret))  # → 0
    assert response.status == 200 and response.headers["RateLimit"].startswith('"auth_email";r=0;')

    refused, body = await _token_form(client, second, totp_code(secret, 1))
    assert refused.status == 429 and body == {"detail": "rate_limited"}
    assert refused.headers["RateLimit-Policy"] == '"auth_email";q=4;w=60'
    assert int(refused.headers["Retry-After"]) >= 1
    # the same e-mail bucket as sign-in's
    assert (await sign_in(client, user.email)).status == 429


async def test_an_email_refusal_on_the_token_form_gives_the_ip_token_back(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=5, rate_limit_auth_email_per_minute=1)
    user, secret = await _with_totp(client, make_user)
    token = await _totp_token(client, user.email)  # IP 5 → 4, e-mail 1 → 0
    refused, _ = await _token_form(client, token, totp_code(secret))
    assert refused.status == 429 and refused.headers["RateLimit-Policy"] == '"auth_email";q=1;w=60'
    invalid, body = await _token_form(client, "not.a.jwt", totp_code(secret))
    assert invalid.status == 401 and body == INVALID_TOKEN
    assert invalid.headers["RateLimit-Policy"] == '"auth_ip";q=5;w=60'
    assert invalid.headers["RateLimit-Remaining"] == "3"  # would be 2 had the refused request kept its IP token
