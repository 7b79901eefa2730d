"""GET /auth/me, PATCH /auth/profile, POST /auth/send-verification-email and POST /auth/verify-email."""

import logging
import re

import pytest
import redis.asyncio as aioredis

from tests.handlers.auth_flows import PASSWORD, bearer, fresh_prefix, new_email, sign_in, sign_up

NOTICE_SUBJECT = "Your Voyagent e-mail address was changed"


# --- GET /auth/me --------------------------------------------------------------------------------------


async def test_me_reads_the_user_from_the_database(client, make_user, db):
    user = await make_user("ticketing_lead")
    await db.execute("UPDATE users SET display_name = 'Renamed Person' WHERE id = $1", user.id)
    response = await client.get("/auth/me", headers=user.headers)
    assert response.status == 200
    assert await response.json() == {
        "id": str(user.id), "email": user.email, "full_name": "Renamed Person", "role": "ticketing_lead",
        "tenant_id": str(user.tenant_id), "tenant_name": "Test Agency",
        "created_at": (await response.json())["created_at"], "email_verified": True, "totp_enabled": False}
    assert response.headers["RateLimit-Policy"] == '"user";q=600;w=60'


async def test_me_is_401_when_the_user_is_gone(client, make_user, db):
    user = await make_user()
    await db.execute("DELETE FROM users WHERE id = $1", user.id)
    response = await client.get("/auth/me", headers=user.headers)
    assert response.status == 401 and await response.json() == {"detail": "unauthorized"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_me_without_a_credential_is_401_and_with_an_api_key_403(client, admin, make_api_key):
    response = await client.get("/auth/me")
    assert response.status == 401 and response.headers["WWW-Authenticate"] == "Bearer"
    key = await make_api_key(admin, ["full"])
    response = await client.get("/auth/me", headers=key.headers)
    assert response.status == 403 and await response.json() == {"detail": "api_key_not_allowed"}


async def test_an_unverified_user_can_use_me(client, make_user):
    user = await make_user(verified=False)
    response = await client.get("/auth/me", headers=user.headers)
    assert response.status == 200 and (await response.json())["email_verified"] is False


# --- PATCH /auth/profile -------------------------------------------------------------------------------


async def test_an_empty_patch_changes_nothing(client, make_user, db):
    user = await make_user()
    before = await db.fetchval("SELECT updated_at FROM users WHERE id = $1", user.id)
    response = await client.patch("/auth/profile", json={}, headers=user.headers)
    assert response.status == 200
    body = await response.json()
    assert body["email_verification_required"] is False and body["user"]["email"] == user.email
    assert await db.fetchval("SELECT updated_at FROM users WHERE id = $1", user.id) == before


async def test_the_name_is_trimmed_and_null_fields_are_kept(client, make_user):
    user = await make_user()
    response = await client.patch("/auth/profile", json={"full_name": "  New Name ", "email": None},
                                  headers=user.headers)
    body = await response.json()
    assert body["user"]["full_name"] == "New Name" and body["user"]["email"] == user.email
    assert body["email_verification_required"] is False
    me = await (await client.get("/auth/me", headers=user.headers)).json()
    assert me["full_name"] == "New Name"


async def test_a_new_email_is_unverified_and_gets_a_verification_mail(make_client, make_user, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url)
    user = await make_user()
    new = new_email("moved")
    response = await client.patch("/auth/profile", json={"email": new.upper()}, headers=user.headers)
    assert response.status == 200
    body = await response.json()
    assert body["email_verification_required"] is True
    assert body["user"]["email"] == new and body["user"]["email_verified"] is False

    mail = await smtp_sink.wait_for(new)
    assert [m.message["Subject"] for m in smtp_sink.to(user.email)] == [NOTICE_SUBJECT]  # no link to the old one
    # the old access token (old e-mail claim) still works until it expires
    verified = await client.post("/auth/verify-email", json={"token": mail.token()})
    assert verified.status == 200
    me = await (await client.get("/auth/me", headers=user.headers)).json()
    assert me["email"] == new and me["email_verified"] is True


async def test_an_email_change_sends_the_email_changed_notice_to_the_old_address(make_client, make_user, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url)
    user = await make_user()
    new = new_email("taken-over")
    response = await client.patch("/auth/profile", json={"email": new}, headers=user.headers)
    assert response.status == 200

    notice = await smtp_sink.wait_for(user.email)
    assert len(smtp_sink.to(user.email)) == 1 and len(smtp_sink.to(new)) == 1
    assert notice.rcpt_tos == [user.email] and notice.message["To"] == user.email
    assert notice.message["From"] == "Voyagent <no-reply@localhost>"
    assert notice.message["Subject"] == NOTICE_SUBJECT
    assert notice.message["Date"] and notice.message["Message-ID"]
    assert notice.message.get_content_type() == "text/plain" and notice.message.get_content_charset() == "utf-8"
    text = notice.text
    assert new in text  # names the new address
    assert "agency admin" in text and "password reset would now be sent to the new" in text
    assert "http" not in text and "token" not in text  # no link
    verification = await smtp_sink.wait_for(new)
    assert verification.message["Subject"] == "Confirm your e-mail address for Voyagent"
    assert verification.link().startswith("http://localhost:3000/verify-email?token=")


async def test_no_notice_without_an_email_change(make_client, make_user, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url)
    user, other = await make_user(), await make_user()
    for patch in ({"full_name": "Only The Name"}, {"email": user.email.upper()}, {}):
        assert (await client.patch("/auth/profile", json=patch, headers=user.headers)).status == 200
    conflict = await client.patch("/auth/profile", json={"email": other.email}, headers=user.headers)
    assert conflict.status == 409
    assert smtp_sink.messages == []  # mail is handed over during the request: none was


async def test_without_smtp_the_notice_is_one_log_line_with_an_empty_link(make_client, make_user, caplog):
    client = await make_client()
    user = await make_user()
    new = new_email("logged")
    with caplog.at_level(logging.INFO, logger="voyagent.email"):
        response = await client.patch("/auth/profile", json={"email": new}, headers=user.headers)
    assert response.status == 200
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "voyagent.email")
    assert len(lines) == 2
    assert lines[0] == f'email kind=email_changed to={user.email} subject="{NOTICE_SUBJECT}" link='
    assert lines[1].startswith(f'email kind=verification to={new} subject="Confirm your e-mail address for Voyagent" '
                               "link=http://localhost:3000/verify-email?token=")
    metrics = await (await client.get("/internal/metrics")).text()
    assert 'voyagent_emails_total{kind="email_changed",result="logged"} 1.0' in metrics
    assert 'voyagent_emails_total{kind="verification",result="logged"} 1.0' in metrics


