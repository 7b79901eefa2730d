"""POST /auth/sign-up: a new tenant and its first admin, signed in; verification mail; every refusal."""

import asyncio
import hashlib
import logging
import re

import pytest

from tests.conftest import drain_background
from tests.handlers.auth_flows import PASSWORD, bearer, fresh_prefix, new_email, sign_in, sign_up

RATE_LIMIT_HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "RateLimit")
USER_KEYS = {"id", "email", "full_name", "role", "tenant_id", "tenant_name", "created_at", "email_verified",
             "totp_enabled"}


async def test_sign_up_creates_tenant_admin_settings_and_a_token_pair(client, db):
    email = new_email("Owner").replace("owner", "OWNER")
    body = await sign_up(client, email=email, full_name="  Ada Lovelace ", agency_name=" Ada Travel  ")

    assert set(body) == {"access_token", "refresh_token", "expires_in", "user"}
    assert body["expires_in"] == 3600
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", body["refresh_token"])
    user = body["user"]
    assert set(user) == USER_KEYS
    assert user["email"] == email.lower()
    assert user["full_name"] == "Ada Lovelace" and user["tenant_name"] == "Ada Travel"
    assert user["role"] == "agency_admin"
    assert user["email_verified"] is False and user["totp_enabled"] is False
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z", user["created_at"])

    me = await client.get("/auth/me", headers=bearer(body["access_token"]))
    assert me.status == 200 and await me.json() == user

    row = await db.fetchrow("SELECT u.password_hash, u.display_name, u.role::text AS role, t.display_name AS tenant, "
                            "s.rate_limit_per_minute, s.default_currency "
                            "FROM users u JOIN tenants t ON t.id = u.tenant_id "
                            "JOIN tenant_settings s ON s.tenant_id = t.id WHERE u.id = $1::uuid", user["id"])
    assert row["password_hash"].startswith("$argon2id$v=19$m=8192,t=1,p=1$")
    assert PASSWORD not in row["password_hash"]
    assert (row["display_name"], row["role"], row["tenant"]) == ("Ada Lovelace", "agency_admin", "Ada Travel")
    assert (row["rate_limit_per_minute"], row["default_currency"]) == (60, "INR")
    stored = await db.fetch("SELECT token_hash, revoked_at, family_id FROM auth_refresh_tokens WHERE user_id = $1::uuid",
                            user["id"])
    assert len(stored) == 1
    assert bytes(stored[0]["token_hash"]) == hashlib.sha256(body["refresh_token"].encode()).digest()
    assert stored[0]["revoked_at"] is None
    assert await db.fetchval("SELECT count(*) FROM audit_events WHERE tenant_id = $1::uuid", user["tenant_id"]) == 0


async def test_unverified_user_gets_a_verification_mail_and_can_sign_in_after_verifying(make_client, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url)
    email = new_email()
    body = await sign_up(client, email=email)

    mail = await smtp_sink.wait_for(email)
    assert mail.message["Subject"] == "Confirm your e-mail address for Voyagent"
    assert mail.message["To"] == email
    assert mail.message["From"] == "Voyagent <no-reply@localhost>"
    assert mail.message["Date"] and mail.message["Message-ID"]
    assert "24 hours" in mail.text
    link = mail.link()
    assert re.fullmatch(r"http://localhost:3000/verify-email\?token=[0-9a-f]{32}", link)
    assert mail.text.count(link) == 1

    refused = await sign_in(client, email)
    assert refused.status == 401 and await refused.json() == {"detail": "email_not_verified"}
    verified = await client.post("/auth/verify-email", json={"token": mail.token()})
    assert verified.status == 200 and await verified.json() == {"verified": True}
    me = await client.get("/auth/me", headers=bearer(body["access_token"]))
    assert (await me.json())["email_verified"] is True
    assert (await sign_in(client, email)).status == 200


async def test_without_smtp_the_mail_is_one_log_line(client, caplog):
    caplog.set_level(logging.INFO, logger="voyagent.email")
    email = new_email()
    await sign_up(client, email=email)
    lines = [r.getMessage() for r in caplog.records if r.name == "voyagent.email"]
    assert len(lines) == 1
    assert re.fullmatch(rf'email kind=verification to={re.escape(email)} '
                        r'subject="Confirm your e-mail address for Voyagent" '
                        r'link=http://localhost:3000/verify-email\?token=[0-9a-f]{32}', lines[0])
    metrics = await (await client.get("/internal/metrics")).text()
    assert 'voyagent_emails_total{kind="verification",result="logged"} 1.0' in metrics


async def test_skip_email_verification_signs_up_verified_and_sends_nothing(make_client, smtp_sink):
    client = await make_client(smtp_url=smtp_sink.url, skip_email_verification=True)
    email = new_email()
    body = await sign_up(client, email=email)
    assert body["user"]["email_verified"] is True
    assert (await sign_in(client, email)).status == 200
    await drain_background(client)  # mail is sent during the request; nothing the requests set off is pending
    assert smtp_sink.to(email) == []


