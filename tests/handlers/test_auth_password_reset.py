"""POST /auth/request-password-reset and POST /auth/reset-password."""

import re

import pytest
import redis.asyncio as aioredis

from tests.conftest import drain_background
from tests.handlers.auth_flows import PASSWORD, bearer, fresh_prefix, new_email, sign_in
from voyagent.keys import MAILER

NEW_PASSWORD = "Brand-new-passw0rd-7"
QUEUED = {"queued": True, "debug_token": None}


async def _request(client, email):
    return await client.post("/auth/request-password-reset", json={"email": email})


async def _reset(client, token, password=NEW_PASSWORD):
    return await client.post("/auth/reset-password", json={"token": token, "new_password": password})


async def test_the_mailed_token_resets_the_password_and_ends_every_session(make_client, make_user, smtp_sink, db):
    client = await make_client(smtp_url=smtp_sink.url)
    user = await make_user(password=PASSWORD)
    session = await (await sign_in(client, user.email)).json()

    response = await _request(client, user.email.upper())
    assert response.status == 200 and await response.json() == QUEUED
    mail = await smtp_sink.wait_for(user.email)
    assert mail.message["Subject"] == "Reset your Voyagent password"
    assert re.fullmatch(r"http://localhost:3000/reset-password\?token=[A-Za-z0-9_-]{43}", mail.link())
    assert "1 hour" in mail.text

    reset = await _reset(client, mail.token())
    assert reset.status == 200 and await reset.json() == {"reset": True}
    assert (await sign_in(client, user.email)).status == 401
    assert (await sign_in(client, user.email, NEW_PASSWORD)).status == 200
    # refresh tokens issued before the reset are revoked; the access token lives until it expires
    refresh = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status == 401
    assert await db.fetchval("SELECT count(*) FROM auth_refresh_tokens WHERE user_id = $1 "
                             "AND revoke_reason = 'password_reset'", user.id) == 1
    assert (await client.get("/auth/me", headers=bearer(session["access_token"]))).status == 200
    event = await db.fetchrow("SELECT actor_id, actor_kind::text, status::text, inputs FROM audit_events "
                              "WHERE tenant_id = $1 AND tool = 'auth.password_reset'", user.tenant_id)
    assert (event["actor_id"], event["actor_kind"], event["status"]) == (user.id, "human", "succeeded")
    assert event["inputs"] in ({}, "{}")

    again = await _reset(client, mail.token(), "Another-passw0rd-8")
    assert again.status == 400 and await again.json() == {"detail": "token_invalid"}


async def test_an_unknown_address_gets_the_same_answer_and_no_mail(make_client, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url, skip_email_verification=True)
    email = new_email("nobody")
    response = await _request(client, email)
    assert response.status == 200 and await response.json() == QUEUED
    await drain_background(client)  # mail is sent during the request; nothing the request set off is pending
    assert smtp_sink.messages == []


async def test_debug_token_only_in_skip_mode_and_only_for_a_registered_address(make_client, make_user):
    user = await make_user(password=PASSWORD)
    plain = await make_client()
    assert await (await _request(plain, user.email)).json() == QUEUED
    debug = await make_client(skip_email_verification=True)
    token = (await (await _request(debug, user.email)).json())["debug_token"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)
    assert (await _reset(debug, token)).status == 200


async def test_an_unknown_address_waits_as_long_as_a_recent_registered_one(make_client, make_user, smtp_sink):
    # The unknown address waits a duration drawn from real recent requests (how close the two paths come in
    # wall-clock time is a figure of bench/timing_bench.py).
    client = await make_client(smtp_url=smtp_sink.url, rate_limit_auth_ip_per_minute=0,
                               rate_limit_auth_email_per_minute=0)
    user = await make_user(password=PASSWORD)
    mailer = client.app[MAILER]
    waits = []

    async def record(seconds):
        waits.append(seconds)

    mailer.sleep = record
    for _ in range(8):
        assert await (await _request(client, user.email)).json() == QUEUED
        assert await (await _request(client, new_email("nobody"))).json() == QUEUED
    assert len(smtp_sink.to(user.email)) == 8
    real = list(mailer._durations["password_reset"])  # how long each registered request took to mint and send
    assert len(real) == 8 and all(seconds > 0 for seconds in real)
    assert len(waits) == 8 and set(waits) <= set(real)