async def test_the_same_email_in_another_case_is_no_change(client, make_user):
    user = await make_user()
    response = await client.patch("/auth/profile", json={"email": user.email.upper()}, headers=user.headers)
    body = await response.json()
    assert body["email_verification_required"] is False and body["user"]["email_verified"] is True


async def test_an_email_owned_by_another_user_is_409_and_nothing_changes(client, make_user, db):
    user = await make_user()
    other = await make_user()
    response = await client.patch("/auth/profile", json={"email": other.email, "full_name": "Changed"},
                                  headers=user.headers)
    assert response.status == 409 and await response.json() == {"detail": "email_already_registered"}
    row = await db.fetchrow("SELECT email, display_name, email_verified FROM users WHERE id = $1", user.id)
    assert (row["email"], row["display_name"], row["email_verified"]) == (user.email, "Agency_Admin Person", True)


@pytest.mark.parametrize(("payload", "loc", "type_"), [
    ({"role": "agency_admin"}, ["body", "role"], "extra_forbidden"),
    ({"email": "no-at-sign"}, ["body", "email"], "value_error"),
    ({"full_name": "  "}, ["body", "full_name"], "value_error"),
    ({"full_name": "x" * 121}, ["body", "full_name"], "string_too_long"),
    ({"full_name": 7}, ["body", "full_name"], "string_type"),
])
async def test_malformed_profile_patches_are_422(client, make_user, payload, loc, type_):
    user = await make_user()
    response = await client.patch("/auth/profile", json=payload, headers=user.headers)
    assert response.status == 422
    assert [(i["loc"], i["type"]) for i in (await response.json())["detail"]] == [(loc, type_)]


