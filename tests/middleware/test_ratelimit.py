"""Rate limiting end to end (README, Rate limiting): credential IP and e-mail buckets, user buckets, headers,
429 with Retry-After, the IP token given back, Redis shared by workers, fail open, capacity 0."""

import json
import logging

import aiohttp
import pytest
from multidict import CIMultiDict

from tests.conftest import TEST_SECRET
from tests.handlers.auth_flows import PASSWORD, fresh_prefix, new_email, sign_up
from tests.server_process import ServerProcess

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
async def test_with_redis_the_user_bucket_is_shared_and_a_revoked_token_takes_nothing(make_client, make_user,
                                                                                       redis_url, settings):
    """With Redis the denylist check and the user's bucket are one round trip: the denylist comes first."""
    prefix = fresh_prefix(settings)
    options = {"redis_url": redis_url, "redis_prefix": prefix, "rate_limit_user_per_minute": 3}
    worker_a, worker_b = await make_client(**options), await make_client(**options)
    user = await make_user(password=PASSWORD)
    fresh = {"Authorization": f"Bearer {(await (await _sign_in(worker_a, user.email)).json())['access_token']}"}
    assert (await worker_a.get("/auth/me", headers=user.headers)).headers["RateLimit-Remaining"] == "2"
    assert (await worker_b.post("/auth/sign-out", headers=user.headers)).status == 204
    for worker in (worker_a, worker_b, worker_a, worker_b):
        revoked = await worker.get("/auth/me", headers=user.headers)
        assert revoked.status == 401 and "RateLimit-Limit" not in revoked.headers
    assert (await worker_b.get("/auth/me", headers=fresh)).headers["RateLimit-Remaining"] == "1"
    assert (await worker_a.get("/auth/me", headers=fresh)).headers["RateLimit-Remaining"] == "0"
    refused = await worker_b.get("/auth/me", headers=fresh)
    assert refused.status == 429 and refused.headers["RateLimit-Policy"] == '"user";q=3;w=60'


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


# --- the client IP (operations.md §4 VOYAGENT_TRUSTED_PROXY_HOPS; README, Rate limiting) ---------------------
# Every request below goes over real TCP to a real listening socket, so the TCP peer is whatever the kernel says.

FORGED_CHAIN = "198.51.100.66, 203.0.113.7, 192.0.2.10"  # client-written, then what two proxies appended


