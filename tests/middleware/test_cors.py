"""CORS: configured origins only, credentialed, preflights answered without credentials."""

from tests.middleware.echo_route import add_echo_route

# README, CORS: the response headers a client needs, exposed by name.
CONTRACT_EXPOSE_HEADERS = ("RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, RateLimit-Policy, RateLimit, "
                           "Retry-After, X-Request-Id, Idempotent-Replayed")


async def test_preflight_from_an_allowed_origin_is_200(make_bare_client):
    client = await make_bare_client(routes=add_echo_route)
    response = await client.options("/things/1", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert response.status == 200  # no credentials, and before routing (the route has no OPTIONS)
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_preflight_from_another_origin_gets_no_cors_headers(make_bare_client):
    client = await make_bare_client()
    response = await client.options("/plain", headers={"Origin": "https://evil.example",
                                                       "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_simple_responses_expose_the_contract_headers(make_bare_client):
    client = await make_bare_client(cors_origins=("https://app.example.com",))
    response = await client.get("/plain", headers={"Origin": "https://app.example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Access-Control-Expose-Headers"] == CONTRACT_EXPOSE_HEADERS
    error = await client.get("/missing", headers={"Origin": "https://app.example.com"})
    assert error.status == 404
    assert error.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