async def test_each_request_mints_a_new_token_and_earlier_ones_stay_valid(make_client, make_user):
    client = await make_client(skip_email_verification=True)
    user = await make_user(password=PASSWORD)
    first = (await (await _request(client, user.email)).json())["debug_token"]
    second = (await (await _request(client, user.email)).json())["debug_token"]
    assert first != second
    assert (await _reset(client, second)).status == 200
    assert (await _reset(client, first, "Third-passw0rd-99")).status == 200
    assert (await sign_in(client, user.email, "Third-passw0rd-99")).status == 200


async def test_a_weak_password_is_400_and_leaves_the_token_usable(make_client, make_user):
    client = await make_client(skip_email_verification=True)
    user = await make_user(password=PASSWORD)
    token = (await (await _request(client, user.email)).json())["debug_token"]
    weak = await _reset(client, token, "  Password1234 ")
    assert weak.status == 400
    assert await weak.json() == {"detail": {"error": "password_too_weak", "code": "password_common"}}
    assert (await _reset(client, token)).status == 200


async def test_unknown_tokens_and_tokens_of_deleted_users_are_400(make_client, make_user, db):
    client = await make_client(skip_email_verification=True)
    unknown = await _reset(client, "x" * 43)
    assert unknown.status == 400 and await unknown.json() == {"detail": "token_invalid"}
    user = await make_user(password=PASSWORD)
    token = (await (await _request(client, user.email)).json())["debug_token"]
    await db.execute("DELETE FROM users WHERE id = $1", user.id)
    gone = await _reset(client, token)
    assert gone.status == 400 and await gone.json() == {"detail": "token_invalid"}


@pytest.mark.parametrize(("path", "payload", "loc", "type_"), [
    ("/auth/request-password-reset", {}, ["body", "email"], "missing"),
    ("/auth/request-password-reset", {"email": "nope"}, ["body", "email"], "value_error"),
    ("/auth/request-password-reset", {"email": "a@example.com", "x": 1}, ["body", "x"], "extra_forbidden"),
    ("/auth/reset-password", {"new_password": NEW_PASSWORD}, ["body", "token"], "missing"),
    ("/auth/reset-password", {"token": "", "new_password": NEW_PASSWORD}, ["body", "token"], "string_too_short"),
    ("/auth/reset-password", {"token": "t" * 129, "new_password": NEW_PASSWORD}, ["body", "token"],
     "string_too_long"),
    ("/auth/reset-password", {"token": "t", "new_password": "short1"}, ["body", "new_password"], "string_too_short"),
    ("/auth/reset-password", {"token": "t", "new_password": "no-digits-at-all"}, ["body", "new_password"],
     "value_error"),
    ("/auth/reset-password", {"token": "t", "new_password": NEW_PASSWORD, "email": "a@b.co"}, ["body", "email"],
     "extra_forbidden"),
])
async def test_malformed_bodies_are_422(client, path, payload, loc, type_):
    response = await client.post(path, json=payload)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, type_)]


async def test_a_422_does_not_consume_the_token(make_client, make_user):
    client = await make_client(skip_email_verification=True)
    user = await make_user(password=PASSWORD)
    token = (await (await _request(client, user.email)).json())["debug_token"]
    assert (await _reset(client, token, "short1")).status == 422
    assert (await _reset(client, token)).status == 200


async def test_redis_down_is_503_for_a_registered_address_and_for_a_reset(make_client, make_user):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user = await make_user(password=PASSWORD)
    response = await _request(client, user.email)
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}
    response = await _reset(client, "x" * 43)
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}


@pytest.mark.redis
async def test_with_redis_the_reset_token_is_shared_and_expires_with_its_ttl(make_client, make_user, redis_url,
                                                                              settings):
    prefix = fresh_prefix(settings)
    worker_a = await make_client(redis_url=redis_url, redis_prefix=prefix, skip_email_verification=True)
    worker_b = await make_client(redis_url=redis_url, redis_prefix=prefix)
    user = await make_user(password=PASSWORD)
    token = (await (await _request(worker_a, user.email)).json())["debug_token"]
    redis = aioredis.from_url(redis_url)
    try:
        assert 3590 < await redis.ttl(f"{prefix}pwreset:{token}") <= 3600
    finally:
        await redis.aclose()
    assert (await _reset(worker_b, token)).status == 200
    assert (await _reset(worker_a, token)).status == 400
