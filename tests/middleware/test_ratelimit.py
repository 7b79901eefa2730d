"""Rate limiting end to end (README, Rate limiting): credential IP and e-mail buckets, user buckets, headers,
429 with Retry-After, the IP token given back, Redis shared by workers, fail open, capacity 0."""

import logging

import pytest

from tests.handlers.auth_flows import PASSWORD, fresh_prefix, new_email, sign_up

RATE_LIMITED = {"detail": "rate_limited"}
HEADERS = ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy", "RateLimit")


def _limits(response):
    return {name: response.headers.get(name) for name in HEADERS}


async def _sign_in(client, email, password=PASSWORD):
    return await client.post("/auth/sign-in", json={"email": email, "password": password})


async def test_sign_in_reports_the_bucket_with_fewer_tokens_left(client):
    response = await _sign_in(client, new_email())
    assert response.status == 401
    # IP bucket 30 → 29 left; e-mail bucket 10 → 9 left: the e-mail bucket is reported
    assert _limits(response) == {
        "RateLimit-Limit": "10", "RateLimit-Remaining": "9", "RateLimit-Reset": "6",
        "RateLimit-Policy": '"auth_email";q=10;w=60', "RateLimit": '"auth_email";r=9;t=6'}


async def test_on_a_tie_the_ip_bucket_is_reported(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=10, rate_limit_auth_email_per_minute=10)
    response = await _sign_in(client, new_email())
    assert response.headers["RateLimit-Policy"] == '"auth_ip";q=10;w=60'
    assert response.headers["RateLimit"] == '"auth_ip";r=9;t=6'


async def test_the_ip_bucket_is_shared_by_the_credential_routes_and_refuses_with_429(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=3, rate_limit_auth_email_per_minute=0)
    assert (await _sign_in(client, new_email())).status == 401
    assert (await client.post("/auth/request-password-reset", json={"email": new_email()})).status == 200
    token_form = await client.post("/auth/sign-in-totp", json={"totp_token": "x", "totp_code": "123456"})
    assert token_form.status == 401 and token_form.headers["RateLimit-Remaining"] == "0"

    refused = await client.post("/auth/accept-invite", json={"token": "t", "password": PASSWORD, "full_name": "A"})
    assert refused.status == 429 and await refused.json() == RATE_LIMITED
    assert 1 <= int(refused.headers["Retry-After"]) <= 20
    assert refused.headers["RateLimit-Policy"] == '"auth_ip";q=3;w=60'
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 50 <= int(refused.headers["RateLimit-Reset"]) <= 60


async def test_the_ip_bucket_runs_before_validation_and_the_email_bucket_after(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=1, rate_limit_auth_email_per_minute=1)
    invalid = await client.post("/auth/sign-in", json={"email": "not-an-email", "password": "x"})
    assert invalid.status == 422  # took the IP token, not an e-mail token
    assert invalid.headers["RateLimit-Policy"] == '"auth_ip";q=1;w=60'
    second = await client.post("/auth/sign-in", json={"email": "still-not-an-email"})
    assert second.status == 429  # check 2 comes before validation (check 6)


async def test_an_email_refusal_gives_the_ip_token_back(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=4, rate_limit_auth_email_per_minute=2)
    target = new_email("target")
    first = await _sign_in(client, target)
    assert first.headers["RateLimit"] == '"auth_email";r=1;t=30'
    second = await _sign_in(client, target)
    assert second.headers["RateLimit"] == '"auth_email";r=0;t=60'

    refused = await _sign_in(client, target)
    assert refused.status == 429 and await refused.json() == RATE_LIMITED
    assert refused.headers["RateLimit-Policy"] == '"auth_email";q=2;w=60'
    assert refused.headers["RateLimit-Remaining"] == "0"
    assert 1 <= int(refused.headers["Retry-After"]) <= 30

    # IP: 4 → 3 → 2 → (taken and given back) 2 → 1; a fresh e-mail has 1 left too: the tie shows the IP bucket
    other = await _sign_in(client, new_email("other"))
    assert other.status == 401
    assert other.headers["RateLimit-Policy"] == '"auth_ip";q=4;w=60'
    assert other.headers["RateLimit-Remaining"] == "1"  # would be 0 had the refused request kept its IP token


async def test_the_email_bucket_is_shared_by_sign_in_sign_in_totp_and_password_reset(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=0, rate_limit_auth_email_per_minute=3)
    user = await make_user(password=PASSWORD)
    assert (await _sign_in(client, user.email.upper())).status == 200
    credentials_form = await client.post("/auth/sign-in-totp", json={"email": user.email, "password": PASSWORD,
                                                                     "totp_code": "123456"})
    assert credentials_form.status == 400  # totp_not_enabled, after taking an e-mail token
    assert (await client.post("/auth/request-password-reset", json={"email": user.email})).status == 200
    refused = await _sign_in(client, user.email)
    assert refused.status == 429 and refused.headers["RateLimit-Policy"] == '"auth_email";q=3;w=60'
    # the token form carries no e-mail: no e-mail bucket (and the IP bucket is disabled here)
    token_form = await client.post("/auth/sign-in-totp", json={"totp_token": "x", "totp_code": "123456"})
    assert token_form.status == 401 and "RateLimit-Limit" not in token_form.headers