async def _client_ip_logged(client, caplog, headers=None, url="/health"):
    """The ``client_ip`` of the access-log line of one request (the line every request gets)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="voyagent.access"):
        if url.startswith("http"):
            async with client.session.get(url, headers=headers) as response:
                assert response.status == 200
        else:
            assert (await client.get(url, headers=headers)).status == 200
    [line] = [r.getMessage() for r in caplog.records if r.name == "voyagent.access"]
    return line.split("client_ip=", 1)[1].split(" ", 1)[0]


async def _ip_bucket_remaining(client, xff, path="/auth/sign-in"):
    """RateLimit-Remaining of the client-IP bucket after one request carrying ``X-Forwarded-For: xff``."""
    body = {"email": "not-an-email"}  # refused at validation (step 6): the IP token is taken, no e-mail bucket
    response = await client.post(path, json=body, headers={"X-Forwarded-For": xff} if xff is not None else None)
    assert response.status in (422, 429), await response.text()
    return response.status, response.headers.get("RateLimit-Remaining")


@pytest.mark.parametrize(("hops", "expected"), [
    (0, "127.0.0.1"),  # the TCP peer: the header is not looked at
    (1, "192.0.2.10"),  # what the nearest proxy saw
    (2, "203.0.113.7"),
    (3, "198.51.100.66"),
    (4, "198.51.100.66"),  # fewer entries than hops: the left-most
    (10, "198.51.100.66"),
])
async def test_trusted_proxy_hops_pick_the_nth_address_from_the_right(make_client, caplog, hops, expected):
    client = await make_client(trusted_proxy_hops=hops)
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": FORGED_CHAIN}) == expected
    assert await _client_ip_logged(client, caplog) == "127.0.0.1"  # no header: the peer


@pytest.mark.parametrize(("hops", "expected"), [(1, "192.0.2.30"), (2, "192.0.2.20"), (3, "192.0.2.10"),
                                                (4, "192.0.2.10")])
async def test_several_header_fields_are_one_list_joined_in_order_with_entries_trimmed(make_client, caplog, hops,
                                                                                       expected):
    client = await make_client(trusted_proxy_hops=hops)
    headers = CIMultiDict([("X-Forwarded-For", " 192.0.2.10 ,\t192.0.2.20"), ("X-Forwarded-For", "192.0.2.30 ")])
    assert await _client_ip_logged(client, caplog, headers) == expected


@pytest.mark.parametrize("forwarded", [
    "not-an-ip", "203.0.113.7:8080", "[2001:db8::1]", "[2001:db8::1]:443", "", " , ", "198.51.100.1, ",
    "fe80::1%eth0", "192.0.2.300", "1.2.3.4.5", "01.2.3.4", "2001:db8::1::2", "unknown", "x" * 8000,
    "198.51.100.1, 203.0.113.9 garbage", "203.0.113.9;", "::ffff:999.1.1.1",
])
async def test_a_chosen_entry_that_is_not_an_ip_address_means_the_peer(make_client, caplog, forwarded):
    client = await make_client(trusted_proxy_hops=1)
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": forwarded}) == "127.0.0.1"


async def test_only_the_chosen_entry_counts_garbage_elsewhere_is_ignored(make_client, caplog):
    client = await make_client(trusted_proxy_hops=2)
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": "junk,, 203.0.113.7, 192.0.2.1"}) == \
        "203.0.113.7"
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": "203.0.113.7,,192.0.2.1"}) == "127.0.0.1"
    # addresses are written in one canonical form
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": "2001:DB8:0:0:0:0:0:A, 192.0.2.1"}) == \
        "2001:db8::a"
    assert await _client_ip_logged(client, caplog, {"X-Forwarded-For": "::ffff:198.51.100.7, 192.0.2.1"}) == \
        "198.51.100.7"


async def test_forged_left_entries_cannot_escape_the_bucket(make_client):
    client = await make_client(trusted_proxy_hops=1, rate_limit_auth_ip_per_minute=3)
    assert await _ip_bucket_remaining(client, "10.0.0.1, 192.0.2.44") == (422, "2")
    assert await _ip_bucket_remaining(client, "10.9.9.9, 172.16.0.1, 192.0.2.44") == (422, "1")
    assert await _ip_bucket_remaining(client, "192.0.2.44") == (422, "0")
    status, _ = await _ip_bucket_remaining(client, "203.0.113.250, 192.0.2.44")
    assert status == 429
    # another address seen by the proxy is another client; the peer itself (no header) is a third
    assert await _ip_bucket_remaining(client, "192.0.2.44, 192.0.2.45") == (422, "2")
    assert await _ip_bucket_remaining(client, None) == (422, "2")


async def test_without_trusted_proxies_the_header_changes_nothing(make_client):
    client = await make_client(rate_limit_auth_ip_per_minute=2)
    assert await _ip_bucket_remaining(client, "192.0.2.1") == (422, "1")
    assert await _ip_bucket_remaining(client, "192.0.2.2") == (422, "0")
    assert (await _ip_bucket_remaining(client, "192.0.2.3"))[0] == 429


async def test_unparseable_entries_share_the_peer_bucket(make_client):
    client = await make_client(trusted_proxy_hops=1, rate_limit_auth_ip_per_minute=3)
    assert await _ip_bucket_remaining(client, "garbage-1") == (422, "2")
    assert await _ip_bucket_remaining(client, "192.0.2.1:1234") == (422, "1")
    assert await _ip_bucket_remaining(client, None) == (422, "0")
    assert (await _ip_bucket_remaining(client, f"garbage-{'x' * 100}"))[0] == 429


async def test_one_client_ip_for_buckets_audit_refresh_tokens_and_the_log(make_client, make_user, db, caplog):
    client = await make_client(trusted_proxy_hops=2, rate_limit_auth_email_per_minute=0)
    chain = {"X-Forwarded-For": "6.6.6.6, 198.51.100.23, 10.0.0.2"}
    user = await make_user("agent", password=PASSWORD)
    signed_in = await client.post("/auth/sign-in", json={"email": user.email, "password": PASSWORD}, headers=chain)
    assert signed_in.status == 200
    ips = await db.fetch("SELECT ip FROM auth_refresh_tokens WHERE user_id = $1", user.id)
    assert [row["ip"] for row in ips] == ["198.51.100.23"]
    assert (await client.get("/audit", headers={**user.headers, **chain})).status == 403
    inputs = await db.fetchval("SELECT inputs FROM audit_events WHERE tenant_id = $1 AND tool = 'auth.verify'",
                               user.tenant_id)
    assert json.loads(inputs)["remote_addr"] == "198.51.100.23"
    assert await _client_ip_logged(client, caplog, chain) == "198.51.100.23"
    assert await _ip_bucket_remaining(client, "1.1.1.1, 198.51.100.23, 10.0.0.3") == (422, "28")  # sign-in took one
    # the metrics access rule reads the TCP peer only: a loopback peer is allowed whatever the header claims
    scrape = await client.get("/internal/metrics", headers={"X-Forwarded-For": "203.0.113.1, 203.0.113.2"})
    assert scrape.status == 200


async def test_ipv6_peers_are_seen_and_bucketed_over_real_ipv6(aiohttp_client, make_app, caplog):
    client = await aiohttp_client(make_app(rate_limit_auth_ip_per_minute=3), server_kwargs={"host": "::1"})
    assert await _client_ip_logged(client, caplog) == "::1"
    assert await _ip_bucket_remaining(client, None) == (422, "2")
    assert await _ip_bucket_remaining(client, None) == (422, "1")


@pytest.mark.parametrize(("path", "bucket_setting"), [("/auth/sign-in", "rate_limit_auth_ip_per_minute"),
                                                      ("/auth/sign-up", "rate_limit_signup_ip_per_minute")])
async def test_ipv6_clients_share_a_bucket_per_64_prefix(aiohttp_client, make_app, path, bucket_setting):
    app = make_app(trusted_proxy_hops=1, **{bucket_setting: 3})
    client = await aiohttp_client(app, server_kwargs={"host": "::1"})  # an IPv6 proxy in front

    async def remaining(xff):
        return await _ip_bucket_remaining(client, xff, path)

    assert await remaining("2001:db8:aa:1::1") == (422, "2")
    assert await remaining("2001:db8:aa:1:ffff:ffff:ffff:ffff") == (422, "1")  # same first 64 bits
    assert await remaining("2001:DB8:AA:1:0:0:0:2") == (422, "0")  # same prefix, another spelling
    assert (await remaining("2001:db8:aa:1:1234::9"))[0] == 429
    assert await remaining("2001:db8:aa:2::1") == (422, "2")  # the neighbouring /64 is another client
    assert await remaining("2001:db8:ab:1::1") == (422, "2")
    assert await remaining("2001:db9:aa:1::1") == (422, "2")
    # IPv4 addresses stay one by one, however close
    assert await remaining("192.0.2.1") == (422, "2")
    assert await remaining("192.0.2.2") == (422, "2")


async def test_ipv4_mapped_addresses_count_as_the_ipv4_address(aiohttp_client, make_app, caplog):
    # a dual-stack socket ("::") sees an IPv4 client as ::ffff:a.b.c.d
    app = make_app(trusted_proxy_hops=0, rate_limit_auth_ip_per_minute=3)
    client = await aiohttp_client(app, server_kwargs={"host": "::"})
    port = client.port
    assert await _client_ip_logged(client, caplog, url=f"http://127.0.0.1:{port}/health") == "127.0.0.1"
    assert await _client_ip_logged(client, caplog, url=f"http://[::1]:{port}/health") == "::1"

    async def remaining(host):
        async with client.session.post(f"http://{host}:{port}/auth/sign-in", json={"email": "x"}) as response:
            return response.status, response.headers.get("RateLimit-Remaining")

    assert await remaining("127.0.0.1") == (422, "2")
    assert await remaining("[::ffff:127.0.0.1]") == (422, "1")  # the same IPv4 client, however it is reached
    assert await remaining("[::1]") == (422, "2")  # IPv6 loopback is another client


async def test_an_ipv4_mapped_forwarded_address_shares_the_ipv4_bucket(make_client):
    client = await make_client(trusted_proxy_hops=1, rate_limit_signup_ip_per_minute=3)
    assert await _ip_bucket_remaining(client, "::ffff:198.51.100.7", "/auth/sign-up") == (422, "2")
    assert await _ip_bucket_remaining(client, "198.51.100.7", "/auth/sign-up") == (422, "1")
    assert await _ip_bucket_remaining(client, "0:0:0:0:0:ffff:c633:6407", "/auth/sign-up") == (422, "0")
    assert (await _ip_bucket_remaining(client, "198.51.100.8", "/auth/sign-up"))[1] == "2"


async def test_a_real_server_reads_the_deprecated_alias_as_one_hop_and_warns(database, redis_prefix):
    env = {"VOYAGENT_DB_URL": database.dsn, "VOYAGENT_AUTH_SECRET": TEST_SECRET, "VOYAGENT_LOG_LEVEL": "INFO",
           "VOYAGENT_TRUST_FORWARDED_FOR": "true", "VOYAGENT_RATE_LIMIT_AUTH_IP_PER_MINUTE": "2"}
    server = ServerProcess(env).start()
    try:
        async with aiohttp.ClientSession() as session:
            async def attempt(xff):
                async with session.post(f"{server.url}/auth/sign-in", json={"email": "x"},
                                        headers={"X-Forwarded-For": xff}) as response:
                    return response.status

            assert [await attempt("6.6.6.6, 192.0.2.77"), await attempt("7.7.7.7, 192.0.2.77")] == [422, 422]
            assert await attempt("8.8.8.8, 192.0.2.77") == 429  # one hop: the forged left entries are ignored
            assert await attempt("192.0.2.78") == 422
    finally:
        code, output = server.stop()
    assert code == 0
    warnings = [line for line in output.splitlines() if " WARNING " in line and "VOYAGENT_TRUST_FORWARDED_FOR" in line]
    assert len(warnings) == 1 and "deprecated" in warnings[0] and "VOYAGENT_TRUSTED_PROXY_HOPS=1" in warnings[0]
    assert "client_ip=192.0.2.77" in output and "client_ip=6.6.6.6" not in output