async def test_agency_name_keeps_inner_cr_lf(client):
    body = await sign_up(client, agency_name="  Acme\r\nTravel \n")
    assert body["user"]["tenant_name"] == "Acme\r\nTravel"


async def test_unknown_fields_are_ignored_and_the_role_is_always_agency_admin(client, db):
    email = new_email()
    response = await client.post("/auth/sign-up", json={
        "email": email, "password": PASSWORD, "full_name": "Ada", "agency_name": "Ada Travel",
        "role": "viewer", "tenant_id": "00000000-0000-7000-8000-000000000000", "email_verified": True})
    assert response.status == 201
    user = (await response.json())["user"]
    assert user["role"] == "agency_admin" and user["email_verified"] is False
    assert user["tenant_id"] != "00000000-0000-7000-8000-000000000000"


async def test_an_email_registered_in_any_case_is_409(client, db):
    email = new_email()
    await sign_up(client, email=email)
    tenants = await db.fetchval("SELECT count(*) FROM tenants")
    response = await client.post("/auth/sign-up", json={"email": email.upper(), "password": PASSWORD,
                                                        "full_name": "Eve", "agency_name": "Eve Travel"})
    assert response.status == 409
    assert await response.json() == {"detail": "email_already_registered"}
    assert await db.fetchval("SELECT count(*) FROM tenants") == tenants


async def test_concurrent_sign_ups_of_one_email_create_one_user(client, db):
    email = new_email()
    payload = {"email": email, "password": PASSWORD, "full_name": "Ada", "agency_name": "Ada Travel"}
    responses = await asyncio.gather(*(client.post("/auth/sign-up", json=payload) for _ in range(4)))
    assert sorted(r.status for r in responses) == [201, 409, 409, 409]
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 1


async def test_a_common_password_is_400_and_creates_nothing(client, db):
    email = new_email()
    response = await client.post("/auth/sign-up", json={"email": email, "password": "Password1234",
                                                        "full_name": "Ada", "agency_name": "Ada Travel"})
    assert response.status == 400
    assert await response.json() == {"detail": {"error": "password_too_weak", "code": "password_common"}}
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