async def test_an_email_change_with_redis_down_is_503_and_changes_nothing(make_client, make_user, db):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user = await make_user()
    response = await client.patch("/auth/profile", json={"email": new_email()}, headers=user.headers)
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}
    assert await db.fetchval("SELECT email FROM users WHERE id = $1", user.id) == user.email


# --- send-verification-email / verify-email ------------------------------------------------------------


async def test_send_verification_email_mails_a_single_use_token(make_client, make_user, smtp_sink, db):
    client = await make_client(smtp_url=smtp_sink.url)
    user = await make_user(verified=False)
    response = await client.post("/auth/send-verification-email", headers=user.headers, json={"ignored": 1})
    assert response.status == 200 and await response.json() == {"queued": True, "debug_token": None}
    token = (await smtp_sink.wait_for(user.email)).token()
    assert re.fullmatch(r"[0-9a-f]{32}", token)

    assert (await client.post("/auth/verify-email", json={"token": token, "extra": True})).status == 200
    assert await db.fetchval("SELECT email_verified FROM users WHERE id = $1", user.id) is True
    again = await client.post("/auth/verify-email", json={"token": token})
    assert again.status == 400 and await again.json() == {"detail": "token_invalid"}


async def test_every_mint_is_a_new_token_and_earlier_ones_stay_valid(make_client, make_user):
    client = await make_client(skip_email_verification=True)
    user = await make_user()  # already verified: still works
    first = (await (await client.post("/auth/send-verification-email", headers=user.headers)).json())["debug_token"]
    second = (await (await client.post("/auth/send-verification-email", headers=user.headers)).json())["debug_token"]
    assert first != second and re.fullmatch(r"[0-9a-f]{32}", first)
    assert (await client.post("/auth/verify-email", json={"token": second})).status == 200
    assert (await client.post("/auth/verify-email", json={"token": first})).status == 200


async def test_a_token_minted_for_an_old_email_is_invalid(make_client, make_user, db):
    client = await make_client(skip_email_verification=True)
    user = await make_user(verified=False)
    token = (await (await client.post("/auth/send-verification-email", headers=user.headers)).json())["debug_token"]
    await client.patch("/auth/profile", json={"email": new_email("changed")}, headers=user.headers)
    response = await client.post("/auth/verify-email", json={"token": token})
    assert response.status == 400 and await response.json() == {"detail": "token_invalid"}
    assert await db.fetchval("SELECT email_verified FROM users WHERE id = $1", user.id) is False


async def test_a_token_of_a_deleted_user_is_invalid(make_client, make_user, db):
    client = await make_client(skip_email_verification=True)
    user = await make_user(verified=False)
    token = (await (await client.post("/auth/send-verification-email", headers=user.headers)).json())["debug_token"]
    await db.execute("DELETE FROM users WHERE id = $1", user.id)
    assert (await client.post("/auth/verify-email", json={"token": token})).status == 400


@pytest.mark.parametrize("token", ["0" * 32, "nope", "a" * 128])
async def test_unknown_verification_tokens_are_400(client, token):
    response = await client.post("/auth/verify-email", json={"token": token})
    assert response.status == 400 and await response.json() == {"detail": "token_invalid"}


@pytest.mark.parametrize("payload", [{}, {"token": ""}, {"token": "a" * 129}, {"token": 12}, {"token": "a\x00b"}])
async def test_malformed_verify_bodies_are_422(client, payload):
    response = await client.post("/auth/verify-email", json=payload)
    assert response.status == 422


async def test_send_verification_with_redis_down_is_503(make_client, make_user):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    user = await make_user(verified=False)
    response = await client.post("/auth/send-verification-email", headers=user.headers)
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}


