"""Body limit: 413 payload_too_large before parsing, on every route, public or not."""

from tests.middleware.echo_route import add_echo_route

JSON = {"Content-Type": "application/json"}


async def test_declared_length_over_the_limit_is_413_on_any_route(make_bare_client):
    client = await make_bare_client(routes=add_echo_route, max_body_bytes=100)
    big = b"x" * 101
    public = await client.get("/plain", data=big)
    assert public.status == 413
    assert await public.json() == {"detail": "payload_too_large"}
    protected = await client.post("/things/1", data=big, headers=JSON)
    assert protected.status == 413  # refused before authentication, so no credential is needed to see it
    unknown = await client.post("/nowhere", data=big)
    assert unknown.status == 404  # routing is check 1


async def test_chunked_body_over_the_limit_is_413(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route, max_body_bytes=1000)

    async def chunks():
        for _ in range(20):
            yield b"x" * 100

    response = await client.post("/things/1", data=chunks(), headers={**caller.headers, **JSON})
    assert response.status == 413
    assert await response.json() == {"detail": "payload_too_large"}


async def test_body_at_the_limit_is_accepted(make_bare_client, caller):
    client = await make_bare_client(routes=add_echo_route, max_body_bytes=64)
    body = b'{"name": "' + b"a" * 50 + b'"}'
    body += b" " * (64 - len(body))
    response = await client.post("/things/1", data=body, headers={**caller.headers, **JSON})
    assert response.status == 201
