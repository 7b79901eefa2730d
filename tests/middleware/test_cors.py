"""CORS: configured origins only, credentialed, preflights answered without credentials."""

from voyagent.middleware.cors import EXPOSE_HEADERS


async def test_preflight_from_an_allowed_origin_is_200(client):
    response = await client.options("/enquiries", headers={
        "Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key"})
    assert response.status == 200
    assert response.headers["Access-Control-Allow-Origin"] == "http://localhost:3000"
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "idempotency-key" in response.headers["Access-Control-Allow-Headers"]
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


async def test_preflight_from_another_origin_gets_no_cors_headers(client):
    response = await client.options("/health", headers={"Origin": "https://evil.example",
                                                        "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in response.headers


async def test_simple_responses_expose_the_contract_headers(make_client):
    client = await make_client(cors_origins=("https://app.example.com",))
    response = await client.get("/health", headers={"Origin": "https://app.example.com"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
    assert response.headers["Access-Control-Expose-Headers"] == EXPOSE_HEADERS
    for name in ("RateLimit-Limit", "Retry-After", "X-Request-Id", "Idempotent-Replayed"):
        assert name in EXPOSE_HEADERS
    error = await client.get("/missing", headers={"Origin": "https://app.example.com"})
    assert error.headers["Access-Control-Allow-Origin"] == "https://app.example.com"