def _body(**changes):
    body = {"email": "bad-input@example.com", "password": PASSWORD, "full_name": "Ada", "agency_name": "Ada Travel"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(("payload", "loc", "type_", "code"), [
    (_body(email=None), ["body", "email"], "missing", None),
    (_body(email="not-an-email"), ["body", "email"], "value_error", "invalid_email"),
    (_body(email="a" * 310 + "@example.com"), ["body", "email"], "string_too_long", None),
    (_body(password="Sh0rt"), ["body", "password"], "string_too_short", None),
    (_body(password="x1" * 65), ["body", "password"], "string_too_long", None),
    (_body(password="onlyletterslong"), ["body", "password"], "value_error", "password_must_contain_letter_and_digit"),
    (_body(password=123456789012), ["body", "password"], "string_type", None),
    (_body(full_name="   "), ["body", "full_name"], "value_error", "full_name_required"),
    (_body(agency_name="x" * 121), ["body", "agency_name"], "string_too_long", None),
    (_body(full_name="Ada\x00"), ["body", "full_name"], "value_error", "nul_character"),
    ([1, 2], ["body"], "model_attributes_type", None),
])
async def test_malformed_bodies_are_422_and_create_nothing(client, db, payload, loc, type_, code):
    response = await client.post("/auth/sign-up", json=payload)
    assert response.status == 422
    items = (await response.json())["detail"]
    assert any(item["loc"] == loc and item["type"] == type_ for item in items), items
    if code is not None:
        assert any(item["msg"] == f"Value error, {code}" for item in items)
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = 'bad-input@example.com'") == 0


@pytest.mark.parametrize(("data", "headers", "type_"), [
    (b'{"email": "bad-input@example.com", "password": ', {"Content-Type": "application/json"}, "json_invalid"),
    (b'{"email": "bad\xff@example.com"}', {"Content-Type": "application/json"}, "json_invalid"),
    (b"", {"Content-Type": "application/json"}, "missing"),
    (b'{"email": "bad-input@example.com"}', {"Content-Type": "text/plain"}, "missing"),
])
async def test_unparsable_bodies_are_422_at_body(client, data, headers, type_):
    response = await client.post("/auth/sign-up", data=data, headers=headers)
    assert response.status == 422
    assert (await response.json())["detail"][0] == {**(await response.json())["detail"][0], "loc": ["body"],
                                                    "type": type_}


async def test_an_oversized_body_is_413(make_client):
    client = await make_client(max_body_bytes=512)
    response = await client.post("/auth/sign-up", json=_body(full_name="x" * 1000))
    assert response.status == 413 and await response.json() == {"detail": "payload_too_large"}


async def test_redis_down_makes_an_unverified_sign_up_503_and_creates_nothing(make_client, db):
    client = await make_client(redis_url="redis://127.0.0.1:1")
    email = new_email()
    response = await client.post("/auth/sign-up", json=_body(email=email))
    assert response.status == 503 and await response.json() == {"detail": "redis_unreachable"}
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


# --- the sign-up IP bucket (README, Rate limiting; check 2 of the order of checks) -------------------------


async def test_sign_ups_are_limited_per_client_ip_with_headers_429_and_a_metric(make_client, db):
    client = await make_client(rate_limit_signup_ip_per_minute=2, trusted_proxy_hops=1)
    proxy = {"X-Forwarded-For": "203.0.113.40"}
    first = await client.post("/auth/sign-up", json=_body(email=new_email()), headers=proxy)
    assert first.status == 201
    assert {name: first.headers.get(name) for name in RATE_LIMIT_HEADERS} == {
        "RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": "30",
        "RateLimit-Policy": '"signup_ip";q=2;w=60', "RateLimit": '"signup_ip";r=1;t=30'}
    second = await client.post("/auth/sign-up", json=_body(email=new_email()), headers=proxy)
    assert second.status == 201 and second.headers["RateLimit"] == '"signup_ip";r=0;t=60'

    refused_email = new_email()
    refused = await client.post("/auth/sign-up", json=_body(email=refused_email), headers=proxy)
    assert refused.status == 429 and await refused.json() == {"detail": "rate_limited"}
    assert 1 <= int(refused.headers["Retry-After"]) <= 30
    assert refused.headers["RateLimit-Policy"] == '"signup_ip";q=2;w=60'
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 50 <= int(refused.headers["RateLimit-Reset"]) <= 60
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", refused_email) == 0

    metrics = await (await client.get("/internal/metrics")).text()
    assert 'voyagent_api_rate_limited_total{bucket="signup_ip"} 1.0' in metrics
    assert 'voyagent_api_rate_limited_total{bucket="auth_ip"} 0.0' in metrics  # every bucket label is exported

    # another client behind the same proxy has a bucket of its own
    other = await client.post("/auth/sign-up", json=_body(email=new_email()),
                              headers={"X-Forwarded-For": "203.0.113.41"})
    assert other.status == 201 and other.headers["RateLimit-Remaining"] == "1"


async def test_the_default_is_10_per_minute_checked_before_validation(client, db):
    for left in range(9, -1, -1):
        response = await client.post("/auth/sign-up", json=_body(email="not-an-email"))
        assert response.status == 422  # the token is taken at step 2, before the body is validated at step 6
        assert response.headers["RateLimit-Remaining"] == str(left)
        assert response.headers["RateLimit-Policy"] == '"signup_ip";q=10;w=60'
    email = new_email()
    refused = await client.post("/auth/sign-up", json=_body(email=email))
    assert refused.status == 429 and "Retry-After" in refused.headers
    assert (await client.post("/auth/sign-up", json=[1, 2])).status == 429  # even a malformed body
    assert await db.fetchval("SELECT count(*) FROM users WHERE email = $1", email) == 0


async def test_the_sign_up_bucket_is_its_own(make_client):
    client = await make_client(rate_limit_signup_ip_per_minute=1, rate_limit_auth_ip_per_minute=5)
    assert (await client.post("/auth/sign-up", json=_body(email="x"))).status == 422
    assert (await client.post("/auth/sign-up", json=_body(email="x"))).status == 429
    sign_in_attempt = await sign_in(client, new_email())  # the credential IP bucket is untouched
    assert sign_in_attempt.status == 401
    assert sign_in_attempt.headers["RateLimit"] == '"auth_ip";r=4;t=12'  # full before this one
    assert (await client.post("/auth/sign-up", json=_body(email="x"))).status == 429


async def test_a_capacity_of_zero_disables_the_sign_up_bucket(make_client):
    client = await make_client(rate_limit_signup_ip_per_minute=0)
    for _ in range(12):
        response = await client.post("/auth/sign-up", json=_body(email="not-an-email"))
        assert response.status == 422 and "RateLimit-Limit" not in response.headers


@pytest.mark.redis
async def test_with_redis_workers_share_the_sign_up_bucket(make_client, redis_url, settings):
    options = {"redis_url": redis_url, "redis_prefix": fresh_prefix(settings), "rate_limit_signup_ip_per_minute": 2}
    worker_a, worker_b = await make_client(**options), await make_client(**options)
    assert (await worker_a.post("/auth/sign-up", json=_body(email="x"))).headers["RateLimit-Remaining"] == "1"
    assert (await worker_b.post("/auth/sign-up", json=_body(email="x"))).headers["RateLimit-Remaining"] == "0"
    refused = await worker_a.post("/auth/sign-up", json=_body(email="x"))
    assert refused.status == 429 and refused.headers["RateLimit-Policy"] == '"signup_ip";q=2;w=60'