async def test_a_user_bucket_limits_jwt_traffic_per_user(make_client, make_user):
    client = await make_client(rate_limit_user_per_minute=2)
    user, other = await make_user(), await make_user()
    first = await client.get("/auth/me", headers=user.headers)
    assert first.headers["RateLimit"] == '"user";r=1;t=30'
    assert (await client.get("/auth/me", headers=user.headers)).status == 200
    refused = await client.get("/auth/me", headers=user.headers)
    assert refused.status == 429 and await refused.json() == RATE_LIMITED
    assert refused.headers["RateLimit-Policy"] == '"user";q=2;w=60' and "Retry-After" in refused.headers
    assert (await client.get("/auth/me", headers=other.headers)).status == 200
    # a 401 happens before any principal bucket
    anonymous = await client.get("/auth/me", headers={"Authorization": "Bearer nope"})
    assert anonymous.status == 401 and "RateLimit-Limit" not in anonymous.headers


async def test_capacity_zero_disables_a_bucket(make_client, make_user):
    client = await make_client(rate_limit_auth_ip_per_minute=0, rate_limit_auth_email_per_minute=0,
                               rate_limit_user_per_minute=0)
    user = await make_user(password=PASSWORD)
    for _ in range(12):
        response = await _sign_in(client, user.email)
        assert response.status == 200 and "RateLimit-Limit" not in response.headers
    me = await client.get("/auth/me", headers=user.headers)
    assert me.status == 200 and "RateLimit-Limit" not in me.headers


async def test_routes_without_buckets_carry_no_headers(client):
    body = await sign_up(client)
    responses = [
        await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]}),
        await client.post("/auth/verify-email", json={"token": "x"}),
        await client.post("/auth/reset-password", json={"token": "x", "new_password": "Another-passw0rd-1"}),
        await client.post("/auth/sign-out"),
        await client.get("/health"),
    ]
    for response in responses:
        assert "RateLimit-Limit" not in response.headers, response.url


async def test_refusals_are_counted_in_metrics(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=1)
    await _sign_in(client, new_email())
    assert (await _sign_in(client, new_email())).status == 429
    metrics = await (await client.get("/internal/metrics")).text()
    assert 'voyagent_api_rate_limited_total{bucket="auth_ip"} 1.0' in metrics


@pytest.mark.redis
async def test_with_redis_two_workers_share_the_buckets(make_client, redis_url, settings):
    prefix = fresh_prefix(settings)
    options = {"redis_url": redis_url, "redis_prefix": prefix, "rate_limit_auth_ip_per_minute": 3,
               "rate_limit_auth_email_per_minute": 0}
    worker_a, worker_b = await make_client(**options), await make_client(**options)
    assert (await _sign_in(worker_a, new_email())).headers["RateLimit-Remaining"] == "2"
    assert (await _sign_in(worker_b, new_email())).headers["RateLimit-Remaining"] == "1"
    assert (await _sign_in(worker_a, new_email())).headers["RateLimit-Remaining"] == "0"
    refused = await _sign_in(worker_b, new_email())
    assert refused.status == 429 and "Retry-After" in refused.headers


@pytest.mark.redis
async def test_with_redis_an_email_refusal_gives_the_shared_ip_token_back(make_client, redis_url, settings):
    prefix = fresh_prefix(settings)
    options = {"redis_url": redis_url, "redis_prefix": prefix, "rate_limit_auth_ip_per_minute": 10,
               "rate_limit_auth_email_per_minute": 1}
    worker_a, worker_b = await make_client(**options), await make_client(**options)
    target = new_email()
    assert (await _sign_in(worker_a, target)).status == 401  # IP 9 left
    assert (await _sign_in(worker_b, target)).status == 429  # e-mail refuses; IP back to 9
    assert (await _sign_in(worker_a, target)).status == 429
    fresh = await _sign_in(worker_b, new_email())
    assert fresh.headers["RateLimit-Policy"] == '"auth_email";q=1;w=60'  # e-mail 0 left < IP
    ip_only = await make_client(**{**options, "rate_limit_auth_email_per_minute": 0})
    assert (await _sign_in(ip_only, new_email())).headers["RateLimit-Remaining"] == "7"


async def test_with_redis_unreachable_requests_are_admitted(make_client, make_user, caplog):
    client = await make_client(redis_url="redis://127.0.0.1:1", rate_limit_auth_ip_per_minute=1,
                               rate_limit_auth_email_per_minute=1, rate_limit_user_per_minute=1)
    user = await make_user(password=PASSWORD)
    with caplog.at_level(logging.WARNING, logger="voyagent.ratelimit"):
        for _ in range(3):
            response = await _sign_in(client, user.email)
            assert response.status == 200 and "RateLimit-Limit" not in response.headers
            assert (await client.get("/auth/me", headers=user.headers)).status == 200
    assert any("fail open" in r.getMessage() for r in caplog.records)
