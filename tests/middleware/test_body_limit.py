"""Body limit: 413 payload_too_large before parsing, on every route, public or not."""

from tests.middleware.echo_route import add_echo_route


async def test_declared_length_over_the_limit_is_413_on_any_route(make_app, aiohttp_client):
    app = make_app(max_body_bytes=100)
    add_echo_route(app)
    client = await aiohttp_client(app)
    big = b"x" * 101
    public = await client.get("/health", data=big)
    assert public.status == 413
    assert await public.json() == {"detail": "payload_too_large"}
    protected = await client.post("/things/1", data=big, headers={"Content-Type": "application/json"})
    assert protected.status == 413  # refused before authentication, so no credential is needed to see it
    unknown = await client.post("/nowhere", data=big)
    assert unknown.status == 404  # routing is check 1


async def test_chunked_body_over_the_limit_is_413(make_app, aiohttp_client, admin):
    app = make_app(max_body_bytes=1000)
    add_echo_route(app)
    client = await aiohttp_client(app)

    async def chunks():
        for _ in range(20):
            yield b"x" * 100

    response = await client.post("/things/1", data=chunks(), headers={**admin.headers,
                                                                      "Content-Type": "application/json"})
    assert response.status == 413
    assert await response.json() == {"detail": "payload_too_large"}


async def test_body_at_the_limit_is_accepted(make_app, aiohttp_client, admin):
    app = make_app(max_body_bytes=64)
    add_echo_route(app)
    client = await aiohttp_client(app)
    body = b'{"name": "' + b"a" * 50 + b'"}'
    body += b" " * (64 - len(body))
    response = await client.post("/things/1", data=body, headers={**admin.headers, "Content-Type": "application/json"})
    assert response.status == 201