@pytest.mark.redis
async def test_with_redis_the_token_lives_under_the_documented_key_with_its_ttl(make_client, make_user, redis_url,
                                                                                settings):
    prefix = fresh_prefix(settings)
    worker_a = await make_client(redis_url=redis_url, redis_prefix=prefix, skip_email_verification=True)
    worker_b = await make_client(redis_url=redis_url, redis_prefix=prefix)
    user = await make_user(verified=False)
    token = (await (await worker_a.post("/auth/send-verification-email", headers=user.headers)).json())["debug_token"]
    redis = aioredis.from_url(redis_url)
    try:
        key = f"{prefix}email_verify:{token}"
        assert 86_390 < await redis.ttl(key) <= 86_400
        assert (await worker_b.post("/auth/verify-email", json={"token": token})).status == 200
        assert await redis.exists(key) == 0
    finally:
        await redis.aclose()
    assert (await worker_a.post("/auth/verify-email", json={"token": token})).status == 400


async def test_sign_up_then_verify_with_the_debug_flow(make_client):
    client = await make_client()
    body = await sign_up(client)
    response = await client.post("/auth/send-verification-email", headers=bearer(body["access_token"]))
    assert (await response.json())["debug_token"] is None  # only in skip mode


# --- the credential e-mail bucket on send-verification-email ------------------------------------------


async def test_send_verification_takes_a_user_token_and_an_email_token(make_client, make_user):
    client = await make_client(rate_limit_user_per_minute=5, rate_limit_auth_email_per_minute=2)
    user = await make_user(verified=False)
    first = await client.post("/auth/send-verification-email", headers=user.headers)
    # user bucket 5 → 4, e-mail bucket 2 → 1: the e-mail bucket has fewer left and is reported
    assert first.status == 200 and first.headers["RateLimit-Policy"] == '"auth_email";q=2;w=60'
    assert first.headers["RateLimit-Remaining"] == "1"
    second = await client.post("/auth/send-verification-email", headers=user.headers)
    assert second.status == 200 and second.headers["RateLimit"].startswith('"auth_email";r=0;')

    refused = await client.post("/auth/send-verification-email", headers=user.headers)
    assert refused.status == 429 and await refused.json() == {"detail": "rate_limited"}
    assert refused.headers["RateLimit-Policy"] == '"auth_email";q=2;w=60'
    assert refused.headers["RateLimit-Remaining"] == "0" and int(refused.headers["Retry-After"]) >= 1
    # user: 5 → 4 → 3 → (taken and given back) 3 → 2
    me = await client.get("/auth/me", headers=user.headers)
    assert me.headers["RateLimit-Policy"] == '"user";q=5;w=60'
    assert me.headers["RateLimit-Remaining"] == "2"  # would be 1 had the refused request kept its user token


async def test_on_a_tie_the_user_bucket_is_reported(make_client, make_user):
    client = await make_client(rate_limit_user_per_minute=10, rate_limit_auth_email_per_minute=10)
    user = await make_user()
    response = await client.post("/auth/send-verification-email", headers=user.headers)
    assert response.headers["RateLimit-Policy"] == '"user";q=10;w=60'
    assert response.headers["RateLimit"].startswith('"user";r=9;')


async def test_send_verification_shares_the_email_bucket_with_the_credential_routes(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=0, rate_limit_auth_email_per_minute=2)
    user = await make_user(password=PASSWORD, verified=False)
    assert (await sign_in(client, user.email)).status == 401  # email_not_verified, after taking an e-mail token
    assert (await client.post("/auth/request-password-reset", json={"email": user.email})).status == 200
    refused = await client.post("/auth/send-verification-email", headers=user.headers)
    assert refused.status == 429 and refused.headers["RateLimit-Policy"] == '"auth_email";q=2;w=60'


async def test_send_verification_is_keyed_by_the_current_email_not_the_token_claim(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=0, rate_limit_auth_email_per_minute=1)
    user = await make_user()
    assert (await client.post("/auth/send-verification-email", headers=user.headers)).status == 200
    assert (await client.post("/auth/send-verification-email", headers=user.headers)).status == 429
    new = new_email("moved")
    assert (await client.patch("/auth/profile", json={"email": new}, headers=user.headers)).status == 200
    # the access token still says the old e-mail; the bucket of the new address is full
    response = await client.post("/auth/send-verification-email", headers=user.headers)
    assert response.status == 200 and response.headers["RateLimit-Policy"] == '"auth_email";q=1;w=60'
    assert (await client.post("/auth/request-password-reset", json={"email": new})).status == 429
